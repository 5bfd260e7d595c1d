/** Fake cgroup hosts for the cgroups unit tests: v1, v2 and this machine's hybrid layout. */
import { FakeHost } from '../../helpers/fake-host.js';

/** A FakeHost whose rmdir behaves like cgroupfs: a cgroup with children or processes is busy. */
export class CgroupFakeHost extends FakeHost {
  busy = new Set<string>();

  rmdir(path: string): void {
    if (this.busy.has(path) || [...this.dirs].some((d) => d.startsWith(`${path}/`))) {
      this.calls.push(`rmdir ${path}`);
      throw Object.assign(new Error(`EBUSY: resource busy or locked, rmdir '${path}'`), { code: 'EBUSY' });
    }
    super.rmdir(path);
  }

  /** Directories whose path contains `part` (what a pod left behind). */
  dirsWith(part: string): string[] {
    return [...this.dirs].filter((d) => d.includes(part)).sort();
  }
}

interface V1Mount { mountPoint: string; options: string; callerPath: string }

function build(mounts: Array<{ mountPoint: string; fsType: string; options: string; root?: string }>, procCgroup: string[]): CgroupFakeHost {
  const host = new CgroupFakeHost();
  const lines = mounts.map((m, i) =>
    `${40 + i} 31 0:${40 + i} ${m.root ?? '/'} ${m.mountPoint} rw,nosuid,nodev,noexec,relatime shared:${i + 5} - ${m.fsType} ${m.fsType} ${m.options}`);
  host.files.set('/proc/self/mountinfo', [
    '22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    ...lines,
    '',
  ].join('\n'));
  host.files.set('/proc/self/cgroup', `${procCgroup.join('\n')}\n`);
  for (const m of mounts) host.mkdirp(m.mountPoint);
  host.calls = [];
  return host;
}

function v1Host(mounts: V1Mount[], unified?: { controllers: string; callerPath: string }): CgroupFakeHost {
  const all = mounts.map((m) => ({ mountPoint: m.mountPoint, fsType: 'cgroup', options: `rw,${m.options}` }));
  if (unified) all.push({ mountPoint: '/sys/fs/cgroup/unified', fsType: 'cgroup2', options: 'rw' });
  const proc = mounts.map((m, i) => `${mounts.length - i}:${m.options}:${m.callerPath}`);
  if (unified) proc.push(`0::${unified.callerPath}`);
  const host = build(all, proc);
  for (const m of mounts) {
    const dir = `${m.mountPoint}${m.callerPath === '/' ? '' : m.callerPath}`;
    host.mkdirp(dir); // with its parents, as on a real host
    host.files.set(`${dir}/cgroup.procs`, '1\n');
    if (m.options.split(',').includes('cpuset')) {
      host.files.set(`${dir}/cpuset.cpus`, '0-1\n');
      host.files.set(`${dir}/cpuset.mems`, '0\n');
    }
  }
  if (unified) host.files.set(`/sys/fs/cgroup/unified${unified.callerPath === '/' ? '' : unified.callerPath}/cgroup.controllers`, `${unified.controllers}\n`);
  host.calls = [];
  return host;
}

export const CALLER_ID = 'fc767328507bf71d832f38352c540e58';
export const MEMORY_CALLER = `/sys/fs/cgroup/memory/process_api/${CALLER_ID}`;

/** This machine: v1 with cpu and cpuacct apart, memory under process_api, cgroup2 holding only hugetlb. */
export function hybridHost(opts: { unifiedControllers?: string; withoutMemory?: boolean } = {}): CgroupFakeHost {
  const v1: V1Mount[] = [
    { mountPoint: '/sys/fs/cgroup/systemd', options: 'name=systemd', callerPath: '/' },
    { mountPoint: '/sys/fs/cgroup/pids', options: 'pids', callerPath: '/' },
    { mountPoint: '/sys/fs/cgroup/blkio', options: 'blkio', callerPath: '/' },
    { mountPoint: '/sys/fs/cgroup/freezer', options: 'freezer', callerPath: '/' },
    { mountPoint: '/sys/fs/cgroup/devices', options: 'devices', callerPath: '/' },
    { mountPoint: '/sys/fs/cgroup/memory', options: 'memory', callerPath: `/process_api/${CALLER_ID}` },
    { mountPoint: '/sys/fs/cgroup/cpuset', options: 'cpuset', callerPath: '/' },
    { mountPoint: '/sys/fs/cgroup/cpuacct', options: 'cpuacct', callerPath: '/' },
    { mountPoint: '/sys/fs/cgroup/cpu', options: 'cpu', callerPath: '/' },
  ];
  return v1Host(v1.filter((m) => !(opts.withoutMemory && m.options === 'memory')),
    { controllers: opts.unifiedControllers ?? 'hugetlb', callerPath: '/' });
}

export const CI_SERVICE = '/system.slice/ci.service';

/** A classic v1 distribution: cpu,cpuacct and net_cls,net_prio co-mounted, caller in a service. */
export function classicV1Host(): CgroupFakeHost {
  const controllers = ['name=systemd', 'cpu,cpuacct', 'memory', 'devices', 'pids', 'net_cls,net_prio', 'cpuset'];
  return v1Host(controllers.map((options) => ({
    mountPoint: `/sys/fs/cgroup/${options.replace('name=', '')}`,
    options,
    callerPath: CI_SERVICE,
  })));
}

/** Pure v2 at /sys/fs/cgroup with the caller at `callerPath`. */
export function v2Host(callerPath: string, controllers = 'cpuset cpu io memory hugetlb pids rdma misc'): CgroupFakeHost {
  const host = build([{ mountPoint: '/sys/fs/cgroup', fsType: 'cgroup2', options: 'rw,nsdelegate,memory_recursiveprot' }], [`0::${callerPath}`]);
  const dir = `/sys/fs/cgroup${callerPath === '/' ? '' : callerPath}`;
  host.mkdirp(dir); // with its parents, as on a real host
  host.files.set(`${dir}/cgroup.controllers`, `${controllers}\n`);
  host.files.set(`${dir}/cgroup.procs`, '1\n');
  host.calls = [];
  return host;
}

/** Index of the first recorded call that starts with `prefix` (-1 if none). */
export function callIndex(host: FakeHost, prefix: string): number {
  return host.calls.findIndex((c) => c.startsWith(prefix));
}
