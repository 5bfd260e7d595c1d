import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { deletePod, GcOptions, gcPods, markPods } from '../../../src/stage0/gc.js';
import { ensurePodsDirs, HOLDER_FILE, listPods, Pod, PodStateDir, podDir } from '../../../src/stage0/pod.js';
import { CGROUPS_FILE } from '../../../src/stage0/start.js';
import type { PodCgroups } from '../../../src/cgroups/cgroups.js';
import { FakeHost } from '../../helpers/fake-host.js';

/** A FakeHost whose rmdir fails for busy cgroup dirs, as the kernel does while processes remain. */
class BusyHost extends FakeHost {
  busy = new Set<string>();
  rmdir(p: string): void {
    if (this.busy.has(p)) throw new Error(`EBUSY: resource busy, rmdir '${p}'`);
    super.rmdir(p);
  }
}

const MIN = 60_000;
const HOUR = 60 * MIN;
const opts = (over: Partial<GcOptions> = {}): GcOptions => ({ gracePeriodMs: 30 * MIN, expirePreparedMs: 24 * HOUR, markOnly: false, ...over });

let tmp: string;
let dataDir: string;
let host: BusyHost;
let stderr: string[];
let stdout: string[];
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-gc-'));
  dataDir = path.join(tmp, 'data');
  ensurePodsDirs(dataDir);
  host = new BusyHost();
  host.clock = new Date(); // "now" by default: pods made by the test are fresh
  stderr = [];
  stdout = [];
  jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { stdout.push(String(s)); return true; });
  jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { stderr.push(String(s)); return true; });
});
afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(tmp, { recursive: true, force: true });
});

let nextId = 1;
/** A pod in `state`; holder: a pid with start time, alive or not in the FakeHost. */
function makePod(state: PodStateDir, holder?: { pid: number; alive: boolean }): Pod {
  const uuid = `0000${String(nextId++).padStart(4, '0')}-1111-4222-8333-444455556666`;
  const dir = podDir(dataDir, state, uuid);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'pod'), '{}');
  fs.mkdirSync(path.join(dir, 'rkt', 'status'), { recursive: true });
  if (holder) {
    fs.writeFileSync(path.join(dir, HOLDER_FILE), `${holder.pid} 4242\n`);
    if (holder.alive) host.processes.set(holder.pid, '4242');
  }
  return { uuid, stateDir: state, dir };
}

const where = (uuid: string): PodStateDir | undefined => listPods(dataDir).find((p) => p.uuid === uuid)?.stateDir;
const garbageEntries = () => fs.readdirSync(path.join(dataDir, 'pods', 'garbage'));
const later = (ms: number) => { host.clock = new Date(Date.now() + ms); };

describe('markPods', () => {
  test('an exited run/ pod (holder dead) moves to exited-garbage', () => {
    const p = makePod('run', { pid: 100, alive: false });
    markPods(host, dataDir, opts());
    expect(where(p.uuid)).toBe('exited-garbage');
    expect(fs.existsSync(p.dir)).toBe(false);
    // Its content moved with it.
    expect(fs.existsSync(path.join(podDir(dataDir, 'exited-garbage', p.uuid), 'pod'))).toBe(true);
  });

  test('a running pod (holder alive) stays in run/', () => {
    const p = makePod('run', { pid: 101, alive: true });
    markPods(host, dataDir, opts());
    expect(where(p.uuid)).toBe('run');
  });

  test('an aborted prepare moves to garbage; a preparing pod stays', () => {
    const aborted = makePod('prepare', { pid: 102, alive: false });
    const preparing = makePod('prepare', { pid: 103, alive: true });
    markPods(host, dataDir, opts());
    expect(where(aborted.uuid)).toBe('garbage');
    expect(where(preparing.uuid)).toBe('prepare');
  });

  test('a prepared pod expires to garbage only after expirePreparedMs', () => {
    const p = makePod('prepared');
    markPods(host, dataDir, opts());
    expect(where(p.uuid)).toBe('prepared');
    later(23 * HOUR);
    markPods(host, dataDir, opts());
    expect(where(p.uuid)).toBe('prepared');
    later(25 * HOUR);
    markPods(host, dataDir, opts());
    expect(where(p.uuid)).toBe('garbage');
  });

  test('a shorter --expire-prepared applies', () => {
    const p = makePod('prepared');
    later(2 * MIN);
    markPods(host, dataDir, opts({ expirePreparedMs: MIN }));
    expect(where(p.uuid)).toBe('garbage');
  });

  test('an unheld embryo older than a minute is garbage; a young or held one is left', () => {
    const young = makePod('embryo');
    const held = makePod('embryo', { pid: 104, alive: true });
    const old = makePod('embryo', { pid: 105, alive: false });
    markPods(host, dataDir, opts());
    expect(where(old.uuid)).toBe('embryo');
    later(2 * MIN);
    markPods(host, dataDir, opts());
    expect(where(young.uuid)).toBe('garbage');
    expect(where(old.uuid)).toBe('garbage');
    expect(where(held.uuid)).toBe('embryo');
  });

  test('pods already in the garbage states are not moved', () => {
    const eg = makePod('exited-garbage', { pid: 106, alive: false });
    const g = makePod('garbage');
    later(48 * HOUR);
    markPods(host, dataDir, opts());
    expect(where(eg.uuid)).toBe('exited-garbage');
    expect(where(g.uuid)).toBe('garbage');
  });
});

