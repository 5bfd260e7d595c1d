/*
 * rkt-helper: stage1's own steps, one static binary (it runs where no host library is in view).
 *
 *   rkt-helper --pod LISTEN NETNS NAMESPACES --init POD/stage1/init.table CAPS GRACE_MS INTERACTIVE NOTIFY NAME...
 *   rkt-helper --pod LISTEN NETNS NAMESPACES PROGRAM [ARG...]
 *
 * The pod's fds and namespaces, then this process holds the pod and its child is the pod's
 * PID 1, or it execs PROGRAM (rkt-notify, which holds the pod under systemd): see pod_main
 * and hold.
 *
 *   rkt-helper --init POD/stage1/init.table CAPS GRACE_MS INTERACTIVE NOTIFY NAME...
 *
 * The pod's PID 1 (the path of init.table stays on its command line, where rkt recognises
 * the pod): see init_main.
 *
 *   rkt-helper --launch POD/stage1/app-NAME.launch
 *
 * An app's launcher (cgroups, mounts, then its last step or its event handlers' script),
 * as PID 1 runs it itself: see launch_main.
 *
 *   rkt-helper --app PIVOT UID GID GROUPS CAPS NNP WORKDIR FILTER|- [NAME=VALUE...] PROGRAM [ARG...]
 *
 * An app's last step, from root of its namespaces to the app itself (and that of a command
 * `rkt enter` runs): pivot, privileges, keyring, seccomp, environment, exec; nothing stays
 * resident. See app_main and exec_app. When the exec fails it says why in rkt's words (its
 * stage1 "diagnostic" lines, which scripts grep): `Error: Unable to open "/foo": No such
 * file or directory` for a missing program, or for the missing interpreter of a script or
 * of an ELF binary; `Error: "/foo" is not executable`. Exit status 127 (not found) or 126,
 * as a shell's.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEYCTL_JOIN_SESSION_KEYRING 1

static void die(const char *what) {
  fprintf(stderr, "stage1: %s: %s\n", what, strerror(errno));
  exit(254);
}

static void fail_on(const char *what, const char *path);
static void run_table(const char *file, const char *what, int (*op)(char **f, int n));
static int launch_main(const char *table);
static void write_text(char *path, const char *text, int truncate);

/* The fd stage1 keeps socket-activation fds from (src/stage1/scripts.ts LISTEN_FD_BASE). */
#define LISTEN_FD_BASE 100

static void close_from(unsigned int first, unsigned int last) {
  if (syscall(SYS_close_range, first, last, 0) != 0) {
    for (unsigned int fd = first; fd <= last && fd < 65536; fd++) close((int)fd);
  }
}

/* Fds from..from+count-1 move to to..to+count-1 (the ranges apart); every other fd above 2 is
 * closed. For the socket-activation fds a service manager gave rkt: kept at LISTEN_FD_BASE..
 * while the pod starts (pod_main), back at 3.. for the app (exec_app). */
static void keep_fds(unsigned int from, unsigned int to, unsigned int count) {
  for (unsigned int k = 0; k < count; k++) {
    if (dup2((int)(from + k), (int)(to + k)) < 0) die("socket-activation fd missing");
  }
  if (to > 3) close_from(3, to - 1);
  close_from(to + count, ~0U);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

static void load_filter(const char *hex) {
  size_t len = strlen(hex);
  if (len == 0 || len % 16 != 0 || len / 16 > BPF_MAXINSNS) {
    errno = EINVAL;
    die("bad seccomp filter");
  }
  unsigned char *bytes = malloc(len / 2);
  if (!bytes) die("cannot load the seccomp filter");
  for (size_t i = 0; i < len / 2; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      errno = EINVAL;
      die("bad seccomp filter");
    }
    bytes[i] = (unsigned char)(hi << 4 | lo);
  }
  struct sock_fprog prog = { .len = (unsigned short)(len / 16), .filter = (struct sock_filter *)bytes };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("cannot set no_new_privs");
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) die("cannot load the seccomp filter");
}

/* --init ------------------------------------------------------------------------------ */

/* Files of the pod's rkt/ dir (src/pod-layout.ts STOPPING_FILE, STOP_TIMEOUT_FILE, STOP_KILLED_FILE). */
#define STOPPING_FILE "stopping"
#define STOP_TIMEOUT_FILE "stop-timeout"
#define STOP_KILLED_FILE "stop-killed"
/* Where rkt-notify takes "every app started" (src/stage1/scripts.ts NOTIFY_READY_FD). */
#define NOTIFY_READY_FD 4
/* In the pod's rkt/ dir once every app started (src/pod-layout.ts READY_FILE). */
#define READY_FILE "ready"
/* In the pod's rkt/ dir: the pod is a sandbox (`rkt app sandbox`, src/stage0/app.ts): PID 1
 * stays up until it is stopped, and records the exit status of the apps `rkt app start`
 * hands it (an app's launcher whose pod PID is P is named in started/P). */
#define SANDBOX_FILE "sandbox"
#define STARTED_DIR "started"

struct app { const char *name; pid_t pid; int done, killed; };
static struct app *apps;
static int napps, left, result, requested, stopping, killing, sandbox;
static unsigned long grace_ms;
/* The pod's rkt/ dir: POD/rkt, and "" once PID 1 has pivoted into it. */
static char rktdir[PATH_MAX + 8];

/* snprintf that refuses to cut a path short. */
#define PATHF(buf, ...) do { if (snprintf(buf, sizeof buf, __VA_ARGS__) >= (int)sizeof buf) { errno = ENAMETOOLONG; die("path too long"); } } while (0)

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ssize_t n = (ssize_t)strlen(text);
  if (fd < 0 || write(fd, text, n) != n) fprintf(stderr, "stage1: cannot write %s: %s\n", path, strerror(errno));
  if (fd >= 0) close(fd);
}

