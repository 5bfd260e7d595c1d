import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { cgroupManager } from '../../../src/cgroups/cgroups.js';
import { cpuWeight } from '../../../src/cgroups/v2.js';
import { RktError } from '../../../src/util/errors.js';
import { callIndex, v2Host } from './fake-trees.js';

const UUID = '7d2f3a10-55aa-4c3e-8e1b-0c9d2e4f6a7b';
const POD = `rkt-${UUID}`;
const EBUSY = 'EBUSY: resource busy or locked, write';

let stderr: string[];
beforeEach(() => {
  stderr = [];
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => { stderr.push(String(chunk)); return true; });
});
afterEach(() => { jest.restoreAllMocks(); });

describe('pure v2, caller at a leaf', () => {
  test('enables controllers on the caller and the pod, puts limits in app dirs and the pod processes in a leaf', () => {
    const host = v2Host('/ci/job');
    const mgr = cgroupManager(host);
    expect(mgr.mode).toBe('v2');
    expect(mgr.devicesEnforced).toBe(false);
    const cg = mgr.createPod(UUID, [{ name: 'a', memoryBytes: 134217728, cpuMillis: 750, cpuShares: 1024 }, { name: 'b' }]);

    const pod = `/sys/fs/cgroup/ci/job/${POD}`;
    expect(host.files.get('/sys/fs/cgroup/ci/job/cgroup.subtree_control')).toBe('+memory +cpu +pids');
    expect(host.files.get(`${pod}/cgroup.subtree_control`)).toBe('+memory +cpu +pids');
    expect(callIndex(host, `write ${pod}/cgroup.subtree_control`)).toBeLessThan(callIndex(host, `mkdir ${pod}/a`));
    expect(host.files.get(`${pod}/a/memory.max`)).toBe('134217728');
    expect(host.files.get(`${pod}/a/cpu.max`)).toBe('75000 100000');
    expect(host.files.get(`${pod}/a/cpu.weight`)).toBe('39');
    expect(host.calls.filter((c) => c.includes('memory.swap.max') || c.startsWith(`write ${pod}/b/`))).toEqual([]);

    expect(cg).toEqual({
      dirs: [`${pod}/b`, `${pod}/a`, `${pod}/stage1.init`, pod],
      podProcs: [`${pod}/stage1.init/cgroup.procs`],
      appProcs: { a: [`${pod}/a/cgroup.procs`], b: [`${pod}/b/cgroup.procs`] },
      appMemoryDir: { a: `${pod}/a`, b: `${pod}/b` },
      devicesEnforced: false,
    });
    expect(mgr.readLimits(cg, 'a')).toEqual({ memoryBytes: 134217728, cpuQuotaUs: 75000, cpuPeriodUs: 100000 });
  });

  test('caller at the root: the pod nests under the root', () => {
    const host = v2Host('/');
    const cg = cgroupManager(host).createPod(UUID, [{ name: 'a', cpuMillis: 2000 }]);
    expect(host.files.get('/sys/fs/cgroup/cgroup.subtree_control')).toBe('+memory +cpu +pids');
    expect(cg.appProcs.a).toEqual([`/sys/fs/cgroup/${POD}/a/cgroup.procs`]);
    expect(host.files.get(`/sys/fs/cgroup/${POD}/a/cpu.max`)).toBe('200000 100000');
  });

  test("'max' reads back as no limit", () => {
    const host = v2Host('/');
    const mgr = cgroupManager(host);
    const cg = mgr.createPod(UUID, [{ name: 'a' }]);
    host.files.set(`/sys/fs/cgroup/${POD}/a/memory.max`, 'max\n');
    host.files.set(`/sys/fs/cgroup/${POD}/a/cpu.max`, 'max 100000\n');
    expect(mgr.readLimits(cg, 'a')).toEqual({ cpuPeriodUs: 100000 });
  });
});

describe('EBUSY on the caller cgroup (it holds processes)', () => {
  test('the pod becomes a sibling of the caller cgroup, nothing is written above it', () => {
    const host = v2Host('/ci/job');
    host.failingWrites.set('/sys/fs/cgroup/ci/job/cgroup.subtree_control', EBUSY);
    const cg = cgroupManager(host).createPod(UUID, [{ name: 'a', memoryBytes: 1 << 26 }]);
    const pod = `/sys/fs/cgroup/ci/${POD}`;
    expect(cg.dirs).toEqual([`${pod}/a`, `${pod}/stage1.init`, pod]);
    expect(host.files.get(`${pod}/a/memory.max`)).toBe(String(1 << 26));
    expect(host.calls.filter((c) => c.startsWith('write /sys/fs/cgroup/ci/cgroup.subtree_control'))).toEqual([]);
    expect(host.dirsWith(POD)).toEqual([pod, `${pod}/a`, `${pod}/stage1.init`]);
  });

  test('EBUSY at the top of the visible tree (cgroup namespace) is an error: there is no parent to use', () => {
    const host = v2Host('/');
    host.failingWrites.set('/sys/fs/cgroup/cgroup.subtree_control', EBUSY);
    expect(() => cgroupManager(host).createPod(UUID, [{ name: 'a' }])).toThrow(
      `cannot enable cgroup controllers "+memory +cpu +pids" in /sys/fs/cgroup: ${EBUSY}: run rkt in a cgroup that may delegate them`);
    expect(host.dirsWith(POD)).toEqual([]);
  });

  test('other refusals are errors, not a reason to move the pod', () => {
    const host = v2Host('/ci/job');
    host.failingWrites.set('/sys/fs/cgroup/ci/job/cgroup.subtree_control', 'EACCES: permission denied, write');
    expect(() => cgroupManager(host).createPod(UUID, [{ name: 'a' }])).toThrow(RktError);
    expect(host.dirsWith(POD)).toEqual([]);
  });
});

