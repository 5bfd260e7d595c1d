import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { cgroupManager } from '../../../src/cgroups/cgroups.js';
import { RktError } from '../../../src/util/errors.js';
import { CI_SERVICE, MEMORY_CALLER, callIndex, classicV1Host, hybridHost } from './fake-trees.js';

const UUID = '0b5c0a4e-1d1a-4f7e-9c55-2f4c1c7a9e01';
const POD = `rkt-${UUID}`;
const MiB128 = 134217728;

let stderr: string[];
beforeEach(() => {
  stderr = [];
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => { stderr.push(String(chunk)); return true; });
});
afterEach(() => { jest.restoreAllMocks(); });

const DEVICE_RULES = ['c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:2 rwm',
  'c 136:* rwm', 'c 10:200 rwm'];

describe("this machine's hybrid layout (cpu and cpuacct apart)", () => {
  test('pod and app dirs nest under the caller in each used v1 hierarchy; cgroup2 and named ones untouched', () => {
    const host = hybridHost();
    const mgr = cgroupManager(host);
    expect(mgr.mode).toBe('hybrid');
    expect(mgr.devicesEnforced).toBe(true);
    const cg = mgr.createPod(UUID, [{ name: 'a', memoryBytes: MiB128, cpuMillis: 750 }, { name: 'b' }]);

    const appLevel = [`${MEMORY_CALLER}/${POD}`, ...['pids', 'cpuset', 'cpuacct', 'cpu'].map((c) => `/sys/fs/cgroup/${c}/${POD}`)];
    expect(cg.podProcs.sort()).toEqual([...appLevel, `/sys/fs/cgroup/devices/${POD}`].map((d) => `${d}/cgroup.procs`).sort());
    expect(cg.appProcs.a.sort()).toEqual(appLevel.map((d) => `${d}/a/cgroup.procs`).sort());
    expect(cg.appProcs.b.sort()).toEqual(appLevel.map((d) => `${d}/b/cgroup.procs`).sort());
    expect(cg.appMemoryDir).toEqual({ a: `${MEMORY_CALLER}/${POD}/a`, b: `${MEMORY_CALLER}/${POD}/b` });
    expect(cg.devicesEnforced).toBe(true);
    expect(cg.dirs.sort()).toEqual([...appLevel.flatMap((d) => [d, `${d}/a`, `${d}/b`]), `/sys/fs/cgroup/devices/${POD}`].sort());
    expect(host.dirsWith(POD).sort()).toEqual([...cg.dirs].sort());
    for (const skipped of ['unified', 'systemd', 'blkio', 'freezer']) {
      expect(host.calls.filter((c) => c.includes(`/sys/fs/cgroup/${skipped}`))).toEqual([]);
    }
  });

  test('limits go to the app dirs; an app without limits gets none', () => {
    const host = hybridHost();
    const cg = cgroupManager(host).createPod(UUID, [{ name: 'a', memoryBytes: MiB128, cpuMillis: 750, cpuShares: 512 }, { name: 'b' }]);
    expect(host.files.get(`${MEMORY_CALLER}/${POD}/a/memory.limit_in_bytes`)).toBe(String(MiB128));
    expect(host.files.get(`/sys/fs/cgroup/cpu/${POD}/a/cpu.shares`)).toBe('512');
    expect(host.files.get(`/sys/fs/cgroup/cpu/${POD}/a/cpu.cfs_period_us`)).toBe('100000');
    expect(host.files.get(`/sys/fs/cgroup/cpu/${POD}/a/cpu.cfs_quota_us`)).toBe('75000');
    // the period is set before the quota it is measured against
    expect(callIndex(host, `write /sys/fs/cgroup/cpu/${POD}/a/cpu.cfs_period_us`))
      .toBeLessThan(callIndex(host, `write /sys/fs/cgroup/cpu/${POD}/a/cpu.cfs_quota_us`));
    expect(host.calls.filter((c) => c.startsWith('write') && c.includes(`${POD}/b/`) && !c.includes('cpuset'))).toEqual([]);
    expect(host.calls.filter((c) => c.startsWith('write') && c.includes('cpuacct'))).toEqual([]);
    expect(cgroupManager(host).readLimits(cg, 'a')).toEqual({ memoryBytes: MiB128, cpuQuotaUs: 75000, cpuPeriodUs: 100000 });
  });

  test('cpuset.cpus and cpuset.mems are copied from the parent into pod and app dirs', () => {
    const host = hybridHost();
    cgroupManager(host).createPod(UUID, [{ name: 'a' }]);
    for (const dir of [`/sys/fs/cgroup/cpuset/${POD}`, `/sys/fs/cgroup/cpuset/${POD}/a`]) {
      expect(host.files.get(`${dir}/cpuset.cpus`)).toBe('0-1');
      expect(host.files.get(`${dir}/cpuset.mems`)).toBe('0');
    }
  });

  test('devices: deny all at pod level, then allow the minimal /dev and mknod, before anything else is created there', () => {
    const host = hybridHost();
    cgroupManager(host).createPod(UUID, [{ name: 'a' }]);
    const pod = `/sys/fs/cgroup/devices/${POD}`;
    const writes = host.calls.filter((c) => c.startsWith(`write ${pod}/`));
    expect(writes).toEqual([`write ${pod}/devices.deny a`, ...DEVICE_RULES.map((r) => `write ${pod}/devices.allow ${r}`)]);
    expect(host.dirsWith(`/sys/fs/cgroup/devices/${POD}/`)).toEqual([]);
  });
});

