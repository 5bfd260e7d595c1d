/** cgroup v2: one unified tree; controllers are handed down through cgroup.subtree_control. */
import path from 'node:path';
import type { Host } from '../host/host.js';
import { RktError, errorMessage } from '../util/errors.js';
import type { AppLimits, CgroupWriter, PodCgroups, PodLimits } from './cgroups.js';
import type { Hierarchy } from './detect.js';
import { CPU_PERIOD_US, cpuQuotaUs, parseKeyValues } from './v1.js';

/** The v2 controllers a pod uses (cpuset needs no setup on v2; devices would need eBPF). */
export const V2_CONTROLLERS = ['memory', 'cpu', 'pids'];

/**
 * Once the pod's cgroup hands controllers to its app cgroups it may hold no processes
 * itself (v2's "no internal processes" rule), so the pod's own processes join this leaf.
 * App names have no dot, so it cannot clash with an app.
 */
export const STAGE1_LEAF = 'stage1.init';

/** cpu.shares (2..262144) mapped onto cpu.weight (1..10000), as runc and systemd do. */
export function cpuWeight(shares: number): number {
  const s = Math.min(Math.max(shares, 2), 262144);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

function isBusy(err: Error): boolean {
  return (err as NodeJS.ErrnoException).code === 'EBUSY' || /EBUSY/.test(err.message);
}

/** Where the pod's cgroup goes: under the caller's cgroup if it can hand controllers down. */
function podParent(w: CgroupWriter, h: Hierarchy, enable: string): string {
  const err = w.host.tryWriteFile(path.join(h.callerDir, 'cgroup.subtree_control'), enable);
  if (!err) return h.callerDir;
  // EBUSY: the caller's cgroup holds processes (at least rkt itself) and is not the root,
  // so it may not enable controllers for children. Its parent already hands the caller
  // these controllers, so a sibling of the caller's cgroup gets them too.
  if (!isBusy(err) || h.callerDir === h.mountPoint) {
    throw new RktError(`cannot enable cgroup controllers "${enable}" in ${h.callerDir}: ${errorMessage(err)}: run rkt in a cgroup that may delegate them`);
  }
  return path.dirname(h.callerDir);
}

export function createV2Pod(w: CgroupWriter, h: Hierarchy, controllers: string[], podName: string, apps: AppLimits[], pod: PodCgroups, limits: PodLimits = {}): void {
  const enable = controllers.map((c) => `+${c}`).join(' ');
  const podDir = path.join(enable ? podParent(w, h, enable) : h.callerDir, podName);
  w.mkdir(podDir);
  if (enable) w.write(path.join(podDir, 'cgroup.subtree_control'), enable, 'run rkt in a cgroup that may delegate them');
  if (controllers.includes('pids') && limits.pidsMax !== undefined) w.write(path.join(podDir, 'pids.max'), String(limits.pidsMax), 'check the pids limit in the config and --pids-limit');
  const leaf = path.join(podDir, STAGE1_LEAF);
  w.mkdir(leaf);
  pod.podProcs.push(path.join(leaf, 'cgroup.procs'));

  for (const app of apps) createV2App(w, controllers, podDir, app, pod);
}

/** App `app`'s cgroup under the pod's cgroup `podDir` (at start, or added to a sandbox). */
export function createV2App(w: CgroupWriter, controllers: string[], podDir: string, app: AppLimits, pod: PodCgroups): void {
  const dir = path.join(podDir, app.name);
  w.mkdir(dir);
  if (controllers.includes('memory')) {
    pod.appMemoryDir[app.name] = dir;
    // memory.swap.max stays as inherited, as v1 leaves memsw alone.
    if (app.memoryBytes !== undefined) w.write(path.join(dir, 'memory.max'), String(app.memoryBytes));
  }
  if (controllers.includes('cpu')) {
    if (app.cpuShares !== undefined) w.write(path.join(dir, 'cpu.weight'), String(cpuWeight(app.cpuShares)));
    if (app.cpuMillis !== undefined) w.write(path.join(dir, 'cpu.max'), `${cpuQuotaUs(app.cpuMillis)} ${CPU_PERIOD_US}`);
  }
  if (controllers.includes('pids') && app.pidsMax !== undefined) w.write(path.join(dir, 'pids.max'), String(app.pidsMax), 'check --pids-limit');
  pod.appProcs[app.name].push(path.join(dir, 'cgroup.procs'));
}

/** undefined when dir is not a v2 memory cgroup. */
export function v2OomKilled(host: Host, dir: string): boolean | undefined {
  const text = host.readFile(path.join(dir, 'memory.events'));
  if (text === undefined) return undefined;
  return (parseKeyValues(text).get('oom_kill') ?? 0) > 0;
}

/** undefined for "max" or when dir is not a v2 memory cgroup. */
export function readV2Memory(host: Host, dir: string): number | undefined {
  const n = Number(host.readFile(path.join(dir, 'memory.max'))?.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** undefined when dir is not a v2 cpu cgroup. */
export function readV2Cpu(host: Host, dir: string): { cpuQuotaUs?: number; cpuPeriodUs?: number } | undefined {
  const text = host.readFile(path.join(dir, 'cpu.max'));
  if (text === undefined) return undefined;
  const [quota, period] = text.trim().split(/\s+/).map(Number);
  return { cpuQuotaUs: Number.isSafeInteger(quota) ? quota : undefined, cpuPeriodUs: period };
}
