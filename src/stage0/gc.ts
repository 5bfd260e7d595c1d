/**
 * Pod garbage collection, as rkt does it: mark (exited run/ -> exited-garbage/, aborted
 * prepares -> garbage/, expired prepared -> garbage/), then sweep: tear down networks and
 * cgroups, unmount anything left under the pod, and delete it. A pod is claimed for the
 * sweep by renaming it to a dot-name, so concurrent gc/rm never delete the same pod
 * twice; a sweep killed half-way is finished by the next one (teardown is idempotent).
 */
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Host } from '../host/host.js';
import { logPrefix, toStderr, toStdout } from '../util/log.js';
import { errorMessage } from '../util/errors.js';
import { ensurePodsDirs, isHeld, listPods, Pod, podState, podsRoot, stampState, stateAgeMs, transition } from './pod.js';
import { formatDurationMs } from '../util/duration.js';
import { CGROUPS_FILE } from '../pod-layout.js';
import type { CgroupManager, PodCgroups } from '../cgroups/cgroups.js';

export interface GcOptions {
  gracePeriodMs: number;
  expirePreparedMs: number;
  markOnly: boolean;
}

/** `rm -rf` processes deleting pod dirs at once (what the disk waits on is per block, see finish). */
const DELETE_PARALLELISM = 16;

/** Under pods/: batches of torn-down pod dirs that a detached `rm -rf` is deleting. */
export const GC_TRASH = '.gc-trash';

/** `rm -rf` of `dirs` (rkt's own files, so not through Host); resolves when it ends. */
function removeTrees(dirs: string[]): Promise<void> {
  return new Promise<void>((resolve) => {
    const child = spawn('rm', ['-rf', '--', ...dirs], { stdio: 'ignore', cwd: '/' });
    child.on('error', () => resolve());
    child.on('close', () => resolve());
  });
}

/**
 * Deletes the trash batch dirs in a detached shell that outlives gc: their entries
 * DELETE_PARALLELISM at a time (see Sweeper.finish), then the batch dirs. Resolves once
 * it started, or with `wait`, once it ended.
 */
function removeBatches(batches: string[], wait: boolean): Promise<void> {
  const script = `find "$@" -mindepth 1 -maxdepth 1 -print0 | xargs -0 -r -P ${DELETE_PARALLELISM} -n 32 rm -rf --; exec rm -rf -- "$@"`;
  return new Promise<void>((resolve) => {
    const child = spawn('sh', ['-c', script, 'rkt-gc-delete', ...batches], { stdio: 'ignore', cwd: '/', detached: !wait });
    child.on('error', () => resolve());
    if (wait) {
      child.on('close', () => resolve());
    } else {
      child.unref();
      child.on('spawn', () => resolve());
    }
  });
}

/** How long a SIGKILLed leftover may take to leave its cgroup before gc gives up on the pod. */
const CGROUP_DRAIN_MS = 5000;

/**
 * Lines for stdout or stderr, written in blocks: gc of 1000s of pods says a line or two per
 * pod, and a write(2) each was ~5 % of its time. Flushed at the end of each phase.
 */
class Lines {
  private buf: string[] = [];
  private size = 0;
  constructor(private readonly write: (text: string) => void) {}
  add(line: string): void {
    this.buf.push(line);
    this.size += line.length;
    if (this.size > 16384) this.flush();
  }
  flush(): void {
    if (this.buf.length > 0) this.write(this.buf.join(''));
    this.buf = [];
    this.size = 0;
  }
}
const said = new Lines(toStdout);
const logged = new Lines(toStderr);
const info = (msg: string): void => logged.add(`${logPrefix()}: ${msg}\n`);
const warn = (msg: string): void => logged.add(`${logPrefix()}: warning: ${msg}\n`);

function tryTransition(host: Host, pod: Pod, dataDir: string, to: 'exited-garbage' | 'garbage'): Pod | undefined {
  let moved: Pod;
  try { moved = transition(pod, dataDir, to); } catch { return undefined; } // lost a race: someone else moved it
  try { stampState(host, moved.dir); } catch { /* swept by someone else meanwhile */ }
  return moved;
}

/** Moves dead pods to the garbage states. Returns the pods now in them. */
export function markPods(host: Host, dataDir: string, opts: GcOptions): void {
  try { markAll(host, dataDir, opts); } finally { logged.flush(); }
}

function markAll(host: Host, dataDir: string, opts: GcOptions): void {
  for (const pod of listPods(dataDir)) {
    const state = podState(host, pod);
    // The mark phase says what it moves, in rkt's words (stderr).
    if (state === 'exited') {
      if (tryTransition(host, pod, dataDir, 'exited-garbage')) info(`moving pod "${pod.uuid}" to garbage`);
    } else if (state === 'aborted prepare') {
      if (tryTransition(host, pod, dataDir, 'garbage')) info(`moving failed prepare "${pod.uuid}" to garbage`);
    } else if (state === 'embryo' && !isHeld(host, pod.dir) && stateAgeMs(host, pod.dir) > 60_000) {
      if (tryTransition(host, pod, dataDir, 'garbage')) info(`moving abandoned embryo "${pod.uuid}" to garbage`);
    } else if (state === 'prepared' && stateAgeMs(host, pod.dir) >= opts.expirePreparedMs) {
      if (tryTransition(host, pod, dataDir, 'garbage')) info(`moving expired prepared pod "${pod.uuid}" to garbage`);
    }
  }
}

