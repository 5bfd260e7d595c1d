import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import {
  claimPrepared, createPod, ensurePodsDirs, findPod, holderTime, runHolder, stampStarted, HOLDER_FILE, isHeld, listPods, Pod, POD_STATES, PodStateDir, podDir, podState,
  readHolder, refind, transition, uuidFromFile, writeHolder,
} from '../../../src/stage0/pod.js';
import { RktError } from '../../../src/util/errors.js';
import { FakeHost } from '../../helpers/fake-host.js';

let dataDir: string;
let host: FakeHost;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-pod-'));
  host = new FakeHost();
});
afterEach(() => { fs.rmSync(dataDir, { recursive: true, force: true }); });

/** Makes a pod dir by hand in `state`, optionally with a holder file. */
function makePod(uuid: string, state: PodStateDir, holder?: { pid: number; start: string }): Pod {
  ensurePodsDirs(dataDir);
  const dir = podDir(dataDir, state, uuid);
  fs.mkdirSync(dir);
  if (holder) fs.writeFileSync(path.join(dir, HOLDER_FILE), `${holder.pid} ${holder.start}\n`);
  return { uuid, stateDir: state, dir };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('createPod', () => {
  test('lands in prepare/ with a holder file naming the pid and its start time', () => {
    host.processes.set(4321, '98765');
    const pod = createPod(host, dataDir, 4321);
    expect(pod.uuid).toMatch(UUID_RE);
    expect(pod.stateDir).toBe('prepare');
    expect(pod.dir).toBe(path.join(dataDir, 'pods', 'prepare', pod.uuid));
    expect(fs.statSync(pod.dir).isDirectory()).toBe(true);
    // A symlink: no data block for gc to free, one readlink for rkt list.
    expect(fs.readlinkSync(path.join(pod.dir, HOLDER_FILE))).toBe('4321 98765');
    expect(fs.existsSync(path.join(pod.dir, 'pod-created'))).toBe(true);
    // Nothing is left in embryo/, and no temp file is left behind.
    expect(fs.readdirSync(path.join(dataDir, 'pods', 'embryo'))).toEqual([]);
    expect(fs.readdirSync(pod.dir).sort()).toEqual(['pod-created', HOLDER_FILE].sort());
    expect(podState(host, pod)).toBe('preparing');
    // Every state dir exists.
    for (const s of POD_STATES) expect(fs.statSync(path.join(dataDir, 'pods', s)).isDirectory()).toBe(true);
  });

  test('each pod gets its own uuid', () => {
    host.processes.set(1, 'x');
    const a = createPod(host, dataDir, 1);
    const b = createPod(host, dataDir, 1);
    expect(a.uuid).not.toBe(b.uuid);
    expect(listPods(dataDir).map((p) => p.uuid).sort()).toEqual([a.uuid, b.uuid].sort());
  });

  test('fails when the holder process is gone', () => {
    expect(() => createPod(host, dataDir, 999)).toThrow('cannot read the start time of process 999');
  });
});

describe('holder and liveness', () => {
  test('writeHolder/readHolder round-trip', () => {
    const pod = makePod('aaaa', 'run');
    host.processes.set(77, '123456');
    writeHolder(host, pod.dir, 77);
    expect(readHolder(pod.dir)).toEqual({ pid: 77, start: '123456' });
    expect(fs.readdirSync(pod.dir)).toEqual([HOLDER_FILE]);
    // Again over the first one, and over a temp link a killed writer left.
    fs.symlinkSync('stale', path.join(pod.dir, `.${HOLDER_FILE}.tmp`));
    host.processes.set(78, '123457');
    writeHolder(host, pod.dir, 78);
    expect(readHolder(pod.dir)).toEqual({ pid: 78, start: '123457' });
    expect(fs.readdirSync(pod.dir)).toEqual([HOLDER_FILE]);
  });

  test('readHolder reads the regular file of a pod made before the holder was a symlink', () => {
    const pod = makePod('aaaa', 'run');
    fs.writeFileSync(path.join(pod.dir, HOLDER_FILE), '77 123456\n');
    expect(readHolder(pod.dir)).toEqual({ pid: 77, start: '123456' });
  });

  test('readHolder rejects missing and malformed files', () => {
    const pod = makePod('aaaa', 'run');
    expect(readHolder(pod.dir)).toBeUndefined();
    for (const bad of ['', 'abc 1', '0 1', '-5 1', '12', '1.5 9']) {
      fs.rmSync(path.join(pod.dir, HOLDER_FILE), { force: true });
      fs.writeFileSync(path.join(pod.dir, HOLDER_FILE), bad);
      expect(readHolder(pod.dir)).toBeUndefined();
      if (bad === '') continue; // symlink(2) refuses an empty target
      fs.rmSync(path.join(pod.dir, HOLDER_FILE));
      fs.symlinkSync(bad, path.join(pod.dir, HOLDER_FILE));
      expect(readHolder(pod.dir)).toBeUndefined();
    }
  });

  test('held only while the same pid has the same start time (pid reuse is not held)', () => {
    const pod = makePod('aaaa', 'run', { pid: 50, start: '1000' });
    expect(isHeld(host, pod.dir)).toBe(false);
    host.processes.set(50, '1000');
    expect(isHeld(host, pod.dir)).toBe(true);
    host.processes.set(50, '2000'); // the pid was reused by another process
    expect(isHeld(host, pod.dir)).toBe(false);
  });
});

describe('a starting pod, held by its process and by stage0', () => {
  test('held while either lives; the pid reported is the pod\'s own from the first', () => {
    const pod = makePod('aaaa', 'run');
    host.processes.set(60, '600'); // bin/rkt, which becomes the pod
    host.processes.set(61, '610'); // stage0, still writing the pod
    writeHolder(host, pod.dir, 60, 61);
    expect(fs.readlinkSync(path.join(pod.dir, HOLDER_FILE))).toBe('60 600 61 610');
    expect(readHolder(pod.dir)).toEqual({ pid: 60, start: '600', stage0: { pid: 61, start: '610' } });
    expect(podState(host, pod)).toBe('running');
    // The launcher was killed while stage0 writes: still held, gc must not collect it.
    host.processes.delete(60);
    expect(isHeld(host, pod.dir)).toBe(true);
    expect(podState(host, pod)).toBe('running');
    host.processes.delete(61);
    expect(podState(host, pod)).toBe('exited');
    // stage0 ended (hand-off done) while the pod lives on.
    host.processes.set(60, '600');
    expect(podState(host, pod)).toBe('running');
    // The hand-off leaves the pod's process alone as the holder.
    writeHolder(host, pod.dir, 60);
    expect(readHolder(pod.dir)).toEqual({ pid: 60, start: '600' });
  });

  test('a reused stage0 pid does not hold the pod', () => {
    const pod = makePod('aaaa', 'run');
    fs.symlinkSync('60 600 61 610', path.join(pod.dir, HOLDER_FILE));
    host.processes.set(61, '999');
    expect(isHeld(host, pod.dir)).toBe(false);
  });
});

describe('a pod to run', () => {
  test('created held by its process and stage0; its start is the holder link\'s time, set when it starts', () => {
    host.processes.set(60, '600');
    host.processes.set(61, '610');
    const pod = createPod(host, dataDir, 60, 61);
    expect(readHolder(pod.dir)).toEqual({ pid: 60, start: '600', stage0: { pid: 61, start: '610' } });
    host.clock = new Date('2026-03-04T05:06:07Z');
    stampStarted(host, pod.dir);
    expect(holderTime(pod.dir)).toEqual(host.clock);
    // The link itself, not what it names.
    expect(fs.readlinkSync(path.join(pod.dir, HOLDER_FILE))).toBe('60 600 61 610');
  });

  test('without bin/rkt (no hand-off fd) stage0 holds it alone', () => {
    const saved = process.env.RKT_HANDOFF_FD;
    delete process.env.RKT_HANDOFF_FD;
    try {
      expect(runHolder()).toEqual({ pid: process.pid });
    } finally {
      if (saved !== undefined) process.env.RKT_HANDOFF_FD = saved;
    }
  });
});

describe('claimPrepared', () => {
  test('moves the pod to prepare/ already held by the claimant', () => {
    const pod = makePod('cccc', 'prepared', { pid: 5, start: '1' }); // rkt prepare, long gone
    host.processes.set(70, '700');
    const claimed = claimPrepared(host, dataDir, pod, 70)!;
    expect(claimed).toEqual({ uuid: 'cccc', stateDir: 'prepare', dir: podDir(dataDir, 'prepare', 'cccc') });
    expect(readHolder(claimed.dir)).toEqual({ pid: 70, start: '700' });
    expect(podState(host, claimed)).toBe('preparing');
  });

  test('a pod another claimant took is not claimed twice', () => {
    const pod = makePod('cccc', 'prepared');
    host.processes.set(70, '700');
    host.processes.set(71, '710');
    expect(claimPrepared(host, dataDir, pod, 70)).toBeDefined();
    expect(claimPrepared(host, dataDir, pod, 71)).toBeUndefined();
    expect(readHolder(podDir(dataDir, 'prepare', 'cccc'))).toEqual({ pid: 70, start: '700' });
  });
});

describe('podState', () => {
  test.each([
    ['embryo', false, 'embryo'],
    ['embryo', true, 'embryo'],
    ['prepare', true, 'preparing'],
    ['prepare', false, 'aborted prepare'],
    ['prepared', false, 'prepared'],
    ['run', true, 'running'],
    ['run', false, 'exited'],
    ['exited-garbage', false, 'exited garbage'],
    ['exited-garbage', true, 'exited garbage'],
    ['garbage', false, 'garbage'],
  ] as Array<[PodStateDir, boolean, string]>)('%s dir, holder alive=%s -> %s', (state, alive, want) => {
    const pod = makePod('abcd', state, { pid: 10, start: '555' });
    if (alive) host.processes.set(10, '555');
    expect(podState(host, pod)).toBe(want);
  });

  test('a run/ pod without a holder file has exited', () => {
    expect(podState(host, makePod('abcd', 'run'))).toBe('exited');
    expect(podState(host, makePod('abce', 'prepare'))).toBe('aborted prepare');
  });
});

describe('transition and refind', () => {
  test('moves the pod dir with one rename, keeping its content', () => {
    const pod = makePod('1234', 'prepare');
    fs.writeFileSync(path.join(pod.dir, 'pod'), '{}');
    const moved = transition(pod, dataDir, 'prepared');
    expect(moved).toEqual({ uuid: '1234', stateDir: 'prepared', dir: podDir(dataDir, 'prepared', '1234') });
    expect(fs.existsSync(pod.dir)).toBe(false);
    expect(fs.readFileSync(path.join(moved.dir, 'pod'), 'utf8')).toBe('{}');
    expect(refind(dataDir, '1234')).toEqual(moved);
    expect(refind(dataDir, '9999')).toBeUndefined();
  });

  test('fails when the pod is no longer where it was', () => {
    ensurePodsDirs(dataDir);
    const pod: Pod = { uuid: 'gone', stateDir: 'run', dir: podDir(dataDir, 'run', 'gone') };
    expect(() => transition(pod, dataDir, 'exited-garbage')).toThrow();
  });
});

describe('listPods', () => {
  test('every state, skipping dot-names, each uuid once', () => {
    makePod('aaa1', 'embryo');
    makePod('bbb2', 'prepared');
    makePod('ccc3', 'run');
    makePod('ddd4', 'garbage');
    makePod('.eee5.deleting.123', 'garbage');
    makePod('.hidden', 'run');
    // A rename racing the scan: the same uuid seen in two states.
    makePod('fff6', 'run');
    makePod('fff6', 'exited-garbage');
    const pods = listPods(dataDir);
    expect(pods.map((p) => p.uuid).sort()).toEqual(['aaa1', 'bbb2', 'ccc3', 'ddd4', 'fff6']);
    expect(pods.find((p) => p.uuid === 'bbb2')).toEqual({ uuid: 'bbb2', stateDir: 'prepared', dir: podDir(dataDir, 'prepared', 'bbb2') });
    expect(pods.filter((p) => p.uuid === 'fff6')).toHaveLength(1);
  });

  test('an empty or missing data dir has no pods', () => {
    expect(listPods(dataDir)).toEqual([]);
    expect(listPods(path.join(dataDir, 'nope'))).toEqual([]);
  });
});

describe('findPod', () => {
  const A = 'abcdef01-0000-4000-8000-000000000001';
  const B = 'abcdef02-0000-4000-8000-000000000002';
  const C = '12345678-0000-4000-8000-000000000003';
  beforeEach(() => {
    makePod(A, 'run');
    makePod(B, 'prepared');
    makePod(C, 'exited-garbage');
  });

  test('by a full uuid or an unambiguous prefix', () => {
    expect(findPod(dataDir, A)).toEqual({ uuid: A, stateDir: 'run', dir: podDir(dataDir, 'run', A) });
    expect(findPod(dataDir, 'abcdef02').uuid).toBe(B);
    expect(findPod(dataDir, '1').uuid).toBe(C);
  });

  test('case-insensitive and trimmed', () => {
    expect(findPod(dataDir, 'ABCDEF01').uuid).toBe(A);
    expect(findPod(dataDir, `  ${C.toUpperCase()}\n`).uuid).toBe(C);
  });

  test('ambiguous prefix', () => {
    expect(() => findPod(dataDir, 'abcdef0')).toThrow(RktError);
    expect(() => findPod(dataDir, 'abcdef0')).toThrow('ambiguous uuid "abcdef0", 2 matches: give more characters');
  });

  test('no match', () => {
    expect(() => findPod(dataDir, 'ffff')).toThrow('no matches found for "ffff": see "rkt list" for the pods');
    // A pod being deleted is not found.
    makePod(`.${'9'.repeat(8)}-0000-4000-8000-000000000009.deleting.1`, 'garbage');
    expect(() => findPod(dataDir, '9999')).toThrow('no matches found for "9999"');
  });

  test('a pod claimed by run-prepared while the scan runs (prepared/ back to prepare/) is found', () => {
    // The move happens just as the scan, past prepare/, reaches prepared/: one scan misses it.
    const readdir = fs.readdirSync;
    let moved: Pod | undefined;
    const spy = jest.spyOn(fs, 'readdirSync').mockImplementation(((dir: fs.PathLike, ...rest: unknown[]) => {
      if (!moved && String(dir).endsWith('/prepared')) moved = transition({ uuid: B, stateDir: 'prepared', dir: podDir(dataDir, 'prepared', B) }, dataDir, 'prepare');
      return (readdir as (...a: unknown[]) => unknown)(dir, ...rest);
    }) as typeof fs.readdirSync);
    try {
      expect(findPod(dataDir, B)).toEqual({ uuid: B, stateDir: 'prepare', dir: podDir(dataDir, 'prepare', B) });
      expect(moved).toBeDefined();
    } finally { spy.mockRestore(); }
  });

  test('empty', () => {
    expect(() => findPod(dataDir, '')).toThrow('UUID cannot be empty: give a pod UUID or an unambiguous prefix of one (see "rkt list")');
    expect(() => findPod(dataDir, '  \n')).toThrow('UUID cannot be empty');
  });
});

describe('uuidFromFile', () => {
  test('returns the trimmed content', () => {
    const f = path.join(dataDir, 'uuid');
    fs.writeFileSync(f, '  abcdef01-0000-4000-8000-000000000001\n\n');
    expect(uuidFromFile(f)).toBe('abcdef01-0000-4000-8000-000000000001');
    fs.writeFileSync(f, 'abc');
    expect(uuidFromFile(f)).toBe('abc');
  });

  test('an unreadable file is a one-line RktError', () => {
    const f = path.join(dataDir, 'missing');
    expect(() => uuidFromFile(f)).toThrow(RktError);
    expect(() => uuidFromFile(f)).toThrow(`cannot read UUID file ${f}:`);
  });
});