/* The grace period `rkt stop --timeout` set for this stop (seconds, as text), if any. */
static void read_stop_timeout(void) {
  char path[PATH_MAX + 64], text[32];
  PATHF(path, "%s/" STOP_TIMEOUT_FILE, rktdir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return;
  text[n] = 0;
  char *end;
  double s = strtod(text, &end);
  if (end != text && (*end == 0 || *end == '\n') && s >= 0 && s <= 86400.0 * 365) grace_ms = (unsigned long)(s * 1000 + 0.5);
}

/* Asks every app still running to stop; SIGALRM (the grace period) brings the SIGKILL. */
static void stop(void) {
  if (stopping) return;
  stopping = 1;
  char path[PATH_MAX + 64];
  // Launchers check this first: one that has not exec'd its app yet does not start it.
  PATHF(path, "%s/" STOPPING_FILE, rktdir);
  write_file(path, "");
  for (int i = 0; i < napps; i++) if (!apps[i].done) kill(apps[i].pid, SIGTERM);
  // A sandbox's apps were started from outside: every process of the pod is asked.
  if (sandbox) kill(-1, SIGTERM);
  read_stop_timeout();
  // No grace period: the SIGKILL comes at once (SIGALRM is blocked, so it waits for the loop).
  struct itimerval t = { { 0, 0 }, { (time_t)(grace_ms / 1000), (suseconds_t)(grace_ms % 1000 * 1000) } };
  if (grace_ms == 0 || setitimer(ITIMER_REAL, &t, NULL) != 0) kill(getpid(), SIGALRM);
}

static void record(struct app *a, int rc) {
  char path[PATH_MAX + 64], text[16];
  a->done = 1;
  left--;
  // An app that died of the SIGTERM (or the final SIGKILL) PID 1 sent because another app
  // failed is recorded as 0, as rkt did; the pod's status stays the failing app's.
  if (stopping && !requested && (rc == 128 + SIGTERM || rc == 128 + SIGKILL)) rc = 0;
  a->killed = killing && rc == 128 + SIGKILL;
  PATHF(path, "%s/status/%s", rktdir, a->name);
  snprintf(text, sizeof text, "%d\n", rc);
  write_file(path, text);
  // The first app to fail stops the others, unless the pod is being stopped from outside.
  if (rc != 0 && result == 0 && !requested && !sandbox) {
    result = rc;
    stop();
  }
}

/* A sandbox app's launcher ended: its status goes to status/NAME, NAME read from started/PID. */
static void record_started(pid_t pid, int rc) {
  char path[PATH_MAX + 64], name[256], text[16];
  PATHF(path, "%s/" STARTED_DIR "/%d", rktdir, (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return; /* an orphan of some app, not an app */
  ssize_t n = read(fd, name, sizeof name - 1);
  close(fd);
  unlink(path);
  if (n <= 0) return;
  name[n] = 0;
  name[strcspn(name, "\n")] = 0;
  if (name[0] == 0 || name[0] == '.' || strchr(name, '/') != NULL) return;
  PATHF(path, "%s/status/%s", rktdir, name);
  snprintf(text, sizeof text, "%d\n", rc);
  write_file(path, text);
}

/* Reaps every exited child (apps, and orphans the kernel gave to PID 1); 1 once none is left. */
static int reap(void) {
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), known = 0;
    for (int i = 0; i < napps; i++) {
      if (apps[i].pid == pid && !apps[i].done) { record(&apps[i], rc); known = 1; }
    }
    if (!known && sandbox) record_started(pid, rc);
  }
  return pid < 0 && errno == ECHILD;
}

/*
 * The pod's exit status. Apps that outlived the grace period are said on stderr (a service
 * manager's journal) and kept for rkt status; a stop that had to kill does not count as clean.
 */
static int finish(void) {
  char path[PATH_MAX + 64];
  PATHF(path, "%s/" STOP_KILLED_FILE, rktdir);
  FILE *f = NULL;
  for (int i = 0; i < napps; i++) {
    if (!apps[i].killed) continue;
    if (!f && !(f = fopen(path, "we"))) fprintf(stderr, "stage1: cannot write %s: %s\n", path, strerror(errno));
    if (f) fprintf(f, "%s\n", apps[i].name);
    fprintf(stderr, "stage1: app \"%s\" did not stop within %gs of SIGTERM: killed it\n", apps[i].name, grace_ms / 1000.0);
    if (result == 0) result = 128 + SIGKILL;
  }
  if (f) fclose(f);
  return result;
}

/* The grace period is over: SIGKILL everything of the pod that is left. */
static void kill_all(void) {
  killing = 1;
  kill(-1, SIGKILL);
  // An app PID 1 may not signal (another uid, and no app of the pod has CAP_KILL): PID 1
  // exits instead, and the kernel kills every process of the PID namespace with it.
  for (int i = 0; i < napps; i++) {
    if (!apps[i].done && kill(apps[i].pid, 0) != 0 && errno == EPERM) {
      for (int j = 0; j < napps; j++) if (!apps[j].done) record(&apps[j], 128 + SIGKILL);
      exit(finish());
    }
  }
}

/* Drops from the bounding set every capability not in `keep` (needs CAP_SETPCAP). */
static void limit_bounding_set(unsigned long long keep) {
  for (int c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++) {
    if (!(keep >> c & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) die("cannot drop a capability of the bounding set");
  }
}

/* Of the capabilities held, keeps those in `keep`, effective; nothing inheritable or ambient. */
static void keep_capabilities(unsigned long long keep) {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) die("cannot clear the ambient capabilities");
  struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) != 0) die("cannot read the capabilities");
  for (int i = 0; i < 2; i++) {
    unsigned k = (unsigned)(keep >> (32 * i));
    data[i].permitted &= k;
    data[i].effective = data[i].permitted;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &hdr, data) != 0) die("cannot drop capabilities");
}

static void drop_capabilities(unsigned long long keep) {
  limit_bounding_set(keep);
  keep_capabilities(keep);
}

/*
 * Starts app NAME's launcher, in a mount namespace of its own: its launch table
 * POD/stage1/app-NAME.launch, run in this forked process (launch_main).
 */
