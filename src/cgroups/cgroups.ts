/**
 * The cgroups layer: one manager for v1, v2 and hybrid hosts. Each pod gets
 * `<caller's cgroup>/rkt-<uuid>/<app>` in every hierarchy it uses; v1.ts and v2.ts
 * know the file formats, this file decides which hierarchy handles which controller.
 */
import path from 'node:path';
import type { Host } from '../host/host.js';
import { RktError, errorMessage } from '../util/errors.js';
import { warn } from '../util/log.js';
import { detectCgroups, type CgroupLayout } from './detect.js';
import { createV1App, createV1Pod, readV1Cpu, readV1Memory, v1OomKilled } from './v1.js';
import { V2_CONTROLLERS, STAGE1_LEAF, createV2App, createV2Pod, readV2Cpu, readV2Memory, v2OomKilled } from './v2.js';

export interface AppLimits { name: string; memoryBytes?: number; cpuMillis?: number; cpuShares?: number; pidsMax?: number }

/** Pod-wide limits, on the pod's own cgroup (all its apps and stage1 together). */
export interface PodLimits { pidsMax?: number }

export interface PodCgroups {
  /** Every cgroup directory created, deepest first (what destroy removes). */
  dirs: string[];
  /** cgroup.procs files a process must write "0" into to join the pod's cgroup (all hierarchies). */
  podProcs: string[];
  /** per app: cgroup.procs files the app's launcher writes "0" into (from inside the pod, before exec). */
  appProcs: Record<string, string[]>;
  /** per app: where to read memory limit / OOM info later. */
  appMemoryDir: Record<string, string | undefined>;
  /** false where device access is not restricted (v2 needs eBPF for it): the runtime should warn. */
  devicesEnforced: boolean;
}

/**
 * One cgroup filesystem an app sees, read-only, under its /sys/fs/cgroup: `dir` is the
 * name there ('' is /sys/fs/cgroup itself, for a pure v2 host), `links` other names for
 * it (cpu -> cpu,cpuacct). Mounted from inside the app's cgroup namespace, it shows the
 * app's own cgroup as its root and nothing of the host's tree above it.
 */
export interface CgroupView { dir: string; type: 'cgroup' | 'cgroup2'; options: string; links: string[] }

export interface CgroupManager {
  mode: 'v1' | 'v2' | 'hybrid';
  devicesEnforced: boolean;
  /** Creates <parent>/rkt-<uuid>/<app> in each relevant hierarchy and writes limits; rolls back everything on error. */
  createPod(uuid: string, apps: AppLimits[], limits?: PodLimits): PodCgroups;
  /** Removes the dirs (deepest first); missing dirs are fine; returns the ones that could not be removed (still busy). */
  destroyPod(cg: PodCgroups): string[];
  /** `rkt app add`: the app's cgroups in the running pod `cg`; returns the pod's cgroups with them. */
  addApp(cg: PodCgroups, app: AppLimits): PodCgroups;
  /** `rkt app rm`: removes the app's cgroups (throws if busy); returns the pod's cgroups without them. */
  removeApp(cg: PodCgroups, app: string): PodCgroups;
  /** true if the app was OOM-killed. */
  wasOomKilled(cg: PodCgroups, app: string): boolean;
  /** The hierarchies in which the app has a cgroup of its own, as the app should see them. */
  appView(cg: PodCgroups, app: string): CgroupView[];
  /** Where a stage1 shell writes "0" to join the cgroups of these cgroup.procs files (see joinFiles). */
  joinFiles(procs: string[]): string[];
  /** For status/tests: current limits read back. */
  readLimits(cg: PodCgroups, app: string): { memoryBytes?: number; cpuQuotaUs?: number; cpuPeriodUs?: number };
}

/** How v1.ts and v2.ts change the host: it records what they create so a failure can undo it. */
export class CgroupWriter {
  readonly created: string[] = [];

  constructor(readonly host: Host) {}

  mkdir(dir: string): void {
    try {
      this.host.mkdir(dir);
    } catch (e) {
      // A directory we did not create must never be removed by our rollback.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new RktError(`cannot create cgroup ${dir}: it already exists: remove the stale directory with rmdir`);
      throw new RktError(`cannot create cgroup ${dir}: ${errorMessage(e)}: run rkt as root with cgroupfs mounted read-write`);
    }
    this.created.push(dir);
  }

  write(file: string, value: string, fix = "check the app's --memory, --cpu and --cpu-shares values"): void {
    const err = this.host.tryWriteFile(file, value);
    if (err) throw new RktError(`cgroup refused "${value}" in ${file}: ${errorMessage(err)}: ${fix}`);
  }

