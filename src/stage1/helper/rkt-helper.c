/*
 * rkt-helper: the last step before an app's exec, after stage1 dropped every privilege.
 *
 *   rkt-helper FILTER|- [NAME=VALUE...] PROGRAM [ARG...]
 *
 * 1. closes every fd above 2 (stage1 runs it through /proc/self/fd/N, an fd opened before
 *    pivot_root: that one must not reach the app);
 * 2. joins a fresh anonymous session keyring, so the app sees none of the caller's keys;
 * 3. unless FILTER is "-": sets no_new_privs and loads FILTER, a classic BPF program as
 *    hex (struct sock_filter[], little-endian) that stage0 generated (src/stage1/seccomp/);
 * 4. replaces the environment with exactly the NAME=VALUE arguments and execs PROGRAM,
 *    searching PATH from that environment (as `env -i` does).
 * Nothing stays resident: the helper's process becomes the app.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEYCTL_JOIN_SESSION_KEYRING 1

static void die(const char *what) {
  fprintf(stderr, "stage1: %s: %s\n", what, strerror(errno));
  exit(254);
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

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: rkt-helper FILTER|- [NAME=VALUE...] PROGRAM [ARG...]\n");
    return 254;
  }
  if (syscall(SYS_close_range, 3, ~0U, 0) != 0) {
    for (int fd = 3; fd < 65536; fd++) close(fd);
  }
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0) die("cannot join a new session keyring");

  int i = 2;
  if (clearenv() != 0) die("cannot clear the environment");
  for (; i < argc && strchr(argv[i], '=') != NULL; i++) {
    if (putenv(argv[i]) != 0) die("cannot set the environment");
  }
  if (i >= argc) {
    fprintf(stderr, "stage1: no program to run\n");
    return 254;
  }
  if (strcmp(argv[1], "-") != 0) load_filter(argv[1]);
  execvp(argv[i], &argv[i]);
  int err = errno;
  fprintf(stderr, "stage1: cannot run %s: %s\n", argv[i], strerror(err));
  return err == ENOENT ? 127 : 126;
}
