/**
 * rkt's api/v1 pod JSON (rkt's api/v1/json.go, filled in as rkt's lib/ fills it), what
 * `list` and `status --format=json|json-pretty` print for scripts written against rkt.
 * Units as rkt's: pod times in seconds since the epoch, app times in nanoseconds. Fields
 * that Go marks omitempty are left out when empty; the order is the Go structs' order.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { PodManifest } from '../image/types.js';
import { readNetInfoV1, type NetInfoV1 } from '../net/netinfo.js';
import type { Pod, PodState } from '../stage0/pod.js';
import { HOLDER_FILE, POD_MANIFEST_FILE, SANDBOX_FILE } from '../pod-layout.js';
import { listApps } from '../stage0/app-state.js';
import type { PodSummary } from '../stage0/podinfo.js';

export type AppStateV1 = 'unknown' | 'created' | 'running' | 'exited';

export interface MountV1 { name: string; container_path: string; host_path: string; read_only: boolean }

export interface AppV1 {
  name: string;
  state: AppStateV1;
  created_at?: bigint;
  started_at?: bigint;
  finished_at?: bigint;
  exit_code?: number;
  image_id: string;
  mounts?: MountV1[];
  user_annotations?: Record<string, string>;
  user_labels?: Record<string, string>;
}

export interface PodV1 {
  name: string;
  state: PodState;
  networks?: NetInfoV1[];
  app_names?: string[];
  apps?: AppV1[];
  created_at?: number;
  started_at?: number;
  user_annotations?: Record<string, string>;
  user_labels?: Record<string, string>;
}

/** The file's own mtime in ns (lstat: the pod's holder is a symlink whose target is no file). */
function statNs(file: string): bigint | undefined {
  try { return fs.lstatSync(file, { bigint: true }).mtimeNs; } catch { return undefined; }
}

const seconds = (ns: bigint | undefined): number | undefined => (ns === undefined || ns <= 0n ? undefined : Number(ns / 1_000_000_000n));

/** An app of a pod whose apps all start and stop with it (rkt: an immutable pod). */
function appStateOf(state: PodState): AppStateV1 {
  switch (state) {
    case 'prepared': return 'created';
    case 'running': return 'running';
    case 'exited': case 'exited garbage': case 'garbage': return 'exited';
    default: return 'unknown';
  }
}

const nonEmpty = (m: Record<string, string> | undefined) => (m && Object.keys(m).length > 0 ? { ...m } : undefined);

export function podV1(pod: Pod, s: PodSummary): PodV1 {
  let manifest: PodManifest | undefined;
  try { manifest = JSON.parse(fs.readFileSync(path.join(pod.dir, POD_MANIFEST_FILE), 'utf8')) as PodManifest; } catch { /* still preparing */ }
  const created = statNs(path.join(pod.dir, 'pod-created'));
  const started = s.started ? statNs(path.join(pod.dir, HOLDER_FILE)) : undefined;
  // The gc mark stamps the pod dir: rkt reports it as the apps' finish time.
  const marked = pod.stateDir === 'exited-garbage' || pod.stateDir === 'garbage' ? statNs(pod.dir) : undefined;
  const out: PodV1 = { name: s.uuid, state: s.state };
  const networks = s.networks.length > 0 ? readNetInfoV1(pod.dir) : [];
  if (networks.length > 0) out.networks = networks;
  if (manifest && manifest.apps.length > 0) {
    out.app_names = manifest.apps.map((a) => a.name);
    const volumes = new Map((manifest.volumes ?? []).map((v) => [v.name, v]));
    // A running sandbox's apps come and go on their own (rkt app start/stop).
    const own = s.state === 'running' && fs.existsSync(path.join(pod.dir, SANDBOX_FILE)) ? new Map(listApps(pod).map((a) => [a.name, a])) : undefined;
    const ns = (d: Date | undefined) => (d ? BigInt(d.getTime()) * 1_000_000n : undefined);
    out.apps = manifest.apps.map((ra): AppV1 => {
      const summary = s.apps.find((a) => a.name === ra.name);
      const mine = own?.get(ra.name);
      const exitCode = mine ? mine.exitCode : summary?.exitCode;
      const appStarted = mine ? ns(mine.started) : started;
      const finished = mine ? ns(mine.finished) : marked;
      // Built in the order of Go's struct: JSON keys keep insertion order.
      const app: AppV1 = {
        name: ra.name,
        state: mine ? mine.state : exitCode !== undefined ? 'exited' : appStateOf(s.state),
        ...(created !== undefined ? { created_at: mine ? ns(mine.created) ?? created : created } : {}),
        ...(appStarted !== undefined ? { started_at: appStarted } : {}),
        ...(finished !== undefined ? { finished_at: finished } : {}),
        ...(exitCode !== undefined ? { exit_code: exitCode } : {}),
        image_id: ra.image.id ?? '',
      };
      const mounts = (ra.mounts ?? []).map((m): MountV1 => {
        const v = volumes.get(m.volume);
        return { name: m.volume, container_path: m.path, host_path: v?.source ?? '', read_only: v?.readOnly ?? false };
      });
      if (mounts.length > 0) app.mounts = mounts;
      const ua = nonEmpty(ra.app?.userAnnotations);
      const ul = nonEmpty(ra.app?.userLabels);
      if (ua) app.user_annotations = ua;
      if (ul) app.user_labels = ul;
      return app;
    });
  }
  const c = seconds(created);
  if (c !== undefined) out.created_at = c;
  const st = seconds(started);
  if (st !== undefined) out.started_at = st;
  const ua = nonEmpty(manifest?.userAnnotations);
  const ul = nonEmpty(manifest?.userLabels);
  if (ua) out.user_annotations = ua;
  if (ul) out.user_labels = ul;
  return out;
}

/**
 * JSON as Go's encoding/json writes it: compact, or indented with tabs (MarshalIndent with
 * "\t"); int64 nanoseconds exact; <, > and & escaped as \u003c, \u003e, \u0026; a nil
 * slice is `null`. A newline follows, as rkt's stdout logger adds one.
 */
export function marshal(value: unknown, pretty: boolean): string {
  const text = JSON.stringify(value ?? null, (_k, v: unknown) => (typeof v === 'bigint' ? `\u0000int:${v}` : v), pretty ? '\t' : undefined);
  return `${text
    .replace(/"\\u0000int:(-?\d+)"/g, '$1')
    .replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')}\n`;
}
