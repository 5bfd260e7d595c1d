import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { cgroupManager } from '../../../src/cgroups/cgroups.js';
import { classicV1Host, hybridHost, v2Host } from './fake-trees.js';

const UUID = '0b5c0a4e-1d1a-4f7e-9c55-2f4c1c7a9e01';

beforeEach(() => { jest.spyOn(process.stderr, 'write').mockImplementation(() => true); });
afterEach(() => { jest.restoreAllMocks(); });

describe('what an app sees of its cgroups (read-only, from its own cgroup namespace)', () => {
  test("this machine's hybrid layout: the v1 hierarchies the app has a cgroup in, by their host names", () => {
    const mgr = cgroupManager(hybridHost());
    const cg = mgr.createPod(UUID, [{ name: 'a', memoryBytes: 1 << 27, cpuMillis: 500 }]);
    // Not devices (pod level), blkio, freezer, name=systemd or the hugetlb-only cgroup2: the
    // app has no cgroup of its own there, so their mounts would show more than its own.
    expect(mgr.appView(cg, 'a')).toEqual(['cpu', 'cpuacct', 'cpuset', 'memory', 'pids'].map((dir) => ({ dir, type: 'cgroup', options: dir, links: [] })));
  });

  test('hybrid with controllers only cgroup2 offers: unified beside the v1 ones', () => {
    const mgr = cgroupManager(hybridHost({ unifiedControllers: 'memory pids', withoutMemory: true }));
    const cg = mgr.createPod(UUID, [{ name: 'a', memoryBytes: 1 << 27 }]);
    const view = mgr.appView(cg, 'a');
    expect(view.find((v) => v.type === 'cgroup2')).toEqual({ dir: 'unified', type: 'cgroup2', options: '', links: [] });
    expect(view.some((v) => v.dir === 'memory')).toBe(false);
  });

  test('co-mounted v1 controllers: one mount, the other names as links (cpu -> cpu,cpuacct)', () => {
    const mgr = cgroupManager(classicV1Host());
    const cg = mgr.createPod(UUID, [{ name: 'a', cpuMillis: 500 }]);
    const cpu = mgr.appView(cg, 'a').find((v) => v.dir === 'cpu,cpuacct');
    expect(cpu).toEqual({ dir: 'cpu,cpuacct', type: 'cgroup', options: 'cpu,cpuacct', links: ['cpu', 'cpuacct'] });
  });

  test('pure v2: the one cgroup2 mount is /sys/fs/cgroup itself', () => {
    const mgr = cgroupManager(v2Host('/user.slice/ci'));
    const cg = mgr.createPod(UUID, [{ name: 'a', memoryBytes: 1 << 27 }]);
    expect(mgr.appView(cg, 'a')).toEqual([{ dir: '', type: 'cgroup2', options: '', links: [] }]);
  });

  test('an app with no cgroup of its own sees none', () => {
    const mgr = cgroupManager(hybridHost());
    const cg = mgr.createPod(UUID, [{ name: 'a' }]);
    expect(mgr.appView(cg, 'nosuchapp')).toEqual([]);
  });
});

describe('where a stage1 shell joins its cgroups (joinFiles)', () => {
  test('v1 hierarchies: the cgroup\'s tasks file (moves only the writer, no RCU grace period); cgroup2: cgroup.procs', () => {
    const mgr = cgroupManager(hybridHost({ unifiedControllers: 'memory pids', withoutMemory: true }));
    const cg = mgr.createPod(UUID, [{ name: 'a', memoryBytes: 1 << 27, cpuMillis: 500 }]);
    const files = [...cg.podProcs, ...cg.appProcs.a];
    const joined = mgr.joinFiles(files);
    expect(joined).toHaveLength(files.length);
    const unified = (f: string) => f.startsWith('/sys/fs/cgroup/unified/');
    expect(files.some(unified)).toBe(true);
    expect(files.some((f) => !unified(f))).toBe(true);
    joined.forEach((f, i) => expect(f).toBe(unified(files[i]) ? files[i] : files[i].replace(/\/cgroup\.procs$/, '/tasks')));
  });

  test('pure v2: cgroup.procs everywhere', () => {
    const mgr = cgroupManager(v2Host('/user.slice/ci'));
    const cg = mgr.createPod(UUID, [{ name: 'a', memoryBytes: 1 << 27 }]);
    expect(mgr.joinFiles(cg.podProcs)).toEqual(cg.podProcs);
    expect(cg.podProcs.every((f) => f.endsWith('/cgroup.procs'))).toBe(true);
  });
});
