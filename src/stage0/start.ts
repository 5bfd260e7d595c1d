/**
 * stage0 start: turn a prepared pod into a running one. Creates the cgroups and the
 * networks, moves the pod into run/, writes the /etc files and the stage1 scripts there
 * (so every path they name is final), and returns the script bin/rkt execs. Nothing is
 * spawned from Node for --net=host/none.
 */
import fs from 'node:fs';
import path from 'node:path';
import { errorMessage, fail } from '../util/errors.js';
import { warn } from '../util/log.js';
import type { GlobalOptions } from '../options.js';
import type { Host } from '../host/host.js';
import { cgroupManager, type CgroupManager, PodCgroups } from '../cgroups/cgroups.js';
import { assertPortsAllowed } from '../net/netflag.js';
import { resolvePorts } from './validate.js';
import { resolvConf, hostsFile } from '../net/dns.js';
import type { StartOptions } from './spec.js';
import { appRootfs, appScript, CGROUPS_FILE, enterScript, INIT_TABLE, notifySocketFile, overlayDir, STAGE1_DIR, USERNS_FILE, volumeDir } from '../pod-layout.js';
import { Pod, readHolder, stampStarted, transition } from './pod.js';
import type { PreparedPod, PreparedApp } from './prepare.js';
import type { AppMount, AppPlan, PodPlan } from '../stage1/plan.js';
import { APP_NOTIFY_SOCKET, MAX_LISTEN_FDS, graceSeconds, initOps, renderApp, renderEnter, renderTable, runArgv, MASKED_SYS_DIRS, MASKED_PROC_FILES } from '../stage1/scripts.js';
import { builtHelper, findStage1Tools } from '../stage1/tools.js';
import { compileSeccomp, defaultSeccomp, encodeBpf } from '../stage1/seccomp/filter.js';
import { kernelTargets, resolveInRootfs, statInRootfs } from './rootfs-path.js';
import { configPodPidsLimit, podPidsLimit } from './limits.js';
import { idmapHelper, readPodRange, UidRange } from './userns.js';

export { CGROUPS_FILE } from '../pod-layout.js';

/**
 * The app's /etc/hostname, hosts and resolv.conf binds. With `onTmpfs` (overlay pods) the
 * files are written by the launcher on its tmpfs (their contents go to `files`); else
 * next to the stage1 scripts.
 */
export function etcMounts(dir: string, app: PreparedApp, hostname: string, opts: StartOptions, cniDns: Parameters<typeof resolvConf>[1], onTmpfs?: { root: string; files: Array<{ path: string; content: string }> }): AppMount[] {
  const mounts: AppMount[] = [];
  const file = (name: string, content: string) => {
    const p = path.join(onTmpfs?.root ?? path.join(dir, STAGE1_DIR), `${app.name}-${name}`);
    if (onTmpfs) onTmpfs.files.push({ path: p, content });
    else fs.writeFileSync(p, content, { mode: 0o644 });
    return p;
  };
  const target = (p: string) => resolveInRootfs(app.treeRootfs, p);
  // A volume on the file or on a directory above it (say on /etc) provides the file itself.
  const volumeOn = (p: string) => app.mounts.some((m) => target(p) === m.target || target(p).startsWith(`${m.target.replace(/\/$/, '')}/`));
  if (!volumeOn('/etc/hostname')) {
    mounts.push({ source: file('hostname', `${hostname}\n`), target: target('/etc/hostname'), readOnly: false, recursive: false, isFile: true });
  }
  const hostsFlag = opts.hostsEntries;
  if (!volumeOn('/etc/hosts')) {
    if (hostsFlag === 'host') {
      mounts.push({ source: '/etc/hosts', target: target('/etc/hosts'), readOnly: true, recursive: false, isFile: true });
    } else if (hostsFlag.length > 0 || !statInRootfs(app.treeRootfs, '/etc/hosts')) {
      mounts.push({ source: file('hosts', hostsFile(hostname, hostsFlag)), target: target('/etc/hosts'), readOnly: false, recursive: false, isFile: true });
    }
  }
  const resolv = resolvConf(opts.dns, cniDns);
  if (resolv && !volumeOn('/etc/resolv.conf')) {
    const source = 'hostFile' in resolv ? '/etc/resolv.conf' : file('resolv.conf', resolv.content);
    mounts.push({ source, target: target('/etc/resolv.conf'), readOnly: 'hostFile' in resolv, recursive: false, isFile: true });
  }
  return mounts;
}

