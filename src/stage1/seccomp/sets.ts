/**
 * The named syscall sets rkt accepted in `--seccomp` and in the seccomp isolators
 * (rkt's Documentation/seccomp-guide.md): `@appc.io/*`, `@docker/*`, `@rkt/*` and the
 * `@systemd/*` groups. The lists are written from the kernel's syscall tables and the
 * public Docker default profile; names of other architectures are accepted and simply
 * absent from an x86_64 filter.
 */
import { OTHER_ARCH_SYSCALLS, X86_64_SYSCALLS } from './syscalls.js';

/** Special sets with a meaning of their own rather than a list. */
export const APPC_ALL = '@appc.io/all';
export const APPC_EMPTY = '@appc.io/empty';

/** What Docker's default profile allows unconditionally (plus clone without namespace flags, personality, socket). */
const DOCKER_ALLOWED = [
  'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'capget', 'capset', 'chdir', 'chmod',
  'chown', 'chown32', 'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64',
  'clock_gettime', 'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64', 'close', 'close_range',
  'connect', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'epoll_create', 'epoll_create1',
  'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_wait_old', 'eventfd',
  'eventfd2', 'execve', 'execveat', 'exit', 'exit_group', 'faccessat', 'faccessat2', 'fadvise64',
  'fadvise64_64', 'fallocate', 'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat', 'fchown', 'fchown32',
  'fchownat', 'fcntl', 'fcntl64', 'fdatasync', 'fgetxattr', 'flistxattr', 'flock', 'fork', 'fremovexattr',
  'fsetxattr', 'fstat', 'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64', 'fsync', 'ftruncate',
  'ftruncate64', 'futex', 'futex_time64', 'futex_waitv', 'futimesat', 'getcpu', 'getcwd', 'getdents',
  'getdents64', 'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups',
  'getgroups32', 'getitimer', 'getpeername', 'getpgid', 'getpgrp', 'getpid', 'getppid', 'getpriority',
  'getrandom', 'getresgid', 'getresgid32', 'getresuid', 'getresuid32', 'getrlimit', 'get_robust_list',
  'getrusage', 'getsid', 'getsockname', 'getsockopt', 'get_thread_area', 'gettid', 'gettimeofday', 'getuid',
  'getuid32', 'getxattr', 'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch',
  'io_cancel', 'ioctl', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'ioprio_get',
  'ioprio_set', 'io_setup', 'io_submit', 'ipc', 'kill', 'landlock_add_rule', 'landlock_create_ruleset',
  'landlock_restrict_self', 'lchown', 'lchown32', 'lgetxattr', 'link', 'linkat', 'listen', 'listxattr',
  'llistxattr', '_llseek', 'lremovexattr', 'lseek', 'lsetxattr', 'lstat', 'lstat64', 'madvise', 'membarrier',
  'memfd_create', 'memfd_secret', 'mincore', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'mlock', 'mlock2',
  'mlockall', 'mmap', 'mmap2', 'mprotect', 'mq_getsetattr', 'mq_notify', 'mq_open', 'mq_timedreceive',
  'mq_timedreceive_time64', 'mq_timedsend', 'mq_timedsend_time64', 'mq_unlink', 'mremap', 'msgctl', 'msgget',
  'msgrcv', 'msgsnd', 'msync', 'munlock', 'munlockall', 'munmap', 'name_to_handle_at', 'nanosleep',
  'newfstatat', '_newselect', 'open', 'openat', 'openat2', 'pause', 'pidfd_open', 'pidfd_send_signal', 'pipe',
  'pipe2', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'poll', 'ppoll', 'ppoll_time64', 'prctl', 'pread64',
  'preadv', 'preadv2', 'prlimit64', 'process_mrelease', 'pselect6', 'pselect6_time64', 'pwrite64', 'pwritev',
  'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat', 'readv', 'recv', 'recvfrom', 'recvmmsg',
  'recvmmsg_time64', 'recvmsg', 'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2',
  'restart_syscall', 'rmdir', 'rseq', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo',
  'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo',
  'sched_getaffinity', 'sched_getattr', 'sched_getparam', 'sched_get_priority_max', 'sched_get_priority_min',
  'sched_getscheduler', 'sched_rr_get_interval', 'sched_rr_get_interval_time64', 'sched_setaffinity',
  'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield', 'seccomp', 'select', 'semctl',
  'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'send', 'sendfile', 'sendfile64', 'sendmmsg',
  'sendmsg', 'sendto', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups',
  'setgroups32', 'setitimer', 'setpgid', 'setpriority', 'setregid', 'setregid32', 'setresgid', 'setresgid32',
  'setresuid', 'setresuid32', 'setreuid', 'setreuid32', 'setrlimit', 'set_robust_list', 'setsid',
  'setsockopt', 'set_thread_area', 'set_tid_address', 'setuid', 'setuid32', 'setxattr', 'shmat', 'shmctl',
  'shmdt', 'shmget', 'shutdown', 'sigaltstack', 'signalfd', 'signalfd4', 'sigprocmask', 'sigreturn',
  'socketcall', 'socketpair', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statx', 'symlink',
  'symlinkat', 'sync', 'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time', 'timer_create',
  'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64',
  'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64', 'times',
  'tkill', 'truncate', 'truncate64', 'ugetrlimit', 'umask', 'uname', 'unlink', 'unlinkat', 'utime',
  'utimensat', 'utimensat_time64', 'utimes', 'vfork', 'vmsplice', 'wait4', 'waitid', 'waitpid', 'write',
  'writev',
  // Arguments are filtered by Docker; allowed here (clone: see `restrictNamespaces` in filter.ts).
  'clone', 'personality', 'socket',
  // Per architecture in Docker's profile; chroot with CAP_SYS_CHROOT, which appc's default set has.
  'arch_prctl', 'modify_ldt', 'chroot',
  'arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls',
];

