/**
 * App user and group resolution as appc/rkt define it: a number, a name looked up in
 * the IMAGE's /etc/passwd or /etc/group (never the host's), or an absolute path whose
 * owner in the image rootfs is used. `root` works without /etc/passwd.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../util/errors.js';
import { resolveInRootfs, statInRootfs } from './rootfs-path.js';

function lookupDb(rootfs: string, file: string, name: string): number | undefined {
  let text: string;
  try { text = fs.readFileSync(path.join(rootfs, resolveInRootfs(rootfs, file)), 'utf8'); } catch { return undefined; }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 3) {
      const id = Number(fields[2]);
      if (Number.isInteger(id) && id >= 0) return id;
    }
  }
  return undefined;
}

function resolveId(rootfs: string, value: string, kind: 'user' | 'group'): number {
  if (/^\d+$/.test(value)) return Number(value);
  if (value.startsWith('/')) {
    const st = statInRootfs(rootfs, value);
    if (!st) fail(`${kind} path "${value}" does not exist in the image: give a ${kind} name, a number, or an existing path`);
    return kind === 'user' ? st.uid : st.gid;
  }
  const id = lookupDb(rootfs, kind === 'user' ? '/etc/passwd' : '/etc/group', value);
  if (id !== undefined) return id;
  if (value === 'root') return 0;
  return fail(`"${value}" ${kind} not found in the image's /etc/${kind === 'user' ? 'passwd' : 'group'}: use a numeric ${kind === 'user' ? 'uid' : 'gid'} or a name the image defines`);
}

export function resolveUser(rootfs: string, user: string): number { return resolveId(rootfs, user, 'user'); }
export function resolveGroup(rootfs: string, group: string): number { return resolveId(rootfs, group, 'group'); }

/** HOME and login name for the default environment, from the image's passwd when present. */
export function passwdEntry(rootfs: string, uid: number): { name: string; home: string } | undefined {
  let text: string;
  try { text = fs.readFileSync(path.join(rootfs, resolveInRootfs(rootfs, '/etc/passwd')), 'utf8'); } catch { return undefined; }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 6 && Number(f[2]) === uid) return { name: f[0], home: f[5] || '/' };
  }
  return undefined;
}
