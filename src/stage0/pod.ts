/**
 * Pod directories and their states, as rkt lays them out:
 * `<dir>/pods/{embryo,prepare,prepared,run,exited-garbage,garbage}/<uuid>/`.
 * Every state change is one rename(2). Node has no flock(2), so "locked" means: a
 * holder file names a live process (pid + kernel start time); the kernel ends the
 * holder when it dies, so a SIGKILLed holder releases the pod at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../util/errors.js';
import { randomUuid } from '../util/random.js';
import type { Host } from '../host/host.js';
import { makeDataDirs, POD_DIR_MODE } from '../store/datadir.js';
import { HOLDER_FILE, PODS_DIR, POD_CREATED_FILE, POD_STATES, type PodStateDir } from '../pod-layout.js';

export { HOLDER_FILE, POD_STATES, type PodStateDir } from '../pod-layout.js';

/** What `rkt list`/`status` show, derived from the state dir and the holder's liveness. */
export type PodState = 'embryo' | 'preparing' | 'aborted prepare' | 'prepared' | 'running' | 'exited' | 'exited garbage' | 'garbage';

export interface Pod {
  uuid: string;
  stateDir: PodStateDir;
  dir: string;
}

/** The file naming the process that holds a pod (stage0 while preparing, the pod while running). */

export function podsRoot(dataDir: string): string {
  return path.join(dataDir, PODS_DIR);
}

export function podDir(dataDir: string, state: PodStateDir, uuid: string): string {
  return path.join(dataDir, PODS_DIR, state, uuid);
}

export function ensurePodsDirs(dataDir: string): void {
  makeDataDirs(dataDir, POD_STATES.map((s) => `${PODS_DIR}/${s}`));
}

/** A process that holds a pod: its pid and kernel start time. */
export interface HolderProcess { pid: number; start: string }
/**
 * The pod's holder: `pid` is the pod's own process (what status reports); `stage0`, while
 * stage0 still writes a starting pod in run/, holds it too, so that a launcher killed in
 * that window leaves gc nothing to collect under stage0's feet.
 */
export interface Holder extends HolderProcess { stage0?: HolderProcess }

function startOf(host: Host, pid: number): string {
  const start = host.processStartTime(pid);
  if (start === undefined) fail(`cannot read the start time of process ${pid}`);
  return start;
}

/**
 * Records `pid` (and `stage0Pid`) as the holder of the pod dir: a symlink whose target is
 * "PID START [PID START]". It holds no data block (the text is in the inode), so it costs
 * gc no block to free, and `rkt list` reads it with one readlink(2). Replaced atomically
 * (a temp link renamed over it); `fresh` (a dir no one else has seen) links it directly.
 */
export function writeHolder(host: Host, dir: string, pid: number, stage0Pid?: number, fresh = false): void {
  let text = `${pid} ${startOf(host, pid)}`;
  if (stage0Pid !== undefined) text += ` ${stage0Pid} ${startOf(host, stage0Pid)}`;
  if (fresh) { fs.symlinkSync(text, path.join(dir, HOLDER_FILE)); return; }
  const tmp = path.join(dir, `.${HOLDER_FILE}.tmp`);
  fs.rmSync(tmp, { force: true }); // left by a killed writer
  fs.symlinkSync(text, tmp);
  fs.renameSync(tmp, path.join(dir, HOLDER_FILE));
}

export function readHolder(dir: string): Holder | undefined {
  const file = `${dir}/${HOLDER_FILE}`;
  let text: string;
  try {
    text = fs.readlinkSync(file);
  } catch (e) {
    // A regular file: a pod made before the holder was a symlink.
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') return undefined;
    try { text = fs.readFileSync(file, 'utf8'); } catch { return undefined; }
  }
  const [pid, start, pid0, start0] = text.trim().split(' ');
  const n = Number(pid);
  if (!(Number.isInteger(n) && n > 0 && start)) return undefined;
  const n0 = Number(pid0);
  return Number.isInteger(n0) && n0 > 0 && start0 ? { pid: n, start, stage0: { pid: n0, start: start0 } } : { pid: n, start };
}

