/*
 * rkt-notify: the pod's holder when rkt runs with NOTIFY_SOCKET (a Type=notify unit,
 * systemd-run --service-type=notify), in rkt-helper --pod's place.
 *
 *   rkt-notify FD READY [SOCKET...] -- COMMAND [ARG...]
 *
 * systemd takes notifications only from the service's main process (NotifyAccess=main),
 * which is this process: `rkt run` execs its way here. So this holder, which stays resident
 * for the pod's life anyway, is the one that talks to systemd:
 *
 *  - it binds each SOCKET (a datagram socket in the pod dir that stage1 mounts as an app's
 *    NOTIFY_SOCKET, for apps whose image supports sd_notify) before starting COMMAND;
 *  - COMMAND (the pod's init) gets the write end of a pipe on fd FD and writes a line
 *    there once every app has started;
 *  - READY=1 (with MAINPID) goes to NOTIFY_SOCKET once that line came and each SOCKET got
 *    READY=1; the file READY is made then (what `rkt status --wait-ready` waits for); STATUS=, STOPPING=1 and WATCHDOG=1 from the apps are relayed, nothing else;
 *  - every signal it can forward goes to COMMAND; it exits with COMMAND's status (128+N
 *    for a signal), as rkt-helper --pod does.
 * The sockets' files are removed when it exits (through their dirs, opened before the pod's
 * init pivots this mount namespace). A NOTIFY_SOCKET it cannot reach is said
 * once; the pod runs on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SOCKETS 64
#define MSG_MAX 4096

static struct sockaddr_un upstream;
static socklen_t upstream_len;
static int upstream_fd = -1;

static void die(const char *what) {
  fprintf(stderr, "stage1: %s: %s\n", what, strerror(errno));
  exit(254);
}

/* NOTIFY_SOCKET: a path, or @name for an abstract socket. */
static void open_upstream(void) {
  const char *e = getenv("NOTIFY_SOCKET");
  if (!e || !*e) return;
  size_t n = strlen(e);
  if ((e[0] != '/' && e[0] != '@') || n >= sizeof(upstream.sun_path)) return;
  upstream.sun_family = AF_UNIX;
  memcpy(upstream.sun_path, e, n);
  if (e[0] == '@') upstream.sun_path[0] = '\0';
  upstream_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  upstream_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  /* Connected now: the pod's init later pivots this mount namespace (ours too) into the
   * pod dir, where the path no longer leads anywhere. */
  if (upstream_fd >= 0 && connect(upstream_fd, (struct sockaddr *)&upstream, upstream_len) < 0) {
    fprintf(stderr, "stage1: warning: cannot notify NOTIFY_SOCKET=%s: %s\n", e, strerror(errno));
    close(upstream_fd);
    upstream_fd = -1;
  }
}

static void send_up(const char *msg, size_t len) {
  static int warned;
  if (upstream_fd < 0 || len == 0) return;
  if (send(upstream_fd, msg, len, MSG_NOSIGNAL) < 0 && !warned) {
    warned = 1;
    fprintf(stderr, "stage1: warning: cannot notify NOTIFY_SOCKET=%s: %s\n", getenv("NOTIFY_SOCKET"), strerror(errno));
  }
}

/* Keeps the lines of an app's message that may go up; returns whether it said READY=1. */
static int relay(char *buf, size_t len) {
  char out[MSG_MAX + 1];
  size_t o = 0;
  int ready = 0;
  buf[len] = '\0';
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
    if (strcmp(line, "READY=1") == 0) { ready = 1; continue; }
    if (strncmp(line, "STATUS=", 7) == 0 || strcmp(line, "STOPPING=1") == 0 || strcmp(line, "WATCHDOG=1") == 0) {
      size_t l = strlen(line);
      if (o + l + 1 > MSG_MAX) break;
      memcpy(out + o, line, l);
      o += l;
      out[o++] = '\n';
    }
  }
  send_up(out, o);
  return ready;
}

static int nsock, started, readied;
/* The ready marker: its dir, opened before the init pivots this mount namespace, and name. */
static int ready_dir = -1;
static const char *ready_name;
static int app_ready[MAX_SOCKETS];

/* READY=1 goes up as soon as the init said every app started and each socket said READY=1,
 * before anything an app sent after its own READY=1. */
static void maybe_ready(void) {
  if (started != 1 || readied) return;
  for (int i = 0; i < nsock; i++) if (!app_ready[i]) return;
  char msg[64];
  int l = snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\n", (int)getpid());
  send_up(msg, (size_t)l);
  readied = 1;
  int fd = openat(ready_dir, ready_name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0) close(fd);
}