/** Docker allows these on kernels >= 4.8; rkt's default keeps them blocked (no ptrace of anything). */
const DOCKER_PTRACE = ['ptrace', 'process_vm_readv', 'process_vm_writev'];

/**
 * Newer than Docker's list and harmless: the *at and futex variants of allowed calls, shadow stacks,
 * sealing one's own mappings. Without them an app would get EPERM where its libc expects success
 * or ENOSYS (to fall back).
 */
const NEWER_ALLOWED = [
  'cachestat', 'fchmodat2', 'map_shadow_stack', 'futex_wake', 'futex_wait', 'futex_requeue', 'mseal',
  'setxattrat', 'getxattrat', 'listxattrat', 'removexattrat', 'file_getattr', 'file_setattr',
];

/** Docker's default blocklist (its seccomp documentation), as rkt shipped it. */
const DOCKER_BLOCKED = [
  'acct', 'add_key', 'adjtimex', 'bpf', 'clock_adjtime', 'clock_settime', 'create_module', 'delete_module',
  'finit_module', 'get_kernel_syms', 'get_mempolicy', 'init_module', 'ioperm', 'iopl', 'kcmp',
  'kexec_file_load', 'kexec_load', 'keyctl', 'lookup_dcookie', 'mbind', 'mount', 'move_pages',
  'name_to_handle_at', 'nfsservctl', 'open_by_handle_at', 'perf_event_open', 'pivot_root',
  'process_vm_readv', 'process_vm_writev', 'ptrace', 'query_module', 'quotactl', 'reboot', 'request_key',
  'set_mempolicy', 'setns', 'settimeofday', 'stime', 'swapon', 'swapoff', 'sysfs', '_sysctl', 'umount',
  'umount2', 'unshare', 'uselib', 'userfaultfd', 'ustat', 'vm86', 'vm86old',
];

/** Calls added to the kernel since that list that need the same care: the new mount API, io_uring, ... */
const NEWER_BLOCKED = [
  'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'open_tree_attr', 'mount_setattr',
  'quotactl_fd', 'pidfd_getfd', 'process_madvise', 'io_uring_setup', 'io_uring_enter', 'io_uring_register',
  'clock_settime64', 'clock_adjtime64', 'set_mempolicy_home_node', 'fanotify_init', 'vhangup',
  'listmount', 'statmount', 'lsm_get_self_attr', 'lsm_set_self_attr', 'lsm_list_modules', 'syslog',
];

