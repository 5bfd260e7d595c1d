/*
 * rkt-idmap: the user-namespace steps of stage1 that no Debian tool does (util-linux
 * 2.38 has no working X-mount.idmap, and its unshare maps ranges only through
 * newuidmap and /etc/subuid). Static, so it runs wherever stage1 runs.
 *
 *   rkt-idmap userns FILE BASE COUNT
 *       Creates a user namespace where 0..COUNT-1 is BASE..BASE+COUNT-1 on the host
 *       (uids and gids), and keeps it alive by bind-mounting it on FILE (an existing
 *       empty file) in the caller's mount namespace.
 *   rkt-idmap mount [-r] USERNS SRC DST
 *       Mounts a copy of SRC (with its submounts if -r) on DST, idmapped through the
 *       user namespace USERNS (a file from `userns`, or /proc/PID/ns/user).
 *   rkt-idmap exec USERNS ROOT CMD [ARG...]
 *       Joins USERNS as its root, takes a mount namespace of its own (owned by USERNS),
 *       makes ROOT a mount point of that namespace (so pivot_root into it works), enters
 *       ROOT and execs CMD.
 *   rkt-idmap probe BASE COUNT [+]PATH...
 *       Checks that each PATH (+PATH: with its submounts) can be idmapped and that
 *       overlayfs takes an idmapped lower layer, on this kernel and these filesystems,
 *       without a trace outside its own mount namespace; prints one line on failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

struct idmap_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

static const char *prog = "rkt-idmap";

static void die(const char *what, const char *arg) {
  fprintf(stderr, "%s: %s%s%s: %s\n", prog, what, arg ? " " : "", arg ? arg : "", strerror(errno));
  exit(254);
}

static int write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, data, strlen(data));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(data) ? 0 : -1;
}

static unsigned long parse_id(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || !*s || v > 0xfffffffeUL) { errno = EINVAL; die(what, s); }
  return v;
}

/*
 * Forks a child that unshares a user namespace and waits; maps it from here (root in
 * the parent namespace may write any map). Returns the child's pid; the caller kills it
 * once it holds the namespace another way. *nsfd gets an fd of the namespace.
 */
static pid_t new_userns(unsigned long base, unsigned long count, int *nsfd) {
  int ready[2], go[2];
  if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC)) die("pipe", NULL);
  pid_t pid = fork();
  if (pid < 0) die("fork", NULL);
  if (pid == 0) {
    /* Our pid as /proc names it: the caller may be in a PID namespace /proc does not show. */
    char self[32] = "";
    close(ready[0]);
    close(go[1]); /* so that the read below ends if the parent dies */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (unshare(CLONE_NEWUSER) == 0 && readlink("/proc/self", self, sizeof self - 1) < 0) self[0] = 0;
    (void)!write(ready[1], self, sizeof self);
    (void)!read(go[0], self, 1); /* until the parent is done with us */
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  char self[32] = "";
  if (read(ready[0], self, sizeof self) != sizeof self || !self[0]) { errno = EPERM; die("cannot create a user namespace", NULL); }
  self[sizeof self - 1] = 0;
  char path[64], map[96];
  snprintf(map, sizeof map, "0 %lu %lu\n", base, count);
  snprintf(path, sizeof path, "/proc/%s/uid_map", self);
  if (write_file(path, map)) die("cannot write", path);
  snprintf(path, sizeof path, "/proc/%s/gid_map", self);
  if (write_file(path, map)) die("cannot write", path);
  snprintf(path, sizeof path, "/proc/%s/ns/user", self);
  *nsfd = open(path, O_RDONLY | O_CLOEXEC);
  if (*nsfd < 0) die("cannot open", path);
  close(go[1]);
  return pid;
}

static void reap(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* A detached, idmapped copy of the mount at src: an fd for move_mount. */
static int idmapped_tree(const char *src, int nsfd, int recursive) {
  int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  if (fd < 0) return -1;
  struct idmap_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)nsfd };
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr)) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

static int cmd_userns(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: %s userns FILE BASE COUNT\n", prog); return 254; }
  int nsfd;
  pid_t pid = new_userns(parse_id(argv[3], "bad BASE"), parse_id(argv[4], "bad COUNT"), &nsfd);
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", nsfd);
  if (mount(path, argv[2], NULL, MS_BIND, NULL)) { reap(pid); die("cannot bind the user namespace on", argv[2]); }
  reap(pid);
  return 0;
}

