/**
 * Finding a pod's processes from the host. The holder (the `rkt run` PID, rkt-helper --pod or
 * rkt-notify) has one child that is the pod's: its PID 1. App PIDs are recorded by PID 1 as
 * seen inside the pod, and mapped back to host PIDs through /proc/PID/status NSpid.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../host/host.js';
import { readHolder } from './pod.js';
import { appPidFile, INIT_TABLE } from '../pod-layout.js';

export function childrenOf(host: Host, pid: number): number[] {
  const text = host.readFile(`/proc/${pid}/task/${pid}/children`) ?? '';
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

/**
 * True if pid is this pod's stage1 (its holder, or the pod's init): both name the pod's init.table
 * on their command line. Guards every signal rkt sends: a holder record that names some
 * other process (a launcher killed mid hand-off leaves its orphan's new parent) must
 * never get a pod's SIGTERM or SIGKILL.
 */
export function runsPod(host: Host, pid: number, podDir: string): boolean {
  return (host.readFile(`/proc/${pid}/cmdline`) ?? '').includes(`/${path.basename(podDir)}/${INIT_TABLE}`);
}

/** Host PID of the pod's stage1 holder, if the pod runs. */
export function podHolderPid(host: Host, podDir: string): number | undefined {
  const holder = readHolder(podDir);
  if (!holder || host.processStartTime(holder.pid) !== holder.start || !runsPod(host, holder.pid, podDir)) return undefined;
  return holder.pid;
}

/** Host PID of the pod's PID 1, if the pod runs. */
export function podInitPid(host: Host, podDir: string): number | undefined {
  const holder = podHolderPid(host, podDir);
  // Its only child but for stage0's Node, which may still be exiting after the hand-off.
  return holder === undefined ? undefined : childrenOf(host, holder).find((c) => runsPod(host, c, podDir));
}

/** Host PID of an app of a running pod. */
export function appHostPid(host: Host, podDir: string, app: string): number | undefined {
  const init = podInitPid(host, podDir);
  if (init === undefined) return undefined;
  let nsPid: string;
  try { nsPid = fs.readFileSync(path.join(podDir, appPidFile(app)), 'utf8').trim(); } catch { return undefined; }
  // The app is a child of PID 1, or a grandchild when its launcher stays to run a post-stop handler.
  const children = childrenOf(host, init);
  for (const child of [...children, ...children.flatMap((c) => childrenOf(host, c))]) {
    const status = host.readFile(`/proc/${child}/status`) ?? '';
    const line = status.split('\n').find((l) => l.startsWith('NSpid:'));
    if (line && line.trim().split(/\s+/).pop() === nsPid) return child;
  }
  return undefined;
}