static pid_t launch(const char *pod, const char *name, int interactive) {
  char table[PATH_MAX + 64];
  PATHF(table, "%s/stage1/app-%s.launch", pod, name);
  pid_t pid = fork();
  if (pid < 0) die("cannot start an app");
  if (pid > 0) return pid;
  // Every signal at its default action, as systemd gave rkt's apps: one the caller ignored (a
  // script's background job ignores SIGINT and SIGQUIT, nohup SIGHUP) would stay ignored
  // through every exec, and the app would never get it.
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  // The launcher's own mount namespace, private so that its mounts stay there (as
  // `unshare -m --propagation private`, without a process for it).
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    fprintf(stderr, "stage1: cannot give app %s a mount namespace: %s\n", name, strerror(errno));
    _exit(254);
  }
  // PID 1's own fds (rkt-notify's pipe, the write end PID 1 waits on until this launcher
  // has its mount namespace) are not the app's; socket-activation fds (from
  // LISTEN_FD_BASE on) are, for the launchers of socket-activated apps.
  close_from(3, LISTEN_FD_BASE - 1);
  if (!interactive) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0 || dup2(fd, 0) < 0) die("cannot open /dev/null");
    if (fd > 0) close(fd);
  }
  _exit(launch_main(table));
}

/* Joins a cgroup: FILE is its tasks (v1: this thread alone, without cgroup.procs' wait for
 * every thread group) or cgroup.procs. */
static void join_cgroup(const char *file) {
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, "0", 1) != 1) fail_on("join cgroup", file);
  close(fd);
}

/* Brings a network interface up (lo, in the empty network namespace of --net=none). */
static void link_up(const char *name) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) fail_on("bring up", name);
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail_on("bring up", name);
  close(s);
}

/* --private-users: HELPER (rkt-idmap) makes the pod's user namespace and keeps it on FILE
 * (a bind mount in the pod's mount namespace); its identity, as /proc/PID/ns/user names it,
 * goes to ID_FILE for rkt enter. */
static void make_userns(char **f) {
  pid_t pid = fork();
  if (pid < 0) die("cannot create the pod user namespace");
  if (pid == 0) {
    char *argv[] = { f[1], "userns", f[2], f[3], f[4], NULL };
    execv(f[1], argv);
    fail_on("run", f[1]);
  }
  int st;
  struct stat ns;
  char id[64];
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "stage1: cannot create the pod user namespace\n");
    exit(254);
  }
  if (stat(f[2], &ns) != 0) die("cannot record the pod user namespace");
  snprintf(id, sizeof id, "user:[%lu]\n", (unsigned long)ns.st_ino);
  write_text(f[5], id, 1);
}

/*
 * One operation of the pod's init table (POD/stage1/init.table, written by stage0:
 * src/stage1/scripts.ts initOps), in the format of the mount table (see table_op):
 *   bounding MASK             the bounding set, cut to MASK (hex): the launchers' and so the apps' ceiling
 *   hostname NAME
 *   up IFNAME                 brings a network interface up
 *   join FILE                 joins a cgroup (FILE: its tasks or cgroup.procs)
 *   userns HELPER FILE BASE COUNT ID_FILE   see make_userns
 *   write FILE TEXT
 */
static int init_op(char **f, int n) {
  const char *op = f[0];
  if (strcmp(op, "bounding") == 0 && n == 2) {
    char *end;
    unsigned long long mask = strtoull(f[1], &end, 16);
    if (*end || end == f[1]) return 0;
    limit_bounding_set(mask);
  } else if (strcmp(op, "hostname") == 0 && n == 2) {
    if (sethostname(f[1], strlen(f[1])) != 0) fail_on("set the hostname", f[1]);
  } else if (strcmp(op, "up") == 0 && n == 2) {
    link_up(f[1]);
  } else if (strcmp(op, "join") == 0 && n == 2) {
    join_cgroup(f[1]);
  } else if (strcmp(op, "userns") == 0 && n == 6) {
    make_userns(f);
  } else if (strcmp(op, "write") == 0 && n == 3) {
    write_text(f[1], f[2], 1);
  } else return 0;
  return 1;
}

/*
 * The pod's PID 1, from the first instruction of its first process (the holder's child, or
 * rkt-notify's): the last privileged work is here, then every capability but CAPS goes.
 *  0. SIGKILL when its holder dies; the init table: the bounding set, hostname,
 *     lo, cgroups, user namespace;
 *  1. starts each app's launcher (which needs PID 1's full bounding set) and records its
 *     pid in rkt/pid/NAME; waits until each has a mount namespace of its own;
 *     then, with NOTIFY=1, tells rkt-notify on fd NOTIFY_READY_FD that every app started
 *     (else marks the pod ready itself: rkt/ready);
 *  2. pivot_root into the pod's rkt/ dir and detaches the host's root, so that nothing of
 *     the host is behind /proc/1/root;
 *  3. a fresh session keyring (not the caller's); keeps of all capabilities only those in
 *     CAPS (a hex mask), in every set: stage0 passes CAP_KILL if an app of the pod has it;
 *  4. not dumpable (from the start): an app running as root with the same (or more)
 *     capabilities could otherwise open /proc/1/mem and run code outside its seccomp
 *     filter and cgroup;
 *  5. waits for the apps, writes each exit status to status/NAME, stops the others when one
 *     fails (SIGTERM, then SIGKILL after GRACE_MS, or the grace `rkt stop --timeout` left in
 *     rkt/stop-timeout), takes SIGTERM/SIGINT as a stop, and exits with the first failure (0
 *     for a stop asked for from outside, 137 if it had to kill). rkt-helper --pod blocked
 *     them for the holder and this process: one that came before is pending here, and counts.
 *  A sandbox (rkt/sandbox) instead records each app `rkt app start` gave it (named in
 *  rkt/started/PID), lets a failing app fail alone, asks every process of the pod to stop
 *  on SIGTERM and exits once none is left.
 * Signals stay blocked and are taken by sigwaitinfo: no handler can race the waits.
 */
