/**
 * `--private-users`: each pod runs in a user namespace whose root is an unprivileged
 * range of host uids and gids, chosen per pod and recorded in the pod dir
 * (`private-users-prepared`, "BASE:COUNT", as rkt named it) for run, enter, status and gc.
 *
 * Ranges: blocks of 65536 from the container range systemd-nspawn also picks from
 * (0x80000 up to 0x6fff0000), never one that overlaps a host user or group, an
 * /etc/subuid or /etc/subgid grant, a user namespace some live process is in (other
 * runtimes, other data dirs), or the range of another pod of this data dir that may
 * still run (embryo, prepare, prepared, run). Two concurrent `rkt run` on one data dir
 * cannot end up sharing a range: each writes its choice first and checks the others
 * after, and picks again whenever it sees its range taken (whichever checks later sees
 * the earlier's record).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBelow } from '../util/random.js';
import { fail } from '../util/errors.js';
import type { Host } from '../host/host.js';
import { builtHelper } from '../stage1/tools.js';
import { PODS_DIR, RANGE_FILE } from '../pod-layout.js';

export { RANGE_FILE } from '../pod-layout.js';
export const RANGE_COUNT = 0x10000;
export const RANGE_FIRST = 0x80000;
export const RANGE_END = 0x6fff0000;
/** States whose pods may hold their range (the others have exited). */
const HOLDING_STATES = ['embryo', 'prepare', 'prepared', 'run'];
const MAX_TRIES = 16;

export interface UidRange { base: number; count: number }

export function formatRange(r: UidRange): string {
  return `${r.base}:${r.count}`;
}

export function parseRange(text: string): UidRange | undefined {
  const m = /^(\d+):(\d+)\s*$/.exec(text);
  if (!m) return undefined;
  const r = { base: Number(m[1]), count: Number(m[2]) };
  return r.count > 0 && r.base + r.count <= 0xffffffff ? r : undefined;
}

export function overlaps(a: UidRange, b: UidRange): boolean {
  return a.base < b.base + b.count && b.base < a.base + a.count;
}

/** The range recorded in a pod dir, if the pod runs with --private-users. */
export function readPodRange(host: Host, podDir: string): UidRange | undefined {
  const text = host.readFile(path.join(podDir, RANGE_FILE));
  return text === undefined ? undefined : parseRange(text);
}

/** Ranges recorded by other pods that may still run. */
export function podRanges(host: Host, dataDir: string, exceptUuid: string): UidRange[] {
  const out: UidRange[] = [];
  for (const state of HOLDING_STATES) {
    const sdir = path.join(dataDir, PODS_DIR, state);
    if (!host.exists(sdir)) continue;
    for (const uuid of host.readdir(sdir)) {
      if (uuid === exceptUuid || uuid.startsWith('.')) continue;
      const r = readPodRange(host, path.join(sdir, uuid));
      if (r) out.push(r);
    }
  }
  return out;
}

/**
 * Host ids a pod range must not cover: users and groups of /etc/passwd and /etc/group
 * (as one-id ranges), and the grants of /etc/subuid and /etc/subgid.
 */
export function hostReserved(host: Host): UidRange[] {
  const out: UidRange[] = [];
  const lines = (f: string) => (host.readFile(f) ?? '').split('\n').filter((l) => l && !l.startsWith('#'));
  for (const f of ['/etc/passwd', '/etc/group']) {
    for (const l of lines(f)) {
      const id = Number(l.split(':')[2]);
      if (Number.isInteger(id)) out.push({ base: id, count: 1 });
    }
  }
  for (const f of ['/etc/subuid', '/etc/subgid']) {
    for (const l of lines(f)) {
      const [, start, count] = l.split(':').map(Number);
      if (Number.isInteger(start) && Number.isInteger(count) && count > 0) out.push({ base: start, count });
    }
  }
  return out;
}

/**
 * Ranges mapped by user namespaces that have a live process (any runtime, any rkt data
 * dir): the outside half of every /proc/PID/uid_map and gid_map line, except the
 * host's own identity map.
 */
