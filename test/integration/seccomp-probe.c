/*
 * A hostile app for test/integration/pod-seccomp.test.ts, built static in the test.
 *
 *   probe calls            tries each call the default filter must block (with arguments that
 *                          are harmless if it is not blocked) and prints "NAME ERRNO" (0: it worked)
 *   probe keyring          "keys=N": how many keys the session keyring holds, or "keyctl ERRNO"
 *   probe add DESC s|u     adds a user key DESC to the session (s) or user (u) keyring: its serial, or "add ERRNO"
 *   probe search DESC s|u  searches that keyring for DESC: its serial, or "search ERRNO"
 *   probe invalidate SERIAL
 *   probe reboot           calls reboot(2) with a wrong magic number (EINVAL if nothing blocks it)
 *   probe hunt             for 3 s, waits for another app's stage1 helper and tries to reopen its
 *                          executable for writing through /proc/PID/exe: exe-open ERRNO (it
 *                          could not even open it) or reopen-write ERRNO
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEY_SPEC_SESSION_KEYRING -3
#define KEY_SPEC_USER_KEYRING -4
#define KEYCTL_READ 11
#define KEYCTL_SEARCH 10
#define KEYCTL_INVALIDATE 21

static const char *NOWHERE = "/rkt-probe-nonexistent";

static void report(const char *name, long r) {
  printf("%s %d\n", name, r < 0 ? errno : 0);
}

/* Runs a call in a child (namespace calls would change the probe itself); the exit status carries errno. */
static void in_child(const char *name, long nr, unsigned long flags) {
  pid_t pid = fork();
  if (pid == 0) {
    long r;
    if (nr == SYS_clone) {
      r = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
      if (r == 0) _exit(0);
      if (r > 0) { waitpid((pid_t)r, NULL, 0); _exit(0); }
    } else {
      r = syscall(nr, flags);
    }
    _exit(r < 0 ? errno : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  printf("%s %d\n", name, WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status));
}

static long keyring_of(const char *which) {
  return which[0] == 'u' ? KEY_SPEC_USER_KEYRING : KEY_SPEC_SESSION_KEYRING;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *cmd = argc > 1 ? argv[1] : "calls";
  if (strcmp(cmd, "calls") == 0) {
    errno = 0; report("keyctl", syscall(SYS_keyctl, 0, KEY_SPEC_SESSION_KEYRING, 0));
    errno = 0; report("add_key", syscall(SYS_add_key, "rkt-probe-no-such-type", "d", "x", 1, KEY_SPEC_SESSION_KEYRING));
    errno = 0; report("request_key", syscall(SYS_request_key, "user", "rkt-probe-none", NULL, 0));
    errno = 0; report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0x12340000UL));
    errno = 0; report("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0xffff0000UL));
    errno = 0; report("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
    errno = 0; report("init_module", syscall(SYS_init_module, NULL, 0, ""));
    errno = 0; report("finit_module", syscall(SYS_finit_module, -1, "", 0));
    errno = 0; report("delete_module", syscall(SYS_delete_module, "rkt_probe_no_such_module", O_NONBLOCK));
    errno = 0; report("bpf", syscall(SYS_bpf, -1, NULL, 0));
    errno = 0; report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    errno = 0; report("userfaultfd", syscall(SYS_userfaultfd, ~0));
    errno = 0; report("mount", syscall(SYS_mount, "none", NOWHERE, "tmpfs", 0, NULL));
    errno = 0; report("umount2", syscall(SYS_umount2, NOWHERE, 0));
    errno = 0; report("pivot_root", syscall(SYS_pivot_root, NOWHERE, NOWHERE));
    errno = 0; report("swapon", syscall(SYS_swapon, NOWHERE, 0));
    errno = 0; report("swapoff", syscall(SYS_swapoff, NOWHERE));
    errno = 0; report("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
    errno = 0; report("ptrace", syscall(SYS_ptrace, PTRACE_PEEKDATA, 999999, 0, 0));
    errno = 0; report("setns", syscall(SYS_setns, -1, 0));
    errno = 0;
    long vs = syscall(SYS_socket, 40 /* AF_VSOCK */, 1 /* SOCK_STREAM */, 0);
    report("socket_vsock", vs);
    if (vs >= 0) close((int)vs);
    in_child("unshare", SYS_unshare, CLONE_NEWUSER);
    in_child("clone_newuser", SYS_clone, CLONE_NEWUSER);
    errno = 0; report("clone3", syscall(SYS_clone3, NULL, 0));
    in_child("fork", SYS_clone, 0);
    errno = 0; report("getppid", syscall(SYS_getppid));
    return 0;
  }
  if (strcmp(cmd, "keyring") == 0) {
    errno = 0;
    long n = syscall(SYS_keyctl, KEYCTL_READ, KEY_SPEC_SESSION_KEYRING, NULL, 0);
    if (n < 0) printf("keyctl %d\n", errno);
    else printf("keys=%ld\n", n / 4);
    return 0;
  }
  if (strcmp(cmd, "add") == 0 && argc == 4) {
    errno = 0;
    long r = syscall(SYS_add_key, "user", argv[2], "secret", 6, keyring_of(argv[3]));
    if (r < 0) printf("add %d\n", errno);
    else printf("%ld\n", r);
    return 0;
  }
  if (strcmp(cmd, "search") == 0 && argc == 4) {
    errno = 0;
    long r = syscall(SYS_keyctl, KEYCTL_SEARCH, keyring_of(argv[3]), "user", argv[2], 0);
    if (r < 0) printf("search %d\n", errno);
    else printf("%ld\n", r);
    return 0;
  }
  if (strcmp(cmd, "invalidate") == 0 && argc == 3) {
    return syscall(SYS_keyctl, KEYCTL_INVALIDATE, atol(argv[2])) == 0 ? 0 : 1;
  }
  if (strcmp(cmd, "hunt") == 0) {
    /* Waits for another app's stage1 helper (an app's launcher, rkt-helper, not PID 1; or
       comm "7": run as /proc/self/fd/7 by rkt enter), takes its executable through
       /proc/PID/exe and, once it has become the app, tries to reopen that file for
       writing, as the runc CVE-2019-5736 exploit did. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec - start.tv_sec > 3) break;
      DIR *d = opendir("/proc");
      struct dirent *e;
      while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        char p[300], comm[32] = "";
        snprintf(p, sizeof p, "/proc/%s/comm", e->d_name);
        int fd = open(p, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, comm, sizeof comm - 1);
        close(fd);
        if (n < 2 || (strncmp(comm, "7\n", 2) != 0 && (strcmp(comm, "rkt-helper\n") != 0 || strcmp(e->d_name, "1") == 0))) continue;
        snprintf(p, sizeof p, "/proc/%s/exe", e->d_name);
        int exe = open(p, O_RDONLY);
        if (exe < 0) { printf("exe-open %d\n", errno); return 0; }
        usleep(300000);
        snprintf(p, sizeof p, "/proc/self/fd/%d", exe);
        errno = 0;
        int w = open(p, O_WRONLY | O_APPEND);
        printf("reopen-write %d\n", w < 0 ? errno : 0);
        return 0;
      }
      if (d) closedir(d);
    }
    printf("not-caught\n");
    return 0;
  }
  if (strcmp(cmd, "reboot") == 0) {
    errno = 0; report("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
    return 0;
  }
  fprintf(stderr, "probe: unknown command %s\n", cmd);
  return 2;
}
