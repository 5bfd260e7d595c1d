/**
 * The pod directory: its states in the data dir and every file stage0, stage1 (the
 * rendered scripts and rkt-helper, src/stage1/helper/rkt-helper.c, which spells the rkt/
 * names again in C), gc, list and status share. Paths are relative to the pod dir unless
 * a function takes it. This module imports nothing, so every layer may use it.
 *
 *   <data dir>/pods/<state>/<uuid>/
 *     pid                     the holder: a symlink naming the live process that holds the pod
 *     pod-created             its time is the pod's creation time
 *     pod                     the pod manifest (appc)
 *     runtime.json            what prepare resolved, for run-prepared (root only)
 *     cgroups.json            the pod's cgroups, for gc and status
 *     net-info.json           the joined networks (src/net/netinfo.ts)
 *     rkt/status/<app>        an app's exit status, written by its launcher
 *     rkt/pid/<app>           an app's pid as PID 1 sees it
 *     rkt/stopping, stop-timeout, stop-killed, userns   see below
 *     rkt/sandbox, rkt/started/<pid>, rkt/created/<app>, stage1/sandbox.json, pod.lck
 *                             a sandbox (rkt app sandbox, src/stage0/app.ts)
 *     stage1/                 the rendered scripts and tables, a sandbox's plan.json (root only)
 *     overlay/<app>/{upper,work}, volumes/<name>           (root only)
 */
/** The pods' directory in the data dir; one sub dir per state holds the pod dirs by UUID. */
export const PODS_DIR = 'pods';
/** The data dir of a pod dir (`<data dir>/pods/<state>/<uuid>`). */
export const dataDirOf = (podDir: string) => podDir.split('/').slice(0, -3).join('/');
export const POD_STATES = ['embryo', 'prepare', 'prepared', 'run', 'exited-garbage', 'garbage'] as const;
export type PodStateDir = typeof POD_STATES[number];

/**
 * The holder file (see stage0/pod.ts). A pod moves into run/ before stage0 writes stage1's
 * files there (so every path it writes is final: nothing is rewritten), held by the pod's
 * process and by stage0 until the hand-off.
 */
export const HOLDER_FILE = 'pid';
/** Made with the pod; its time is the pod's creation time. */
export const POD_CREATED_FILE = 'pod-created';
/** The appc pod manifest. */
export const POD_MANIFEST_FILE = 'pod';
/** stage0's resolved pod, saved at prepare for run-prepared. */
export const RUNTIME_FILE = 'runtime.json';
/** --private-users: the pod's uid/gid range, "BASE:COUNT" (stage0/userns.ts). */
export const RANGE_FILE = 'private-users-prepared';
/** The pod's cgroups (stage0 writes it at start; gc and status read it). */
export const CGROUPS_FILE = 'cgroups.json';

/** Directories that hold app filesystems, volumes or secrets: root only. */
export const POD_PRIVATE_DIRS = ['stage1', 'overlay', 'volumes'];
/** The other directories made at prepare. */
export const POD_DIRS = ['rkt', 'rkt/status', 'rkt/pid'];

/** An app's exit status, written by the pod's PID 1 when the app ends. */
export const appStatusFile = (app: string) => `rkt/status/${app}`;
/** An app's pid (as the pod's PID namespace sees it), written by the pod's PID 1. */
export const appPidFile = (app: string) => `rkt/pid/${app}`;

/** Made once the pod is ready (`rkt status --wait-ready`), by PID 1 or rkt-notify. */
export const READY_FILE = 'rkt/ready';
/** Made when the pod starts to stop; an app launcher that finds it exits 143 (as if SIGTERMed). */
export const STOPPING_FILE = 'rkt/stopping';
/** The grace period `rkt stop --timeout` sets for this stop, in seconds. */
export const STOP_TIMEOUT_FILE = 'rkt/stop-timeout';
/** The apps that were SIGKILLed because they outlived the grace period (one a line). */
export const STOP_KILLED_FILE = 'rkt/stop-killed';
/** The pod's user namespace id (`user:[N]`), recorded by stage1 for enter. */
export const USERNS_ID_FILE = 'rkt/userns';

/** stage1's directory and the files stage0 renders into it. */
export const STAGE1_DIR = 'stage1';
/** The pod's init table (rkt-helper --init); its path on PID 1's command line marks the pod's init. */
export const INIT_TABLE = 'stage1/init.table';
export const PLAN_FILE = 'stage1/plan.json';
export const appScript = (app: string) => `stage1/app-${app}.sh`;
export const enterScript = (app: string) => `stage1/enter-${app}.sh`;
/** An empty, mode 0 file bound over masked /proc files. */
export const MASKED_FILE = 'stage1/masked';
/** The file the pod's user namespace is bound on while it is made. */
export const USERNS_FILE = 'stage1/userns';
/** Where `rkt enter` binds rkt-helper read-only (in its own mount namespace). */
export const HELPER_MOUNT = 'stage1/rkt-helper';
/** An app's sd_notify socket. */
export const notifySocketFile = (app: string) => `stage1/notify/${app}`;
/** Where an app's rootfs is mounted (or, without overlay, copied). */
export const appRootfs = (app: string) => `stage1/rootfs/opt/stage2/${app}/rootfs`;
export const overlayDir = (app: string) => `overlay/${app}`;
export const volumeDir = (name: string) => `volumes/${name}`;

/** `rkt app sandbox`: marks the pod a sandbox for its PID 1 (rkt-helper.c SANDBOX_FILE). */
export const SANDBOX_FILE = 'rkt/sandbox';
/** A started sandbox app's launcher, by its pod PID: the app's name, for PID 1 (rkt-helper.c STARTED_DIR). */
export const SANDBOX_STARTED_DIR = 'rkt/started';
/** A sandbox app's output when the pod's own cannot be reopened (a socket). */
export const appLogFile = (app: string) => `stage1/log/${app}`;
/** When `rkt app add` created an app (its mtime). */
export const appCreatedFile = (app: string) => `rkt/created/${app}`;
/** The sandbox's start options and each added app's files (root only). */
export const SANDBOX_INFO_FILE = 'stage1/sandbox.json';
/** Held while `rkt app add/start/rm` change a sandbox (as rkt's pod.lck). */
export const POD_LOCK_FILE = 'pod.lck';
