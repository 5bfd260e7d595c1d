import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { ensurePodsDirs, HOLDER_FILE, Pod, PodStateDir, podDir, transition } from '../../../src/stage0/pod.js';
import { POLL_MS, waitFinished, waitReady } from '../../../src/stage0/wait.js';
import { READY_FILE } from '../../../src/pod-layout.js';
import { FakeHost } from '../../helpers/fake-host.js';

let dataDir: string;
let host: FakeHost;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-wait-'));
  host = new FakeHost();
});
afterEach(() => { fs.rmSync(dataDir, { recursive: true, force: true }); });

const UUID = '6f1c7a52-0c8e-4b8e-9a57-3c4e2b7d9f10';

/** A pod dir in `state`, held by live process 100 unless `held` is false. */
function makePod(state: PodStateDir, held = true): Pod {
  ensurePodsDirs(dataDir);
  const dir = podDir(dataDir, state, UUID);
  fs.mkdirSync(path.join(dir, 'rkt'), { recursive: true });
  fs.symlinkSync('100 555', path.join(dir, HOLDER_FILE));
  if (held) host.processes.set(100, '555');
  return { uuid: UUID, stateDir: state, dir };
}
const markReady = (pod: Pod) => fs.writeFileSync(path.join(pod.dir, READY_FILE), '');
/** Runs `fn` on the Nth sleep of the fake host (the pod changes while rkt waits). */
function onSleep(n: number, fn: () => void): void {
  const sleep = host.sleep.bind(host);
  let count = 0;
  host.sleep = async (ms: number) => { await sleep(ms); if (++count === n) fn(); };
}
const sleeps = () => host.calls.filter((c) => c.startsWith('sleep'));

describe('waitReady', () => {
  test('a ready pod: no wait at all', async () => {
    const pod = makePod('run');
    markReady(pod);
    expect(await waitReady(host, dataDir, pod, Infinity)).toEqual({ pod, ok: true });
    expect(sleeps()).toEqual([]);
  });

  test('polls every 100 ms until the marker appears', async () => {
    const pod = makePod('run');
    onSleep(3, () => markReady(pod));
    expect((await waitReady(host, dataDir, pod, Infinity)).ok).toBe(true);
    expect(sleeps()).toEqual([`sleep ${POLL_MS}`, `sleep ${POLL_MS}`, `sleep ${POLL_MS}`]);
  });

  test('follows the pod from prepared to run (its dir is renamed)', async () => {
    const pod = makePod('prepared');
    onSleep(2, () => { const run = transition(pod, dataDir, 'run'); markReady(run); });
    const w = await waitReady(host, dataDir, pod, Infinity);
    expect(w).toEqual({ ok: true, pod: { uuid: UUID, stateDir: 'run', dir: podDir(dataDir, 'run', UUID) } });
  });

  test('times out at the limit, not later, naming the state', async () => {
    const pod = makePod('run');
    const w = await waitReady(host, dataDir, pod, 250);
    expect(w).toEqual({ pod, ok: false, reason: 'timeout', state: 'running' });
    expect(sleeps()).toEqual(['sleep 100', 'sleep 100', 'sleep 50']);
  });

  test('a pod that exited without being ready never will be: the wait ends', async () => {
    const pod = makePod('run', false);
    expect(await waitReady(host, dataDir, pod, Infinity)).toEqual({ pod, ok: false, reason: 'never ready', state: 'exited' });
  });

  test('a pod that was ready and has exited since is ready', async () => {
    const pod = makePod('run', false);
    markReady(pod);
    expect((await waitReady(host, dataDir, pod, 0)).ok).toBe(true);
  });

  test('a pod removed while waiting ends the wait', async () => {
    const pod = makePod('run');
    onSleep(1, () => fs.rmSync(pod.dir, { recursive: true }));
    expect(await waitReady(host, dataDir, pod, Infinity)).toEqual({ pod, ok: false, reason: 'gone' });
  });
});

describe('waitFinished', () => {
  test('waits while the pod is prepared or running, until it exited', async () => {
    const pod = makePod('prepared');
    onSleep(2, () => transition(pod, dataDir, 'run'));
    onSleep(4, () => host.processes.delete(100));
    const w = await waitFinished(host, dataDir, pod, Infinity);
    expect(w).toEqual({ ok: true, pod: { uuid: UUID, stateDir: 'run', dir: podDir(dataDir, 'run', UUID) } });
    expect(sleeps()).toHaveLength(4);
  });

  test('an aborted prepare and garbage are finished', async () => {
    const pod = makePod('prepare', false);
    expect((await waitFinished(host, dataDir, pod, Infinity)).ok).toBe(true);
    fs.rmSync(path.join(dataDir, 'pods'), { recursive: true });
    expect((await waitFinished(host, dataDir, makePod('garbage'), Infinity)).ok).toBe(true);
  });

  test('a pod that moved on (prepare/ -> run/) while its holder was read is not taken for an aborted prepare', async () => {
    const running = makePod('run');
    const stale: Pod = { uuid: UUID, stateDir: 'prepare', dir: podDir(dataDir, 'prepare', UUID) };
    onSleep(2, () => host.processes.delete(100));
    const w = await waitFinished(host, dataDir, stale, Infinity);
    expect(w).toEqual({ ok: true, pod: running });
    expect(sleeps()).toHaveLength(2);
  });

  test('times out while running', async () => {
    const pod = makePod('run');
    expect(await waitFinished(host, dataDir, pod, 100)).toEqual({ pod, ok: false, reason: 'timeout', state: 'running' });
  });
});