/** True while a process the holder names is alive (same pid AND same start time). */
export function holderAlive(host: Host, h: Holder | undefined): boolean {
  if (!h) return false;
  return host.processStartTime(h.pid) === h.start || (!!h.stage0 && host.processStartTime(h.stage0.pid) === h.stage0.start);
}

/** True while the pod is held. */
export function isHeld(host: Host, dir: string): boolean {
  return holderAlive(host, readHolder(dir));
}

/** `held` saves a second read of the holder when the caller already checked it. */
export function podState(host: Host, pod: Pod, held?: boolean): PodState {
  const alive = () => held ?? isHeld(host, pod.dir);
  switch (pod.stateDir) {
    case 'embryo': return 'embryo';
    case 'prepare': return alive() ? 'preparing' : 'aborted prepare';
    case 'prepared': return 'prepared';
    case 'run': return alive() ? 'running' : 'exited';
    case 'exited-garbage': return 'exited garbage';
    case 'garbage': return 'garbage';
  }
}

/**
 * bin/rkt, when it started this stage0 for a command that hands a pod off to it (it execs
 * stage1, so its PID becomes the pod's): our parent, provided it still holds the other end
 * of the hand-off pipe. Otherwise it was killed and we were reparented: the pod must not
 * name our new parent (init, a subreaper) as its holder, or it would never be collected.
 */
export function launcherPid(): number | undefined {
  const fd = process.env.RKT_HANDOFF_FD;
  if (!fd) return undefined;
  const ppid = process.ppid;
  try {
    const pipe = fs.readlinkSync(`/proc/self/fd/${fd}`);
    if (!pipe.startsWith('pipe:')) return ppid; // a file (a profiling run): nothing to check
    const dir = `/proc/${ppid}/fd`;
    for (const f of fs.readdirSync(dir)) {
      try { if (fs.readlinkSync(`${dir}/${f}`) === pipe) return ppid; } catch { /* closed meanwhile */ }
    }
  } catch { /* gone */ }
  return fail('the rkt process that started this command was killed');
}

/**
 * Who holds a pod that is to run: bin/rkt, which becomes the pod, and this stage0 until it
 * ends (see Holder); without bin/rkt, this process alone (the hand-off then records stage1).
 */
export function runHolder(): { pid: number; stage0?: number } {
  const launcher = launcherPid();
  return launcher === undefined ? { pid: process.pid } : { pid: launcher, stage0: process.pid };
}

/** Creates a new pod in embryo/ held by `holderPid` (and `stage0Pid`), then moves it to prepare/. */
export function createPod(host: Host, dataDir: string, holderPid: number, stage0Pid?: number): Pod {
  ensurePodsDirs(dataDir);
  const uuid = randomUuid(); // the kernel's: node:crypto stays unloaded on the run path
  const embryo = podDir(dataDir, 'embryo', uuid);
  fs.mkdirSync(embryo, { mode: POD_DIR_MODE });
  try {
    // Group rkt (inherited from pods/embryo) may read status; no setgid below, so the
    // app filesystems made inside keep root's group.
    fs.chmodSync(embryo, POD_DIR_MODE);
    fs.writeFileSync(path.join(embryo, POD_CREATED_FILE), '');
    writeHolder(host, embryo, holderPid, stage0Pid, true);
    return transition({ uuid, stateDir: 'embryo', dir: embryo }, dataDir, 'prepare');
  } catch (e) {
    fs.rmSync(embryo, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Stamps a pod dir with the time it entered its state (gc's grace period and prepared
 * expiry count from it). The stamp and every later age come from the same clock (Host).
 */
export function stampState(host: Host, dir: string): void {
  const now = host.now();
  fs.utimesSync(dir, now, now);
}

/** How long a pod has been in its state, by the Host clock; never negative. */
export function stateAgeMs(host: Host, dir: string): number {
  let since: number;
  try { since = fs.statSync(dir).mtimeMs; } catch { return 0; }
  return Math.max(0, host.now().getTime() - since);
}

/** Moves a pod to another state with one rename. */
export function transition(pod: Pod, dataDir: string, to: PodStateDir): Pod {
  const dir = podDir(dataDir, to, pod.uuid);
  fs.renameSync(pod.dir, dir);
  return { uuid: pod.uuid, stateDir: to, dir };
}

/**
 * Claims a prepared pod for run-prepared: moves it to prepare/, held by `pid`. The holder
 * is written before the rename, so gc never finds the pod in prepare/ unheld (an aborted
 * prepare, which it would collect under the claimant); of two claimants one rename wins,
 * and the winner rewrites the holder if the other wrote over its own. Undefined: taken.
 */
export function claimPrepared(host: Host, dataDir: string, pod: Pod, pid: number, stage0Pid?: number): Pod | undefined {
  let claimed: Pod;
  try {
    writeHolder(host, pod.dir, pid, stage0Pid);
    claimed = transition(pod, dataDir, 'prepare');
  } catch { return undefined; }
  if (readHolder(claimed.dir)?.pid !== pid) writeHolder(host, claimed.dir, pid, stage0Pid);
  return claimed;
}

/** Every pod in every state; a pod seen twice (a rename racing the scan) is listed once. */
export function listPods(dataDir: string): Pod[] {
  const seen = new Map<string, Pod>();
  const root = podsRoot(dataDir);
  for (const state of POD_STATES) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(root, state));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e; // EACCES must not look like "no pods"
    }
    const base = `${path.join(root, state)}/`;
    for (const uuid of names) {
      if (uuid.startsWith('.')) continue; // a pod being deleted (see gc.ts)
      if (!seen.has(uuid)) seen.set(uuid, { uuid, stateDir: state, dir: base + uuid }); // no path.join per pod: rkt list of 1000s
    }
  }
  return [...seen.values()];
}

