/*
 * rkt-launch: the `rkt` command itself (bin/rkt and npm's link are links to it). Static C,
 * built by src/stage1/helper/build.sh into dist/rkt-launch. No shell runs before Node:
 * dash's start-up was about 1 ms of every command.
 *
 *   rkt [ARG...]
 *
 * Runs stage0, `node --require DIST/preload.cjs DIST/rkt.cjs ARG...` (node looked up on
 * PATH; DIST the directory this binary is in, through any links).
 *
 * A command that may start a pod (run, run-prepared, app sandbox) runs as a child, with
 * RKT_HANDOFF_FD=3 and a pipe on its fd 3, and ends by writing there how to go on, each
 * field NUL-terminated:
 *
 *   go|wait PROGRAM [ARG...] ""
 *
 * and this process execs PROGRAM (stage1's first step), so the PID rkt's caller started
 * becomes the pod. With "go" it does so at once: stage0 is done with everything the pod
 * shares (it closed its stdio first), and its exit, ~4 ms of tearing Node down, runs beside
 * stage1 instead of before it (the pod's holder reaps it). With "wait" (stage0 built a stdio
 * stream, which may have set O_NONBLOCK on a file the pod shares until its exit restores
 * it) it waits for stage0's exit first, and goes on only if that was 0. Without a record:
 * stage0's exit status, as a shell gives it (128+N for signal N).
 *
 * Any other command is stage0 in this very process: an exec, no fork and no wait (~1.4 ms).
 * Signals keep their default actions, as they had in the shell this replaces. The umask
 * gains 022 for stage0 and stage1 alike (see main).
 *
 * Stage0 gets Node's own variables, every NODE_* (NODE_OPTIONS, NODE_PATH,
 * NODE_EXTRA_CA_CERTS...), held as RKT_HELD_NODE_*, which dist/preload.cjs puts back before
 * any of rkt's code runs (so rkt's children and --inherit-env see them unchanged). Node never
 * acts on them: rkt runs as root the same whoever calls it (a caller's NODE_OPTIONS would open
 * an --inspect port anyone on the host may use, --require any file, or change V8's flags and
 * with them the code cache), and Node does not read and parse NODE_EXTRA_CA_CERTS at every
 * start (~40 ms): src/image/http.ts reads it when a fetch opens TLS. Stage1 gets the
 * environment unchanged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HANDOFF_FD 3
/* Where to look without a usable PATH. */
#define ROOT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* Far more than any stage1 command line: a bigger record is refused, not buffered. */
#define RECORD_MAX (1 << 20)

static int fail(const char *what) {
  fprintf(stderr, "rkt: %s: %s\n", what, strerror(errno));
  return 254;
}

/* Stage0's exit status, as a shell reports it. */
static int status_of(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return fail("cannot wait for stage0");
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * NAME's path on PATH, as a shell finds it (into `file`), or NULL; but only in absolute
 * directories: an empty or relative entry would run, as root, a `node` planted in whatever
 * directory rkt is started from.
 */
static const char *find_on_path(const char *name, char *file, size_t size) {
  const char *path = getenv("PATH");
  for (const char *dir = path && *path ? path : ROOT_PATH; ; dir++) {
    size_t n = strcspn(dir, ":");
    if (*dir == '/' && (size_t)snprintf(file, size, "%.*s/%s", (int)n, dir, name) < size && access(file, X_OK) == 0) return file;
    dir += n;
    if (!*dir) return NULL;
  }
}

/* This binary's directory, links resolved, with a final slash (into `dir`); "" if unknown. */
static void own_dir(char *dir, size_t size) {
  ssize_t n = readlink("/proc/self/exe", dir, size - 1);
  char *slash = n > 0 ? memrchr(dir, '/', (size_t)n) : NULL;
  if (slash) slash[1] = 0;
  else dir[0] = 0;
}

/* DIR NAME into `file`; 0 if it is not there. */
static int in_dist(const char *dir, const char *name, char *file, size_t size) {
  return (size_t)snprintf(file, size, "%s%s", *dir ? dir : "dist/", name) < size && *dir && access(file, R_OK) == 0;
}

/*
 * A complete record ("go" or "wait", then PROGRAM [ARG...], each a non-empty field ended by
 * NUL, then an empty field): the argv from PROGRAM on, split in place, and the mode. NULL
 * while it is incomplete, and for anything else.
 */
static char **parse_record(char *buf, size_t len, int *wait) {
  if (len < 2 || buf[len - 1] != 0 || buf[len - 2] != 0) return NULL;
  size_t n = 0;
  char *p = buf;
  /* Stops at the first empty field: at buf[len - 1] at the latest, as buf[len - 2] is NUL. */
  while (*p) { p += strlen(p) + 1; n++; }
  if (p != buf + len - 1 || n < 2) return NULL;
  if (strcmp(buf, "go") == 0) *wait = 0;
  else if (strcmp(buf, "wait") == 0) *wait = 1;
  else return NULL;
  char **argv = calloc(n, sizeof *argv); /* n - 1 fields and the final NULL */
  if (!argv) return NULL;
  p = buf + strlen(buf) + 1;
  for (size_t i = 0; i < n - 1; i++, p += strlen(p) + 1) argv[i] = p;
  return argv;
}

/*
 * Whether ARGV may name a command that starts a pod (run, run-prepared, app sandbox): any
 * argument that is one of those words. Flags and their values may come before the command,
 * so a command is not told from a value; a false yes costs only the fork.
 */
static int may_hand_off(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "run") == 0 || strcmp(argv[i], "run-prepared") == 0 || strcmp(argv[i], "sandbox") == 0) return 1;
  }
  return 0;
}