/**
 * The kernel paths to protect: all of them. What rkt's own /proc and /sys show says nothing
 * about the pod's fresh ones (a container manager such as systemd-nspawn hides or adds
 * entries), so stage1 decides when it mounts them: an absent one is skipped (NOFAIL).
 */
export function podProtect(): AppPlan['protect'] {
  return { maskedDirs: [...MASKED_SYS_DIRS], maskedFiles: [...MASKED_PROC_FILES] };
}

/**
 * NOTIFY_SOCKET as systemd gives it to a Type=notify service: a socket path or an abstract
 * @name. Anything else is said once and ignored: the pod runs, systemd is not told.
 */
export function notifySocket(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (value.startsWith('@') && value.length > 1) return value;
  let why = 'is not an absolute path or @name';
  if (value.startsWith('/')) {
    try { if (fs.statSync(value).isSocket()) return value; why = 'is not a socket'; } catch { why = 'does not exist'; }
  }
  warn(`NOTIFY_SOCKET=${value} ${why}: the pod runs, but its readiness is not reported`);
  return undefined;
}

/**
 * Socket activation (sd_listen_fds): the fds 3.. a service manager gave rkt, when
 * LISTEN_PID names rkt's own process (bin/rkt, which became stage0's parent and becomes the
 * pod); otherwise they are not for us, as the protocol says, and are closed like any other.
 */
export function listenFds(env: NodeJS.ProcessEnv, rktPid: number): { count: number; names?: string } | undefined {
  if (env.LISTEN_FDS === undefined || env.LISTEN_PID !== String(rktPid)) return undefined;
  const count = Number(env.LISTEN_FDS);
  if (!Number.isInteger(count) || count < 1) return undefined;
  if (count > MAX_LISTEN_FDS) fail(`LISTEN_FDS=${count}: rkt passes at most ${MAX_LISTEN_FDS} socket-activation fds to a pod; use fewer sockets in the .socket unit`);
  const names = env.LISTEN_FDNAMES;
  return names !== undefined && names.split(':').length === count ? { count, names } : { count };
}

const LISTEN_ENV = new Set(['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']);

/** An app's NOTIFY_SOCKET mount and environment, when its image speaks sd_notify. */
function notifyApp(dir: string, app: PreparedApp): { mount: AppMount; env: Array<[string, string]> } {
  const socket = path.join(dir, notifySocketFile(app.name));
  fs.mkdirSync(path.dirname(socket), { recursive: true });
  const env: Array<[string, string]> = [['NOTIFY_SOCKET', APP_NOTIFY_SOCKET]];
  if (process.env.WATCHDOG_USEC) env.push(['WATCHDOG_USEC', process.env.WATCHDOG_USEC]);
  return { mount: { source: socket, target: resolveInRootfs(app.treeRootfs, APP_NOTIFY_SOCKET), readOnly: false, recursive: false, isFile: true }, env };
}

/**
 * Creates mount targets missing from the image in the app's writable layer (the overlay
 * upper dir, or the private copy), so stage1 runs no mkdir. Parent dirs made in the
 * upper layer copy the owner and mode of the image's dir they shadow.
 */
