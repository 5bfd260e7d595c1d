/**
 * rkt's app-level API (`rkt app ...`): a sandbox is a pod started with no app, whose PID 1
 * (rkt-helper --init, told so by rkt/sandbox) stays up until the pod is stopped. Apps are
 * added to it (rendered like the apps of `rkt run`, into the running pod), started from
 * the host into the pod's namespaces so that they become children of PID 1 (which records
 * their exit status), stopped, and removed again.
 *
 * An app's state: created (rkt/created/NAME), running (rkt/pid/NAME, written at start),
 * exited (rkt/status/NAME, written by PID 1). Changes are made under pod.lck.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fail, errorMessage } from '../util/errors.js';
import { warn } from '../util/log.js';
import type { GlobalOptions } from '../options.js';
import type { Host } from '../host/host.js';
import type { AppSpec, PodSpec, PullPolicy, StartOptions } from './spec.js';
import type { AppPlan, PodPlan } from '../stage1/plan.js';
import type { PodVolume } from '../image/types.js';
import { isACName } from '../image/acname.js';
import { cgroupManager, type PodCgroups } from '../cgroups/cgroups.js';
import { fetchImage } from '../fetch/fetcher.js';
import { ImageStore } from '../store/imagestore.js';
import { makePodPrivateDirs, writePodManifest } from '../store/datadir.js';
import { Pod, podState } from './pod.js';
import { preparePod, podManifestOf, readPrepared, resolveApp, RUNTIME_FILE, type PreparedPod } from './prepare.js';
import { appPlan, createTargets, ensureMtab, etcMounts, podProtect, startPod, writeAppFiles, writeInitTable, type Handoff } from './start.js';
import { appHostPid, podInitPid } from './procs.js';
import { listApps, type AppInfo } from './app-state.js';

export { listApps, type AppInfo, type AppState } from './app-state.js';
import { launchTableFile, sq } from '../stage1/scripts.js';
import {
  appCreatedFile, appLogFile, appPidFile, appScript, appStatusFile, CGROUPS_FILE, enterScript,
  overlayDir, PLAN_FILE, volumeDir, POD_LOCK_FILE, SANDBOX_FILE, SANDBOX_INFO_FILE, SANDBOX_STARTED_DIR, STAGE1_DIR,
} from '../pod-layout.js';

/** What a sandbox keeps for the apps added later. */
interface SandboxInfo {
  /** The pod's start options (hostname, /etc/hosts, DNS) for the apps' /etc files. */
  start: StartOptions;
  /** Per app: the files its rendering put in stage1/ and the empty volumes made for it (removed by app rm). */
  apps: Record<string, { files: string[]; volumes: string[] }>;
}

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;
const writeJson = (file: string, value: unknown, mode = 0o600) => {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value), { mode });
  fs.renameSync(tmp, file);
};

/** An app name as a path component: an ACName (no "/", no ".."), or one line and exit 254. */
export function checkAppName(name: string | undefined, pod: Pod): string {
  if (name === undefined || name === '') fail(`no app given: name the app of pod ${pod.uuid} with --app=NAME (see "rkt app list ${pod.uuid}")`);
  if (!isACName(name)) fail(`invalid app name "${name}": use lower case alphanumerics and dashes`);
  return name;
}

/** The pod must be a running sandbox. */
export function assertRunningSandbox(host: Host, pod: Pod): void {
  if (!fs.existsSync(path.join(pod.dir, SANDBOX_FILE))) fail(`pod ${pod.uuid} is not a sandbox: apps are added only to pods made with "rkt app sandbox"`);
  const state = podState(host, pod);
  if (state !== 'running') fail(`pod ${pod.uuid} is ${state}, not running: start a new one with "rkt app sandbox"`);
}

/**
 * Runs fn holding the pod's lock: a symlink naming this process (pid and start time), so
 * that a lock left by a killed rkt is seen as stale and taken over.
 */