/**
 * How many scans of the state dirs it takes to be sure a pod is not there. POD_STATES is in
 * lifecycle order, so one scan finds every pod that only moves forward meanwhile; a pod moves
 * backward at most twice (claimed by run-prepared: prepared/ to prepare/; a start that fails
 * after the move to run/: back to prepare/), so a pod one scan missed is seen by a later one.
 */
const SCANS = 3;

/** Finds a pod by any unambiguous, case-insensitive UUID prefix. */
export function findPod(dataDir: string, prefix: string): Pod {
  const want = prefix.trim().toLowerCase();
  if (!want) fail('UUID cannot be empty: give a pod UUID or an unambiguous prefix of one (see "rkt list")');
  let hits: Pod[] = [];
  for (let scan = 0; scan < SCANS && hits.length === 0; scan++) hits = listPods(dataDir).filter((p) => p.uuid.startsWith(want));
  if (hits.length === 0) fail(`no matches found for "${prefix}": see "rkt list" for the pods`);
  if (hits.length > 1) fail(`ambiguous uuid "${prefix}", ${hits.length} matches: give more characters`);
  return hits[0];
}

/** Re-finds a pod after a possible state change by someone else. */
export function refind(dataDir: string, uuid: string): Pod | undefined {
  for (let scan = 0; scan < SCANS; scan++) {
    for (const state of POD_STATES) {
      const dir = podDir(dataDir, state, uuid);
      if (fs.existsSync(dir)) return { uuid, stateDir: state, dir };
    }
  }
  return undefined;
}

/** Reads `--uuid-file` the way rkt does (content trimmed). */
export function uuidFromFile(file: string): string {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { return fail(`cannot read UUID file ${file}: ${(e as Error).message}`); }
  return text.trim();
}

/** Marks the pod started: the holder's own time (a pod to run is held from its creation). */
export function stampStarted(host: Host, dir: string): void {
  const now = host.now();
  fs.lutimesSync(path.join(dir, HOLDER_FILE), now, now);
}

/** When the pod started (stampStarted; the hand-off of a pod started without bin/rkt): the holder symlink's own time. */
export function holderTime(dir: string): Date | undefined {
  return fs.lstatSync(`${dir}/${HOLDER_FILE}`, { throwIfNoEntry: false })?.mtime;
}

export function mtime(file: string): Date | undefined {
  // No exception for a missing file: `rkt list` asks this for every pod.
  return fs.statSync(file, { throwIfNoEntry: false })?.mtime;
}