describe('classic v1 (cpu,cpuacct co-mounted, caller in a service)', () => {
  test('one dir set for the co-mounted hierarchy, nested under the caller', () => {
    const host = classicV1Host();
    const mgr = cgroupManager(host);
    expect(mgr.mode).toBe('v1');
    const cg = mgr.createPod(UUID, [{ name: 'web', memoryBytes: 25 * 1024 * 1024, cpuMillis: 500 }]);
    const cpuDir = `/sys/fs/cgroup/cpu,cpuacct${CI_SERVICE}/${POD}/web`;
    expect(host.files.get(`${cpuDir}/cpu.cfs_quota_us`)).toBe('50000');
    expect(host.files.get(`/sys/fs/cgroup/memory${CI_SERVICE}/${POD}/web/memory.limit_in_bytes`)).toBe(String(25 * 1024 * 1024));
    expect(cg.appProcs.web.sort()).toEqual(['cpu,cpuacct', 'cpuset', 'memory', 'pids']
      .map((c) => `/sys/fs/cgroup/${c}${CI_SERVICE}/${POD}/web/cgroup.procs`).sort());
    expect(cg.podProcs).toContain(`/sys/fs/cgroup/devices${CI_SERVICE}/${POD}/cgroup.procs`);
    // net_cls,net_prio and name=systemd are not pod hierarchies
    expect(host.dirsWith(POD).filter((d) => /net_cls|systemd/.test(d))).toEqual([]);
  });
});

describe('quota math', () => {
  test.each([[750, 75000], [500, 50000], [2000, 200000], [1, 100]])('%i millicores -> quota %i per 100000', (millis, quota) => {
    const host = classicV1Host();
    const mgr = cgroupManager(host);
    const cg = mgr.createPod(UUID, [{ name: 'a', cpuMillis: millis }]);
    expect(mgr.readLimits(cg, 'a')).toEqual({ cpuQuotaUs: quota, cpuPeriodUs: 100000 });
  });
});