describe('gcPods', () => {
  test('an exited pod is kept during the grace period, then deleted', async () => {
    const p = makePod('run', { pid: 200, alive: false });
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    expect(where(p.uuid)).toBe('exited-garbage');
    later(29 * MIN);
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    expect(where(p.uuid)).toBe('exited-garbage');
    later(31 * MIN);
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    expect(where(p.uuid)).toBeUndefined();
    expect(garbageEntries()).toEqual([]);
    expect(fs.readdirSync(path.join(dataDir, 'pods', 'exited-garbage'))).toEqual([]);
    expect(stderr.join('')).toContain(`pod "${p.uuid}" not removed: still within grace period (30m0s)`);
    expect(stdout.join('')).toBe(`Garbage collecting pod "${p.uuid}"\n`);
  });

  test('a zero grace period deletes an exited pod in one gc', async () => {
    const p = makePod('run', { pid: 201, alive: false });
    later(1000);
    await gcPods(host, dataDir, opts({ gracePeriodMs: 0 }));
    expect(where(p.uuid)).toBeUndefined();
  });

  test('a zero grace period deletes an exited pod in the same millisecond it was marked (clock never moves)', async () => {
    // The mark stamps the pod with the Host clock and the age is read against the same clock,
    // so an age of exactly 0 (or a kernel timestamp a fraction of a millisecond ahead) is not "within" 0s.
    const pods = Array.from({ length: 50 }, (_, i) => makePod('run', { pid: 5000 + i, alive: false }));
    expect(await gcPods(host, dataDir, opts({ gracePeriodMs: 0 }))).toBe(0);
    for (const p of pods) expect(where(p.uuid)).toBeUndefined();
    expect(stderr.join('')).not.toContain('not removed');
  });

  test('leftover processes in a dead pod\'s cgroups are killed and waited for before the cgroups are removed', async () => {
    const p = makePod('run', { pid: 301, alive: false });
    const cg: PodCgroups = {
      dirs: ['/cg/rkt-z/app', '/cg/rkt-z'], podProcs: ['/cg/rkt-z/cgroup.procs'],
      appProcs: { app: ['/cg/rkt-z/app/cgroup.procs'] }, appMemoryDir: {}, devicesEnforced: true,
    };
    fs.writeFileSync(path.join(p.dir, CGROUPS_FILE), JSON.stringify(cg));
    host.mkdirp('/cg/rkt-z/app');
    host.files.set('/cg/rkt-z/app/cgroup.procs', '4001\n4002\n');
    host.files.set('/cg/rkt-z/cgroup.procs', '');
    host.processes.set(4001, '1');
    host.processes.set(4002, '1');
    expect(await gcPods(host, dataDir, opts({ gracePeriodMs: 0 }))).toBe(0);
    expect(host.killed).toEqual([{ pid: 4001, signal: 'SIGKILL' }, { pid: 4002, signal: 'SIGKILL' }]);
    const calls = host.calls.filter((c) => /^(kill|sleep|rmdir)/.test(c));
    expect(calls.indexOf('sleep 10')).toBeLessThan(calls.indexOf('rmdir /cg/rkt-z/app'));
    expect(host.exists('/cg/rkt-z')).toBe(false);
    expect(where(p.uuid)).toBeUndefined();
  });

  test('a leftover that SIGKILL does not end keeps the pod in garbage/ after a bounded wait, with the fix named', async () => {
    const p = makePod('run', { pid: 302, alive: false });
    const cg: PodCgroups = { dirs: ['/cg/rkt-s'], podProcs: ['/cg/rkt-s/cgroup.procs'], appProcs: {}, appMemoryDir: {}, devicesEnforced: true };
    fs.writeFileSync(path.join(p.dir, CGROUPS_FILE), JSON.stringify(cg));
    host.mkdirp('/cg/rkt-s');
    host.files.set('/cg/rkt-s/cgroup.procs', '4100\n');
    host.unkillable.add(4100);
    const start = host.now().getTime();
    expect(await gcPods(host, dataDir, opts({ gracePeriodMs: 0 }))).toBe(1);
    expect(host.now().getTime() - start).toBeGreaterThanOrEqual(5000);
    expect(host.now().getTime() - start).toBeLessThan(6000);
    expect(stderr.join('')).toContain(`cannot garbage collect pod ${p.uuid}: cgroups still in use: /cg/rkt-s: end the processes listed in their cgroup.procs; it stays in garbage/: run "rkt gc" again`);
    expect(where(p.uuid)).toBe('garbage');
  });

  test('garbage pods (aborted prepares, expired prepared) are deleted at once, with no grace period', async () => {
    const aborted = makePod('prepare', { pid: 202, alive: false });
    const g = makePod('garbage');
    await gcPods(host, dataDir, opts());
    expect(where(aborted.uuid)).toBeUndefined();
    expect(where(g.uuid)).toBeUndefined();
    expect(garbageEntries()).toEqual([]);
  });

  test('running, preparing, prepared and embryo pods are left alone', async () => {
    const running = makePod('run', { pid: 203, alive: true });
    const preparing = makePod('prepare', { pid: 204, alive: true });
    const prepared = makePod('prepared');
    const embryo = makePod('embryo', { pid: 205, alive: true });
    later(10 * HOUR);
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    expect([where(running.uuid), where(preparing.uuid), where(prepared.uuid), where(embryo.uuid)])
      .toEqual(['run', 'prepare', 'prepared', 'embryo']);
    expect(fs.existsSync(path.join(running.dir, 'pod'))).toBe(true);
  });

  test('an exited-garbage pod whose holder is alive again is not deleted', async () => {
    const p = makePod('exited-garbage', { pid: 206, alive: true });
    later(HOUR);
    await gcPods(host, dataDir, opts());
    expect(where(p.uuid)).toBe('exited-garbage');
  });

  test('markOnly marks but deletes nothing', async () => {
    const exited = makePod('run', { pid: 207, alive: false });
    const g = makePod('garbage');
    later(HOUR);
    expect(await gcPods(host, dataDir, opts({ markOnly: true, gracePeriodMs: 0 }))).toBe(0);
    expect(where(exited.uuid)).toBe('exited-garbage');
    expect(where(g.uuid)).toBe('garbage');
    expect(host.execCalls).toEqual([]);
  });

  test('a pod without cgroups.json, netns or mounts is deleted cleanly, with no host effects', async () => {
    const p = makePod('garbage');
    fs.mkdirSync(path.join(p.dir, 'stage1', 'rootfs'), { recursive: true });
    fs.writeFileSync(path.join(p.dir, 'stage1', 'rootfs', 'f'), 'x');
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    expect(fs.existsSync(p.dir)).toBe(false);
    expect(garbageEntries()).toEqual([]);
    expect(host.execCalls).toEqual([]);
    expect(host.calls).toEqual([]);
  });

  test('a claimed .uuid.deleting.PID dir whose PID is dead is finished by the next gc', async () => {
    const uuid = 'deadbeef-0000-4000-8000-000000000001';
    const claimed = path.join(dataDir, 'pods', 'garbage', `.${uuid}.deleting.999999`);
    fs.mkdirSync(path.join(claimed, 'rkt'), { recursive: true });
    host.mounts = [`${claimed}/stage1/rootfs`];
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    expect(fs.existsSync(claimed)).toBe(false);
    expect(host.execCalls.map((c) => [c.file, ...c.args])).toEqual([['umount', '-l', `${claimed}/stage1/rootfs`]]);
  });

  test('a claim whose PID is alive (another gc at work) is left to it; non-claim dot-names are ignored', async () => {
    const uuid = 'deadbeef-0000-4000-8000-000000000002';
    const claimed = path.join(dataDir, 'pods', 'garbage', `.${uuid}.deleting.4000`);
    fs.mkdirSync(claimed);
    host.processes.set(4000, '1');
    const other = path.join(dataDir, 'pods', 'garbage', '.something-else');
    fs.mkdirSync(other);
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    expect(fs.existsSync(claimed)).toBe(true);
    expect(fs.existsSync(other)).toBe(true);
    // Once that gc is gone, the claim is finished.
    host.processes.delete(4000);
    await gcPods(host, dataDir, opts());
    expect(fs.existsSync(claimed)).toBe(false);
  });

  test('cgroups.json: the pod cgroups are removed deepest first before the dir is deleted', async () => {
    const p = makePod('garbage');
    const cg: PodCgroups = {
      dirs: ['/sys/fs/cgroup/memory/rkt-x/app', '/sys/fs/cgroup/memory/rkt-x', '/sys/fs/cgroup/cpu/rkt-x/gone'],
      podProcs: ['/sys/fs/cgroup/memory/rkt-x/cgroup.procs'],
      appProcs: { app: ['/sys/fs/cgroup/memory/rkt-x/app/cgroup.procs'] },
      appMemoryDir: { app: '/sys/fs/cgroup/memory/rkt-x/app' },
      devicesEnforced: true,
    };
    fs.writeFileSync(path.join(p.dir, CGROUPS_FILE), JSON.stringify(cg));
    host.mkdirp('/sys/fs/cgroup/memory/rkt-x/app');
    host.calls = [];
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    expect(host.calls.filter((c) => c.startsWith('rmdir'))).toEqual([
      'rmdir /sys/fs/cgroup/memory/rkt-x/app',
      'rmdir /sys/fs/cgroup/memory/rkt-x',
    ]);
    expect(host.exists('/sys/fs/cgroup/memory/rkt-x')).toBe(false);
    expect(where(p.uuid)).toBeUndefined();
    expect(garbageEntries()).toEqual([]);
  });

  test('busy cgroups: the pod is put back in garbage/ with a warning and deleted by a later gc', async () => {
    const p = makePod('run', { pid: 300, alive: false });
    const cg: PodCgroups = { dirs: ['/cg/rkt-y/app', '/cg/rkt-y'], podProcs: [], appProcs: {}, appMemoryDir: {}, devicesEnforced: true };
    fs.writeFileSync(path.join(p.dir, CGROUPS_FILE), JSON.stringify(cg));
    host.mkdirp('/cg/rkt-y/app');
    host.busy.add('/cg/rkt-y/app');
    later(HOUR);
    expect(await gcPods(host, dataDir, opts({ gracePeriodMs: 0 }))).toBe(1);
    expect(stderr.join('')).toContain(`warning: cannot garbage collect pod ${p.uuid}: cgroups still in use: /cg/rkt-y/app, /cg/rkt-y: end the processes listed in their cgroup.procs; it stays in garbage/: run "rkt gc" again`);
    expect(where(p.uuid)).toBe('garbage');
    expect(fs.existsSync(path.join(podDir(dataDir, 'garbage', p.uuid), CGROUPS_FILE))).toBe(true);
    expect(garbageEntries()).toEqual([p.uuid]);
    // The processes are gone now.
    host.busy.clear();
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    expect(where(p.uuid)).toBeUndefined();
    expect(host.exists('/cg/rkt-y')).toBe(false);
  });

  test('a failed sweep is put back even when the data dir path contains /pods/', async () => {
    dataDir = path.join(tmp, 'pods', 'data');
    ensurePodsDirs(dataDir);
    const p = makePod('garbage');
    fs.writeFileSync(path.join(p.dir, CGROUPS_FILE), JSON.stringify({ dirs: ['/cg/busy'], podProcs: [], appProcs: {}, appMemoryDir: {}, devicesEnforced: true }));
    host.mkdirp('/cg/busy');
    host.busy.add('/cg/busy');
    expect(await gcPods(host, dataDir, opts())).toBe(1);
    expect(where(p.uuid)).toBe('garbage');
    expect(garbageEntries()).toEqual([p.uuid]);
  });
});