export function createTargets(lower: string, writable: string, targets: Array<{ path: string; isFile: boolean }>, shift = 0): void {
  for (const t of targets) {
    if (fs.existsSync(path.join(lower, t.path)) || fs.existsSync(path.join(writable, t.path))) continue;
    const parts = t.path.split('/').filter(Boolean);
    let rel = '';
    parts.forEach((part, i) => {
      rel += `/${part}`;
      const dst = path.join(writable, rel);
      const last = i === parts.length - 1;
      if (fs.existsSync(dst)) return;
      if (last && t.isFile) { fs.writeFileSync(dst, '', { mode: 0o644 }); if (shift) fs.chownSync(dst, shift, shift); return; }
      let mode = 0o755;
      let owner: [number, number] = [0, 0];
      try { const st = fs.statSync(path.join(lower, rel)); mode = st.mode & 0o7777; owner = [st.uid, st.gid]; } catch { /* new dir */ }
      fs.mkdirSync(dst, { mode });
      fs.chmodSync(dst, mode);
      fs.chownSync(dst, owner[0] + shift, owner[1] + shift);
    });
  }
}

/** The default filter as scripts/bundle.mjs compiled it into the bundle (not defined outside it). */
declare const RKT_DEFAULT_SECCOMP_FILTER: string | undefined;

/** The app's filter as the helper takes it; pods prepared before seccomp existed get the default. */
export function seccompFilter(app: Pick<PreparedApp, 'seccomp'>): string | undefined {
  const spec = app.seccomp === undefined ? defaultSeccomp() : app.seccomp;
  if (!spec) return undefined;
  if (typeof RKT_DEFAULT_SECCOMP_FILTER === 'string' && JSON.stringify(spec) === JSON.stringify(defaultSeccomp())) return RKT_DEFAULT_SECCOMP_FILTER;
  return encodeBpf(compileSeccomp(spec));
}

/**
 * The masked paths that exist for this app: a volume on /sys (or /proc) hides the kernel's
 * files there, so a masked path below it is masked only if the volume has it too.
 */
function appProtect(protect: AppPlan['protect'], k: { proc: string; sys: string }, volumes: AppMount[], view?: AppPlan['cgroupView']): AppPlan['protect'] {
  const exists = (p: string) => {
    const at = p.startsWith('/sys/') ? k.sys + p.slice(4) : p.startsWith('/proc/') ? k.proc + p.slice(5) : p;
    const v = volumes.find((m) => at === m.target || at.startsWith(`${m.target.replace(/\/$/, '')}/`));
    return !v || fs.existsSync(path.join(v.source, at.slice(v.target.length)));
  };
  // With the app's cgroups shown, /sys/fs is a tmpfs of its own holding only them.
  const shown = (p: string) => !(view?.length && p === '/sys/fs');
  return { maskedDirs: protect.maskedDirs.filter(exists).filter(shown), maskedFiles: protect.maskedFiles.filter(exists) };
}

/**
 * /etc/mtab as rkt made it: a link to ../proc/self/mounts, in the app's writable layer,
 * when the image has an /etc directory and nothing at /etc/mtab (tools such as
 * util-linux's mount read it).
 */
export function ensureMtab(lower: string, writable: string, shift = 0): void {
  const etc = resolveInRootfs(lower, '/etc');
  const st = statInRootfs(lower, '/etc');
  if (!st?.isDirectory()) return;
  const lstat = (p: string) => { try { return fs.lstatSync(p); } catch { return undefined; } };
  if (lstat(path.join(lower, etc, 'mtab')) || lstat(path.join(writable, etc, 'mtab'))) return;
  // The overlay upper dir gets /etc's dirs as the image has them (owner, mode), so the
  // merged view keeps them.
  let rel = '';
  for (const part of etc.split('/').filter(Boolean)) {
    rel += `/${part}`;
    const dst = path.join(writable, rel);
    if (lstat(dst)) continue;
    const src = fs.statSync(path.join(lower, rel));
    fs.mkdirSync(dst);
    fs.chmodSync(dst, src.mode & 0o7777);
    fs.chownSync(dst, src.uid + shift, src.gid + shift);
  }
  const link = path.join(writable, etc, 'mtab');
  fs.symlinkSync('../proc/self/mounts', link);
  if (shift) fs.lchownSync(link, shift, shift);
}

/**
 * The app's own cgroups, shown read-only at /sys/fs/cgroup (in place of the /sys/fs mask),
 * unless a volume covers /sys (then the app sees the volume, not sysfs).
 */
