/**
 * Owners and modes of the data directory, after rkt's setup-data-dir: group `rkt` may
 * list pods and images, read pod status and fetch (write the image store's blobs);
 * everyone else gets nothing past the top directory. Rendered trees and the insides of
 * pod dirs that hold app filesystems are root-only, so an image's setuid files and device
 * nodes are never reachable by an unprivileged user.
 *
 *   <dir>                      2750 root:rkt
 *   <dir>/cas                  2770 root:rkt   blob/ manifest/ info/ files/ tmp/ layer/ likewise
 *   <dir>/cas/tree             0700 root:rkt   rendered images
 *   <dir>/pods, pods/<state>   2750 root:rkt
 *   <dir>/pods/<state>/<uuid>  0750 root:rkt   (stage1/ overlay/ volumes/: 0700 root)
 *
 * Only root sets these up; without a `rkt` group the group is root's (gid 0).
 */
import fs from 'node:fs';
import path from 'node:path';
import type * as ChildProcess from 'node:child_process';
import { POD_MANIFEST_FILE, POD_PRIVATE_DIRS, POD_STATES } from '../pod-layout.js';
import { fail } from '../util/errors.js';

export const RKT_GROUP = 'rkt';
export const RKT_ADMIN_GROUP = 'rkt-admin';

/** Mode of each directory of the data dir, relative to it (a function: pod.ts imports this module). */
export function dataDirModes(): Array<[string, number]> {
  return [
    ['', 0o2750],
    ['cas', 0o2770],
    ...['blob', 'manifest', 'info', 'files', 'tmp', 'layer'].map((s): [string, number] => [`cas/${s}`, 0o2770]),
    ['cas/tree', 0o700],
    ['pods', 0o2750],
    ...POD_STATES.map((s): [string, number] => [`pods/${s}`, 0o2750]),
  ];
}

export const POD_DIR_MODE = 0o750;