static int init_main(int argc, char **argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGALRM);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) die("cannot block signals");
  // First of all: once the capabilities are dropped, an app must not find PID 1 dumpable.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) die("cannot make the pod's init undumpable");
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("cannot set the pod's init's parent-death signal");
  static const char suffix[] = "/stage1/init.table";
  size_t slen = argc > 2 ? strlen(argv[2]) : 0;
  if (argc < 7 || slen <= sizeof suffix - 1 || slen >= PATH_MAX || strcmp(argv[2] + slen - (sizeof suffix - 1), suffix) != 0) {
    fprintf(stderr, "usage: rkt-helper --init POD/stage1/init.table CAPS GRACE_MS INTERACTIVE NOTIFY NAME...\n");
    return 254;
  }
  char pod[PATH_MAX];
  PATHF(pod, "%.*s", (int)(slen - (sizeof suffix - 1)), argv[2]);
  unsigned long long keep = strtoull(argv[3], NULL, 16);
  grace_ms = strtoul(argv[4], NULL, 10);
  int interactive = strcmp(argv[5], "1") == 0;
  int notify = strcmp(argv[6], "1") == 0;
  run_table(argv[2], "init table", init_op);
  sigset_t pending;
  if (sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT))) requested = 1;
  napps = argc - 7;
  apps = calloc(napps > 0 ? napps : 1, sizeof *apps);
  if (!apps) die("cannot start the pod's init");
  PATHF(rktdir, "%s/rkt", pod);
  char path[PATH_MAX + 64], text[16];
  left = napps;
  PATHF(path, "%s/" SANDBOX_FILE, rktdir);
  sandbox = access(path, F_OK) == 0;

  // Each launcher holds the write end until it has its own mount namespace (or has ended):
  // at EOF none is left in this one, which PID 1 is about to pivot.
  int has_ns[2];
  if (pipe2(has_ns, O_CLOEXEC) != 0) die("cannot start the apps");
  for (int i = 0; i < napps; i++) {
    apps[i].name = argv[7 + i];
    apps[i].pid = launch(pod, apps[i].name, interactive);
    PATHF(path, "%s/rkt/pid/%s", pod, apps[i].name);
    snprintf(text, sizeof text, "%d\n", (int)apps[i].pid);
    write_file(path, text);
  }
  close(has_ns[1]);
  char eof;
  while (read(has_ns[0], &eof, 1) < 0 && errno == EINTR) {}
  close(has_ns[0]);
  if (notify) {
    static const char started[] = "started\n";
    if (write(NOTIFY_READY_FD, started, sizeof started - 1) != (ssize_t)(sizeof started - 1)) {
      fprintf(stderr, "stage1: warning: cannot tell the notify relay that the pod started: %s\n", strerror(errno));
    }
  } else {
    /* Ready (rkt status --wait-ready); with NOTIFY=1, rkt-notify marks it when it says READY=1. */
    PATHF(path, "%s/rkt/" READY_FILE, pod);
    write_file(path, "");
  }
  close_from(3, ~0U);
  PATHF(path, "%s/rkt", pod);
  if (mount(path, path, NULL, MS_BIND, NULL) != 0 || chdir(path) != 0 ||
      syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) {
    die("the pod's init cannot leave the host root");
  }
  rktdir[0] = 0;
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0) die("cannot join a new session keyring");
  drop_capabilities(keep);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("cannot set no_new_privs");
  if (requested) stop();
  for (;;) {
    int none = reap();
    // A sandbox ends when it is stopped and its last process is gone.
    if (sandbox ? stopping && none : left == 0) break;
    int sig = sigwaitinfo(&set, NULL);
    if (sig == SIGTERM || sig == SIGINT) {
      requested = 1;
      stop();
    } else if (sig == SIGALRM) {
      kill_all();
    }
  }
  return finish();
}

/* The mount table ---------------------------------------------------------------------- */

/*
 * An app's mounts, made by its launcher (launch_main) in the app's own mount namespace and
 * cgroups, with the host's root still in view, from the launch table that stage0 wrote
 * (src/stage1/scripts.ts renderTable). One process instead of a busybox `mount` per step:
 * busybox's mount also tries a mount.TYPE helper in every PATH directory for each nofail
 * entry whose target is missing.
 *
 * A table: one operation a line, fields separated by one space, each escaped as in fstab
 * (space, tab, newline and backslash as \ooo). Anything else is refused.
 *   root PATH                 paths strictly below PATH (the app rootfs) are resolved as if
 *                             PATH were /, so no link of the image leads outside it
 *   cgroupns                  a cgroup namespace rooted at this process's cgroups
 *   mount SOURCE TARGET TYPE OPTIONS   OPTIONS as mount(8): ro nosuid nodev noexec bind
 *                             rbind are flags, nofail skips a TARGET that does not exist,
 *                             the rest is the filesystem's data; TYPE "none" for binds
 *   ro TARGET                 remounts a bind read-only, keeping its other flags
 *   rotree TARGET             the same for TARGET and every mount below it
 *   idmap HELPER USERNS bind|rbind SOURCE TARGET   runs `HELPER mount [-r] USERNS SOURCE TARGET`
 *   mkdir PATH                with its parents (0755)
 *   touch PATH                an empty file, if none is there
 *   symlink TO PATH
 *   write PATH TEXT           a file (0644) holding TEXT
 *   chown ID PATH             owner and group ID, not following a link
 *   chdir PATH
 */

#include <linux/openat2.h>
#include <sys/statvfs.h>

#define TABLE_MAX (1 << 20)
#define MAX_FIELDS 6

static const char *table_root;

static void fail_on(const char *what, const char *path) {
  fprintf(stderr, "stage1: cannot %s %s: %s\n", what, path, strerror(errno));
  exit(254);
}

/* Below the root, a path comes from the image's tree: resolve it there, links included,
 * but never above the root (RESOLVE_IN_ROOT) nor through /proc's magic links. Elsewhere the
 * path is stage0's own (the pod dir, the host's devices and volumes). */
