/**
 * Renders a PodPlan into stage1's command line, scripts and tables:
 *
 *  runArgv  the command line bin/rkt's process execs: rkt-helper --pod (closes the
 *           caller's fds above 2, [joins the CNI netns,] new mount, UTS, IPC, PID [, net]
 *           namespaces; then holds the pod in the host PID namespace: forwards signals,
 *           exits with the pod's status) -> its child, the pod's PID 1 (--init; static C,
 *           src/stage1/helper/rkt-helper.c). Under a Type=notify unit rkt-notify holds the
 *           pod instead, and execs rkt-helper --init.
 *  init.table  what PID 1 does first (initOps): bounding set, hostname, lo, cgroups, user
 *           namespace. Then it starts each app's launcher in its own mount namespace, leaves
 *           the host root, drops every capability the apps do not need it for (all but
 *           CAP_KILL, and that only if an app has it), forwards SIGTERM/SIGINT (SIGKILL after
 *           a grace period), records exit statuses (0 for apps it stopped itself), exits with
 *           the first failure.
 *  app-NAME.launch  per app, run by the process PID 1 forks for it, still with the host
 *           root in view: joins the app's cgroups, makes its mounts (overlay, /proc, /sys,
 *           /dev, volumes, masked paths, cgroup view) and, in that same process, goes on
 *           with --app: pivot_root into the app rootfs, the host root detached, the app's
 *           bounding set, groups and ids, a fresh session keyring, the seccomp filter,
 *           exactly its environment, and the exec of the app. For an app with event
 *           handlers the table goes on with a script instead (app-NAME.sh, busybox sh in
 *           the mounted app's namespace) that runs them around the app.
 *
 * Only rkt-helper (static) runs after pivot_root, so no host file is reachable from the
 * app's mount namespace, not even through a chroot escape.
 */
import type { AppPlan, PodPlan, PodUserns } from './plan.js';
import { LINUX_CAPABILITIES } from '../image/isolators.js';
import { appPidFile, appScript, HELPER_MOUNT, INIT_TABLE, MASKED_FILE, READY_FILE, STOPPING_FILE, USERNS_ID_FILE } from '../pod-layout.js';

// The pod dir's names, for the callers that import them from here.
export { HELPER_MOUNT, READY_FILE, STOPPING_FILE, STOP_KILLED_FILE, STOP_TIMEOUT_FILE, USERNS_ID_FILE } from '../pod-layout.js';

/** Single-quotes a string for sh. */
export function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Directories shown as empty and inaccessible (mode 000). */
export const MASKED_SYS_DIRS = ['/sys/firmware', '/sys/fs', '/sys/hypervisor', '/sys/module', '/sys/power'];
/** Files shown as empty and inaccessible (mode 000). */
export const MASKED_PROC_FILES = ['/proc/config.gz', '/proc/kallsyms', '/proc/sched_debug', '/proc/kcore', '/proc/kmem', '/proc/mem', '/proc/timer_list', '/proc/keys'];
/** The mount option (busybox and util-linux) that skips an entry whose target does not exist. */
export const NOFAIL = 'nofail';
/** The minimal /dev: name, type, major, minor. */
export const DEVICES: Array<[string, number, number]> = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

/** The usual links of /dev: name, target. */
export const DEV_LINKS: Array<[string, string]> = [
  ['ptmx', 'pts/ptmx'], ['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2'],
];

/**
 * The launcher's first step, in its own mount namespace: its tmpfs, the mount points, and
 * /dev's skeleton (mount points for the device binds, the usual links, pts, shm). It runs
 * after the launcher's PID is taken, so the app's PID stays as low as without it.
 */
export function skeletonOps(app: Pick<AppPlan, 'devDir' | 'skeleton'>): string[][] {
  const sk = app.skeleton;
  if (!sk) return [];
  const d = app.devDir;
  const ops: string[][] = [];
  // Mount points and small files; what the app writes in its /dev is charged to its memory
  // cgroup, and a setuid file it puts there does not work (as Docker's /dev).
  if (sk.tmpfs) ops.push(['mount', 'rkt-skeleton', sk.tmpfs, 'tmpfs', 'mode=0755,size=65536k,nosuid']);
  for (const dir of [...sk.dirs, `${d}/pts`, `${d}/shm`]) ops.push(['mkdir', dir]);
  for (const [name] of DEVICES) ops.push(['touch', `${d}/${name}`]);
  for (const [name, to] of DEV_LINKS) ops.push(['symlink', to, `${d}/${name}`]);
  for (const f of sk.files ?? []) ops.push(['write', f.path, f.content]);
  if (sk.owner !== undefined) {
    const own = [d, `${d}/pts`, `${d}/shm`, ...DEV_LINKS.map(([name]) => `${d}/${name}`), ...(sk.files ?? []).map((f) => f.path)];
    for (const f of own) ops.push(['chown', String(sk.owner), f]);
  }
  return ops;
}

