/**
 * --memory and --cpu on this host's cgroups (v1 controllers): the limits land in the
 * app's cgroup files, and the kernel enforces them: an allocation past --memory is
 * OOM-killed (and `rkt status` says so), a busy loop under --cpu=500m is throttled at half a core.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RktEnv, describeIf, makeEnv, rkt, skipReason, waitFor } from '../helpers/rkt.js';
import { INSECURE, cgroupMountOf, cgroupOf, podCgroupDirs, podProcess, podTraces, shArgs, startPod, statusJson, statusText, teardown } from '../helpers/pods.js';

const v1 = () => { try { cgroupMountOf('memory'); cgroupMountOf('cpu'); return true; } catch { return false; } };
const skip = skipReason() ?? (v1() ? undefined : 'needs cgroup v1 memory and cpu controllers (this suite reads v1 files)');
const suite = describeIf(skip);

const read = (file: string) => fs.readFileSync(file, 'utf8').trim();

suite('pod cgroups', () => {
  let env: RktEnv;
  beforeAll(() => { env = makeEnv(); });
  afterAll(async () => { await teardown(env); });

  test('--memory=128M and --cpu=750m are written into the running app\'s cgroups', async () => {
    const pod = await startPod(env, [INSECURE, 'run', '--net=host', BUSYBOX_ACI, '--memory=128M', '--cpu=750m', '--exec=/bin/sleep', '--', '300'], /sleep 300$/);
    try {
      const app = podProcess(env, pod.uuid, /sleep 300$/);
      const mem = cgroupOf(app!, 'memory');
      const cpu = cgroupOf(app!, 'cpu');
      expect(mem).toContain(`rkt-${pod.uuid}`);
      expect(cpu).toContain(`rkt-${pod.uuid}`);
      expect(read(path.join(mem, 'memory.limit_in_bytes'))).toBe('128000000');
      expect(read(path.join(cpu, 'cpu.cfs_quota_us'))).toBe('75000');
      expect(read(path.join(cpu, 'cpu.cfs_period_us'))).toBe('100000');
      expect(read(path.join(mem, 'cgroup.procs')).split('\n')).toContain(String(app));
    } finally {
      rkt(env, ['stop', pod.uuid]);
      await pod.done;
    }
  });

  test('stage1 joins through tasks (v1): PID 1 in the pod\'s cgroups, the app in its own, the holder left in rkt\'s', async () => {
    const pod = await startPod(env, [INSECURE, 'run', '--net=host', BUSYBOX_ACI, '--name=a', '--memory=64M', '--exec=/bin/sleep', '--', '301'], /sleep 301$/);
    try {
      const app = podProcess(env, pod.uuid, /sleep 301$/)!;
      const holder = Number(statusText(env, pod.uuid).pid);
      // PID 1: the holder's fork, with the holder's command line.
      const init = fs.readFileSync(`/proc/${holder}/task/${holder}/children`, 'utf8').trim().split(' ').map(Number)
        .find((p) => /^\S+\/rkt-helper --pod .* --init /.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')))!;
      expect([app, init, holder].every((p) => p > 0)).toBe(true);
      for (const controller of ['memory', 'cpu', 'pids']) {
        expect([controller, cgroupOf(app, controller).endsWith(`/rkt-${pod.uuid}/a`)]).toEqual([controller, true]);
        expect([controller, cgroupOf(init, controller).endsWith(`/rkt-${pod.uuid}`)]).toEqual([controller, true]);
        expect([controller, cgroupOf(holder, controller)]).toEqual([controller, cgroupOf('self', controller)]);
        // The whole process moved (its only thread), as cgroup.procs lists it.
        expect(read(path.join(cgroupOf(app, controller), 'cgroup.procs')).split('\n')).toContain(String(app));
      }
      expect(cgroupOf(init, 'devices').endsWith(`/rkt-${pod.uuid}`)).toBe(true);
    } finally {
      rkt(env, ['stop', pod.uuid]);
      await pod.done;
    }
  });

  test('an allocation past --memory is OOM-killed: exit 137, and rkt status says so', () => {
    const uuidFile = path.join(env.base, 'oom-uuid');
    // busybox tail keeps the last N bytes of a stream in memory: 100 MB against a 32 MB limit.
    const r = rkt(env, [INSECURE, 'run', '--net=host', `--uuid-file-save=${uuidFile}`, BUSYBOX_ACI, '--memory=32M', '--exec=/bin/tail', '--', '-c', '100000000', '/dev/zero']);
    expect(r.status).toBe(137);
    const uuid = fs.readFileSync(uuidFile, 'utf8');
    const text = statusText(env, uuid);
    expect(text['app-busybox']).toBe('137');
    expect(text['oom-killed']).toBe('busybox');
    const json = statusJson(env, uuid);
    expect(json.apps[0]).toMatchObject({ name: 'busybox', state: 'exited', exit_code: 137 }); // rkt's api/v1 has no OOM field: the text says it
  });

  test('an app that stays under --memory is not reported as OOM-killed', () => {
    const uuidFile = path.join(env.base, 'no-oom-uuid');
    const r = rkt(env, shArgs(['--net=host', `--uuid-file-save=${uuidFile}`], ['--memory=64M'], 'head -c 20000000 /dev/zero | tail -c 10000000 | wc -c'));
    expect(r.stdout.trim()).toBe('10000000');
    expect(r.status).toBe(0);
    const uuid = fs.readFileSync(uuidFile, 'utf8');
    expect(statusText(env, uuid)['oom-killed']).toBeUndefined();
  });

  test('a busy loop under --cpu=500m is throttled by the kernel at half a core', async () => {
    const pod = await startPod(env, shArgs(['--net=host'], ['--cpu=500m'], '(while :; do :; done) & echo ready; exec sleep 1000'), 'ready');
    try {
      const app = podProcess(env, pod.uuid, /sleep 1000$/);
      const cpuDir = cgroupOf(app!, 'cpu');
      expect(cpuDir).toContain(`rkt-${pod.uuid}`);
      expect(read(path.join(cpuDir, 'cpu.cfs_quota_us'))).toBe('50000');
      expect(read(path.join(cpuDir, 'cpu.cfs_period_us'))).toBe('100000');
      // The loop uses up its 50 ms per 100 ms period and is throttled for the rest.
      const stat = () => Object.fromEntries(read(path.join(cpuDir, 'cpu.stat')).split('\n').map((l) => l.split(' '))) as Record<string, string>;
      await waitFor(() => Number(stat().nr_throttled) >= 5, 60_000, 'the kernel to throttle the loop');
      expect(Number(stat().throttled_time)).toBeGreaterThan(0);
    } finally {
      rkt(env, ['stop', '--force', pod.uuid]);
      await pod.done;
    }
  });

  test('gc removes every cgroup of the pods', () => {
    const uuids = JSON.parse(rkt(env, ['list', '--format=json']).stdout).map((p: { name: string }) => p.name) as string[];
    expect(uuids.some((u) => podCgroupDirs(u).length > 0)).toBe(true); // exited pods keep theirs until gc
    expect(rkt(env, ['gc', '--grace-period=0s']).status).toBe(0);
    for (const u of uuids) expect(podTraces(env, u)).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
  });
});