/** The gid of a group from /etc/group, or undefined. */
export function groupId(name: string, groupFile = '/etc/group'): number | undefined {
  let text: string;
  try { text = fs.readFileSync(groupFile, 'utf8'); } catch { return undefined; }
  for (const line of text.split('\n')) {
    const [n, , gid] = line.split(':');
    if (n === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

/** The gid the data dir belongs to: group rkt, or root's group when there is none. */
export function rktGid(): number {
  return groupId(RKT_GROUP) ?? 0;
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** One directory with exactly this owner and mode (mkdir's mode is cut by the umask). */
function fixDir(dir: string, mode: number, gid: number): void {
  try {
    fs.mkdirSync(dir, { mode: mode & 0o777 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) fail(`${dir} is not a directory: the data directory's layout is broken; move it away or use another --dir`);
  if (st.uid !== 0 || st.gid !== gid) fs.chownSync(dir, 0, gid);
  if ((st.mode & 0o7777) !== mode || st.uid !== 0 || st.gid !== gid) fs.chmodSync(dir, mode); // chown clears setgid
}

function isTight(dataDir: string, gid: number): boolean {
  // The top dir and the two that guard image content decide; everything else is set with them.
  for (const [rel, mode] of [['', 0o2750], ['cas/tree', 0o700], ['pods', 0o2750]] as Array<[string, number]>) {
    const st = fs.statSync(path.join(dataDir, rel), { throwIfNoEntry: false });
    if (!st) continue; // a missing sub dir is made with the right mode when needed
    if ((st.mode & 0o7777) !== mode || st.uid !== 0 || st.gid !== gid) return false;
  }
  return true;
}

/**
 * Gives the data dir (which must exist) and everything in dataDirModes() their owner and
 * mode, and closes the pod dirs made before this model. Root only.
 */
export function tightenDataDir(dataDir: string, gid = rktGid()): void {
  // What is inside first, so nothing is reachable by the group before it is closed.
  // Staging may hold half-rendered trees: root only (import staging always was).
  const tmp = path.join(dataDir, 'cas', 'tmp');
  for (const name of safeReaddir(tmp)) ignoreGone(() => { if (fs.lstatSync(path.join(tmp, name)).isDirectory()) fs.chmodSync(path.join(tmp, name), 0o700); });
  for (const state of POD_STATES) {
    for (const uuid of safeReaddir(path.join(dataDir, 'pods', state))) ignoreGone(() => closePodDir(path.join(dataDir, 'pods', state, uuid), gid));
  }
  for (const [rel, mode] of dataDirModes().reverse()) {
    if (rel === '' || fs.existsSync(path.join(dataDir, rel))) fixDir(path.join(dataDir, rel), mode, gid);
  }
}

/** Pods and staging come and go while we walk them. */
function ignoreGone(fn: () => void): void {
  try { fn(); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
}

function safeReaddir(dir: string): string[] {
  try { return fs.readdirSync(dir); } catch { return []; }
}

/** A pod dir group rkt may read status from, with its app filesystems closed to it. */
export function closePodDir(podDir: string, gid = rktGid()): void {
  for (const sub of POD_PRIVATE_DIRS) {
    const p = path.join(podDir, sub);
    if (fs.existsSync(p)) fs.chmodSync(p, 0o700);
  }
  const manifest = path.join(podDir, POD_MANIFEST_FILE);
  if (fs.existsSync(manifest)) fs.chownSync(manifest, 0, gid);
  fs.chownSync(podDir, 0, gid);
  fs.chmodSync(podDir, POD_DIR_MODE);
}

const checked = new Set<string>();

/**
 * Called once per command on the data dir: as root, a data dir found more open than the
 * model (made by an older rkt, or by hand) is tightened. Costs three stats when it is right;
 * never walks trees. A read-only data dir is left as it is (writes then fail with their own
 * message).
 */
export function checkDataDir(dataDir: string): void {
  if (!isRoot() || checked.has(dataDir)) return;
  checked.add(dataDir);
  const gid = rktGid();
  if (!fs.existsSync(dataDir) || isTight(dataDir, gid)) return;
  try {
    tightenDataDir(dataDir, gid);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EROFS') throw e;
  }
}

/** Creates the data dir's layout with its modes (root), or checks it is there (others). */
export function makeDataDirs(dataDir: string, rels: string[]): void {
  if (!isRoot()) {
    // Group members work in dirs root made; a missing one gives EACCES on its path.
    for (const rel of rels) fs.mkdirSync(path.join(dataDir, rel), { recursive: true });
    return;
  }
  const gid = rktGid();
  if (!fs.existsSync(dataDir)) {
    fs.mkdirSync(path.dirname(dataDir), { recursive: true });
    fixDir(dataDir, 0o2750, gid);
  }
  for (const rel of rels) {
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      const p = path.join(dataDir, sub);
      if (fs.existsSync(p)) continue;
      fixDir(p, dataDirModes().find(([r]) => r === sub)?.[1] ?? 0o700, gid);
    }
  }
}

/** Adds a system group unless it exists (groupadd from the passwd package). */
export function ensureGroup(name: string): number {
  const existing = groupId(name);
  if (existing !== undefined) return existing;
  // Loaded here only: every pod and store command imports this module, and child_process
  // brings net and streams (rkt list of 1000 pods spent 10-15 % of its time loading them).
  const { spawnSync } = process.getBuiltinModule('node:child_process') as typeof ChildProcess;
  const r = spawnSync('groupadd', ['--system', name], { encoding: 'utf8' });
  if (r.status !== 0) fail(`cannot create group "${name}": ${(r.stderr || r.error?.message || '').trim()}: create it with "groupadd --system ${name}"`);
  return groupId(name) ?? fail(`group "${name}" was created but is not in /etc/group`);
}

/**
 * Every path under `dir` (no symlinks followed) that is setuid/setgid or a device node:
 * what a user-chosen extract/render directory exposes to whoever can reach it.
 */
export function privilegedEntries(dir: string, limit = 1000): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    let ents: fs.Dirent[];
    try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      if (found.length >= limit) return;
      const p = path.join(d, e.name);
      if (e.isDirectory()) { walk(p); continue; }
      if (e.isBlockDevice() || e.isCharacterDevice()) { found.push(p); continue; }
      if (e.isFile() && (fs.lstatSync(p).mode & 0o6000) !== 0) found.push(p);
    }
  };
  walk(dir);
  return found;
}

/** Creates a new pod's root-only dirs (all, or those it needs) before anything is put in them. */
export function makePodPrivateDirs(podDir: string, subs: readonly string[] = POD_PRIVATE_DIRS): void {
  for (const sub of subs) {
    const p = path.join(podDir, sub);
    fs.mkdirSync(path.dirname(p), { recursive: true }); // rkt/ itself holds status: not private
    fs.mkdirSync(p, { recursive: true, mode: 0o700 });
    fs.chmodSync(p, 0o700);
  }
}

/** The pod manifest, readable by group rkt (cat-manifest, list, status) and no one else. */
export function writePodManifest(podDir: string, text: string): void {
  const file = path.join(podDir, POD_MANIFEST_FILE);
  fs.writeFileSync(file, text, { mode: 0o640 });
  if (isRoot()) fs.chownSync(file, 0, fs.statSync(podDir).gid);
}