#define HELD "RKT_HELD_"

/*
 * "PATH=" and the absolute directories of `entry`'s (a malloc'ed string; NULL if out of
 * memory): stage0 runs host tools by name (cp, mknod, xz, iptables...) as root, and an empty
 * or relative entry would find them in the directory rkt was started from. None left:
 * ROOT_PATH.
 */
static char *absolute_path(const char *entry) {
  const char *value = entry + strlen("PATH=");
  char *out = malloc(strlen(entry) + sizeof ROOT_PATH);
  if (!out) return NULL;
  char *end = stpcpy(out, "PATH=");
  for (const char *dir = value; ; dir++) {
    size_t n = strcspn(dir, ":");
    if (*dir == '/') end += sprintf(end, "%s%.*s", end[-1] == '=' ? "" : ":", (int)n, dir);
    dir += n;
    if (!*dir) break;
  }
  if (end[-1] == '=') strcpy(end, ROOT_PATH);
  return out;
}

/*
 * This environment for stage0: every NODE_* held as RKT_HELD_NODE_* (see above; only ours
 * are), PATH's directories absolute ones only.
 */
static char **stage0_env(void) {
  extern char **environ;
  size_t n = 0;
  while (environ[n]) n++;
  char **env = calloc(n + 1, sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, HELD, strlen(HELD)) == 0) continue;
    if (strncmp(*e, "PATH=", 5) == 0) {
      if (!(env[k++] = absolute_path(*e))) return NULL;
      continue;
    }
    if (strncmp(*e, "NODE_", 5) != 0) { env[k++] = *e; continue; }
    char *held = malloc(strlen(HELD) + strlen(*e) + 1);
    if (!held) return NULL;
    env[k++] = strcat(strcpy(held, HELD), *e);
  }
  return env;
}

/* Execs stage0, Node's own variables held (see above); 254 if it cannot. */
static int run_stage0(const char *node, char **stage0) {
  char **env = stage0_env();
  if (!env) return fail("cannot start stage0");
  execve(node, stage0, env);
  fprintf(stderr, "rkt: cannot run %s: %s\n", node, strerror(errno));
  return 254;
}

int main(int argc, char **argv) {
  static char dist[4096], node[4096], preload[4096], bundle[4096];
  /*
   * rkt's own files are never group- or world-writable by the umask, whatever the caller's
   * (whose stricter bits stay: an exported image under 077 is still private; the apps get
   * 022 from rkt-helper): under 002 or 000, the group that may read the data dir (rkt) could
   * have written a pod's pid and status files, which root's stop and gc act on.
   */
  umask(umask(022) | 022);
  own_dir(dist, sizeof dist);
  if (!in_dist(dist, "preload.cjs", preload, sizeof preload) || !in_dist(dist, "rkt.cjs", bundle, sizeof bundle)) {
    fprintf(stderr, "rkt: %s is missing: build rkt first (npm run build)\n", access(preload, R_OK) == 0 ? bundle : preload);
    return 254;
  }
  if (!find_on_path("node", node, sizeof node)) {
    fprintf(stderr, "rkt: node not found on PATH: install Node.js 20.19 or later (rkt runs on it)\n");
    return 254;
  }
  char **stage0 = calloc((size_t)argc + 4, sizeof *stage0);
  if (!stage0) return fail("cannot start stage0");
  stage0[0] = "node";
  stage0[1] = "--require";
  stage0[2] = preload;
  stage0[3] = bundle;
  for (int i = 1; i < argc; i++) stage0[3 + i] = argv[i];
  /* A command that cannot start a pod: stage0 is this process (no fork, no wait). */
  if (!may_hand_off(argc, argv)) return run_stage0(node, stage0);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return fail("cannot make the hand-off pipe");
  pid_t pid = fork();
  if (pid < 0) return fail("cannot start stage0");
  if (pid == 0) {
    /* dup2 onto itself would keep close-on-exec. */
    if ((p[1] == HANDOFF_FD ? fcntl(HANDOFF_FD, F_SETFD, 0) : dup2(p[1], HANDOFF_FD)) < 0) _exit(fail("cannot pass the hand-off pipe"));
    if (setenv("RKT_HANDOFF_FD", "3", 1) != 0) _exit(fail("cannot set RKT_HANDOFF_FD"));
    _exit(run_stage0(node, stage0));
  }
  close(p[1]);
  size_t len = 0, size = 4096;
  char *buf = malloc(size);
  if (!buf) return fail("cannot read the hand-off");
  for (;;) {
    if (len == size) {
      if (size >= RECORD_MAX || !(buf = realloc(buf, size *= 2))) {
        errno = E2BIG;
        return fail("stage1 hand-off failed");
      }
    }
    ssize_t r = read(p[0], buf + len, size - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail("cannot read the hand-off");
    if (r == 0) break;
    len += (size_t)r;
    /* Complete: stage0 writes it as its last act, and may take a while to close the pipe. */
    if (len >= 2 && buf[len - 1] == 0 && buf[len - 2] == 0) break;
  }
  int wait = 0;
  char **next = parse_record(buf, len, &wait);
  if (!next) {
    int rc = status_of(pid);
    if (len == 0 || rc != 0) return rc;
    fprintf(stderr, "rkt: stage1 hand-off failed: stage0 wrote a malformed record\n");
    return 254;
  }
  if (wait) {
    int rc = status_of(pid);
    if (rc != 0) return rc;
  }
  execv(next[0], next);
  fprintf(stderr, "rkt: stage1 hand-off failed: cannot run %s: %s\n", next[0], strerror(errno));
  return 254;
}