/**
 * Where the socket-activation fds a service manager gave rkt (3, 4, ...) wait while the pod
 * starts, above the fds stage1's helpers open, until rkt-helper puts them back at 3, 4, ...
 * for the apps with socket-activated ports.
 */
export const LISTEN_FD_BASE = 100;
/** At most this many (rkt-helper's limit): at 3.. they must stay below LISTEN_FD_BASE. */
export const MAX_LISTEN_FDS = 64;


/**
 * What stage1 itself uses on top of the apps' capabilities while it starts them: mounts,
 * pivot_root, hostname and unshare (SYS_ADMIN); the launchers' and PID 1's own bounding
 * set, uid, gid and groups (SETPCAP, SETUID, SETGID); overlayfs copies files up with its
 * mounter's credentials (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, MKNOD, SETFCAP).
 */
const STAGE1_CAPS = ['CAP_SYS_ADMIN', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SETGID',
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_MKNOD', 'CAP_SETFCAP'];

/**
 * The bounding set of the pod's PID 1 while it starts the apps (and so of the launchers):
 * the apps' sets plus what stage1 needs, and never CAP_DAC_READ_SEARCH, CAP_SYS_MODULE or
 * CAP_SYS_PTRACE unless an app has them. 'all' when an app has all. Once the apps are
 * started PID 1 keeps only initCapabilities.
 */
export function initBoundingSet(plan: PodPlan): string[] | 'all' {
  if (plan.apps.some((a) => a.capabilities === 'all')) return 'all';
  const caps = new Set(STAGE1_CAPS);
  for (const a of plan.apps) for (const c of a.capabilities as string[]) caps.add(c);
  // A negative OOM score needs CAP_SYS_RESOURCE; bringing up lo in a new netns, CAP_NET_ADMIN.
  if (plan.apps.some((a) => a.oomScoreAdj !== undefined)) caps.add('CAP_SYS_RESOURCE');
  if (plan.net.kind === 'none') caps.add('CAP_NET_ADMIN');
  if (plan.sandbox) caps.add('CAP_KILL'); // see initCapabilities
  return [...caps].sort();
}

/**
 * What the pod's PID 1 keeps once the apps are started (rkt-helper --init drops the rest from
 * every set): only CAP_KILL, to stop apps of other uids or of the pod's user namespace, and
 * only if an app of the pod has it. Everything else PID 1 did with privilege is done by then.
 */
export function initCapabilities(plan: PodPlan): string[] {
  // A sandbox's PID 1 stops apps added later, of any uid: it keeps CAP_KILL.
  return plan.sandbox || plan.apps.some((a) => a.capabilities === 'all' || a.capabilities.includes('CAP_KILL')) ? ['CAP_KILL'] : [];
}

/** Capability names as a hex bit mask (bit N = capability number N). */
export function capabilityMask(caps: string[]): string {
  let mask = 0n;
  for (const c of caps) {
    const n = LINUX_CAPABILITIES[c];
    if (n === undefined) throw new Error(`unknown capability ${c}`);
    mask |= 1n << BigInt(n);
  }
  return mask.toString(16);
}

/**
 * Stage1's command line (which bin/rkt's process execs, so that it becomes the pod): rkt-helper
 * --pod (the caller's fds closed but the socket-activation ones, kept from LISTEN_FD_BASE on;
 * the CNI netns joined; the namespaces made: src/stage1/helper/rkt-helper.c pod_main), which
 * holds the pod with the pod's init as its child (or execs rkt-notify, which does, and execs
 * the init). No field is empty (rkt-launch's hand-off ends at the first empty one).
 */
export function runArgv(plan: PodPlan): string[] {
  const t = plan.tools;
  // A new mount namespace always (its / private); a new network namespace with --net=none.
  const ns = ['uts', 'pid', ...(plan.sharedIpc ? [] : ['ipc']), ...(plan.net.kind === 'none' ? ['net'] : [])];
  return [
    t.helper, '--pod', String(plan.listenFds ?? 0), plan.net.kind === 'netns' ? plan.net.path : '-', ns.join(','),
    ...(plan.notify ? [plan.notify.helper, String(NOTIFY_READY_FD), `${plan.podDir}/${READY_FILE}`, ...plan.notify.sockets, '--', t.helper] : []),
    // The pod's PID 1 (src/stage1/helper/rkt-helper.c init_main): runs the init table
    // (initOps), starts the apps' launchers, tells rkt-notify (fd NOTIFY_READY_FD) they
    // started, pivots into rkt/, drops every capability but initCapabilities, waits for the apps.
    '--init', `${plan.podDir}/${INIT_TABLE}`,
    capabilityMask(initCapabilities(plan)), String(Math.round(plan.stopGraceSeconds * 1000)),
    plan.interactive ? '1' : '0', plan.notify ? '1' : '0', ...plan.apps.map((a) => a.name),
  ];
}

/** The fd on which rkt-notify gives the pod's init the pipe it says "every app started" on. */
export const NOTIFY_READY_FD = 4;
/** Where an app that speaks sd_notify finds its socket (NOTIFY_SOCKET inside the pod, as rkt's stage1 had it). */
export const APP_NOTIFY_SOCKET = '/run/systemd/notify';


/** A grace period as PID 1 takes it (rkt-helper --init, rkt/stop-timeout): seconds, at most 3 decimals. */
export function graceSeconds(ms: number): number {
  return Math.round(ms) / 1000;
}

/**
 * What the pod's PID 1 does first (rkt-helper --init runs it as a table: see init_op), with
 * every privilege: its bounding set (the apps' sets and what stage1 needs: initBoundingSet),
 * the hostname, lo in a network namespace of its own (--net=none), the pod's cgroups, and
 * with --private-users the pod's user namespace, kept on a file of the pod dir by a bind mount
 * that lives in the pod's mount namespace (so it goes away with the pod). Apps are not root
 * of the pod's network namespace (it belongs to the host's user namespace), so in a network
 * namespace of its own the pod may bind ports below 1024 as it could without --private-users.
 */
export function initOps(plan: PodPlan): string[][] {
  const bounding = initBoundingSet(plan);
  const u = plan.userns;
  return [
    ...(bounding === 'all' ? [] : [['bounding', capabilityMask(bounding)]]),
    ['hostname', plan.hostname],
    ...(plan.net.kind === 'none' ? [['up', 'lo']] : []),
    ...plan.podCgroupProcs.map((f) => ['join', f]),
    ...(u ? [['userns', u.helper, u.file, String(u.base), String(u.count), `${plan.podDir}/${USERNS_ID_FILE}`]] : []),
    ...(u && plan.net.kind !== 'host' ? [['write', '/proc/sys/net/ipv4/ip_unprivileged_port_start', '0']] : []),
  ];
}

/** A table field (as fstab): white space and backslashes as octal, as rkt-helper reads them. */
export function fstabEscape(s: string): string {
  return s.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export interface MountEntry { source: string; target: string; type: string; options: string }

/** Mount type of the entries rkt-idmap makes (idmapped binds; options bind or rbind). */
export const IDMAP = 'idmap';

/** An app's /proc, /sys and /dev inside its rootfs (resolved by stage0 against the image's links). */
function kernelTargets(app: AppPlan): { proc: string; sys: string; dev: string } {
  return app.kernelTargets ?? { proc: '/proc', sys: '/sys', dev: '/dev' };
}

/** A masked path such as /proc/kcore, under where the app's /proc (or /sys) actually is. */
function underKernelTarget(app: AppPlan, p: string): string {
  const k = kernelTargets(app);
  for (const [name, at] of Object.entries(k)) {
    if (p === `/${name}` || p.startsWith(`/${name}/`)) return `${at === '/' ? '' : at}${p.slice(name.length + 1)}`;
  }
  return p;
}

/**
 * Every mount of an app, in order, plus the targets to remount read-only afterwards:
 * `readOnly` one mount each, `readOnlyTrees` with every mount below them (recursive volumes).
 * /proc and /sys are read-only as a whole unless --insecure-options=paths.
 */
export function appMounts(plan: PodPlan, app: AppPlan): { mounts: MountEntry[]; readOnly: string[]; readOnlyTrees: string[] } {
  const R = app.rootfs;
  const k = kernelTargets(app);
  const m: MountEntry[] = [];
  const ro: string[] = [];
  const roTrees: string[] = [];
  const add = (source: string, target: string, type: string, options: string) => m.push({ source, target, type, options });
  const kernelFs = `${plan.openPaths ? 'rw' : 'ro'},nosuid,nodev,noexec`;
  const userns = plan.userns;
  if (app.overlay) {
    // With --private-users the lower layer is an idmapped view of the shared tree: the
    // pod sees the image's owners and the tree itself is never chowned.
    const lower = userns && app.idmapLower ? app.idmapLower : app.treeRootfs;
    if (lower !== app.treeRootfs) add(app.treeRootfs, lower, IDMAP, 'bind');
    add('overlay', R, 'overlay', `lowerdir=${lower},upperdir=${app.overlay.upper},workdir=${app.overlay.work}`);
  } else add(R, R, userns ? IDMAP : 'none', 'bind');
  add('proc', `${R}${k.proc}`, 'proc', kernelFs);
  add('sysfs', `${R}${k.sys}`, 'sysfs', kernelFs);
  // Below the dev target everything is the skeleton stage0 made: no image link is followed.
  const dev = `${R}${k.dev}`;
  add(app.devDir, dev, 'none', 'bind');
  for (const [name] of DEVICES) add(`/dev/${name}`, `${dev}/${name}`, 'none', 'bind');
  add('devpts', `${dev}/pts`, 'devpts', 'newinstance,ptmxmode=0666,mode=0620,nosuid,noexec');
  add('shm', `${dev}/shm`, 'tmpfs', `mode=1777,nosuid,nodev,size=65536k${userns ? `,uid=${userns.base},gid=${userns.base}` : ''}`);
  for (const v of app.mounts) {
    add(v.source, `${R}${v.target}`, userns && v.idmap ? IDMAP : 'none', v.recursive ? 'rbind' : 'bind');
    if (v.readOnly) (v.recursive ? roTrees : ro).push(`${R}${v.target}`);
  }
  if (!plan.openPaths) {
    // nofail: a masked path this kernel (or a container the host itself runs in, such as
    // systemd-nspawn) does not show is skipped; mount ignores only ENOENT for it, and our
    // sources always exist, so any other failure still stops the pod.
    for (const p of app.protect.maskedDirs) add('tmpfs', `${R}${underKernelTarget(app, p)}`, 'tmpfs', `ro,mode=000,size=0,${NOFAIL}`);
    for (const p of app.protect.maskedFiles) add(`${plan.podDir}/${MASKED_FILE}`, `${R}${underKernelTarget(app, p)}`, 'none', `bind,${NOFAIL}`);
  }
  if (app.readOnlyRootfs) ro.push(R);
  return { mounts: m, readOnly: ro, readOnlyTrees: roTrees };
}

/**
 * The mount operations of a list of entries, in order: mounts, and idmapped binds (which
 * rkt-idmap makes, with the pod's user namespace).
 */
export function mountOps(mounts: MountEntry[], userns?: PodUserns): string[][] {
  return mounts.map((e) => {
    if (e.type !== IDMAP) return ['mount', e.source, e.target, e.type, e.options];
    if (!userns) throw new Error(`idmapped mount of ${e.source} without a user namespace`);
    return ['idmap', userns.helper, userns.file, e.options, e.source, e.target];
  });
}

/** A table of rkt-helper's (--launch, --init) as its file holds it: one operation a line, fields escaped. */
export function renderTable(ops: string[][]): string {
  return ops.map((op) => `${op.map(fstabEscape).join(' ')}\n`).join('');
}

/** The fd on which `rkt enter` opens rkt-helper before it enters the app's mount namespace. */
export const HELPER_FD = 7;

/**
 * `rkt enter` opens rkt-helper on HELPER_FD while the host's files are still in view, through a
 * read-only bind mount private to its own mount namespace (onto the pod's HELPER_MOUNT, a
 * file it makes in the root-only stage1 dir): once the helper runs in the pod, a process of the pod that opens
 * /proc/PID/exe gets that read-only mount, so it cannot reopen the host's helper for writing
 * and plant code in later pods (the CVE-2019-5736 class).
 */
export function openHelper(helper: string, target: string): string[] {
  return [
    `: >> ${sq(target)} && mount --bind ${sq(helper)} ${sq(target)} && mount -o remount,bind,ro ${sq(target)} || die 'cannot bind the stage1 helper'`,
    `exec ${HELPER_FD}<${sq(target)} || die 'cannot open the stage1 helper'`,
  ];
}

/** What stage1 sets for socket activation itself; a command run by `rkt enter` gets none of it. */
const LISTEN_ENV = new Set(['LISTEN_FDS', 'LISTEN_FDNAMES']);

/**
 * The last step of an app, and of each command `rkt enter` runs in it (so whatever confines
 * the one confines the other): rkt-helper's arguments from `--app` on, the app's argv to
 * follow. As root of the app's namespaces, rkt-helper pivots into the current directory
 * (the app rootfs; not for enter, which is already inside), takes the app's bounding set,
 * groups, gid and uid, enters the working dir, joins a fresh session keyring, sets
 * no_new_privs (always for enter) and loads the seccomp filter, keeps exactly the app's
 * environment and execs the app (src/stage1/helper/rkt-helper.c app_main).
 */
export function appStep(app: AppPlan, forEnter = false): string[] {
  const caps = app.capabilities;
  return [
    '--app', forEnter ? '0' : '1', String(app.uid), String(app.gid),
    app.supplementaryGids.length > 0 ? app.supplementaryGids.join(',') : '-',
    caps === 'all' ? 'all' : capabilityMask(caps),
    app.noNewPrivileges || forEnter ? '1' : '0',
    app.workingDir, app.seccompFilter ?? '-',
    ...app.env.filter(([k]) => !forEnter || !LISTEN_ENV.has(k)).map(([k, v]) => `${k}=${v}`),
  ];
}

/** Shell lines that put the running shell into the app's cgroups and OOM score. */
function appJoinLines(app: AppPlan, podProcs: string[]): string[] {
  return [
    ...[...podProcs, ...app.cgroupProcs].map((f) => `echo 0 > ${sq(f)} || die ${sq(`cannot join cgroup ${f}`)}`),
    ...(app.oomScoreAdj !== undefined ? [`echo ${app.oomScoreAdj} > /proc/self/oom_score_adj || die 'cannot set oom_score_adj'`] : []),
  ];
}

/**
 * `rkt enter`'s script for an app: run by busybox sh on the host as
 * `enter-NAME.sh HOSTPID MNTNS [NAME=VALUE...] CMD [ARGS...]` in a mount namespace of its own
 * (`unshare -m`), HOSTPID being the app's
 * process and MNTNS its mount namespace as rkt found it (`mnt:[N]`): a PID reused
 * meanwhile by another process is refused.
 * It joins the pod's and the app's cgroups and OOM score, opens the app's namespaces while
 * still root, enters them with busybox nsenter (which forks into the pod's PID namespace)
 * and ends in the app's own last step (appStep, rkt-helper run through HELPER_FD, never a
 * binary of the image), with no_new_privs. Exit status: the command's (128+N for a signal).
 *
 * With --private-users the command joins the pod's user namespace too: util-linux nsenter
 * (still in the host's mount namespace) enters the UTS, IPC, network and PID namespaces,
 * which belong to the host's user namespace, while it is host root, then the pod's user
 * namespace (as root of it, so the command's uid and gid are the app's inside and BASE+uid
 * on the host); busybox nsenter enters the app's mount namespace (owned by the pod's user
 * namespace) last, and the last step takes the app's privileges inside it.
 */
export function renderEnter(plan: PodPlan, app: AppPlan): string {
  const t = plan.tools;
  // The namespaces' fds (HELPER_FD is the helper's).
  const ns = [['mnt', 'mount', 3], ['uts', 'uts', 4], ['ipc', 'ipc', 5], ['net', 'net', 6], ['pid', 'pid', 8],
    ...(plan.userns ? [['user', 'user', 9] as const] : [])] as const;
  const nsArg = (flag: string, fd: number) => `--${flag}=/proc/self/fd/${fd}`;
  const step = [`/proc/self/fd/${HELPER_FD}`, ...appStep(app, true)];
  const chain = plan.userns
    ? [
      t.nsenter, ...ns.filter(([n]) => n !== 'mnt').map(([, flag, fd]) => nsArg(flag, fd)), '--',
      t.busybox, 'nsenter', nsArg('mount', 3), '--', ...step,
    ]
    : [t.busybox, 'nsenter', ...ns.map(([, flag, fd]) => nsArg(flag, fd)), '--', ...step];
  return [
    `# rkt stage1: rkt enter into app "${app.name}" of pod ${plan.uuid}. Generated; do not edit.`,
    'die() { echo "stage1: $*" >&2; exit 254; }',
    'pid=$1; mntns=$2; shift 2',
    ...appJoinLines(app, plan.podCgroupProcs),
    // Opened as root: the app may have made itself undumpable, which hides them from its uid.
    // (`command`: a failed redirection of a bare exec would end the shell before die.)
    `[ -e "/proc/$pid/ns/mnt" ] && command exec ${ns.map(([n, , fd]) => `${fd}<"/proc/$pid/ns/${n}"`).join(' ')} || die 'the app is not running'`,
    `[ "$(readlink /proc/self/fd/3)" = "$mntns" ] || die 'the app is not running'`,
    ...(plan.userns ? [`[ "$(readlink /proc/self/fd/9)" = "$(cat ${sq(`${plan.podDir}/${USERNS_ID_FILE}`)})" ] || die "the app has left the pod's user namespace"`] : []),
    // rkt enter runs this script under unshare -m: the bind is private to it.
    ...openHelper(t.helper, `${plan.podDir}/${HELPER_MOUNT}`),
    `exec ${chain.map(sq).join(' ')} "$@"`,
    '',
  ].join('\n');
}

/**
 * The app's own cgroups, read-only, at /sys/fs/cgroup (where the JVM, the Go runtime and
 * friends look for memory.limit_in_bytes / memory.max and the CPU quota). Made once the
 * launcher is in the app's cgroups and in a cgroup namespace rooted there (`cgroupns`),
 * so each mount's root is the app's cgroup: the host's tree above it is not reachable.
 * /sys/fs itself is a fresh tmpfs that holds nothing else (it replaces the /sys/fs mask).
 */
export function cgroupViewOps(app: AppPlan): string[][] {
  const view = app.cgroupView;
  if (!view?.length) return [];
  const fs = `${app.rootfs}${kernelTargets(app).sys}/fs`;
  const cg = `${fs}/cgroup`;
  const tmpfs = 'mode=755,nosuid,nodev,noexec,size=64k';
  const kernelOpts = 'ro,nosuid,nodev,noexec';
  const ops = [['mount', 'tmpfs', fs, 'tmpfs', tmpfs], ['mkdir', cg]];
  const pureV2 = view.length === 1 && view[0].dir === '';
  if (pureV2) {
    ops.push(['mount', 'cgroup2', cg, 'cgroup2', kernelOpts]);
  } else {
    ops.push(['mount', 'tmpfs', cg, 'tmpfs', tmpfs]);
    for (const v of view) {
      const at = `${cg}/${v.dir}`;
      ops.push(['mkdir', at], ['mount', v.type, at, v.type, v.options ? `${kernelOpts},${v.options}` : kernelOpts]);
      for (const l of v.links) ops.push(['symlink', v.dir, `${cg}/${l}`]);
    }
    ops.push(['ro', cg]);
  }
  ops.push(['ro', fs]);
  return ops;
}

/**
 * The mounts an app's launcher makes with the host's root still in view, in order: the
 * skeleton, the mounts, the cgroup view, the read-only remounts; then it enters the app
 * rootfs.
 */
export function appMountOps(plan: PodPlan, app: AppPlan): string[][] {
  const { mounts, readOnly, readOnlyTrees } = appMounts(plan, app);
  return [
    ['root', app.rootfs],
    // The launcher joined the app's cgroups: a cgroup namespace rooted there, for the
    // cgroup view and for the app (which this process becomes).
    ...(app.cgroupView?.length ? [['cgroupns']] : []),
    ...skeletonOps(app),
    ...mountOps(mounts, plan.userns),
    ...cgroupViewOps(app),
    ...readOnlyTrees.map((t) => ['rotree', t]),
    ...readOnly.map((t) => ['ro', t]),
    // Where rkt-helper --app pivots.
    ['chdir', app.rootfs],
  ];
}

/** Where an app's launch table is, in the pod's stage1 dir. */
export function launchTableFile(app: Pick<AppPlan, 'name'>): string {
  return `app-${app.name}.launch`;
}

/**
 * An app's launcher, as rkt-helper runs it in the process the pod's PID 1 forked
 * (launch_main): unless the pod is already stopping (then the app is not started: 143, as
 * if SIGTERMed, rather than SIGKILLed after the grace period), the app's cgroups and OOM
 * score, its mounts, then `next` (its last step).
 */
export function launchOps(plan: PodPlan, app: AppPlan, next: string[]): string[][] {
  return [
    ['stopping', `${plan.podDir}/${STOPPING_FILE}`],
    ...app.cgroupProcs.map((f) => ['join', f]),
    ...(app.oomScoreAdj !== undefined ? [['oom', String(app.oomScoreAdj)]] : []),
    ...appMountOps(plan, app),
    ...next.map((a) => ['arg', a]),
  ];
}

/**
 * The app's launcher, as files of the stage1 dir (name -> content): its launch table
 * (launchOps), which the pod's PID 1 runs in the process it forks for the app, and for an
 * app with event handlers the script that table goes on with (busybox sh, with the app's
 * mounts made) to run the handlers around the app.
 */
export function renderApp(plan: PodPlan, app: AppPlan): { script?: string; files: Record<string, string> } {
  const t = plan.tools;
  // --private-users: the last step runs as root of the pod's user namespace, in a mount
  // namespace of its own (owned by it, so pivot_root works there), from the app rootfs.
  const enterUserns = plan.userns ? [plan.userns.helper, 'exec', plan.userns.file, app.rootfs] : [];
  const chain = (who: AppPlan, exec: string[]) => [...enterUserns, t.helper, ...appStep(who), ...exec];
  const privileged = chain(app, app.exec);
  const handlers = app.eventHandlers;
  const launchTable = (next: string[]) => ({ [launchTableFile(app)]: renderTable(launchOps(plan, app, next)) });
  if (!handlers?.preStart && !handlers?.postStop) {
    // Without a user namespace to enter, the launcher goes on with --app itself.
    return { files: launchTable(plan.userns ? privileged : privileged.slice(1)) };
  }
  const files = launchTable([t.busybox, 'sh', `${plan.podDir}/${appScript(app.name)}`]);
  const lines = [
    `# rkt stage1: runs app "${app.name}" of pod ${plan.uuid} between its event handlers, once its launch table made its mounts. Generated; do not edit.`,
  ];
  // appc event handlers, as rkt ran them: as root, in the app's rootfs, environment, working
  // dir, bounding set and filter. Each step pivots in a copy of this mount namespace
  // (unshare -m), so this shell keeps the host's tools for the next one.
  const root: AppPlan = { ...app, uid: 0, gid: 0, supplementaryGids: [] };
  const copy = [t.busybox, 'unshare', '-m', '--propagation', 'private', '--'];
  if (handlers.preStart) {
    // A failed pre-start keeps the app from starting; the app's status is the handler's.
    lines.push(`${[...copy, ...chain(root, handlers.preStart)].map(sq).join(' ')} </dev/null || exit $?`);
  }
  if (!handlers.postStop) {
    lines.push(`exec ${privileged.map(sq).join(' ')}`, '');
    return { script: lines.join('\n'), files };
  }
  const pidFile = `${plan.podDir}/${appPidFile(app.name)}`;
  lines.push(
    // The app runs as a child in its own copy of the mount namespace; this shell stays to
    // run post-stop. rkt enter and rkt stop find the app itself in the pid file, once PID 1
    // has written this shell's pid there (so its write cannot land after ours).
    `while [ "$(cat ${sq(pidFile)} 2>&-)" != "$$" ]; do sleep 0.01; done`,
    'exec 4<&0',
    `${[...copy, ...privileged].map(sq).join(' ')} <&4 4<&- &`,
    'app=$!',
    'exec 4<&-',
    `echo "$app" > ${sq(`${pidFile}.tmp`)} && mv -f ${sq(`${pidFile}.tmp`)} ${sq(pidFile)}`,
    `trap 'kill -TERM "$app" 2>&-' TERM INT`,
    // wait returns early when a signal's trap runs: wait again until the app is gone.
    'while :; do wait "$app"; rc=$?; kill -0 "$app" 2>&- || break; done',
    `${[...copy, ...chain(root, handlers.postStop)].map(sq).join(' ')} </dev/null`,
    'exit "$rc"',
    '',
  );
  return { script: lines.join('\n'), files };
}