describe('missing controllers', () => {
  test('no memory hierarchy: warns once for the memory isolator and still creates the pod', () => {
    const host = hybridHost({ withoutMemory: true });
    const mgr = cgroupManager(host);
    const cg = mgr.createPod(UUID, [{ name: 'a', memoryBytes: MiB128, cpuMillis: 750 }, { name: 'b', memoryBytes: MiB128 }]);
    expect(stderr.filter((l) => l.includes('isolator set'))).toEqual([
      'rkt: warning: resource/memory isolator set but support disabled in the kernel, skipping\n',
    ]);
    expect(cg.appMemoryDir).toEqual({ a: undefined, b: undefined });
    expect(host.files.get(`/sys/fs/cgroup/cpu/${POD}/a/cpu.cfs_quota_us`)).toBe('75000');
    expect(mgr.readLimits(cg, 'a')).toEqual({ cpuQuotaUs: 75000, cpuPeriodUs: 100000 });
    expect(mgr.wasOomKilled(cg, 'a')).toBe(false);
  });

  test('no warning when no app asks for the missing controller', () => {
    cgroupManager(hybridHost({ withoutMemory: true })).createPod(UUID, [{ name: 'a', cpuMillis: 750 }]);
    expect(stderr).toEqual([]);
  });

  test('hybrid: a controller v1 lacks is taken from the cgroup2 mount when it offers it', () => {
    const host = hybridHost({ withoutMemory: true, unifiedControllers: 'memory hugetlb' });
    const cg = cgroupManager(host).createPod(UUID, [{ name: 'a', memoryBytes: MiB128 }]);
    expect(stderr).toEqual([]);
    expect(cg.appMemoryDir.a).toBe(`/sys/fs/cgroup/unified/${POD}/a`);
    expect(host.files.get(`/sys/fs/cgroup/unified/${POD}/a/memory.max`)).toBe(String(MiB128));
    expect(host.files.get(`/sys/fs/cgroup/unified/cgroup.subtree_control`)).toBe('+memory');
    expect(cg.appProcs.a).toContain(`/sys/fs/cgroup/unified/${POD}/a/cgroup.procs`);
    expect(cg.podProcs).toContain(`/sys/fs/cgroup/unified/${POD}/stage1.init/cgroup.procs`);
    expect(cg.podProcs).toContain(`/sys/fs/cgroup/cpu/${POD}/cgroup.procs`);
  });
});

