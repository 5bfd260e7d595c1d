/*
 * rkt-helper: the last step before an app's exec, after stage1 dropped every privilege.
 *
 *   rkt-helper FILTER|- [NAME=VALUE...] PROGRAM [ARG...]
 *
 * 1. closes every fd above 2 (stage1 runs it through /proc/self/fd/N, an fd opened before
 *    pivot_root: that one must not reach the app), except that with LISTEN_FDS=N among
 *    the NAME=VALUE arguments the socket-activation fds stage1 kept at 100.. become 3..
 *    and LISTEN_PID is set to this process (the app's pid);
 * 2. joins a fresh anonymous session keyring, so the app sees none of the caller's keys;
 * 3. unless FILTER is "-": sets no_new_privs and loads FILTER, a classic BPF program as
 *    hex (struct sock_filter[], little-endian) that stage0 generated (src/stage1/seccomp/);
 * 4. replaces the environment with exactly the NAME=VALUE arguments and execs PROGRAM,
 *    searching PATH from that environment (as `env -i` does).
 * Nothing stays resident: the helper's process becomes the app.
 *
 * When the exec fails it says why in rkt's words (its stage1 "diagnostic" lines, which
 * scripts grep): `Error: Unable to open "/foo": No such file or directory` for a missing
 * program, or for the missing interpreter of a script or of an ELF binary;
 * `Error: "/foo" is not executable`. Exit status 127 (not found) or 126, as a shell's.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
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

/* The fd stage1 keeps socket-activation fds from (src/stage1/scripts.ts LISTEN_FD_BASE). */
#define LISTEN_FD_BASE 100

static void close_from(unsigned int first, unsigned int last) {
  if (syscall(SYS_close_range, first, last, 0) != 0) {
    for (unsigned int fd = first; fd <= last && fd < 65536; fd++) close((int)fd);
  }
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

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: rkt-helper FILTER|- [NAME=VALUE...] PROGRAM [ARG...]\n");
    return 254;
  }
  /* Socket activation: LISTEN_FDS=N among the NAME=VALUE arguments means stage1 kept the
   * app's N listen fds at LISTEN_FD_BASE..; they become 3.., and LISTEN_PID this process. */
  int listen = 0;
  for (int j = 2; j < argc && strchr(argv[j], '=') != NULL; j++) {
    if (strncmp(argv[j], "LISTEN_FDS=", 11) == 0) listen = atoi(argv[j] + 11);
  }
  if (listen < 0 || listen > 64) { errno = EINVAL; die("bad LISTEN_FDS"); }
  close_from(3, LISTEN_FD_BASE - 1);
  for (int k = 0; k < listen; k++) {
    if (dup2(LISTEN_FD_BASE + k, 3 + k) < 0) die("socket-activation fd missing");
  }
  close_from(LISTEN_FD_BASE, ~0U);
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0) die("cannot join a new session keyring");

  int i = 2;
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
  if (strcmp(argv[1], "-") != 0) load_filter(argv[1]);
  execvp(argv[i], &argv[i]);
  return diagnose(argv[i], errno);
}
