/** What list and status report about a pod, read from its directory only (fast for 1000s of pods). */
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../host/host.js';
import type { PodManifest } from '../image/types.js';
import { readNetInfo } from '../net/network.js';
import { HOLDER_FILE, mtime, Pod, PodState, podState, readHolder } from './pod.js';
import { STOP_KILLED_FILE } from '../stage1/scripts.js';

export interface NetSummary { netName: string; ifName?: string; ip: string }

export interface AppSummary {
  name: string; imageName?: string; imageId: string; exitCode?: number; oomKilled?: boolean;
  /** SIGKILLed by stage1 because it outlived the stop's grace period. */
  stopKilled?: boolean;
}

export interface PodSummary {
  uuid: string;
  state: PodState;
  created?: Date;
  started?: Date;
  exitedAt?: Date;
  pid?: number;
  apps: AppSummary[];
  networks: NetSummary[];
}

function readJson<T>(file: string): T | undefined {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')) as T; } catch { return undefined; }
}

export function readNetworks(dir: string): NetSummary[] {
  // Without its netns file the pod's networks were torn down (a failed start): its IPs are free again.
  if (!fs.existsSync(path.join(dir, 'netns'))) return [];
  // The net module owns net-info.json; it skips networks still being joined (no IP yet).
  return readNetInfo(dir).map((n) => ({ netName: n.netName, ifName: n.ifName, ip: n.ip }));
}

export function summarize(host: Host, pod: Pod, opts: { oom?: (app: string) => boolean } = {}): PodSummary {
  const state = podState(host, pod);
  const manifest = readJson<PodManifest>(path.join(pod.dir, 'pod'));
  const running = state === 'running';
  let stopKilled: string[] = [];
  if (!running) {
    try { stopKilled = fs.readFileSync(path.join(pod.dir, 'rkt', STOP_KILLED_FILE), 'utf8').split('\n'); } catch { /* none was */ }
  }
  const apps = (manifest?.apps ?? []).map((a) => {
    const s: AppSummary = { name: a.name, imageName: a.image.name, imageId: a.image.id };
    if (!running) {
      try {
        const code = Number(fs.readFileSync(path.join(pod.dir, 'rkt', 'status', a.name), 'utf8').trim());
        if (Number.isInteger(code)) s.exitCode = code;
      } catch { /* never started or killed before it could record */ }
      if (s.exitCode !== undefined && opts.oom?.(a.name)) s.oomKilled = true;
      if (stopKilled.includes(a.name)) s.stopKilled = true;
    }
    return s;
  });
  const ran = ['running', 'exited', 'exited garbage'].includes(state);
  const holder = ran ? readHolder(pod.dir) : undefined;
  let exitedAt: Date | undefined;
  if (!running && ran) {
    exitedAt = apps.map((a) => mtime(path.join(pod.dir, 'rkt', 'status', a.name))).filter((d): d is Date => !!d).sort((a, b) => b.getTime() - a.getTime())[0];
  }
  return {
    uuid: pod.uuid,
    state,
    created: mtime(path.join(pod.dir, 'pod-created')),
    started: ran ? mtime(path.join(pod.dir, HOLDER_FILE)) : undefined,
    exitedAt,
    pid: running ? holder?.pid : undefined,
    apps,
    networks: readNetworks(pod.dir),
  };
}

export function networksText(nets: NetSummary[]): string {
  return nets.map((n) => `${n.netName}:ip4=${n.ip}`).join(', ');
}