static int open_path(const char *path, int flags) {
  size_t n = table_root ? strlen(table_root) : 0;
  if (n == 0 || strncmp(path, table_root, n) != 0 || path[n] != '/') return open(path, flags | O_CLOEXEC);
  int root = open(table_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return -1;
  struct open_how how = { .flags = (unsigned long long)(flags | O_CLOEXEC), .mode = (flags & O_CREAT) ? 0644 : 0, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  int fd = (int)syscall(SYS_openat2, root, path + n + 1, &how, sizeof how);
  int err = errno;
  close(root);
  errno = err;
  return fd;
}

/* The directory a new entry PATH goes in, opened (O_PATH) as open_path would; *name gets
 * its last component. */
static int open_parent(char *path, const char **name) {
  char *slash = strrchr(path, '/');
  if (!slash || slash[1] == 0) { errno = EINVAL; return -1; }
  *name = slash + 1;
  if (slash == path) return open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  *slash = 0;
  int fd = open_path(path, O_PATH | O_DIRECTORY);
  int err = errno;
  *slash = '/';
  errno = err;
  return fd;
}

static void fd_path(char *buf, size_t size, int fd) {
  snprintf(buf, size, "/proc/self/fd/%d", fd);
}

static void do_mount(const char *source, const char *target, const char *type, const char *options) {
  static const struct { const char *name; unsigned long flag; } known[] = {
    { "ro", MS_RDONLY }, { "nosuid", MS_NOSUID }, { "nodev", MS_NODEV }, { "noexec", MS_NOEXEC },
    { "bind", MS_BIND }, { "rbind", MS_BIND | MS_REC },
  };
  char opts[4096], data[4096] = "";
  unsigned long flags = 0;
  int nofail = 0;
  if (snprintf(opts, sizeof opts, "%s", options) >= (int)sizeof opts) { errno = E2BIG; fail_on("mount on", target); }
  for (char *save = NULL, *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
    size_t k = 0;
    for (; k < sizeof known / sizeof *known && strcmp(o, known[k].name) != 0; k++) {}
    if (k < sizeof known / sizeof *known) flags |= known[k].flag;
    else if (strcmp(o, "nofail") == 0) nofail = 1;
    else if (strlen(data) + strlen(o) + 2 > sizeof data) { errno = E2BIG; fail_on("mount on", target); }
    else { if (data[0]) strcat(data, ","); strcat(data, o); }
  }
  int fd = open_path(target, O_PATH);
  // A kernel path this pod's /proc or /sys does not have is not there to mask.
  if (fd < 0 && nofail && errno == ENOENT) return;
  if (fd < 0) fail_on("find the mount point", target);
  char at[32];
  fd_path(at, sizeof at, fd);
  if (mount(source, at, strcmp(type, "none") == 0 ? NULL : type, flags, data[0] ? data : NULL) != 0) fail_on("mount on", target);
  close(fd);
}

/* A bind remount that names only ro would clear nosuid, nodev and noexec: keep them. */
static void remount_ro(const char *target) {
  int fd = open_path(target, O_PATH);
  struct statvfs st;
  if (fd < 0 || fstatvfs(fd, &st) != 0) fail_on("make read-only", target);
  static const struct { unsigned long st, ms; } keep[] = {
    { ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV }, { ST_NOEXEC, MS_NOEXEC },
    { ST_NOATIME, MS_NOATIME }, { ST_NODIRATIME, MS_NODIRATIME }, { ST_RELATIME, MS_RELATIME },
  };
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
  for (size_t k = 0; k < sizeof keep / sizeof *keep; k++) if (st.f_flag & keep[k].st) flags |= keep[k].ms;
  char at[32];
  fd_path(at, sizeof at, fd);
  if (mount(NULL, at, NULL, flags, NULL) != 0) fail_on("make read-only", target);
  close(fd);
}

/* In place: fstab's \ooo escapes; 0 if one is malformed. */
static int unescape(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (*r != '\\') { *w++ = *r; continue; }
    if (r[1] < '0' || r[1] > '3' || r[2] < '0' || r[2] > '7' || r[3] < '0' || r[3] > '7') return 0;
    *w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
    r += 3;
  }
  *w = 0;
  return 1;
}

/* Every mount point at or below `tree`, read-only (util-linux cannot do a tree at once,
 * and a submount of a read-only volume must not stay writable). */
static void remount_tree_ro(const char *tree) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) fail_on("read the mounts below", tree);
  char *line = NULL;
  size_t cap = 0, n = strlen(tree);
  while (getline(&line, &cap, f) > 0) {
    char *save = NULL, *mp = NULL, *field = strtok_r(line, " ", &save);
    for (int k = 1; field && k < 5; k++) mp = field = strtok_r(NULL, " ", &save);
    if (!mp || !unescape(mp)) continue;
    if (strncmp(mp, tree, n) == 0 && (mp[n] == 0 || mp[n] == '/')) remount_ro(mp);
  }
  free(line);
  fclose(f);
}

/* PATH and any missing parent, each through open_parent (so below the root inside it). Most
 * parents exist: from the end, a missing one made before its child. */
static void make_dirs(char *path) {
  const char *name;
  int dir = open_parent(path, &name);
  char *slash = strrchr(path, '/');
  if (dir < 0 && errno == ENOENT && slash && slash != path) {
    *slash = 0;
    make_dirs(path);
    *slash = '/';
    dir = open_parent(path, &name);
  }
  if (dir < 0 || (mkdirat(dir, name, 0755) != 0 && errno != EEXIST)) fail_on("make the directory", path);
  close(dir);
}

static void run_idmap(char **f) {
  const int rec = strcmp(f[3], "rbind") == 0;
  if (!rec && strcmp(f[3], "bind") != 0) { errno = EINVAL; fail_on("make an idmapped mount on", f[5]); }
  pid_t pid = fork();
  if (pid < 0) fail_on("make an idmapped mount of", f[4]);
  if (pid == 0) {
    char *argv[] = { f[1], "mount", rec ? "-r" : f[2], rec ? f[2] : f[4], rec ? f[4] : f[5], rec ? f[5] : NULL, NULL };
    execv(f[1], argv);
    fail_on("run", f[1]);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "stage1: cannot make an idmapped mount of %s\n", f[4]);
    exit(254);
  }
}