describe('errors and rollback', () => {
  test('a limit the kernel refuses names the file and value, and removes everything created', () => {
    const host = hybridHost();
    const quota = `/sys/fs/cgroup/cpu/${POD}/b/cpu.cfs_quota_us`;
    host.failingWrites.set(quota, 'EINVAL: invalid argument, write');
    const mgr = cgroupManager(host);
    let err: unknown;
    try { mgr.createPod(UUID, [{ name: 'a', cpuMillis: 500 }, { name: 'b', cpuMillis: 5 }]); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(RktError);
    expect((err as Error).message).toBe(`cgroup refused "500" in ${quota}: EINVAL: invalid argument, write: check the app's --memory, --cpu and --cpu-shares values`);
    expect(host.dirsWith(POD)).toEqual([]);
    // children were removed before their parents (cgroupfs refuses otherwise)
    const rmdirs = host.calls.filter((c) => c.startsWith('rmdir ')).map((c) => c.slice(6));
    expect(rmdirs.length).toBeGreaterThan(0);
    for (const [i, dir] of rmdirs.entries()) {
      expect(rmdirs.slice(i + 1).some((later) => later.startsWith(`${dir}/`))).toBe(false);
    }
  });

  test('an existing pod dir is refused and not removed by the rollback', () => {
    const host = hybridHost();
    host.mkdirp(`/sys/fs/cgroup/cpu/${POD}`);
    expect(() => cgroupManager(host).createPod(UUID, [{ name: 'a' }]))
      .toThrow(`cannot create cgroup /sys/fs/cgroup/cpu/${POD}: it already exists: remove the stale directory with rmdir`);
    expect(host.dirsWith(POD)).toEqual([`/sys/fs/cgroup/cpu/${POD}`]);
  });

  test('names that are not plain path components are refused before anything is created', () => {
    const host = hybridHost();
    expect(() => cgroupManager(host).createPod(UUID, [{ name: '../x' }])).toThrow(RktError);
    expect(() => cgroupManager(host).createPod('../../etc', [{ name: 'a' }])).toThrow(RktError);
    expect(host.calls).toEqual([]);
  });
});

describe('destroyPod', () => {
  test('removes children before parents and reports nothing left', () => {
    const host = hybridHost();
    const mgr = cgroupManager(host);
    const cg = mgr.createPod(UUID, [{ name: 'a' }, { name: 'b' }]);
    host.calls = [];
    expect(mgr.destroyPod(cg)).toEqual([]);
    expect(host.dirsWith(POD)).toEqual([]);
    expect(host.calls.every((c) => c.startsWith('rmdir '))).toBe(true);
    expect(host.calls).toHaveLength(cg.dirs.length);
  });

  test('missing dirs are skipped; busy ones (and so their parents) are returned', () => {
    const host = hybridHost();
    const mgr = cgroupManager(host);
    const cg = mgr.createPod(UUID, [{ name: 'a' }, { name: 'b' }]);
    host.rmdir(`/sys/fs/cgroup/pids/${POD}/b`);
    host.busy.add(`${MEMORY_CALLER}/${POD}/a`);
    host.calls = [];
    expect(mgr.destroyPod(cg)).toEqual([`${MEMORY_CALLER}/${POD}/a`, `${MEMORY_CALLER}/${POD}`]);
    expect(host.calls).not.toContain(`rmdir /sys/fs/cgroup/pids/${POD}/b`);
    expect(host.dirsWith(POD)).toEqual([`${MEMORY_CALLER}/${POD}`, `${MEMORY_CALLER}/${POD}/a`]);
  });
});

describe('OOM detection (v1)', () => {
  function podWithOomControl(oomControl: string, failcnt = '0') {
    const host = hybridHost();
    const mgr = cgroupManager(host);
    const cg = mgr.createPod(UUID, [{ name: 'a', memoryBytes: MiB128 }, { name: 'b' }]);
    host.files.set(`${cg.appMemoryDir.a}/memory.oom_control`, oomControl);
    host.files.set(`${cg.appMemoryDir.a}/memory.failcnt`, `${failcnt}\n`);
    return { host, mgr, cg };
  }

  test('oom_kill counter above zero', () => {
    const { mgr, cg } = podWithOomControl('oom_kill_disable 0\nunder_oom 0\noom_kill 1\n', '204');
    expect(mgr.wasOomKilled(cg, 'a')).toBe(true);
    expect(mgr.wasOomKilled(cg, 'b')).toBe(false);
  });

  test('oom_kill zero even with failcnt', () => {
    const { mgr, cg } = podWithOomControl('oom_kill_disable 0\nunder_oom 0\noom_kill 0\n', '12');
    expect(mgr.wasOomKilled(cg, 'a')).toBe(false);
  });

  test.each([['1', '3', true], ['0', '3', false], ['1', '0', false]])(
    'older kernels without oom_kill: under_oom %s, failcnt %s -> %s', (underOom, failcnt, killed) => {
      const { mgr, cg } = podWithOomControl(`oom_kill_disable 0\nunder_oom ${underOom}\n`, failcnt);
      expect(mgr.wasOomKilled(cg, 'a')).toBe(killed);
    });

  test('unlimited memory reads back as no limit', () => {
    const { host, mgr, cg } = podWithOomControl('oom_kill 0\n');
    host.files.set(`${cg.appMemoryDir.b}/memory.limit_in_bytes`, '9223372036854771712\n');
    expect(mgr.readLimits(cg, 'b')).toEqual({});
    expect(mgr.readLimits(cg, 'a')).toEqual({ memoryBytes: MiB128 });
  });
});

describe('pids.max (v1)', () => {
  test('the pod-wide limit on the pod dir, an app\'s own on its dir, before anything joins', () => {
    const host = hybridHost();
    cgroupManager(host).createPod(UUID, [{ name: 'a', pidsMax: 40 }, { name: 'b' }], { pidsMax: 4096 });
    const pod = `/sys/fs/cgroup/pids/${POD}`;
    expect(host.files.get(`${pod}/pids.max`)).toBe('4096');
    expect(host.files.get(`${pod}/a/pids.max`)).toBe('40');
    expect(host.files.has(`${pod}/b/pids.max`)).toBe(false);
    expect(callIndex(host, `write ${pod}/pids.max`)).toBeLessThan(callIndex(host, `mkdir ${pod}/a`));
    // Only the pids hierarchy gets it.
    expect(host.calls.filter((c) => c.includes('pids.max') && !c.includes('/pids/'))).toEqual([]);
  });
});