/** What one gc run reads once and shares between pods (1000 pods must sweep in well under a second). */
class Sweeper {
  private cgroups: CgroupManager | undefined;
  private mounts: string[] | undefined;
  /** Torn-down pod dirs, deleted together at the end by `rm -rf` (Node's rmSync was 3x slower). */
  private doomed: string[] = [];
  constructor(readonly host: Host) {}

  remove(dir: string): void { this.doomed.push(dir); }

  /**
   * Deletes the collected dirs now (rkt rm); returns how many are still there. Freeing a
   * block can wait on the disk (a synchronous discard on ext4 mounted with -o discard
   * and no journal), so several `rm` run at once keep the device busy instead of
   * waiting on one block at a time.
   */
  async finish(): Promise<number> {
    const dirs = this.doomed;
    this.doomed = [];
    // At most 500 paths per command line; DELETE_PARALLELISM commands at a time.
    const size = Math.min(500, Math.ceil(dirs.length / DELETE_PARALLELISM));
    const chunks: string[][] = [];
    for (let i = 0; i < dirs.length; i += size) chunks.push(dirs.slice(i, i + size));
    const worker = async () => { for (let c = chunks.shift(); c; c = chunks.shift()) await removeTrees(c); };
    await Promise.all(Array.from({ length: Math.min(DELETE_PARALLELISM, chunks.length) }, worker));
    // What is left (a busy file) stays claimed; the next gc finishes it.
    return dirs.filter((d) => fs.existsSync(d)).length;
  }

  /**
   * gc's end: the torn-down dirs leave the pod tree at once (one rename each, into a
   * root-only batch dir under pods/.gc-trash/, as numbers), so no list, status or gc sees them again;
   * a detached `rm -rf` then frees their blocks, which on this kind of disk takes far
   * longer than the rest of gc. It also takes what earlier batches left (a killed rm).
   * On a nearly full filesystem gc waits for it: the caller wants the space back now.
   * Returns how many dirs could not be moved out (they stay claimed for the next gc).
   */
  async finishDetached(dataDir: string): Promise<number> {
    const dirs = this.doomed;
    this.doomed = [];
    const trash = path.join(podsRoot(dataDir), GC_TRASH);
    let batches: string[] = [];
    try {
      // Not a batch another live gc is still filling (named by its pid).
      batches = fs.readdirSync(trash).filter((n) => {
        const pid = Number(n.split('.')[0]);
        return pid === process.pid || this.host.processStartTime(pid) === undefined;
      }).map((n) => path.join(trash, n));
    } catch { /* none yet */ }
    let failed = 0;
    if (dirs.length > 0) {
      fs.mkdirSync(trash, { recursive: true, mode: 0o700 });
      const batch = fs.mkdtempSync(path.join(trash, `${process.pid}.`)); // 0700
      batches.push(batch);
      // Numbered, not named: the pods are gone; the deleter's command line names none of them.
      dirs.forEach((d, i) => {
        try { fs.renameSync(d, path.join(batch, String(i))); } catch { failed++; }
      });
    }
    if (batches.length === 0) return failed;
    let lowOnSpace = false;
    try { const st = fs.statfsSync(dataDir); lowOnSpace = st.bavail < st.blocks / 10; } catch { /* assume not */ }
    await removeBatches(batches, lowOnSpace);
    return failed;
  }

  private async manager(): Promise<CgroupManager> {
    if (!this.cgroups) this.cgroups = (await import('../cgroups/cgroups.js')).cgroupManager(this.host);
    return this.cgroups;
  }

  /** Releases everything a pod holds outside its directory. Safe to run more than once. */
  async teardown(dir: string): Promise<void> {
    if (fs.existsSync(path.join(dir, 'netns')) || fs.existsSync(path.join(dir, 'net-info.json'))) {
      const { teardownPodNetworks } = await import('../net/network.js');
      await teardownPodNetworks(this.host, dir);
    }
    const cgFile = path.join(dir, CGROUPS_FILE);
    if (fs.existsSync(cgFile)) {
      const cg = JSON.parse(fs.readFileSync(cgFile, 'utf8')) as PodCgroups;
      if (cg.dirs.some((d) => this.host.exists(d))) {
        await killCgroupMembers(this.host, cg);
        const busy = (await this.manager()).destroyPod(cg);
        if (busy.length > 0) {
          throw new Error(`cgroups still in use: ${busy.join(', ')}: end the processes listed in their cgroup.procs`);
        }
      }
    }
    // Pod mounts live in the pod's own mount namespace and vanish with it; this only
    // catches mounts someone made on the host under the pod dir.
    this.mounts ??= this.host.mountPoints();
    const leftovers = this.mounts.filter((m) => m === dir || m.startsWith(`${dir}/`)).sort().reverse();
    for (const m of leftovers) await this.host.exec('umount', ['-l', m]);
  }
}