describe('teardown of leftover host mounts', () => {
  /** Where deletePod claims a pod while it sweeps it. */
  const claimedDir = (uuid: string) => path.join(dataDir, 'pods', 'garbage', `.${uuid}.deleting.${process.pid}`);

  test('lazily unmounts leftover mounts under the pod dir, deepest first, and nothing else', async () => {
    const p = makePod('garbage');
    const dir = claimedDir(p.uuid);
    host.mounts = [
      '/',
      `${dir}/stage1/rootfs`,
      '/proc',
      `${dir}/stage1/rootfs/opt/stage2/app/rootfs`,
      `${dir}x/other-pod`,
      `${p.dir}-not-this-one`,
      `${dir}/stage1/rootfs/opt/stage2/app/rootfs/proc`,
      `${dir}/netns-file`,
    ];
    expect(await deletePod(host, dataDir, p)).toBe(true);
    const unmounted = host.execCalls.map((c) => { expect(c.file).toBe('umount'); expect(c.args[0]).toBe('-l'); return c.args[1]; });
    expect(unmounted).toHaveLength(4);
    expect(new Set(unmounted)).toEqual(new Set([
      `${dir}/stage1/rootfs`, `${dir}/stage1/rootfs/opt/stage2/app/rootfs`, `${dir}/stage1/rootfs/opt/stage2/app/rootfs/proc`, `${dir}/netns-file`,
    ]));
    // Every mount is unmounted before any mount above it.
    for (const [i, m] of unmounted.entries()) {
      for (const later of unmounted.slice(i + 1)) expect(later.startsWith(`${m}/`)).toBe(false);
    }
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.existsSync(p.dir)).toBe(false);
  });

  test('the pod dir itself, if a mount point, is unmounted last', async () => {
    const p = makePod('garbage');
    const dir = claimedDir(p.uuid);
    host.mounts = [dir, `${dir}/a`];
    expect(await deletePod(host, dataDir, p)).toBe(true);
    expect(host.execCalls.map((c) => [c.file, ...c.args])).toEqual([['umount', '-l', `${dir}/a`], ['umount', '-l', dir]]);
  });
});

