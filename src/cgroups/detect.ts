/**
 * Finds the host's cgroup hierarchies and where the caller sits in each, from
 * /proc/self/mountinfo and /proc/self/cgroup (never from assumed paths).
 */
import path from 'node:path';
import type { Host } from '../host/host.js';

export interface Hierarchy {
  /** v1 controllers of this mount (`cpu`, `cpuacct` may share one); v2: those the caller's cgroup offers. */
  controllers: string[];
  mountPoint: string;
  /** The caller's own cgroup directory in this hierarchy: pods nest under it. */
  callerDir: string;
}

export interface CgroupLayout {
  mode: 'v1' | 'v2' | 'hybrid';
  /** Controller-carrying v1 hierarchies; named ones (name=systemd) are left out. */
  v1: Hierarchy[];
  unified?: Hierarchy;
}

export interface CgroupMount {
  /** The subtree of the hierarchy this mount shows (field 4 of mountinfo). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** One line of /proc/self/cgroup: `id:controllers:path` (v2 has id 0 and no controllers). */
export interface CgroupMembership {
  controllers: string[];
  path: string;
}

function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountInfo(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    // Optional fields end at '-'; after it come fstype, source and super options.
    const sep = fields.indexOf('-', 6);
    if (sep < 0) continue;
    const fsType = fields[sep + 1];
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    mounts.push({
      root: unescapeMountField(fields[3]),
      mountPoint: unescapeMountField(fields[4]),
      fsType,
      superOptions: (fields[sep + 3] ?? '').split(','),
    });
  }
  return mounts;
}

export function parseProcCgroup(text: string): CgroupMembership[] {
  const out: CgroupMembership[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m) out.push({ controllers: m[1] ? m[1].split(',') : [], path: m[2] });
  }
  return out;
}

/** The caller's directory under a mount whose root may be a subtree (bind mounts in containers). */
function callerDirIn(mount: CgroupMount, cgroupPath: string): string {
  const rel = mount.root !== '/' && (cgroupPath === mount.root || cgroupPath.startsWith(`${mount.root}/`))
    ? cgroupPath.slice(mount.root.length)
    : cgroupPath;
  return path.join(mount.mountPoint, rel.replace(/^\/+/, ''));
}

/** Of several mounts of one hierarchy, prefer the one that shows the caller's cgroup. */
function pickMount(candidates: CgroupMount[], cgroupPath: string): CgroupMount | undefined {
  return candidates.find((m) => m.root === '/' || cgroupPath === m.root || cgroupPath.startsWith(`${m.root}/`))
    ?? candidates[0];
}

export function detectCgroups(host: Host): CgroupLayout {
  const mounts = parseMountInfo(host.readFile('/proc/self/mountinfo') ?? '');
  const memberships = parseProcCgroup(host.readFile('/proc/self/cgroup') ?? '');

  const v1: Hierarchy[] = [];
  let unified: Hierarchy | undefined;
  for (const { controllers, path: cgroupPath } of memberships) {
    if (controllers.length === 0) {
      const mount = pickMount(mounts.filter((m) => m.fsType === 'cgroup2'), cgroupPath);
      if (!mount) continue;
      const callerDir = callerDirIn(mount, cgroupPath);
      const offered = host.readFile(path.join(callerDir, 'cgroup.controllers')) ?? '';
      unified = {
        controllers: offered.split(/\s+/).filter(Boolean),
        mountPoint: mount.mountPoint,
        callerDir,
      };
      continue;
    }
    if (controllers.every((c) => c.startsWith('name='))) continue;
    const mount = pickMount(
      mounts.filter((m) => m.fsType === 'cgroup' && controllers.every((c) => m.superOptions.includes(c))),
      cgroupPath,
    );
    if (!mount) continue;
    v1.push({ controllers, mountPoint: mount.mountPoint, callerDir: callerDirIn(mount, cgroupPath) });
  }

  const mode = v1.length === 0 && unified ? 'v2' : v1.length > 0 && unified ? 'hybrid' : 'v1';
  return { mode, v1, unified };
}