static int cmd_mount(int argc, char **argv) {
  int recursive = argc > 2 && strcmp(argv[2], "-r") == 0;
  if (argc != 5 + recursive) { fprintf(stderr, "usage: %s mount [-r] USERNS SRC DST\n", prog); return 254; }
  const char *ns = argv[2 + recursive], *src = argv[3 + recursive], *dst = argv[4 + recursive];
  int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) die("cannot open", ns);
  int fd = idmapped_tree(src, nsfd, recursive);
  if (fd < 0) die("cannot make an idmapped mount of", src);
  if (syscall(SYS_move_mount, fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH)) die("cannot mount on", dst);
  return 0;
}

static int cmd_exec(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: %s exec USERNS ROOT CMD [ARG...]\n", prog); return 254; }
  const char *ns = argv[2], *root = argv[3];
  int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) die("cannot open", ns);
  if (setns(nsfd, CLONE_NEWUSER)) die("cannot join the user namespace", ns);
  if (unshare(CLONE_NEWNS)) die("cannot create a mount namespace", NULL);
  /* Mounts copied from the parent namespace are locked, and pivot_root refuses a locked
   * new root: a recursive bind of ROOT on itself is a mount this namespace owns. Done
   * while still host uid 0, which may walk the pod dir's root-only directories. */
  if (mount(root, root, NULL, MS_BIND | MS_REC, NULL)) die("cannot bind", root);
  if (chdir(root)) die("cannot enter", root);
  /* Root of the namespace: the uid and gid 0 the map gives, no supplementary groups. */
  if (setgroups(0, NULL) || setresgid(0, 0, 0) || setresuid(0, 0, 0)) die("cannot become root of", ns);
  execv(argv[4], argv + 4);
  die("cannot run", argv[4]);
  return 254;
}

/* The probe's scratch tree, on a tmpfs in a mount namespace of its own. */
#define SCRATCH "/tmp"

static int probe_fail(pid_t pid, const char *what, const char *path) {
  int saved = errno;
  reap(pid);
  printf("%s%s%s: %s\n", what, path ? " " : "", path ? path : "", strerror(saved));
  return 1;
}

static int cmd_probe(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: %s probe BASE COUNT PATH...\n", prog); return 254; }
  int nsfd;
  pid_t pid = new_userns(parse_id(argv[2], "bad BASE"), parse_id(argv[3], "bad COUNT"), &nsfd);
  int first = -1;
  for (int i = 4; i < argc; i++) {
    int recursive = argv[i][0] == '+'; /* +PATH: with its submounts */
    int fd = idmapped_tree(argv[i] + recursive, nsfd, recursive);
    if (fd < 0) return probe_fail(pid, "cannot idmap", argv[i] + recursive);
    if (first < 0) first = fd; else close(fd); /* never attached: gone with its fd */
  }
  /* An overlay on an idmapped lower layer (what each app's rootfs is), made where
   * nobody else sees it: a tmpfs in a private mount namespace, dropped on exit. */
  if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) return probe_fail(pid, "cannot create a mount namespace", NULL);
  if (mount("tmpfs", SCRATCH, "tmpfs", 0, "size=64k") ||
      mkdir(SCRATCH "/l", 0755) || mkdir(SCRATCH "/u", 0755) || mkdir(SCRATCH "/w", 0755) || mkdir(SCRATCH "/m", 0755))
    return probe_fail(pid, "cannot make a scratch tmpfs on", SCRATCH);
  if (syscall(SYS_move_mount, first, "", AT_FDCWD, SCRATCH "/l", MOVE_MOUNT_F_EMPTY_PATH)) return probe_fail(pid, "cannot attach an idmapped mount", NULL);
  if (mount("overlay", SCRATCH "/m", "overlay", 0, "lowerdir=" SCRATCH "/l,upperdir=" SCRATCH "/u,workdir=" SCRATCH "/w"))
    return probe_fail(pid, "overlayfs refuses an idmapped lower layer", NULL);
  reap(pid);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "userns") == 0) return cmd_userns(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "mount") == 0) return cmd_mount(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "exec") == 0) return cmd_exec(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "probe") == 0) return cmd_probe(argc, argv);
  fprintf(stderr, "usage: %s userns|mount|exec|probe ...\n", prog);
  return 254;
}