describe('processes left in the pod cgroups', () => {
  test('are killed with SIGKILL before the cgroups are removed', async () => {
    const p = makePod('garbage');
    const cg: PodCgroups = {
      dirs: ['/cg/rkt-z/app', '/cg/rkt-z/stage1.init', '/cg/rkt-z'],
      podProcs: ['/cg/rkt-z/stage1.init/cgroup.procs'],
      appProcs: { app: ['/cg/rkt-z/app/cgroup.procs'] },
      appMemoryDir: {},
      devicesEnforced: false,
    };
    fs.writeFileSync(path.join(p.dir, CGROUPS_FILE), JSON.stringify(cg));
    host.mkdirp('/cg/rkt-z/app');
    host.mkdirp('/cg/rkt-z/stage1.init');
    host.files.set('/cg/rkt-z/stage1.init/cgroup.procs', '501\n');
    host.files.set('/cg/rkt-z/app/cgroup.procs', '502\n503\n');
    host.calls = [];
    expect(await deletePod(host, dataDir, p)).toBe(true);
    expect(host.killed).toEqual([{ pid: 501, signal: 'SIGKILL' }, { pid: 502, signal: 'SIGKILL' }, { pid: 503, signal: 'SIGKILL' }]);
    const firstRmdir = host.calls.findIndex((c) => c.startsWith('rmdir'));
    const lastKill = host.calls.map((c) => c.startsWith('kill')).lastIndexOf(true);
    expect(lastKill).toBeLessThan(firstRmdir);
    expect(host.exists('/cg/rkt-z')).toBe(false);
  });

  test('nothing is killed when the cgroups are already gone (a second sweep)', async () => {
    const p = makePod('garbage');
    fs.writeFileSync(path.join(p.dir, CGROUPS_FILE), JSON.stringify({
      dirs: ['/cg/rkt-w'], podProcs: ['/cg/rkt-w/cgroup.procs'], appProcs: {}, appMemoryDir: {}, devicesEnforced: true,
    }));
    host.files.set('/cg/rkt-w/cgroup.procs', '777\n'); // stale content: the dir itself is gone
    expect(await deletePod(host, dataDir, p)).toBe(true);
    expect(host.killed).toEqual([]);
    expect(fs.existsSync(p.dir)).toBe(false);
  });
});

