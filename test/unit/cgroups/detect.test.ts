import { describe, expect, test } from '@jest/globals';
import { detectCgroups, parseMountInfo, parseProcCgroup } from '../../../src/cgroups/detect.js';
import { FakeHost } from '../../helpers/fake-host.js';
import { CI_SERVICE, MEMORY_CALLER, classicV1Host, hybridHost, v2Host } from './fake-trees.js';

describe('parseMountInfo', () => {
  test('keeps cgroup mounts, reads past optional fields and unescapes paths', () => {
    const text = [
      '22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:7 master:2 - cgroup cgroup rw,cpu,cpuacct',
      '41 31 0:38 /ci\\040job /mnt/my\\040cg rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
    ].join('\n');
    expect(parseMountInfo(text)).toEqual([
      { root: '/', mountPoint: '/sys/fs/cgroup/cpu,cpuacct', fsType: 'cgroup', superOptions: ['rw', 'cpu', 'cpuacct'] },
      { root: '/ci job', mountPoint: '/mnt/my cg', fsType: 'cgroup2', superOptions: ['rw', 'nsdelegate'] },
    ]);
  });
});

describe('parseProcCgroup', () => {
  test('splits controllers; v2 has none; paths may contain colons', () => {
    expect(parseProcCgroup('4:memory:/process_api/x\n3:cpu,cpuacct:/\n1:name=systemd:/a:b\n0::/\n')).toEqual([
      { controllers: ['memory'], path: '/process_api/x' },
      { controllers: ['cpu', 'cpuacct'], path: '/' },
      { controllers: ['name=systemd'], path: '/a:b' },
      { controllers: [], path: '/' },
    ]);
  });
});

describe('detectCgroups', () => {
  test("this machine: hybrid, cpu and cpuacct apart, memory nested under the caller, named hierarchy skipped", () => {
    const layout = detectCgroups(hybridHost());
    expect(layout.mode).toBe('hybrid');
    const byController = Object.fromEntries(layout.v1.map((h) => [h.controllers.join(','), h.callerDir]));
    expect(byController).toEqual({
      pids: '/sys/fs/cgroup/pids',
      blkio: '/sys/fs/cgroup/blkio',
      freezer: '/sys/fs/cgroup/freezer',
      devices: '/sys/fs/cgroup/devices',
      memory: MEMORY_CALLER,
      cpuset: '/sys/fs/cgroup/cpuset',
      cpuacct: '/sys/fs/cgroup/cpuacct',
      cpu: '/sys/fs/cgroup/cpu',
    });
    expect(layout.unified).toEqual({ controllers: ['hugetlb'], mountPoint: '/sys/fs/cgroup/unified', callerDir: '/sys/fs/cgroup/unified' });
  });

  test('classic v1: co-mounted cpu,cpuacct is one hierarchy; caller inside a service', () => {
    const layout = detectCgroups(classicV1Host());
    expect(layout.mode).toBe('v1');
    expect(layout.unified).toBeUndefined();
    const cpu = layout.v1.find((h) => h.controllers.includes('cpu'));
    expect(cpu).toEqual({ controllers: ['cpu', 'cpuacct'], mountPoint: '/sys/fs/cgroup/cpu,cpuacct', callerDir: `/sys/fs/cgroup/cpu,cpuacct${CI_SERVICE}` });
    expect(layout.v1.some((h) => h.controllers.includes('name=systemd'))).toBe(false);
  });

  test('pure v2: controllers come from the caller cgroup', () => {
    const layout = detectCgroups(v2Host('/ci/job', 'cpu memory pids'));
    expect(layout).toEqual({
      mode: 'v2',
      v1: [],
      unified: { controllers: ['cpu', 'memory', 'pids'], mountPoint: '/sys/fs/cgroup', callerDir: '/sys/fs/cgroup/ci/job' },
    });
  });

  test('v2 with the caller at the root', () => {
    expect(detectCgroups(v2Host('/')).unified?.callerDir).toBe('/sys/fs/cgroup');
  });

  test('a mount of a subtree (container bind mount) strips the subtree from the caller path', () => {
    const host = new FakeHost();
    host.files.set('/proc/self/mountinfo', '35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n');
    host.files.set('/proc/self/cgroup', '4:memory:/docker/abc/sub\n');
    expect(detectCgroups(host).v1).toEqual([{ controllers: ['memory'], mountPoint: '/sys/fs/cgroup/memory', callerDir: '/sys/fs/cgroup/memory/sub' }]);
  });

  test('a controller listed in /proc/self/cgroup but not mounted is left out', () => {
    const host = new FakeHost();
    host.files.set('/proc/self/mountinfo', '35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n');
    host.files.set('/proc/self/cgroup', '4:memory:/\n3:pids:/\n');
    expect(detectCgroups(host).v1.map((h) => h.controllers)).toEqual([['memory']]);
  });
});