describe('controllers the caller cgroup does not offer', () => {
  test('warns for memory, enables only what is offered', () => {
    const host = v2Host('/ci/job', 'cpu pids');
    const cg = cgroupManager(host).createPod(UUID, [{ name: 'a', memoryBytes: 1 << 26, cpuMillis: 500 }]);
    expect(stderr).toEqual(['rkt: warning: resource/memory isolator set but support disabled in the kernel, skipping\n']);
    expect(host.files.get('/sys/fs/cgroup/ci/job/cgroup.subtree_control')).toBe('+cpu +pids');
    expect(cg.appMemoryDir).toEqual({ a: undefined });
    expect(host.files.get(`/sys/fs/cgroup/ci/job/${POD}/a/cpu.max`)).toBe('50000 100000');
  });

  test('none offered: the pod is still grouped under the caller, with no controller writes', () => {
    const host = v2Host('/ci/job', '');
    const cg = cgroupManager(host).createPod(UUID, [{ name: 'a', cpuMillis: 500, cpuShares: 100 }]);
    expect(stderr).toEqual([
      'rkt: warning: resource/cpu isolator set but support disabled in the kernel, skipping\n',
      'rkt: warning: os/linux/cpu-shares isolator set but support disabled in the kernel, skipping\n',
    ]);
    expect(host.calls.filter((c) => c.startsWith('write'))).toEqual([]);
    expect(cg.podProcs).toEqual([`/sys/fs/cgroup/ci/job/${POD}/stage1.init/cgroup.procs`]);
  });
});

describe('rollback', () => {
  test('a refused memory.max removes the pod and its leaf', () => {
    const host = v2Host('/');
    const file = `/sys/fs/cgroup/${POD}/b/memory.max`;
    host.failingWrites.set(file, 'EINVAL: invalid argument, write');
    expect(() => cgroupManager(host).createPod(UUID, [{ name: 'a', memoryBytes: 4096 }, { name: 'b', memoryBytes: -5 }]))
      .toThrow(`cgroup refused "-5" in ${file}`);
    expect(host.dirsWith(POD)).toEqual([]);
  });
});

describe('OOM detection (v2)', () => {
  test.each([['oom_kill 1', true], ['oom_kill 0', false]])('memory.events with %s', (line, killed) => {
    const host = v2Host('/');
    const mgr = cgroupManager(host);
    const cg = mgr.createPod(UUID, [{ name: 'a', memoryBytes: 1 << 26 }]);
    host.files.set(`${cg.appMemoryDir.a}/memory.events`, `low 0\nhigh 0\nmax 17\noom 1\n${line}\noom_group_kill 0\n`);
    expect(mgr.wasOomKilled(cg, 'a')).toBe(killed);
  });
});

describe('cpu.weight from shares', () => {
  test.each([[2, 1], [1024, 39], [262144, 10000], [0, 1], [1 << 20, 10000]])('%i shares -> weight %i', (shares, weight) => {
    expect(cpuWeight(shares)).toBe(weight);
  });
});

describe('pids.max (v2)', () => {
  test('the pod-wide limit on the pod dir (over stage1 and every app), an app\'s own on its dir', () => {
    const host = v2Host('/ci/job');
    cgroupManager(host).createPod(UUID, [{ name: 'a', pidsMax: 40 }, { name: 'b' }], { pidsMax: 4096 });
    const pod = `/sys/fs/cgroup/ci/job/${POD}`;
    expect(host.files.get(`${pod}/pids.max`)).toBe('4096');
    expect(host.files.get(`${pod}/a/pids.max`)).toBe('40');
    expect(host.files.has(`${pod}/b/pids.max`)).toBe(false);
    // Set before any process can join: the leaf and the app dirs come after it.
    expect(callIndex(host, `write ${pod}/pids.max`)).toBeLessThan(callIndex(host, `mkdir ${pod}/stage1.init`));
  });

  test('a refused pids.max rolls the pod back with a one-line error', () => {
    const host = v2Host('/ci/job');
    host.failingWrites.set(`/sys/fs/cgroup/ci/job/${POD}/a/pids.max`, 'EINVAL: invalid argument, write');
    expect(() => cgroupManager(host).createPod(UUID, [{ name: 'a', pidsMax: 40 }], { pidsMax: 4096 }))
      .toThrow(`cgroup refused "40" in /sys/fs/cgroup/ci/job/${POD}/a/pids.max: EINVAL: invalid argument, write: check --pids-limit`);
    expect(host.dirsWith(POD)).toEqual([]);
  });
});