describe('deletePod', () => {
  test('deletes a pod and reports success', async () => {
    const p = makePod('exited-garbage', { pid: 400, alive: false });
    expect(await deletePod(host, dataDir, p)).toBe(true);
    expect(fs.existsSync(p.dir)).toBe(false);
    expect(garbageEntries()).toEqual([]);
  });

  test('a pod already taken by another gc or rm counts as done', async () => {
    const p = makePod('garbage');
    fs.rmSync(p.dir, { recursive: true });
    expect(await deletePod(host, dataDir, p)).toBe(true);
    expect(host.execCalls).toEqual([]);
  });
});

describe('deleting collected pod dirs', () => {
  test('gc moves them to a root-only trash at once; its detached rm deletes them and the batch', async () => {
    const pods = Array.from({ length: 20 }, (_, i) => makePod('garbage', { pid: 7000 + i, alive: false }));
    for (const p of pods) fs.writeFileSync(path.join(p.dir, 'rkt', 'status', 'app'), '0');
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    for (const p of pods) expect(where(p.uuid)).toBeUndefined();
    expect(garbageEntries()).toEqual([]);
    const trash = path.join(dataDir, 'pods', '.gc-trash');
    expect(fs.statSync(trash).mode & 0o777).toBe(0o700);
    const until = Date.now() + 10_000;
    while (fs.readdirSync(trash).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(fs.readdirSync(trash)).toEqual([]);
  });

  test('a batch an earlier gc left in the trash (its rm killed) is deleted by the next gc', async () => {
    const batch = path.join(dataDir, 'pods', '.gc-trash', '999999.abcdef');
    fs.mkdirSync(path.join(batch, 'deadbeef-0000-4000-8000-000000000003', 'rkt'), { recursive: true });
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    const until = Date.now() + 10_000;
    while (fs.existsSync(batch) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(fs.existsSync(batch)).toBe(false);
  });

  test('a batch another live gc is still filling is left to that gc', async () => {
    const batch = path.join(dataDir, 'pods', '.gc-trash', '4321.abcdef');
    fs.mkdirSync(path.join(batch, '0'), { recursive: true });
    host.processes.set(4321, '1');
    makePod('garbage'); // so that this gc has a batch of its own to delete
    expect(await gcPods(host, dataDir, opts())).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(fs.existsSync(path.join(batch, '0'))).toBe(true);
  });

  test('rkt rm deletes the pod dir before it returns', async () => {
    const p = makePod('garbage');
    expect(await deletePod(host, dataDir, p)).toBe(true);
    expect(fs.existsSync(p.dir)).toBe(false);
    expect(garbageEntries()).toEqual([]);
    expect(fs.existsSync(path.join(dataDir, 'pods', '.gc-trash'))).toBe(false);
  });
});