function cgroupViewFor(cgroups: CgroupManager, cg: PodCgroups, app: string, sys: string, volumes: AppMount[]): Pick<AppPlan, 'cgroupView'> {
  if (volumes.some((m) => sys === m.target || sys.startsWith(`${m.target.replace(/\/$/, '')}/`) || m.target === `${sys}/fs` || m.target.startsWith(`${sys}/fs/`))) return {};
  const view = cgroups.appView(cg, app);
  return view.length > 0 ? { cgroupView: view } : {};
}

export function appPlan(dir: string, pod: PreparedPod, app: PreparedApp, cg: PodCgroups, etc: AppMount[], protect: AppPlan['protect'], range: UidRange | undefined, cgroups: CgroupManager): AppPlan {
  const volumeMounts: AppMount[] = app.mounts.map((m) => {
    const v = pod.volumes.find((x) => x.name === m.volume)!;
    const source = v.kind === 'host' ? v.source! : path.join(dir, volumeDir(v.name));
    let isFile = false;
    try { isFile = !fs.statSync(source).isDirectory(); } catch { /* checked at prepare */ }
    const idmap = range !== undefined && v.kind === 'host' && v.idmap !== false;
    return { source, target: m.target, readOnly: m.readOnly, recursive: v.kind === 'host' ? v.recursive ?? true : false, isFile, ...(idmap ? { idmap } : {}) };
  });
  const k = kernelTargets(app.treeRootfs);
  const view = cgroupViewFor(cgroups, cg, app.name, k.sys, volumeMounts);
  return {
    name: app.name,
    treeRootfs: app.treeRootfs,
    rootfs: path.join(dir, appRootfs(app.name)),
    overlay: pod.overlay ? { upper: path.join(dir, overlayDir(app.name), 'upper'), work: path.join(dir, overlayDir(app.name), 'work') } : undefined,
    ...(range && pod.overlay ? { idmapLower: path.join(skeletonRoot(dir, pod), 'lower', app.name) } : {}),
    exec: app.exec,
    env: app.env,
    workingDir: app.workingDir,
    uid: app.uid,
    gid: app.gid,
    supplementaryGids: app.supplementaryGids,
    capabilities: pod.insecureCapabilities ? 'all' : app.resources.capabilities,
    noNewPrivileges: app.resources.noNewPrivileges,
    seccompFilter: seccompFilter(app),
    readOnlyRootfs: app.readOnlyRootfs,
    oomScoreAdj: app.resources.oomScoreAdj,
    mounts: [...volumeMounts, ...etc],
    devDir: path.join(skeletonRoot(dir, pod), 'dev', app.name),
    protect: appProtect(protect, k, volumeMounts, view.cgroupView),
    cgroupProcs: cgroups.joinFiles(cg.appProcs[app.name] ?? []),
    kernelTargets: k,
    ...view,
    ...(app.eventHandlers?.length ? { eventHandlers: {
      preStart: app.eventHandlers.find((h) => h.name === 'pre-start')?.exec,
      postStop: app.eventHandlers.find((h) => h.name === 'post-stop')?.exec,
    } } : {}),
  };
}

/**
 * Writes an app's launcher files and its enter script into the pod dir. The names of those
 * in stage1/ go into `written` as each is written, so that a failure half-way can remove them.
 */
export function writeAppFiles(dir: string, plan: PodPlan, app: AppPlan, written: string[] = []): void {
  const rendered = renderApp(plan, app);
  for (const [name, content] of Object.entries(rendered.files)) {
    written.push(name);
    fs.writeFileSync(path.join(dir, STAGE1_DIR, name), content);
  }
  if (rendered.script !== undefined) fs.writeFileSync(path.join(dir, appScript(app.name)), rendered.script);
  fs.writeFileSync(path.join(dir, enterScript(app.name)), renderEnter(plan, app));
}

/** How bin/rkt's process becomes the pod: stage1's command line (runArgv). */
export interface Handoff { argv: string[] }

/** Writes the pod's init table; returns the command line stage0 hands off. */
export function writeInitTable(dir: string, plan: PodPlan): Handoff {
  fs.writeFileSync(path.join(dir, INIT_TABLE), renderTable(initOps(plan)));
  return { argv: runArgv(plan) };
}

