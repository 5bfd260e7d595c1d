/**
 * The cgroups layer against this machine's real kernel (hybrid: v1 controllers plus a
 * cgroup2 mount holding only hugetlb). Needs root; every pod cgroup is removed again.
 */
import { afterEach, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cgroupManager, type CgroupManager, type PodCgroups } from '../../src/cgroups/cgroups.js';
import { realHost } from '../../src/host/real.js';
import { describeIf } from '../helpers/rkt.js';

const isRoot = process.getuid?.() === 0;
const MiB128 = 134217728;

/** Every directory named `name` anywhere under /sys/fs/cgroup. */
function findCgroupDirs(name: string, dir = '/sys/fs/cgroup'): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const full = path.join(dir, entry.name);
    if (entry.name === name) found.push(full);
    found.push(...findCgroupDirs(name, full));
  }
  return found;
}

function read(file: string): string {
  return fs.readFileSync(file, 'utf8').trim();
}

/** /proc/<pid>/cgroup as hierarchy line prefix ("4:memory") -> path. */
function procCgroup(pid: number | 'self'): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of read(`/proc/${pid}/cgroup`).split('\n')) {
    const i = line.indexOf(':', line.indexOf(':') + 1);
    out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout })));
}

/** Runs a shell script in a process that first joins the given cgroups, as an app launcher does. */
function runJoined(procsFiles: string[], script: string): ChildProcess {
  return spawn('sh', ['-c', `for f; do echo 0 > "$f" || exit 90; done; ${script}`, 'sh', ...procsFiles], { stdio: ['ignore', 'pipe', 'inherit'] });
}

describeIf(isRoot ? undefined : 'needs root')('cgroups on this host', () => {
  let mgr: CgroupManager;
  let cg: PodCgroups | undefined;
  let uuid: string;
  const children: ChildProcess[] = [];

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        const done = exited(child);
        child.kill('SIGKILL');
        await done;
      }
    }
    if (cg) expect(mgr.destroyPod(cg)).toEqual([]);
    cg = undefined;
    expect(findCgroupDirs(`rkt-${uuid}`)).toEqual([]);
  });

  function createPod(apps: Parameters<CgroupManager['createPod']>[1]): PodCgroups {
    mgr = cgroupManager(realHost);
    uuid = randomUUID();
    cg = mgr.createPod(uuid, apps);
    return cg;
  }

  test('limits are written, a real process joins an app cgroup, and destroy leaves nothing', async () => {
    const pod = createPod([{ name: 'a', memoryBytes: MiB128, cpuMillis: 750 }, { name: 'b', memoryBytes: MiB128, cpuMillis: 750 }]);
    expect(mgr.mode).toBe('hybrid');

    const self = procCgroup('self');
    const memoryCaller = [...self].find(([k]) => /^\d+:memory$/.test(k))![1];
    const memDir = `/sys/fs/cgroup/memory${memoryCaller === '/' ? '' : memoryCaller}/rkt-${uuid}/a`;
    expect(pod.appMemoryDir.a).toBe(memDir);
    expect(read(`${memDir}/memory.limit_in_bytes`)).toBe(String(MiB128));
    expect(read(`/sys/fs/cgroup/cpu/rkt-${uuid}/b/cpu.cfs_quota_us`)).toBe('75000');
    expect(read(`/sys/fs/cgroup/cpu/rkt-${uuid}/b/cpu.cfs_period_us`)).toBe('100000');
    expect(mgr.readLimits(pod, 'b')).toEqual({ memoryBytes: MiB128, cpuQuotaUs: 75000, cpuPeriodUs: 100000 });
    expect(read(`/sys/fs/cgroup/devices/rkt-${uuid}/devices.list`).split('\n').sort()).toEqual(
      ['c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 10:200 rwm', 'c 136:* rwm', 'c 5:0 rwm', 'c 5:2 rwm'].sort());
    expect(findCgroupDirs(`rkt-${uuid}`, '/sys/fs/cgroup/unified')).toEqual([]);

    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    children.push(sleeper);
    const pid = sleeper.pid!;
    for (const file of [...pod.podProcs, ...pod.appProcs.a]) fs.writeFileSync(file, String(pid));

    const joined = procCgroup(pid);
    for (const [hierarchy, callerPath] of self) {
      const controllers = hierarchy.split(':')[1].split(',');
      const base = `${callerPath === '/' ? '' : callerPath}/rkt-${uuid}`;
      const expected = controllers.some((c) => ['memory', 'cpu', 'cpuacct', 'cpuset', 'pids'].includes(c)) ? `${base}/a`
        : controllers.includes('devices') ? base
          : callerPath;
      expect([hierarchy, joined.get(hierarchy)]).toEqual([hierarchy, expected]);
    }

    const done = exited(sleeper);
    sleeper.kill('SIGKILL');
    await done;
  });

  test('device access outside the minimal /dev is denied in the pod', async () => {
    const pod = createPod([{ name: 'a' }]);
    const child = runJoined([...pod.podProcs, ...pod.appProcs.a], [
      'dd if=/dev/zero of=/dev/null count=1 2>/dev/null && echo zero-allowed',
      'dd if=/dev/loop0 of=/dev/null count=0 2>/dev/null || echo loop0-denied',
    ].join('; '));
    children.push(child);
    const result = await exited(child);
    expect(result).toEqual({ code: 0, signal: null, stdout: 'zero-allowed\nloop0-denied\n' });
  });

  test('the memory limit OOM-kills an app that exceeds it, and only that app is reported', async () => {
    const pod = createPod([{ name: 'small', memoryBytes: 32 * 1024 * 1024 }, { name: 'idle' }]);
    const child = runJoined([...pod.podProcs, ...pod.appProcs.small], 'exec dd if=/dev/zero of=/dev/null bs=64M count=1');
    children.push(child);
    const result = await exited(child);
    expect(result.signal).toBe('SIGKILL');
    expect(mgr.wasOomKilled(pod, 'small')).toBe(true);
    expect(mgr.wasOomKilled(pod, 'idle')).toBe(false);
  });
});