/* A file PATH (0644, not through a link at its end) holding TEXT, or emptied first with `truncate`. */
static void write_text(char *path, const char *text, int truncate) {
  const char *name;
  int dir = open_parent(path, &name);
  int fd = dir < 0 ? -1 : openat(dir, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
  ssize_t len = (ssize_t)strlen(text);
  if (fd < 0 || write(fd, text, (size_t)len) != len) fail_on("write", path);
  close(fd);
  close(dir);
}

/* One operation of the table (fields unescaped); 0 if it is not one this helper knows. */
static int table_op(char **f, int n) {
  const char *op = f[0];
  if (strcmp(op, "root") == 0 && n == 2) table_root = strdup(f[1]);
  else if (strcmp(op, "cgroupns") == 0 && n == 1) { if (unshare(CLONE_NEWCGROUP) != 0) fail_on("make the cgroup namespace of", "the app"); }
  else if (strcmp(op, "mount") == 0 && n == 5) do_mount(f[1], f[2], f[3], f[4]);
  else if (strcmp(op, "ro") == 0 && n == 2) remount_ro(f[1]);
  else if (strcmp(op, "rotree") == 0 && n == 2) remount_tree_ro(f[1]);
  else if (strcmp(op, "idmap") == 0 && n == 6) run_idmap(f);
  else if (strcmp(op, "mkdir") == 0 && n == 2) make_dirs(f[1]);
  else if (strcmp(op, "touch") == 0 && n == 2) write_text(f[1], "", 0);
  else if (strcmp(op, "write") == 0 && n == 3) write_text(f[1], f[2], 1);
  else if (strcmp(op, "symlink") == 0 && n == 3) {
    const char *name;
    int dir = open_parent(f[2], &name);
    if (dir < 0 || symlinkat(f[1], dir, name) != 0) fail_on("make the link", f[2]);
    close(dir);
  } else if (strcmp(op, "chown") == 0 && n == 3) {
    char *end;
    unsigned long id = strtoul(f[1], &end, 10);
    if (*end || end == f[1] || lchown(f[2], (uid_t)id, (gid_t)id) != 0) fail_on("chown", f[2]);
  } else if (strcmp(op, "chdir") == 0 && n == 2) {
    if (chdir(f[1]) != 0) fail_on("enter", f[1]);
  } else return 0;
  return 1;
}

static int app_main(int argc, char **argv);

/* Runs each line of the table FILE (the `what`: "mount table"...) through `op`, in order. */
static void run_table(const char *file, const char *what, int (*op)(char **f, int n)) {
  char msg[64];
  snprintf(msg, sizeof msg, "read the %s", what);
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  char *text = malloc(TABLE_MAX + 1);
  ssize_t len = fd < 0 || !text ? -1 : read(fd, text, TABLE_MAX + 1);
  if (len < 0 || len > TABLE_MAX) fail_on(msg, file);
  close(fd);
  text[len] = 0;
  int lineno = 0;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *f[MAX_FIELDS + 1];
    int n = 0, ok = 1;
    lineno++;
    for (char *p = line; ok; ) {
      char *sp = strchr(p, ' ');
      if (sp) *sp = 0;
      ok = n < MAX_FIELDS && unescape(p);
      if (ok) f[n++] = p;
      if (!sp) break;
      p = sp + 1;
    }
    if (!ok || !op(f, n)) {
      fprintf(stderr, "stage1: bad line %d in the %s %s\n", lineno, what, file);
      exit(254);
    }
  }
  free(text);
}

/* --launch --------------------------------------------------------------------------- */

/*
 * An app's launcher: everything from the launch table TABLE (POD/stage1/app-NAME.launch,
 * src/stage1/scripts.ts launchOps), in this process, then the app's last step (or, for an
 * app with event handlers, busybox sh with its script). Run by the pod's PID 1 in the
 * forked launcher itself, or as `rkt-helper --launch TABLE` (rkt app start). Besides the
 * mount table's operations:
 *   stopping FILE   FILE exists (the pod is stopping): the app is not started, 143 as if SIGTERMed
 *   join FILE       joins a cgroup (FILE: its tasks or cgroup.procs)
 *   oom N           the oom_score_adj
 *   arg ARG         one argument of what comes next, in order: --app ... (app_main, in
 *                   this process) or a program to exec (rkt-idmap exec ... for --private-users,
 *                   busybox sh for event handlers)
 */
static char **launch_args;
static int launch_nargs;

static int launch_op(char **f, int n) {
  const char *op = f[0];
  if (strcmp(op, "stopping") == 0 && n == 2) {
    if (access(f[1], F_OK) == 0) exit(128 + SIGTERM);
  } else if (strcmp(op, "join") == 0 && n == 2) {
    join_cgroup(f[1]);
  } else if (strcmp(op, "oom") == 0 && n == 2) {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    ssize_t len = (ssize_t)strlen(f[1]);
    if (fd < 0 || write(fd, f[1], (size_t)len) != len) fail_on("set oom_score_adj to", f[1]);
    close(fd);
  } else if (strcmp(op, "arg") == 0 && n == 2) {
    char **more = realloc(launch_args, (size_t)(launch_nargs + 3) * sizeof *more);
    if (!more || !(more[launch_nargs + 1] = strdup(f[1]))) die("cannot read the launch table");
    launch_args = more;
    launch_args[0] = "rkt-helper"; /* app_main's argv[0] */
    launch_nargs++;
    launch_args[launch_nargs + 1] = NULL;
  } else return table_op(f, n);
  return 1;
}

static int launch_main(const char *table) {
  umask(022);
  run_table(table, "launch table", launch_op);
  if (launch_nargs == 0) {
    fprintf(stderr, "stage1: the launch table %s names nothing to run\n", table);
    return 254;
  }
  if (strcmp(launch_args[1], "--app") == 0) return app_main(launch_nargs + 1, launch_args);
  execv(launch_args[1], &launch_args[1]);
  fail_on("run", launch_args[1]);
  return 254;
}

/* The interpreter `path` asks for (a script's #! line, or an ELF binary's PT_INTERP) into
 * `out`; 0 when it names none. Only what the kernel itself reads: the first bytes. */