export function liveRanges(host: Host): UidRange[] {
  const out: UidRange[] = [];
  for (const pid of host.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    for (const f of ['uid_map', 'gid_map']) {
      for (const line of (host.readFile(`/proc/${pid}/${f}`) ?? '').split('\n')) {
        const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
        if (!Number.isInteger(count) || count <= 0 || (inside === 0 && outside === 0 && count === 0xffffffff)) continue;
        out.push({ base: outside, count });
      }
    }
  }
  return out;
}

/** Picks a free block at random (so concurrent runs rarely collide in the first place). */
export function pickRange(taken: UidRange[], random: (n: number) => number): UidRange | undefined {
  const blocks = Math.floor((RANGE_END - RANGE_FIRST) / RANGE_COUNT);
  const start = random(blocks);
  for (let i = 0; i < blocks; i++) {
    const r = { base: RANGE_FIRST + ((start + i) % blocks) * RANGE_COUNT, count: RANGE_COUNT };
    if (!taken.some((t) => overlaps(r, t))) return r;
  }
  return undefined;
}

/** Chooses the pod's range and records it in its dir (see the header for why this is race-free). */
export function allocateRange(host: Host, dataDir: string, uuid: string, podDir: string, random: (n: number) => number = randomBelow): UidRange {
  const reserved = [...hostReserved(host), ...liveRanges(host)];
  const file = path.join(podDir, RANGE_FILE);
  for (let i = 0; i < MAX_TRIES; i++) {
    const r = pickRange([...reserved, ...podRanges(host, dataDir, uuid)], random);
    if (!r) break;
    host.writeFile(file, `${formatRange(r)}\n`);
    if (!podRanges(host, dataDir, uuid).some((o) => overlaps(o, r))) return r;
  }
  return fail('--private-users: no free range of 65536 host uids is left for this pod: remove stopped pods (rkt gc) and retry');
}

/** The static helper that makes user namespaces and idmapped mounts. */
export function idmapHelper(): string {
  return builtHelper('rkt-idmap', '--private-users');
}

/**
 * Checks that every path can be idmapped and that an overlay can sit on an idmapped
 * lower layer, on this kernel and these filesystems; fails with one line otherwise.
 * Runs before the pod exists, so a refusal leaves nothing behind.
 */
export async function probeIdmap(host: Host, helper: string, paths: string[]): Promise<void> {
  const r = await host.exec(helper, ['probe', String(RANGE_FIRST), String(RANGE_COUNT), ...paths]);
  if (r.code !== 0) {
    const why = (r.stdout.trim() || r.stderr.trim()).split('\n')[0];
    fail(`--private-users: this kernel or filesystem cannot make the idmapped mounts it needs (${why}): run without --private-users, or keep the data dir and volumes on a filesystem that supports idmapped mounts (ext4, xfs, btrfs, tmpfs; Linux 5.19+)`);
  }
}

/** Every uid and gid the pod uses must be inside its namespace's map (0..count-1). */
export function checkIdsInRange(
  apps: Array<{ name: string; uid: number; gid: number; supplementaryGids: number[] }>,
  volumes: Array<{ name: string; kind: string; uid?: number; gid?: number }>,
  count: number,
): void {
  for (const a of apps) {
    for (const [what, id] of [['uid', a.uid], ['gid', a.gid], ...a.supplementaryGids.map((g) => ['supplementary gid', g] as const)] as const) {
      if (id >= count) fail(`--private-users: app "${a.name}" uses ${what} ${id}, outside the pod's ${count} ids (0-${count - 1}): run it as a lower id or without --private-users`);
    }
  }
  for (const v of volumes) {
    if (v.kind !== 'empty') continue;
    for (const [what, id] of [['uid', v.uid ?? 0], ['gid', v.gid ?? 0]] as const) {
      if (id >= count) fail(`--private-users: volume "${v.name}" has ${what}=${id}, outside the pod's ${count} ids (0-${count - 1}): give a lower ${what}`);
    }
  }
}