/* Relays every message waiting on app socket i. */
static void drain(int sock, int i) {
  char buf[MSG_MAX + 1];
  ssize_t r;
  while ((r = recv(sock, buf, MSG_MAX, 0)) >= 0) {
    if (relay(buf, (size_t)r)) app_ready[i] = 1;
    maybe_ready();
  }
}

int main(int argc, char **argv) {
  int sep = 0;
  for (int i = 1; i < argc; i++) if (strcmp(argv[i], "--") == 0) { sep = i; break; }
  if (argc < 5 || sep < 3 || sep + 1 >= argc || sep - 3 > MAX_SOCKETS) {
    fprintf(stderr, "usage: rkt-notify FD READY [SOCKET...] -- COMMAND [ARG...]\n");
    return 254;
  }
  int child_fd = atoi(argv[1]);
  if (child_fd < 3 || child_fd > 255) { errno = EINVAL; die("bad readiness fd"); }
  open_upstream();

  char *ready = argv[2];
  char *rslash = strrchr(ready, '/');
  if (!rslash || !rslash[1]) { errno = EINVAL; die(ready); }
  *rslash = '\0';
  ready_dir = open(*ready ? ready : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (ready_dir < 0) die(ready);
  *rslash = '/';
  ready_name = rslash + 1;

  nsock = sep - 3;
  int socks[MAX_SOCKETS];
  int sock_dirs[MAX_SOCKETS];
  /* Bound by name from inside their dir: a pod dir's path may exceed sun_path's 108 bytes. */
  int cwd = open(".", O_PATH | O_CLOEXEC);
  if (cwd < 0) die("cannot open the working directory");
  for (int i = 0; i < nsock; i++) {
    char *path = argv[3 + i];
    char *slash = strrchr(path, '/');
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (!slash || strlen(slash + 1) >= sizeof(a.sun_path)) { errno = EINVAL; die(path); }
    strcpy(a.sun_path, slash + 1);
    *slash = '\0';
    sock_dirs[i] = open(*path ? path : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (sock_dirs[i] < 0 || fchdir(sock_dirs[i]) < 0) die(path);
    *slash = '/';
    socks[i] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (socks[i] < 0) die("cannot make a notify socket");
    unlink(a.sun_path);
    if (bind(socks[i], (struct sockaddr *)&a, sizeof(a)) < 0) die(path);
    /* Apps of any uid may send; only they (and root) can reach the file. */
    chmod(a.sun_path, 0666);
  }
  if (fchdir(cwd) < 0) die("cannot return to the working directory");
  close(cwd);

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) die("cannot make the readiness pipe");
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t child = fork();
  if (child < 0) die("cannot fork");
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* dup2 onto itself would keep close-on-exec. */
    if (pipefd[1] == child_fd ? fcntl(child_fd, F_SETFD, 0) < 0 : dup2(pipefd[1], child_fd) < 0) die("cannot pass the readiness pipe");
    unsetenv("NOTIFY_SOCKET");
    execvp(argv[sep + 1], &argv[sep + 1]);
    fprintf(stderr, "stage1: cannot run %s: %s\n", argv[sep + 1], strerror(errno));
    _exit(254);
  }
  close(pipefd[1]);
  int sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("cannot watch signals");

  struct pollfd p[MAX_SOCKETS + 2];
  for (;;) {
    int n = 0;
    p[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
    p[n++] = (struct pollfd){ .fd = started ? -1 : pipefd[0], .events = POLLIN };
    for (int i = 0; i < nsock; i++) p[n++] = (struct pollfd){ .fd = socks[i], .events = POLLIN };
    if (poll(p, n, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (p[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo != SIGCHLD) { kill(child, (int)si.ssi_signo); continue; }
        int status;
        pid_t w;
        while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
          if (w != child) continue;
          /* What the apps sent before the pod ended (STOPPING=1, a last STATUS=) still goes up. */
          for (int i = 0; i < nsock; i++) drain(socks[i], i);
          for (int i = 0; i < nsock; i++) unlinkat(sock_dirs[i], strrchr(argv[3 + i], '/') + 1, 0);
          return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        break;
      }
    }
    /* started: 0 waiting for the init's line, 1 got it, -1 the init closed the pipe first. */
    if (started == 0 && (p[1].revents & (POLLIN | POLLHUP))) {
      char b[64];
      ssize_t r = read(pipefd[0], b, sizeof(b));
      if (r > 0) started = 1;
      else if (r == 0 || errno != EINTR) started = -1;
    }
    for (int i = 0; i < nsock; i++) if (p[2 + i].revents & POLLIN) drain(socks[i], i);
    maybe_ready();
  }
}
