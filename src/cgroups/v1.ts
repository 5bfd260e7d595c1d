/** cgroup v1: one hierarchy per controller set, each with its own file formats. */
import path from 'node:path';
import type { Host } from '../host/host.js';
import type { AppLimits, CgroupWriter, PodCgroups, PodLimits } from './cgroups.js';
import type { Hierarchy } from './detect.js';

/** v1 controllers that get a directory per app; devices rules are pod-wide. */
const APP_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'cpuset', 'pids'];
const POD_CONTROLLERS = [...APP_CONTROLLERS, 'devices'];

export const CPU_PERIOD_US = 100000;

/** The minimal /dev: nothing else may be read, written or even created with mknod (as rkt's). */
const DEVICE_RULES = [
  'c 1:3 rwm', // null
  'c 1:5 rwm', // zero
  'c 1:7 rwm', // full
  'c 1:8 rwm', // random
  'c 1:9 rwm', // urandom
  'c 5:0 rwm', // tty
  'c 5:2 rwm', // ptmx
  'c 136:* rwm', // pts
  'c 10:200 rwm', // tun
];

export function cpuQuotaUs(cpuMillis: number): number {
  return Math.round((cpuMillis * CPU_PERIOD_US) / 1000);
}

/** A new cpuset starts with no CPUs and no memory nodes; joining it would fail with ENOSPC. */
function copyCpuset(w: CgroupWriter, from: string, to: string): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    w.write(path.join(to, file), (w.host.readFile(path.join(from, file)) ?? '').trim(), 'check the cpuset of the cgroup rkt runs in');
  }
}

export function createV1Pod(w: CgroupWriter, hierarchies: Hierarchy[], podName: string, apps: AppLimits[], pod: PodCgroups, limits: PodLimits = {}): void {
  for (const h of hierarchies) {
    const has = (c: string) => h.controllers.includes(c);
    if (!POD_CONTROLLERS.some(has)) continue;
    const podDir = path.join(h.callerDir, podName);
    w.mkdir(podDir);
    if (has('cpuset')) copyCpuset(w, h.callerDir, podDir);
    // Before any child exists: the kernel refuses devices.deny "a" in a cgroup with children.
    if (has('devices')) {
      w.write(path.join(podDir, 'devices.deny'), 'a', 'check the devices cgroup rkt runs in');
      for (const rule of DEVICE_RULES) w.write(path.join(podDir, 'devices.allow'), rule, 'check the devices cgroup rkt runs in');
    }
    if (has('pids') && limits.pidsMax !== undefined) w.write(path.join(podDir, 'pids.max'), String(limits.pidsMax), 'check the pids limit in the config and --pids-limit');
    pod.podProcs.push(path.join(podDir, 'cgroup.procs'));

    for (const app of apps) createV1App(w, h, podDir, app, pod);
  }
}

/** App `app`'s cgroup under the pod's cgroup `podDir` of hierarchy h (at start, or added to a sandbox). */
export function createV1App(w: CgroupWriter, h: Hierarchy, podDir: string, app: AppLimits, pod: PodCgroups): void {
  const has = (c: string) => h.controllers.includes(c);
  if (!APP_CONTROLLERS.some(has)) return;
  const dir = path.join(podDir, app.name);
  w.mkdir(dir);
  if (has('cpuset')) copyCpuset(w, podDir, dir);
  if (has('memory')) {
    pod.appMemoryDir[app.name] = dir;
    if (app.memoryBytes !== undefined) w.write(path.join(dir, 'memory.limit_in_bytes'), String(app.memoryBytes));
  }
  if (has('cpu')) {
    if (app.cpuShares !== undefined) w.write(path.join(dir, 'cpu.shares'), String(app.cpuShares));
    if (app.cpuMillis !== undefined) {
      w.write(path.join(dir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      w.write(path.join(dir, 'cpu.cfs_quota_us'), String(cpuQuotaUs(app.cpuMillis)));
    }
  }
  if (has('pids') && app.pidsMax !== undefined) w.write(path.join(dir, 'pids.max'), String(app.pidsMax), 'check --pids-limit');
  pod.appProcs[app.name].push(path.join(dir, 'cgroup.procs'));
}

/** "key value" lines (memory.oom_control, memory.events) as a map. */
export function parseKeyValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out.set(key, Number(value));
  }
  return out;
}

/** A v1 number, or undefined for "no limit" (-1, or the huge page-counter maximum). */
function limitValue(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** undefined when dir is not a v1 memory cgroup. */
export function v1OomKilled(host: Host, dir: string): boolean | undefined {
  const text = host.readFile(path.join(dir, 'memory.oom_control'));
  if (text === undefined) return undefined;
  const oom = parseKeyValues(text);
  const kills = oom.get('oom_kill');
  if (kills !== undefined) return kills > 0;
  // Kernels before 4.13 have no oom_kill counter: a hit limit while under OOM is the best sign.
  return oom.get('under_oom') === 1 && (limitValue(host.readFile(path.join(dir, 'memory.failcnt'))) ?? 0) > 0;
}

export function readV1Memory(host: Host, dir: string): number | undefined {
  return limitValue(host.readFile(path.join(dir, 'memory.limit_in_bytes')));
}

/** undefined when dir is not a v1 cpu cgroup. */
export function readV1Cpu(host: Host, dir: string): { cpuQuotaUs?: number; cpuPeriodUs?: number } | undefined {
  const quota = host.readFile(path.join(dir, 'cpu.cfs_quota_us'));
  if (quota === undefined) return undefined;
  return { cpuQuotaUs: limitValue(quota), cpuPeriodUs: limitValue(host.readFile(path.join(dir, 'cpu.cfs_period_us'))) };
}
