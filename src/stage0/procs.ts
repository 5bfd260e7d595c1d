/**
 * Finding a pod's processes from the host. The holder (the `rkt run` PID, tini) has one
 * child: the pod's PID 1. App PIDs are recorded by PID 1 as seen inside the pod, and
 * mapped back to host PIDs through /proc/PID/status NSpid.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../host/host.js';
import { readHolder } from './pod.js';

export function childrenOf(host: Host, pid: number): number[] {
  const text = host.readFile(`/proc/${pid}/task/${pid}/children`) ?? '';
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

/** Host PID of the pod's PID 1, if the pod runs. */
export function podInitPid(host: Host, podDir: string): number | undefined {
  const holder = readHolder(podDir);
  if (!holder || host.processStartTime(holder.pid) !== holder.start) return undefined;
  return childrenOf(host, holder.pid)[0];
}

/** Host PID of an app of a running pod. */
export function appHostPid(host: Host, podDir: string, app: string): number | undefined {
  const init = podInitPid(host, podDir);
  if (init === undefined) return undefined;
  let nsPid: string;
  try { nsPid = fs.readFileSync(path.join(podDir, 'rkt', 'pid', app), 'utf8').trim(); } catch { return undefined; }
  for (const child of childrenOf(host, init)) {
    const status = host.readFile(`/proc/${child}/status`) ?? '';
    const line = status.split('\n').find((l) => l.startsWith('NSpid:'));
    if (line && line.trim().split(/\s+/).pop() === nsPid) return child;
  }
  return undefined;
}