static int interpreter(const char *path, char *out, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  unsigned char buf[4096];
  ssize_t n = pread(fd, buf, sizeof buf, 0);
  int found = 0;
  if (n > 2 && buf[0] == '#' && buf[1] == '!') {
    size_t s = 2, e;
    while (s < (size_t)n && (buf[s] == ' ' || buf[s] == '\t')) s++;
    for (e = s; e < (size_t)n && buf[e] != ' ' && buf[e] != '\t' && buf[e] != '\n'; e++) {}
    if (e > s && e - s < size) { memcpy(out, buf + s, e - s); out[e - s] = 0; found = 1; }
  } else if (n >= (ssize_t)sizeof(Elf64_Ehdr) && memcmp(buf, ELFMAG, SELFMAG) == 0 && buf[EI_CLASS] == ELFCLASS64) {
    Elf64_Ehdr eh;
    memcpy(&eh, buf, sizeof eh);
    for (int k = 0; k < eh.e_phnum && k < 256 && !found; k++) {
      Elf64_Phdr ph;
      if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf64_Off)k * eh.e_phentsize)) != (ssize_t)sizeof ph) break;
      if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz >= size) continue;
      if (pread(fd, out, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz) break;
      out[ph.p_filesz] = 0;
      found = out[0] != 0;
    }
  }
  close(fd);
  return found;
}

/* After a failed exec of `prog`: one line saying why, and the shell's exit status. */
static int diagnose(const char *prog, int err) {
  char interp[4096];
  struct stat st;
  if (err == ENOENT && strchr(prog, '/') != NULL && stat(prog, &st) == 0 && interpreter(prog, interp, sizeof interp)) {
    /* The program is there; what it needs is not. */
    fprintf(stderr, "Error: Unable to open \"%s\": %s\n", interp, strerror(ENOENT));
    return 127;
  }
  if (err == ENOENT) {
    fprintf(stderr, "Error: Unable to open \"%s\": %s\n", prog, strerror(ENOENT));
    return 127;
  }
  if (err == EACCES && stat(prog, &st) == 0 && S_ISREG(st.st_mode) && !(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH))) {
    fprintf(stderr, "Error: \"%s\" is not executable\n", prog);
    return 126;
  }
  fprintf(stderr, "Error: Unable to run \"%s\": %s\n", prog, strerror(err));
  return 126;
}

/* --app ------------------------------------------------------------------------------- */

/* A decimal uid, gid or group; -1 (and errno) if `s` is not one. */
static long parse_id(const char *s) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || s[0] == '+' || v >= 0xffffffffUL) { errno = EINVAL; return -1; }
  return (long)v;
}

/* GROUPS ("-" or a comma-separated list) into `out`; the count, or -1. */
static int parse_groups(const char *groups, gid_t *out, int max) {
  if (strcmp(groups, "-") == 0) return 0;
  char copy[4096];
  if (snprintf(copy, sizeof copy, "%s", groups) >= (int)sizeof copy) return -1;
  int n = 0;
  for (char *save = NULL, *g = strtok_r(copy, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
    long id = parse_id(g);
    if (id < 0 || n == max) return -1;
    out[n++] = (gid_t)id;
  }
  return n;
}

/*
 * The app's exec, with its privileges already taken: closes every fd above 2 (except that
 * with LISTEN_FDS=N among the NAME=VALUE arguments the socket-activation fds stage1 kept at
 * LISTEN_FD_BASE.. become 3.., and LISTEN_PID is set to this process, the app's pid); joins
 * a fresh anonymous session keyring, so the app sees none of the caller's keys; with NNP,
 * or a FILTER (not "-"), sets no_new_privs; loads FILTER, a classic BPF program as hex
 * (struct sock_filter[], little-endian) that stage0 generated (src/stage1/seccomp/);
 * replaces the environment with exactly the NAME=VALUE arguments and execs PROGRAM,
 * searching PATH from that environment (as `env -i` does).
 * argv: FILTER|- [NAME=VALUE...] PROGRAM [ARG...]
 */
static int exec_app(int argc, char **argv, int nnp) {
  int listen = 0;
  for (int j = 1; j < argc && strchr(argv[j], '=') != NULL; j++) {
    if (strncmp(argv[j], "LISTEN_FDS=", 11) == 0) listen = atoi(argv[j] + 11);
  }
  if (listen < 0 || listen > 64) { errno = EINVAL; die("bad LISTEN_FDS"); }
  keep_fds(LISTEN_FD_BASE, 3, (unsigned int)listen);
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0) die("cannot join a new session keyring");

  int i = 1;
  if (clearenv() != 0) die("cannot clear the environment");
  for (; i < argc && strchr(argv[i], '=') != NULL; i++) {
    if (putenv(argv[i]) != 0) die("cannot set the environment");
  }
  if (listen > 0) {
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if (setenv("LISTEN_PID", pid, 1) != 0) die("cannot set the environment");
  }
  if (i >= argc) {
    fprintf(stderr, "stage1: no program to run\n");
    return 254;
  }
  if (strcmp(argv[0], "-") != 0) load_filter(argv[0]);
  else if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("cannot set no_new_privs");
  execvp(argv[i], &argv[i]);
  return diagnose(argv[i], errno);
}

/*
 * The last step of every app, and of every command `rkt enter` runs in one, so that both
 * are confined alike. Runs as root of the app's namespaces, its mount table made:
 *  1. PIVOT=1: pivot_root into the current directory (the app rootfs) and detaches the
 *     old root, so that nothing of the host stays in view; 0: already inside (rkt enter);
 *  2. not dumpable until the exec: once the ids are the app's, another app of the pod must
 *     not reach this process's memory, or the host's helper it runs, through /proc;
 *  3. the bounding set becomes CAPS (a hex mask; "all" keeps it); groups GROUPS ("-" for
 *     none, else comma-separated), gid GID, uid UID; uid 0 keeps CAPS, any other uid
 *     nothing; nothing stays inheritable or ambient;
 *  4. enters WORKDIR as the app's user;
 *  5. exec_app, with no_new_privs if NNP is 1.
 */
