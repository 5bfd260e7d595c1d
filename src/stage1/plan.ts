/**
 * The stage1 plan: everything stage1 needs to start a pod, computed by stage0 and
 * written into the pod dir (`stage1/plan.json`); scripts.ts turns it into the shell
 * scripts that actually run. Keeping it plain data keeps it unit-testable.
 */

export interface Stage1Tools {
  /** util-linux nsenter (rkt enter into a --private-users pod, rkt app start). */
  nsenter: string;
  /** busybox-static: the app launchers' shell, and rkt enter's (mount, nsenter, unshare). */
  busybox: string;
  /** rkt-helper (static, built from src/stage1/helper/): the pod's namespaces and holder (--pod), its PID 1 (--init), each app's launcher and last step. */
  helper: string;
}

export interface AppMount {
  /** Host path to bind, or undefined for a fresh tmpfs-less directory (empty volume dir is a host path too). */
  source: string;
  /** Absolute path inside the app rootfs, already resolved against its symlinks. */
  target: string;
  readOnly: boolean;
  recursive: boolean;
  /** A file (not a directory) is mounted: create the target as a file. */
  isFile: boolean;
  /** With --private-users: an idmapped bind, so the pod sees the host's owners (host volumes). */
  idmap?: boolean;
}

export interface AppPlan {
  name: string;
  /** Rendered image rootfs (the overlay lower dir, or the copy source). */
  treeRootfs: string;
  /** Mount point of the app rootfs inside the pod dir. */
  rootfs: string;
  /** Overlay upper/work dirs; absent with --no-overlay (rootfs is then a private copy). */
  overlay?: { upper: string; work: string };
  /** With --private-users and overlay: where the idmapped tree rootfs is attached as the lower dir. */
  idmapLower?: string;
  exec: string[];
  env: Array<[string, string]>;
  workingDir: string;
  uid: number;
  gid: number;
  supplementaryGids: number[];
  /** Bounding set (CAP_* names), or 'all' for --insecure-options=capabilities. */
  capabilities: string[] | 'all';
  noNewPrivileges: boolean;
  /** The seccomp filter as hex classic BPF (src/stage1/seccomp/filter.ts); absent: none. */
  seccompFilter?: string;
  readOnlyRootfs: boolean;
  oomScoreAdj?: number;
  mounts: AppMount[];
  /** A per-app directory stage0 filled with /dev's skeleton (device mount points, links, pts, shm). */
  devDir: string;
  /** Kernel paths to mask; stage1 skips those its /proc or /sys does not have. */
  protect: { maskedDirs: string[]; maskedFiles: string[] };
  /** Files the app's launcher writes "0" into to join its cgroups (v1: tasks, v2: cgroup.procs; cgroups.ts joinFiles). */
  cgroupProcs: string[];
  /**
   * Where /proc, /sys and /dev go inside the rootfs, resolved against the image's symlinks
   * by stage0 (the kernel would follow an absolute link to the host). Default: as named.
   */
  kernelTargets?: { proc: string; sys: string; dev: string };
  /** Mount points and the /dev skeleton the launcher makes first (absent: stage0 made them). */
  skeleton?: AppSkeleton;
  /**
   * The cgroup filesystems the app sees read-only under /sys/fs/cgroup, from its own cgroup
   * namespace (src/cgroups/cgroups.ts cgroupView). Absent: /sys/fs stays masked.
   */
  cgroupView?: Array<{ dir: string; type: 'cgroup' | 'cgroup2'; options: string; links: string[] }>;
  /** appc event handlers: pre-start runs before the app, post-stop after it exits; both as root in the app's context. */
  eventHandlers?: { preStart?: string[]; postStop?: string[] };
}

/**
 * What an app's launcher makes, in its own mount namespace, before its mounts: `devDir`
 * with /dev's skeleton, and `dirs`. With `tmpfs` they are on a tmpfs mounted there first,
 * which goes away with the app: an exited pod leaves none of them on the data dir's disk
 * for gc to delete.
 */
export interface AppSkeleton {
  /** Where to mount the launcher's tmpfs (an empty dir of the pod dir); devDir and dirs are in it. */
  tmpfs?: string;
  /** Plain directories: the rootfs mount point, the idmapped lower dir. */
  dirs: string[];
  /** Files to write (mode 0644): the sources of the /etc/hostname, hosts and resolv.conf binds. */
  files?: Array<{ path: string; content: string }>;
  /** --private-users: the owner of the /dev skeleton and the files (the pod's root), as without a user namespace. */
  owner?: number;
}

export interface PodPlan {
  uuid: string;
  podDir: string;
  hostname: string;
  apps: AppPlan[];
  /** host: no new netns; none: a new one with only lo; netns: join this bind-mounted netns. */
  net: { kind: 'host' } | { kind: 'none' } | { kind: 'netns'; path: string };
  /** --ipc=parent keeps the host IPC namespace. */
  sharedIpc: boolean;
  interactive: boolean;
  /** --insecure-options=paths: no read-only or masked kernel paths. */
  openPaths: boolean;
  /** Files the pod's PID 1 writes "0" into to join the pod's cgroups (as AppPlan.cgroupProcs). */
  podCgroupProcs: string[];
  /** Seconds between SIGTERM and SIGKILL when stopping. */
  stopGraceSeconds: number;
  tools: Stage1Tools;
  /** --private-users: the pod's user namespace (made by PID 1, kept on `file`) and its range. */
  userns?: PodUserns;
  /** `rkt app sandbox`: no app at start; PID 1 stays up until stopped (src/stage0/app.ts). */
  sandbox?: boolean;
  /** Socket activation: how many fds (from 3) rkt was given with LISTEN_FDS for this very process. */
  listenFds?: number;
  /** rkt runs with a usable NOTIFY_SOCKET: rkt-notify holds the pod in rkt-helper --pod's place (helper/notify.c). */
  notify?: PodNotify;
}

export interface PodNotify {
  /** The static rkt-notify helper. */
  helper: string;
  /** The datagram sockets it binds, one per app that speaks sd_notify (mounted as its NOTIFY_SOCKET). */
  sockets: string[];
}


export interface PodUserns {
  /** The static rkt-idmap helper. */
  helper: string;
  /** An empty file in the pod dir the namespace is bind-mounted on (in the pod's mount namespace). */
  file: string;
  base: number;
  count: number;
}