async function withPodLock<T>(host: Host, pod: Pod, fn: () => Promise<T> | T): Promise<T> {
  const lock = path.join(pod.dir, POD_LOCK_FILE);
  const me = `${process.pid} ${host.processStartTime(process.pid)}`;
  for (let i = 0; ; i++) {
    try { fs.symlinkSync(me, lock); break; } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = '';
    try { holder = fs.readlinkSync(lock); } catch { continue; }
    const [pid, start] = holder.split(' ');
    if (host.processStartTime(Number(pid)) !== start) { fs.rmSync(lock, { force: true }); continue; }
    if (i >= 100) fail(`pod ${pod.uuid} is being changed by another rkt (pid ${pid}): try again when it is done`);
    await new Promise((r) => setTimeout(r, 50));
  }
  try { return await fn(); } finally { fs.rmSync(lock, { force: true }); }
}

/**
 * `rkt app sandbox`: a pod without apps, started like `rkt run` (the returned script is
 * handed to bin/rkt), whose PID 1 waits for apps until the pod is stopped.
 */
export async function createSandbox(host: Host, globals: GlobalOptions, spec: PodSpec): Promise<{ pod: Pod; handoff: Handoff }> {
  const { pod, prepared } = await preparePod(host, globals, spec);
  const started = await startPod(host, globals, pod, prepared, spec.start);
  const dir = started.pod.dir;
  const plan = started.plan;
  plan.sandbox = true;
  fs.writeFileSync(path.join(dir, PLAN_FILE), JSON.stringify(plan));
  // PID 1 keeps CAP_KILL (initBoundingSet, initCapabilities) to stop the apps of any uid added later.
  const handoff = writeInitTable(dir, plan);
  // Every dir an app added later needs, the root-only ones (overlay/, volumes/...) with their mode.
  makePodPrivateDirs(dir);
  for (const d of [appStatusFile('x'), appPidFile('x'), appCreatedFile('x')]) fs.mkdirSync(path.join(dir, path.dirname(d)), { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.join(dir, SANDBOX_STARTED_DIR), { mode: 0o700 });
  const info: SandboxInfo = { start: { ...spec.start, hostname: plan.hostname }, apps: {} };
  writeJson(path.join(dir, SANDBOX_INFO_FILE), info);
  fs.writeFileSync(path.join(dir, SANDBOX_FILE), '');
  return { pod: started.pod, handoff };
}

function findApp(pod: Pod, name: string): AppInfo {
  const app = listApps(pod).find((a) => a.name === name);
  if (!app) fail(`pod ${pod.uuid} has no app "${name}": see "rkt app list ${pod.uuid}"`);
  return app;
}

/**
 * `rkt app add`: fetches the image and renders the app into the running sandbox (its
 * overlay, cgroups, /etc files and launcher), then records it in the pod manifest.
 */
export async function addApp(host: Host, globals: GlobalOptions, pod: Pod, spec: AppSpec, pullPolicy: PullPolicy): Promise<string> {
  assertRunningSandbox(host, pod);
  const image = await fetchImage(spec.image, { globals, pullPolicy, signatureFile: spec.signature });
  const store = new ImageStore(globals.dir);
  return withPodLock(host, pod, async () => {
    assertRunningSandbox(host, pod);
    const dir = pod.dir;
    const prepared: PreparedPod = readPrepared(dir);
    const ctx = { globals, store, volumes: prepared.volumes, podMounts: [], fileEnv: new Map<string, string>(), setEnv: new Map<string, string>(), inheritEnv: false };
    const volumesBefore = prepared.volumes.length;
    const app = await resolveApp(ctx, spec, image.id, new Set(prepared.apps.map((a) => a.name)));
    // The empty volumes made for the image's mount points that no --volume fills (resolveApp adds them).
    const ownVolumes = prepared.volumes.slice(volumesBefore).map((v) => v.name);
    const info = readJson<SandboxInfo>(path.join(dir, SANDBOX_INFO_FILE));
    const plan = readJson<PodPlan>(path.join(dir, PLAN_FILE));
    const cgroups = cgroupManager(host);
    const before = readJson<PodCgroups>(path.join(dir, CGROUPS_FILE));
    const cg = cgroups.addApp(before, { name: app.name, memoryBytes: app.resources.memoryBytes, cpuMillis: app.resources.cpuMillis, cpuShares: app.resources.cpuShares, pidsMax: app.pidsLimit });
    const files: string[] = [];
    try {
      for (const d of ['upper', 'work']) fs.mkdirSync(path.join(dir, overlayDir(app.name), d), { recursive: true });
      fs.mkdirSync(path.join(dir, STAGE1_DIR, 'rootfs'), { recursive: true });
      for (const name of ownVolumes) makeEmptyVolume(dir, prepared.volumes.find((v) => v.name === name)!, app.mounts.find((m) => m.volume === name)?.seedFrom);
      const etcFiles: Array<{ path: string; content: string }> = [];
      // The launchers' tmpfs for their mount points and /dev (start.ts skeletonRoot, overlay pods).
      const root = path.join(dir, STAGE1_DIR, 'rootfs');
      const etc = etcMounts(dir, app, plan.hostname, info.start, [], { root, files: etcFiles });
      const planned = appPlan(dir, prepared, app, cg, etc, podProtect(), undefined, cgroups);
      const k = planned.kernelTargets!;
      createTargets(app.treeRootfs, planned.overlay!.upper, [
        { path: k.proc, isFile: false }, { path: k.sys, isFile: false }, { path: k.dev, isFile: false },
        ...planned.mounts.map((m) => ({ path: m.target, isFile: m.isFile })),
      ]);
      ensureMtab(app.treeRootfs, planned.overlay!.upper);
      const full: AppPlan = { ...planned, skeleton: { tmpfs: root, dirs: [planned.rootfs], files: etcFiles } };
      writeAppFiles(dir, plan, full, files);
      info.apps[app.name] = { files, volumes: ownVolumes };
      prepared.apps.push(app);
      writeJson(path.join(dir, CGROUPS_FILE), cg, 0o644);
      writeJson(path.join(dir, RUNTIME_FILE), prepared);
      writeJson(path.join(dir, SANDBOX_INFO_FILE), info);
      fs.writeFileSync(path.join(dir, appCreatedFile(app.name)), '');
      // Last: the manifest is what list and status read, so the app appears complete or not at all.
      writePodManifest(dir, JSON.stringify(podManifestOf(prepared)));
    } catch (e) {
      removeAppFiles(dir, app.name, files, ownVolumes);
      try { writeJson(path.join(dir, CGROUPS_FILE), cgroups.removeApp(cg, app.name), 0o644); } catch (ce) { warn(`cleaning up the cgroups of app ${app.name}: ${errorMessage(ce)}`); }
      throw e;
    }
    store.touch(image.id);
    return app.name;
  });
}

/** An empty volume, as prepare makes them: a copy of the image's files there for a Docker image. */
function makeEmptyVolume(dir: string, v: PodVolume, seed: string | undefined): void {
  const vdir = path.join(dir, volumeDir(v.name));
  fs.mkdirSync(vdir, { recursive: true });
  const from = seed ? fs.statSync(seed, { throwIfNoEntry: false }) : undefined;
  if (seed && from?.isDirectory()) {
    const r = spawnSync('cp', ['-a', '--', `${seed}/.`, `${vdir}/`], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) fail(`cannot fill volume "${v.name}" from the image: ${r.stderr.toString().trim()}`);
    fs.chmodSync(vdir, from.mode & 0o7777);
    fs.chownSync(vdir, from.uid, from.gid);
    return;
  }
  fs.chmodSync(vdir, parseInt(v.mode ?? '0755', 8));
  fs.chownSync(vdir, v.uid ?? 0, v.gid ?? 0);
}

function removeAppFiles(dir: string, name: string, files: string[], volumes: string[]): void {
  const rm = (rel: string) => fs.rmSync(path.join(dir, rel), { recursive: true, force: true });
  rm(appCreatedFile(name));
  for (const f of files) rm(path.join(STAGE1_DIR, f));
  for (const v of volumes) rm(volumeDir(v));
  for (const rel of [appLogFile(name), appScript(name), enterScript(name), overlayDir(name), appPidFile(name), appStatusFile(name)]) rm(rel);
}

/**
 * `rkt app start`: runs the app's launcher in the pod's cgroups and its PID, UTS, IPC and
 * network namespaces (util-linux nsenter forks into the PID namespace). The shell there
 * starts the launcher in the background, names it in rkt/started/PID and exits: the
 * launcher, orphaned, becomes a child of the pod's PID 1, which reaps it and records its
 * status. The app's output goes where the pod's goes (PID 1's stdout and stderr).
 */
export async function startApp(host: Host, pod: Pod, name: string): Promise<void> {
  assertRunningSandbox(host, pod);
  await withPodLock(host, pod, () => {
    const app = findApp(pod, name);
    if (app.state !== 'created') fail(`app "${name}" of pod ${pod.uuid} is ${app.state}: an app starts once; remove it with "rkt app rm" and add it again`);
    const dir = pod.dir;
    const init = podInitPid(host, dir);
    if (init === undefined) fail(`pod ${pod.uuid} is not running`);
    const plan = readJson<PodPlan>(path.join(dir, PLAN_FILE));
    const t = plan.tools;
    const pidFile = path.join(dir, appPidFile(name));
    const logFile = path.join(dir, appLogFile(name));
    fs.mkdirSync(path.dirname(logFile), { recursive: true, mode: 0o700 });
    // The app's launcher as the pod's PID 1 runs it (rkt-helper.c launch): its launch table.
    const launcher = [t.helper, '--launch', path.join(dir, STAGE1_DIR, launchTableFile({ name }))];
    const inner = [
      `${sq(t.busybox)} unshare -m --propagation private ${launcher.map(sq).join(' ')} </dev/null >>"$out" 2>>"$err" &`,
      'p=$!',
      // Before this shell exits (until then the launcher is its child, not PID 1's).
      `echo ${sq(name)} > ${sq(path.join(dir, SANDBOX_STARTED_DIR))}/"$p" || exit 254`,
      `echo "$p" > ${sq(`${pidFile}.tmp`)} && mv -f ${sq(`${pidFile}.tmp`)} ${sq(pidFile)} || exit 254`,
    ].join('\n');
    const outer = [
      ...plan.podCgroupProcs.map((f) => `echo 0 > ${sq(f)} || { echo ${sq(`cannot join the pod's cgroup ${f}`)} >&2; exit 254; }`),
      // The pod's output, when it can be reopened (a pipe, a tty, a file); a socket (a
      // journal's stream) cannot: then a log file of the pod's.
      `out=/proc/${init}/fd/1; err=/proc/${init}/fd/2`,
      // (Made here, not by the launcher's redirection in the background: app start says so.)
      `if ! (exec 3>>"$out" 4>>"$err") 2>/dev/null; then out=${sq(logFile)}; err=$out; : >> "$out" || exit 254; fi`,
      'export out err',
      `exec ${sq(t.nsenter)} --target=${init} --pid --uts --ipc --net -- ${sq(t.busybox)} sh -c ${sq(inner)} ${sq(`start-${name}`)}`,
    ].join('\n');
    const r = spawnSync(t.busybox, ['sh', '-c', outer, `app-start-${name}`], { stdio: ['ignore', 'inherit', 'inherit'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    if (r.status !== 0 || !fs.existsSync(pidFile)) {
      const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : r.status !== 0 ? `exit status ${r.status}` : 'no pid recorded';
      fail(`cannot start app "${name}" of pod ${pod.uuid}: ${why}`);
    }
    if (fs.existsSync(logFile)) warn(`the pod's output cannot be reopened (a socket): app "${name}" writes to ${logFile}`);
  });
  await waitStarted(host, pod, name);
}

/**
 * Returns once the app's launcher has left the host's root (or the app has exited): until
 * then its mount namespace still shows the host, and `rkt app exec` must not enter it.
 */
async function waitStarted(host: Host, pod: Pod, name: string): Promise<void> {
  const status = path.join(pod.dir, appStatusFile(name));
  const marker = path.join(pod.dir, PLAN_FILE);
  for (const end = Date.now() + START_WAIT_MS; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) {
    if (fs.existsSync(status)) return;
    const pid = appHostPid(host, pod.dir, name);
    // The pod dir, seen through the app's root: there until the launcher's pivot_root.
    if (pid !== undefined && !fs.existsSync(`/proc/${pid}/root${marker}`) && fs.existsSync(`/proc/${pid}/root/`)) return;
  }
  fail(`app "${name}" of pod ${pod.uuid} was started but is not running its image after ${START_WAIT_MS / 1000}s: see the pod's output`);
}

/** How long `rkt app start` waits for the app's launcher to set it up. */
const START_WAIT_MS = 30_000;

/** `rkt app stop`: SIGTERM, then SIGKILL after the grace period; waits for PID 1 to record the exit. */
export async function stopApp(host: Host, pod: Pod, name: string, graceMs: number): Promise<AppInfo> {
  assertRunningSandbox(host, pod);
  const app = findApp(pod, name);
  if (app.state !== 'running') fail(`app "${name}" of pod ${pod.uuid} is ${app.state}, not running`);
  const status = path.join(pod.dir, appStatusFile(name));
  const exited = () => Number.isInteger(Number((() => { try { return fs.readFileSync(status, 'utf8').trim(); } catch { return ''; } })() || NaN));
  const waitExit = async (ms: number) => {
    for (const end = Date.now() + ms; !exited() && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
    return exited();
  };
  const pid = appHostPid(host, pod.dir, name);
  if (pid === undefined) {
    if (await waitExit(1000)) return findApp(pod, name);
    fail(`cannot find the process of app "${name}" of pod ${pod.uuid}`);
  }
  host.kill(pid, 'SIGTERM');
  if (!(await waitExit(graceMs))) {
    // Only the app's own process, found again: its pid may have been reused meanwhile.
    const again = appHostPid(host, pod.dir, name);
    if (again === pid) host.kill(pid, 'SIGKILL');
    if (!(await waitExit(5000))) fail(`app "${name}" of pod ${pod.uuid} did not exit after SIGKILL`);
  }
  return findApp(pod, name);
}

/** `rkt app rm`: a created or exited app's files, cgroups and manifest entry go. */
export async function removeApp(host: Host, pod: Pod, name: string): Promise<void> {
  assertRunningSandbox(host, pod);
  await withPodLock(host, pod, () => {
    const app = findApp(pod, name);
    if (app.state === 'running' && appHostPid(host, pod.dir, name) !== undefined) fail(`app "${name}" of pod ${pod.uuid} is running: stop it first with "rkt app stop --app=${name} ${pod.uuid}"`);
    const dir = pod.dir;
    const cgroups = cgroupManager(host);
    // Cgroups first: while one is busy (a process of the app is left) nothing else goes.
    writeJson(path.join(dir, CGROUPS_FILE), cgroups.removeApp(readJson<PodCgroups>(path.join(dir, CGROUPS_FILE)), name), 0o644);
    const prepared = readPrepared(dir);
    prepared.apps = prepared.apps.filter((a) => a.name !== name);
    const info = readJson<SandboxInfo>(path.join(dir, SANDBOX_INFO_FILE));
    const files = info.apps[name]?.files ?? [];
    const volumes = info.apps[name]?.volumes ?? [];
    prepared.volumes = prepared.volumes.filter((v) => !volumes.includes(v.name));
    delete info.apps[name];
    writePodManifest(dir, JSON.stringify(podManifestOf(prepared)));
    writeJson(path.join(dir, RUNTIME_FILE), prepared);
    writeJson(path.join(dir, SANDBOX_INFO_FILE), info);
    removeAppFiles(dir, name, files, volumes);
  });
}
