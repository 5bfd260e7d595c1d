/** What list and status report about a pod, read from its directory only (fast for 1000s of pods). */
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../host/host.js';
import type { PodManifest } from '../image/types.js';
import { readNetInfo } from '../net/netinfo.js';
import { holderAlive, holderTime, mtime, Pod, PodState, podState, readHolder, refind } from './pod.js';
import { appStatusFile, dataDirOf, POD_CREATED_FILE, POD_MANIFEST_FILE, STOP_KILLED_FILE } from '../pod-layout.js';

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

/** A file's text, or undefined when it is missing (never started, killed before it could record). */
function readText(file: string): string | undefined {
  try { return fs.readFileSync(file, 'utf8'); } catch { return undefined; }
}

function readJson<T>(file: string): T | undefined {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')) as T; } catch { return undefined; }
}

export function readNetworks(dir: string): NetSummary[] {
  // Without its netns file the pod's networks were torn down (a failed start): its IPs are free again.
  if (!fs.existsSync(`${dir}/netns`)) return [];
  // The net module owns net-info.json; it skips networks still being joined (no IP yet).
  return readNetInfo(dir).map((n) => ({ netName: n.netName, ifName: n.ifName, ip: n.ip }));
}

/**
 * One pod's summary. `rkt list` calls this for every pod, so each file is read once and a
 * missing one costs no exception; `exitedAt` and stop-killed apps (status only) are read when asked for.
 */
export function summarize(host: Host, pod: Pod, opts: { oom?: (app: string) => boolean; exitedAt?: boolean } = {}): PodSummary {
  let holder = pod.stateDir === 'run' || pod.stateDir === 'prepare' ? readHolder(pod.dir) : undefined;
  let held = holderAlive(host, holder);
  // No live holder where the pod was: if it has moved on meanwhile (prepare/ -> run/ as it
  // starts), what was read belongs to no state; read it where it is now.
  for (let tries = 0; !held && (pod.stateDir === 'run' || pod.stateDir === 'prepare') && tries < 3 && !fs.existsSync(pod.dir); tries++) {
    const now = refind(dataDirOf(pod.dir), pod.uuid);
    if (!now) break;
    pod = now;
    holder = pod.stateDir === 'run' || pod.stateDir === 'prepare' ? readHolder(pod.dir) : undefined;
    held = holderAlive(host, holder);
  }
  const state = podState(host, pod, held);
  const manifest = readJson<PodManifest>(`${pod.dir}/${POD_MANIFEST_FILE}`);
  const running = state === 'running';
  const statusFile = (app: string) => `${pod.dir}/${appStatusFile(app)}`; // app names are ACNames: no / or ..
  // Status only (as exitedAt): rkt list of 1000s of pods reads no more files than before.
  const stopKilled = opts.exitedAt && !running ? (readText(path.join(pod.dir, STOP_KILLED_FILE)) ?? '').split('\n') : [];
  const apps = (manifest?.apps ?? []).map((a) => {
    const s: AppSummary = { name: a.name, imageName: a.image.name, imageId: a.image.id };
    if (!running) {
      const code = Number(readText(statusFile(a.name))?.trim() ?? NaN);
      if (Number.isInteger(code)) s.exitCode = code;
      if (s.exitCode !== undefined && opts.oom?.(a.name)) s.oomKilled = true;
      if (stopKilled.includes(a.name)) s.stopKilled = true;
    }
    return s;
  });
  const ran = state === 'running' || state === 'exited' || state === 'exited garbage';
  let exitedAt: Date | undefined;
  if (opts.exitedAt && !running && ran) {
    exitedAt = apps.map((a) => mtime(statusFile(a.name))).filter((d): d is Date => !!d).sort((a, b) => b.getTime() - a.getTime())[0];
  }
  return {
    uuid: pod.uuid,
    state,
    created: mtime(`${pod.dir}/${POD_CREATED_FILE}`),
    started: ran ? holderTime(pod.dir) : undefined,
    exitedAt,
    pid: running ? holder?.pid : undefined,
    apps,
    networks: readNetworks(pod.dir),
  };
}

export function networksText(nets: NetSummary[]): string {
  return nets.map((n) => `${n.netName}:ip4=${n.ip}`).join(', ');
}