/**
 * Where the pod's mount points and /dev skeletons go. With overlay, the apps' rootfs mount
 * points are under stage1/rootfs too, and each app's launcher mounts a tmpfs of its own there (AppSkeleton);
 * a --no-overlay pod keeps its rootfs copies there, on disk, and its skeleton next to them.
 */
const skeletonRoot = (dir: string, pod: PreparedPod) => path.join(dir, STAGE1_DIR, pod.overlay ? 'rootfs' : '');
export async function startPod(host: Host, globals: GlobalOptions, pod: Pod, prepared: PreparedPod, opts: StartOptions): Promise<{ pod: Pod; handoff: Handoff; plan: PodPlan }> {
  const mode = opts.net;
  const ports = resolvePorts(prepared.apps, prepared.ports);
  assertPortsAllowed(mode, ports);
  if (opts.interactive && prepared.apps.length > 1) fail('--interactive works with one app only: run a single image');
  const sharedIpc = opts.sharedIpc;
  const hostname = opts.hostname ?? `rkt-${prepared.uuid}`;
  const tools = findStage1Tools();
  const cgroups = cgroupManager(host);
  const range = readPodRange(host, pod.dir);
  const helper = range ? idmapHelper() : undefined;
  const pidsConfigured = configPodPidsLimit([globals.systemConfig, globals.localConfig, globals.userConfig]);
  // bin/rkt, when it started us (runHolder): the process a service manager started, which
  // its LISTEN_PID names and which becomes the pod.
  const holder = readHolder(pod.dir);
  const launcher = holder?.stage0 ? holder.pid : undefined;
  let cg: PodCgroups | undefined;
  let netCreated = false;
  // Where the pod is: cgroups and networks are made while it is preparing (they name no
  // path in it); then it moves into run/ before anything that names its dir is written.
  let at = pod;
  try {
    cg = cgroups.createPod(prepared.uuid, prepared.apps.map((a) => ({
      name: a.name, memoryBytes: a.resources.memoryBytes, cpuMillis: a.resources.cpuMillis, cpuShares: a.resources.cpuShares, pidsMax: a.pidsLimit,
    })), { pidsMax: podPidsLimit(pidsConfigured, prepared.apps.map((a) => a.pidsLimit)) });
    fs.writeFileSync(path.join(pod.dir, CGROUPS_FILE), JSON.stringify(cg));
    if (cg.devicesEnforced === false) warn('device access is not restricted on this cgroup v2 host (needs eBPF)');
    let net: PodPlan['net'] = { kind: mode.kind === 'host' ? 'host' : 'none' };
    let cniDns: Parameters<typeof resolvConf>[1] = [];
    if (mode.kind === 'cni') {
      netCreated = true;
      // Loaded only here: --net=host and --net=none spawn nothing from Node.
      const { setupPodNetworks, cniDnsOf } = await import('../net/network.js');
      const setup = await setupPodNetworks(host, { uuid: prepared.uuid, podDir: pod.dir, mode, localConfig: globals.localConfig, userConfig: globals.userConfig, ports, debug: globals.debug });
      net = { kind: 'netns', path: setup.netnsPath };
      cniDns = cniDnsOf(setup.nets);
    }
    // Into run/, so every path written below is final (nothing is rewritten). The pod is held
    // throughout (see runHolder): by bin/rkt, which becomes it, and by this process until the
    // hand-off, so a launcher killed meanwhile leaves gc nothing to collect under stage0.
    stampStarted(host, pod.dir);
    at = transition(pod, globals.dir, 'run');
    const dir = at.dir;
    const plan: PodPlan = {
      uuid: prepared.uuid,
      podDir: dir,
      hostname,
      apps: [],
      net,
      sharedIpc,
      interactive: opts.interactive,
      openPaths: prepared.openPaths,
      podCgroupProcs: cgroups.joinFiles(cg.podProcs),
      stopGraceSeconds: graceSeconds(opts.stopTimeoutMs),
      tools,
    };
    if (range) {
      const file = path.join(dir, USERNS_FILE);
      fs.writeFileSync(file, '');
      plan.userns = { helper: helper!, file, base: range.base, count: range.count };
    }
    const protect = podProtect();
    const listen = launcher !== undefined ? listenFds(process.env, launcher) : undefined;
    if (listen) plan.listenFds = listen.count;
    const notify = notifySocket(process.env.NOTIFY_SOCKET);
    if (notify) plan.notify = { helper: builtHelper('rkt-notify', 'NOTIFY_SOCKET'), sockets: [] };
    for (const app of prepared.apps) {
      const etcFiles: Array<{ path: string; content: string }> = [];
      const etc = etcMounts(dir, app, hostname, opts, cniDns, prepared.overlay ? { root: skeletonRoot(dir, prepared), files: etcFiles } : undefined);
      const sd = plan.notify && app.sdNotify ? notifyApp(dir, app) : undefined;
      if (sd) plan.notify!.sockets.push(sd.mount.source);
      // Only stage1 sets LISTEN_*: from the image or --set-env they would name fds that are not there.
      const activated = listen && app.ports.some((p) => p.socketActivated);
      const env: Array<[string, string]> = [...app.env.filter(([k]) => !LISTEN_ENV.has(k)), ...(sd ? sd.env : [])];
      if (activated) env.push(['LISTEN_FDS', String(listen.count)], ...(listen.names ? [['LISTEN_FDNAMES', listen.names] as [string, string]] : []));
      const planned = appPlan(dir, prepared, { ...app, env }, cg, sd ? [...etc, sd.mount] : etc, protect, range, cgroups);
      if (range) {
        // The pod's own /etc files: its root may rewrite them, as without --private-users.
        // (Those on the launcher's tmpfs are chowned there, see AppSkeleton.owner.)
        for (const m of etc) if (m.source.startsWith(`${dir}/`) && !etcFiles.some((f) => f.path === m.source)) fs.chownSync(m.source, range.base, range.base);
      }
      const writable = planned.overlay ? planned.overlay.upper : planned.rootfs;
      // The overlay upper dir holds the pod's files as the host sees them (shifted into the
      // range); a --no-overlay copy keeps the image's owners and is idmapped as a whole.
      const k = planned.kernelTargets!;
      createTargets(app.treeRootfs, writable, [
        { path: k.proc, isFile: false }, { path: k.sys, isFile: false }, { path: k.dev, isFile: false },
        ...planned.mounts.map((m) => ({ path: m.target, isFile: m.isFile })),
      ], range && planned.overlay ? range.base : 0);
      ensureMtab(app.treeRootfs, writable, range && planned.overlay ? range.base : 0);
      planned.skeleton = {
        ...(prepared.overlay ? { tmpfs: skeletonRoot(dir, prepared) } : {}),
        dirs: [...(prepared.overlay ? [planned.rootfs] : []), ...(planned.idmapLower ? [planned.idmapLower] : [])],
        files: etcFiles,
        ...(range ? { owner: range.base } : {}),
      };
      plan.apps.push(planned);
      writeAppFiles(dir, plan, planned);
    }
    // (A sandbox keeps its plan, stage1/plan.json, for the apps added later: see app.ts.)
    return { pod: at, handoff: writeInitTable(dir, plan), plan };
  } catch (e) {
    if (netCreated) {
      // Whatever is left is retried by gc (the pod stays, or goes back to, an aborted prepare); say so.
      await (await import('../net/network.js')).teardownPodNetworks(host, at.dir)
        .catch((te: unknown) => warn(`cleaning up the pod networks: ${errorMessage(te)}`));
    }
    if (cg) cgroups.destroyPod(cg);
    // Back to prepare/: once this process (and bin/rkt) ended it is an aborted prepare, which
    // gc collects at once, as a failure before the move is. Should this rename fail, it is
    // an exited pod in run/, which gc collects after the grace period.
    if (at !== pod) { try { transition(at, globals.dir, 'prepare'); } catch { /* stays in run/ */ } }
    throw e;
  }
}
