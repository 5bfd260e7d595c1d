/**
 * `rkt status --wait` and `--wait-ready`: polling the pod dir as rkt did (every 100 ms),
 * through the Host clock so the logic runs under the fake host.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../host/host.js';
import { READY_FILE } from '../pod-layout.js';
import { podState, refind, type Pod, type PodState } from './pod.js';

export const POLL_MS = 100;

/** The pod is still on its way to running (or running): a finished wait must go on. */
const UNFINISHED: PodState[] = ['embryo', 'preparing', 'prepared', 'running'];

/** The init (or rkt-notify, under a Type=notify unit) marks the pod ready once every app started. */
export function isReady(pod: Pod): boolean {
  return fs.existsSync(path.join(pod.dir, READY_FILE));
}

export type WaitOutcome = { pod: Pod } & ({ ok: true } | { ok: false; reason: 'timeout' | 'gone' | 'never ready'; state?: PodState });

/**
 * Waits up to `limitMs` (Infinity: for ever) for `until` to hold, re-finding the pod by UUID
 * at each poll since every state change renames its dir. `hopeless` ends the wait early.
 */
async function poll(host: Host, dataDir: string, pod: Pod, limitMs: number,
  until: (p: Pod, s: PodState) => boolean, hopeless: (p: Pod, s: PodState) => boolean): Promise<WaitOutcome> {
  const deadline = host.now().getTime() + limitMs;
  for (;;) {
    const state = podState(host, pod);
    // Renamed while its holder was read (prepare/ -> run/ as it starts): the state read is
    // none of its own; look again where it went.
    const moved = !fs.existsSync(pod.dir);
    if (!moved && until(pod, state)) return { pod, ok: true };
    if (!moved && hopeless(pod, state)) return { pod, ok: false, reason: 'never ready', state };
    const left = deadline - host.now().getTime();
    if (left <= 0) return { pod, ok: false, reason: 'timeout', state };
    await host.sleep(Math.min(POLL_MS, left));
    const again = refind(dataDir, pod.uuid);
    if (!again) return { pod, ok: false, reason: 'gone' };
    pod = again;
  }
}

/** Until the pod has finished: exited, garbage or an aborted prepare (a prepared pod may still run). */
export function waitFinished(host: Host, dataDir: string, pod: Pod, limitMs: number): Promise<WaitOutcome> {
  return poll(host, dataDir, pod, limitMs, (_p, s) => !UNFINISHED.includes(s), () => false);
}

/**
 * Until the pod is ready. A pod that finished without ever being ready never will be: that
 * ends the wait (rkt kept polling until its deadline, for ever by default).
 */
export function waitReady(host: Host, dataDir: string, pod: Pod, limitMs: number): Promise<WaitOutcome> {
  return poll(host, dataDir, pod, limitMs, (p) => isReady(p), (p, s) => !UNFINISHED.includes(s) && !isReady(p));
}