static int app_main(int argc, char **argv) {
  if (argc < 11) {
    fprintf(stderr, "usage: rkt-helper --app PIVOT UID GID GROUPS CAPS NNP WORKDIR FILTER|- [NAME=VALUE...] PROGRAM [ARG...]\n");
    return 254;
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) die("cannot make the launcher undumpable");
  const int all = strcmp(argv[6], "all") == 0;
  char *end = argv[6];
  errno = 0;
  unsigned long long caps = all ? ~0ULL : strtoull(argv[6], &end, 16);
  const int bad_caps = !all && (errno || *end || end == argv[6] || argv[6][0] == '-');
  long uid = parse_id(argv[3]), gid = parse_id(argv[4]);
  gid_t groups[256];
  int ngroups = parse_groups(argv[5], groups, 256);
  if (uid < 0 || gid < 0 || ngroups < 0 || bad_caps ||
      (strcmp(argv[2], "0") != 0 && strcmp(argv[2], "1") != 0) || (strcmp(argv[7], "0") != 0 && strcmp(argv[7], "1") != 0)) {
    errno = EINVAL;
    die("bad arguments to rkt-helper --app");
  }
  if (strcmp(argv[2], "1") == 0 &&
      (syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)) {
    die("cannot pivot into the app rootfs");
  }
  if (!all) limit_bounding_set(caps);
  if (setgroups((size_t)ngroups, groups) != 0) die("cannot set the app's supplementary groups");
  if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0) die("cannot take the app's gid");
  if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) die("cannot take the app's uid");
  keep_capabilities(caps);
  /* Changing ids may make the process dumpable again (fs.suid_dumpable=1). */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) die("cannot make the launcher undumpable");
  if (chdir(argv[8]) != 0) {
    fprintf(stderr, "stage1: working directory %s does not exist in the image\n", argv[8]);
    return 254;
  }
  return exec_app(argc - 9, argv + 9, strcmp(argv[7], "1") == 0);
}

/* --pod ------------------------------------------------------------------------------- */

/*
 * The pod's holder, in the process rkt's caller started, with the pod's namespaces made
 * (tini's part, without its exec): PID 1 is its child (init_main, run from this fork),
 * in a process group of its own that takes the terminal's foreground; every signal it
 * can forward goes to PID 1; it reaps whatever else is its child (stage0's Node, still
 * exiting after the hand-off) and exits with PID 1's status (128+N for a signal).
 */
static int hold(int argc, char **argv) {
  sigset_t all, old;
  sigfillset(&all);
  if (sigprocmask(SIG_BLOCK, &all, &old) != 0) die("cannot block signals");
  pid_t init = fork();
  if (init < 0) die("cannot start the pod's init");
  if (init == 0) {
    // SIGTTOU is blocked: a background group may take the terminal. No terminal is fine.
    if (setpgid(0, 0) != 0) die("cannot give the pod's init a process group");
    if (tcsetpgrp(0, getpgrp()) != 0 && errno != ENOTTY && errno != ENXIO && errno != EBADF) die("cannot give the pod the terminal");
    if (sigprocmask(SIG_SETMASK, &old, NULL) != 0) die("cannot unblock signals");
    return init_main(argc, argv);
  }
  for (;;) {
    siginfo_t si;
    if (sigwaitinfo(&all, &si) < 0) continue;
    if (si.si_signo != SIGCHLD) {
      kill(init, si.si_signo);
      continue;
    }
    int status;
    for (pid_t w; (w = waitpid(-1, &status, WNOHANG)) > 0;) {
      if (w == init) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}

/*
 * The pod's first step, in the process rkt's caller started (bin/rkt's rkt-launch execs
 * stage1's command line, src/stage1/scripts.ts runArgv); then it holds the pod, with PID 1
 * as its child (hold), or execs PROGRAM (rkt-notify), whose first child is PID 1.
 *  1. the LISTEN socket-activation fds at 3.. move to LISTEN_FD_BASE..; every other fd above
 *     2 is closed: descriptors rkt's caller handed it (shells, CI runners and service
 *     managers pass extra ones) must not stay open in the pod for its whole life;
 *  2. NETNS, a network namespace file (a CNI network's) or "-": joined first;
 *  3. a new mount namespace, where / is private, and the NAMESPACES named (comma-separated:
 *     uts, pid, ipc, net; "-" for none): a new PID namespace is this process's children's;
 *  4. SIGTERM and SIGINT blocked (see init_main).
 */
static int pod_main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: rkt-helper --pod LISTEN NETNS NAMESPACES --init ...|PROGRAM [ARG...]\n");
    return 254;
  }
  static const struct { const char *name; int flag; } known[] = {
    { "uts", CLONE_NEWUTS }, { "pid", CLONE_NEWPID }, { "ipc", CLONE_NEWIPC }, { "net", CLONE_NEWNET },
  };
  long listen = parse_id(argv[2]);
  int flags = CLONE_NEWNS, ok = listen >= 0 && listen <= 64 && strlen(argv[4]) < 64;
  char names[64];
  snprintf(names, sizeof names, "%s", argv[4]);
  for (char *save = NULL, *n = strcmp(names, "-") == 0 ? NULL : strtok_r(names, ",", &save); ok && n; n = strtok_r(NULL, ",", &save)) {
    size_t k = 0;
    for (; k < sizeof known / sizeof *known && strcmp(n, known[k].name) != 0; k++) {}
    if (k == sizeof known / sizeof *known) ok = 0;
    else flags |= known[k].flag;
  }
  if (!ok) {
    errno = EINVAL;
    die("bad arguments to rkt-helper --pod");
  }
  keep_fds(3, LISTEN_FD_BASE, (unsigned int)listen);
  if (strcmp(argv[3], "-") != 0) {
    int fd = open(argv[3], O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) fail_on("join the network namespace", argv[3]);
    close(fd);
  }
  if (unshare(flags) != 0) die("cannot create the pod's namespaces");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("cannot make the pod's mounts private");
  // A stop (SIGTERM, SIGINT) that comes while the pod starts stays pending until its PID 1
  // takes it: the holder and rkt-notify give their child the mask they were started with.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop, NULL) != 0) die("cannot block signals");
  if (strcmp(argv[5], "--init") == 0) return hold(argc - 4, argv + 4);
  execv(argv[5], &argv[5]);
  fail_on("run", argv[5]);
  return 254;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--pod") == 0) return pod_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "--init") == 0) return init_main(argc, argv);
  if (argc == 3 && strcmp(argv[1], "--launch") == 0) return launch_main(argv[2]);
  if (argc > 1 && strcmp(argv[1], "--app") == 0) return app_main(argc, argv);
  fprintf(stderr, "usage: rkt-helper --pod|--init|--launch|--app ...\n");
  return 254;
}