  /** Removes what was created, children first; best effort, the first error is what matters. */
  rollback(): void {
    for (const dir of [...this.created].reverse()) {
      try { this.host.rmdir(dir); } catch { /* still busy: nothing better to do */ }
    }
  }
}

/** App names and UUIDs become directory names: keep them to plain path components. */
const APP_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const POD_UUID = /^[0-9a-f]+(-[0-9a-f]+)*$/;

class Manager implements CgroupManager {
  readonly mode: CgroupLayout['mode'];
  readonly devicesEnforced: boolean;

  constructor(private readonly host: Host, private readonly layout: CgroupLayout) {
    this.mode = layout.mode;
    this.devicesEnforced = layout.v1.some((h) => h.controllers.includes('devices'));
  }

  createPod(uuid: string, apps: AppLimits[], limits: PodLimits = {}): PodCgroups {
    if (!POD_UUID.test(uuid)) throw new RktError(`invalid pod uuid "${uuid}" for a cgroup name: use a lowercase hex uuid`);
    for (const app of apps) {
      if (!APP_NAME.test(app.name)) throw new RktError(`invalid app name "${app.name}" for a cgroup name: app names must match ${APP_NAME.source}`);
    }
    const { v1, unified } = this.layout;
    const v1Controllers = new Set(v1.flatMap((h) => h.controllers));
    // Hybrid: v1 handles what it has; the cgroup2 mount only fills in what v1 lacks.
    const v2Controllers = unified ? V2_CONTROLLERS.filter((c) => !v1Controllers.has(c) && unified.controllers.includes(c)) : [];
    this.warnUnsupported(apps, (c) => v1Controllers.has(c) || v2Controllers.includes(c));

    const pod: PodCgroups = {
      dirs: [],
      podProcs: [],
      appProcs: Object.fromEntries(apps.map((a) => [a.name, []])),
      appMemoryDir: Object.fromEntries(apps.map((a) => [a.name, undefined])),
      devicesEnforced: this.devicesEnforced,
    };
    const podName = `rkt-${uuid}`;
    const w = new CgroupWriter(this.host);
    try {
      createV1Pod(w, v1, podName, apps, pod, limits);
      if (unified && (this.mode === 'v2' || v2Controllers.length > 0)) createV2Pod(w, unified, v2Controllers, podName, apps, pod, limits);
    } catch (e) {
      w.rollback();
      throw e;
    }
    // Parents are always created before their children, so reverse order is deepest first.
    pod.dirs = [...w.created].reverse();
    return pod;
  }

  private warnUnsupported(apps: AppLimits[], supported: (controller: string) => boolean): void {
    const wanted: Array<[string, string, (a: AppLimits) => boolean]> = [
      ['resource/memory', 'memory', (a) => a.memoryBytes !== undefined],
      ['resource/cpu', 'cpu', (a) => a.cpuMillis !== undefined],
      ['os/linux/cpu-shares', 'cpu', (a) => a.cpuShares !== undefined],
      ['--pids-limit', 'pids', (a) => a.pidsMax !== undefined],
    ];
    for (const [isolator, controller, isSet] of wanted) {
      if (apps.some(isSet) && !supported(controller)) warn(`${isolator} isolator set but support disabled in the kernel, skipping`);
    }
  }

  destroyPod(cg: PodCgroups): string[] {
    const busy: string[] = [];
    for (const dir of cg.dirs) {
      if (!this.host.exists(dir)) continue;
      try { this.host.rmdir(dir); } catch { busy.push(dir); }
    }
    return busy;
  }

  addApp(cg: PodCgroups, app: AppLimits): PodCgroups {
    if (!APP_NAME.test(app.name)) throw new RktError(`invalid app name "${app.name}" for a cgroup name: app names must match ${APP_NAME.source}`);
    const next: PodCgroups = { ...cg, appProcs: { ...cg.appProcs, [app.name]: [] }, appMemoryDir: { ...cg.appMemoryDir, [app.name]: undefined } };
    const w = new CgroupWriter(this.host);
    const { v1, unified } = this.layout;
    const under = (h: { mountPoint: string }, f: string) => f.startsWith(`${h.mountPoint}/`);
    try {
      // The pod's cgroups as the pod's start made them (this process may sit in another cgroup).
      for (const procs of cg.podProcs) {
        const h = v1.find((x) => under(x, procs));
        if (h) { createV1App(w, h, path.dirname(procs), app, next); continue; }
        if (unified && under(unified, procs) && path.basename(path.dirname(procs)) === STAGE1_LEAF) {
          const podDir = path.dirname(path.dirname(procs));
          // What the pod hands its apps (the kernel lists them as "memory cpu pids").
          const enabled = (this.host.readFile(path.join(podDir, 'cgroup.subtree_control')) ?? '').trim().split(/\s+/).map((c) => c.replace(/^\+/, ''));
          createV2App(w, V2_CONTROLLERS.filter((c) => enabled.includes(c)), podDir, app, next);
        }
      }
    } catch (e) {
      w.rollback();
      throw e;
    }
    next.dirs = [...[...w.created].reverse(), ...cg.dirs];
    return next;
  }