/** systemd's groups, by the names rkt gave them (`@systemd/NAME`). */
const SYSTEMD: Record<string, string[]> = {
  clock: ['adjtimex', 'clock_adjtime', 'clock_settime', 'settimeofday', 'stime'],
  // What systemd always allows in allow-list mode, so that the exec and exit still work.
  'default-whitelist': [
    'clock_getres', 'clock_gettime', 'clock_nanosleep', 'execve', 'exit', 'exit_group', 'getrlimit',
    'gettimeofday', 'nanosleep', 'pause', 'rt_sigreturn', 'sigreturn', 'time',
  ],
  mount: ['chroot', 'mount', 'pivot_root', 'umount', 'umount2'],
  'network-io': [
    'accept', 'accept4', 'bind', 'connect', 'getpeername', 'getsockname', 'getsockopt', 'listen', 'recv',
    'recvfrom', 'recvmmsg', 'recvmsg', 'send', 'sendmmsg', 'sendmsg', 'sendto', 'setsockopt', 'shutdown',
    'socket', 'socketcall', 'socketpair',
  ],
  obsolete: [
    '_sysctl', 'afs_syscall', 'break', 'create_module', 'ftime', 'get_kernel_syms', 'getpmsg', 'gtty', 'lock',
    'mpx', 'prof', 'profil', 'putpmsg', 'query_module', 'security', 'sgetmask', 'ssetmask', 'stty', 'sysfs',
    'tuxcall', 'ulimit', 'uselib', 'ustat', 'vserver',
  ],
  privileged: [
    '_sysctl', 'acct', 'bdflush', 'bpf', 'capset', 'chown', 'chown32', 'chroot', 'clock_settime',
    'delete_module', 'fchown', 'fchown32', 'fchownat', 'finit_module', 'init_module', 'ioperm', 'iopl',
    'kexec_file_load', 'kexec_load', 'lchown', 'lchown32', 'nfsservctl', 'pivot_root', 'quotactl', 'reboot',
    'setdomainname', 'setfsuid', 'setfsuid32', 'setgroups', 'setgroups32', 'sethostname', 'setresuid',
    'setresuid32', 'setreuid', 'setreuid32', 'settimeofday', 'setuid', 'setuid32', 'swapoff', 'swapon',
    'vhangup',
  ],
  process: ['arch_prctl', 'clone', 'execveat', 'fork', 'kill', 'prctl', 'setns', 'tgkill', 'tkill', 'unshare', 'vfork'],
  'raw-io': ['ioperm', 'iopl', 'pciconfig_iobase', 'pciconfig_read', 'pciconfig_write', 's390_pci_mmio_read', 's390_pci_mmio_write'],
};

const sorted = (names: string[]) => Object.freeze([...new Set(names)].sort());

/** rkt's default: Docker's allow list, without ptrace, plus newer harmless calls. */
export const RKT_DEFAULT_WHITELIST = sorted([...DOCKER_ALLOWED, ...NEWER_ALLOWED]);
export const DOCKER_DEFAULT_WHITELIST = sorted([...DOCKER_ALLOWED, ...DOCKER_PTRACE, ...NEWER_ALLOWED]);
export const DOCKER_DEFAULT_BLACKLIST = sorted(DOCKER_BLOCKED);
export const RKT_DEFAULT_BLACKLIST = sorted([...DOCKER_BLOCKED, ...NEWER_BLOCKED]);
/** What systemd allowed in every allow list; added to each retain set so the app can still exec and exit. */
export const ALWAYS_ALLOWED = sorted(SYSTEMD['default-whitelist']!);

/** Every named set that expands to a list of syscalls. */
export const NAMED_SETS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  '@rkt/default-whitelist': RKT_DEFAULT_WHITELIST,
  '@rkt/default-blacklist': RKT_DEFAULT_BLACKLIST,
  '@docker/default-whitelist': DOCKER_DEFAULT_WHITELIST,
  '@docker/default-blacklist': DOCKER_DEFAULT_BLACKLIST,
  ...Object.fromEntries(Object.entries(SYSTEMD).map(([k, v]) => [`@systemd/${k}`, sorted(v)])),
});

const KNOWN = new Set([...Object.keys(X86_64_SYSCALLS), ...OTHER_ARCH_SYSCALLS, 'recv', 'send', 'pciconfig_iobase', 'pciconfig_read', 'pciconfig_write']);

/** True for a syscall name of some Linux architecture. */
export function isSyscallName(name: string): boolean {
  return KNOWN.has(name);
}

/** Every set name that may appear in a seccomp set, for error messages. */
export const SET_NAMES: readonly string[] = Object.freeze([APPC_ALL, APPC_EMPTY, ...Object.keys(NAMED_SETS)]);