/**
 * A pod whose holder died before its PID 1 could notice (pdeathsig races) may still
 * have processes: they are all in the pod's cgroups, so kill them there. The kernel
 * refuses to remove a cgroup (EBUSY) until the killed processes have left it, so wait
 * for that, a bounded time.
 */
async function killCgroupMembers(host: Host, cg: PodCgroups): Promise<void> {
  const procsFiles = [cg.podProcs, ...Object.values(cg.appProcs)].flat();
  const members = () => procsFiles.flatMap((f) => (host.readFile(f) ?? '').split('\n').filter(Boolean));
  const deadline = host.now().getTime() + CGROUP_DRAIN_MS;
  for (let pids = members(); pids.length > 0; pids = members()) {
    if (host.now().getTime() >= deadline) return; // destroyPod reports what is still busy
    for (const pid of pids) host.kill(Number(pid), 'SIGKILL');
    await host.sleep(10);
  }
}

async function sweepOne(sweeper: Sweeper, pod: Pod, claimed: string): Promise<boolean> {
  try {
    await sweeper.teardown(claimed);
    sweeper.remove(claimed);
    return true;
  } catch (e) {
    warn(`cannot garbage collect pod ${pod.uuid}: ${errorMessage(e)}; it stays in garbage/: run "rkt gc" again`);
    // Put it back where the next gc finds it (claims are always made in garbage/).
    try { fs.renameSync(claimed, path.join(path.dirname(claimed), pod.uuid)); } catch { /* keep */ }
    return false;
  }
}

/** Claims a garbage pod and tears it down; its dir goes when the sweeper finishes. */
async function claimPod(dataDir: string, pod: Pod, sweeper: Sweeper, announce = false): Promise<boolean> {
  const claimed = path.join(podsRoot(dataDir), 'garbage', `.${pod.uuid}.deleting.${process.pid}`);
  try { fs.renameSync(pod.dir, claimed); } catch { return true; } // another gc or rm has it
  if (announce) said.add(`Garbage collecting pod "${pod.uuid}"\n`); // gc's line; rm prints the UUID
  return sweepOne(sweeper, pod, claimed);
}

/** Deletes one garbage pod now (rkt rm). */
export async function deletePod(host: Host, dataDir: string, pod: Pod): Promise<boolean> {
  const sweeper = new Sweeper(host);
  try {
    const ok = await claimPod(dataDir, pod, sweeper);
    return (await sweeper.finish()) === 0 && ok;
  } finally {
    logged.flush();
  }
}

/** Finishes sweeps whose gc died half-way (claimed dot-names whose owner is gone). */
function abandonedClaims(host: Host, dataDir: string): Array<{ pod: Pod; dir: string }> {
  const gdir = path.join(podsRoot(dataDir), 'garbage');
  let names: string[] = [];
  try { names = fs.readdirSync(gdir); } catch { return []; }
  const out = [];
  for (const n of names) {
    const m = /^\.([0-9a-f-]+)\.deleting\.(\d+)$/.exec(n);
    if (!m) continue;
    if (host.processStartTime(Number(m[2])) !== undefined && Number(m[2]) !== process.pid) continue;
    out.push({ pod: { uuid: m[1], stateDir: 'garbage' as const, dir: path.join(gdir, n) }, dir: path.join(gdir, n) });
  }
  return out;
}

export async function gcPods(host: Host, dataDir: string, opts: GcOptions): Promise<number> {
  try {
    return await gcAll(host, dataDir, opts);
  } finally {
    said.flush();
    logged.flush();
  }
}

async function gcAll(host: Host, dataDir: string, opts: GcOptions): Promise<number> {
  // Marking renames into exited-garbage/ and garbage/: a data dir missing them would keep its pods forever.
  if (fs.existsSync(podsRoot(dataDir))) ensurePodsDirs(dataDir);
  markPods(host, dataDir, opts);
  if (opts.markOnly) return 0;
  let failed = 0;
  const sweeper = new Sweeper(host);
  for (const { pod, dir } of abandonedClaims(host, dataDir)) if (!(await sweepOne(sweeper, pod, dir))) failed++;
  for (const pod of listPods(dataDir)) {
    if (pod.stateDir !== 'exited-garbage' && pod.stateDir !== 'garbage') continue;
    if (pod.stateDir === 'exited-garbage' && stateAgeMs(host, pod.dir) < opts.gracePeriodMs) {
      info(`pod "${pod.uuid}" not removed: still within grace period (${formatDurationMs(opts.gracePeriodMs)})`);
      continue;
    }
    if (isHeld(host, pod.dir) && pod.stateDir === 'exited-garbage') continue;
    if (!(await claimPod(dataDir, pod, sweeper, true))) failed++;
  }
  return failed + (await sweeper.finishDetached(dataDir));
}