  removeApp(cg: PodCgroups, app: string): PodCgroups {
    const dirs = (cg.appProcs[app] ?? []).map((f) => path.dirname(f));
    for (const dir of dirs) {
      if (!this.host.exists(dir)) continue;
      try { this.host.rmdir(dir); } catch (e) { throw new RktError(`cannot remove cgroup ${dir}: ${errorMessage(e)}: a process of the app is still in it`); }
    }
    const { [app]: _procs, ...appProcs } = cg.appProcs;
    const { [app]: _mem, ...appMemoryDir } = cg.appMemoryDir;
    return { ...cg, dirs: cg.dirs.filter((d) => !dirs.includes(d)), appProcs, appMemoryDir };
  }

  wasOomKilled(cg: PodCgroups, app: string): boolean {
    const dir = cg.appMemoryDir[app];
    if (!dir) return false;
    return v2OomKilled(this.host, dir) ?? v1OomKilled(this.host, dir) ?? false;
  }

  appView(cg: PodCgroups, app: string): CgroupView[] {
    return cgroupView(this.layout, cg.appProcs[app] ?? []);
  }

  joinFiles(procs: string[]): string[] {
    return joinFiles(this.layout, procs);
  }

  readLimits(cg: PodCgroups, app: string): { memoryBytes?: number; cpuQuotaUs?: number; cpuPeriodUs?: number } {
    const memDir = cg.appMemoryDir[app];
    const memoryBytes = memDir ? readV2Memory(this.host, memDir) ?? readV1Memory(this.host, memDir) : undefined;
    for (const procs of cg.appProcs[app] ?? []) {
      const dir = path.dirname(procs);
      const cpu = readV2Cpu(this.host, dir) ?? readV1Cpu(this.host, dir);
      if (cpu) return { memoryBytes, ...cpu };
    }
    return { memoryBytes };
  }
}

/** Detects the host's cgroup layout and returns the manager for it. */
export function cgroupManager(host: Host): CgroupManager {
  return new Manager(host, detectCgroups(host));
}

/**
 * Where a single-threaded process (a stage1 shell) writes "0" to join the cgroups of these
 * cgroup.procs files. In a v1 hierarchy, the cgroup's `tasks` file: it moves only the
 * writing thread, so the kernel skips the lock that cgroup.procs takes over every thread
 * group, whose first taking waits for an RCU grace period (5-14 ms here, on the path of
 * every `rkt run`). A v2 domain cgroup offers only cgroup.procs.
 */
export function joinFiles(layout: CgroupLayout, procs: string[]): string[] {
  return procs.map((f) => (layout.v1.some((h) => f.startsWith(`${h.mountPoint}/`)) ? path.join(path.dirname(f), 'tasks') : f));
}

/**
 * What an app sees of the hierarchies its cgroup.procs files are in (only those: a
 * hierarchy where it shares its pod's or the host's cgroup would show more than its own).
 * v1 hierarchies keep the host's directory names; v2 is /sys/fs/cgroup itself on a pure
 * v2 host and `unified` beside the v1 ones on a hybrid host.
 */
export function cgroupView(layout: CgroupLayout, appProcs: string[]): CgroupView[] {
  const views: CgroupView[] = [];
  const under = (file: string, mountPoint: string) => file.startsWith(`${mountPoint}/`);
  for (const h of layout.v1) {
    if (!appProcs.some((f) => under(f, h.mountPoint))) continue;
    const dir = path.basename(h.mountPoint);
    const links = h.controllers.length > 1 ? h.controllers.filter((c) => c !== dir && !c.startsWith('name=')) : [];
    views.push({ dir, type: 'cgroup', options: h.controllers.join(','), links });
  }
  const u = layout.unified;
  if (u && appProcs.some((f) => under(f, u.mountPoint))) {
    views.push({ dir: layout.mode === 'v2' ? '' : path.basename(u.mountPoint), type: 'cgroup2', options: '', links: [] });
  }
  // Plain code-unit order: the first localeCompare loads ICU's collator, tens of ms of `run`.
  return views.sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0));
}
