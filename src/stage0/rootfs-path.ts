/**
 * Resolves a path inside an image rootfs the way the app will see it: symlinks are
 * followed relative to the rootfs, never to the host root, and `..` cannot climb above
 * it. Mount targets and /etc files are resolved this way before stage1 touches them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../util/errors.js';

const MAX_LINKS = 40;

/** Returns the absolute in-rootfs path of `target` with every existing symlink resolved. */
export function resolveInRootfs(rootfs: string, target: string): string {
  if (!target.startsWith('/')) fail(`path "${target}" must be absolute`);
  let resolved: string[] = [];
  const pending = target.split('/').filter(Boolean);
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') { resolved.pop(); continue; }
    const candidate = path.join(rootfs, ...resolved, part);
    let st: fs.Stats | undefined;
    try { st = fs.lstatSync(candidate); } catch { st = undefined; }
    if (st?.isSymbolicLink()) {
      if (++links > MAX_LINKS) fail(`too many symbolic links resolving "${target}" in the image`);
      const link = fs.readlinkSync(candidate);
      if (link.startsWith('/')) resolved = [];
      pending.unshift(...link.split('/').filter(Boolean));
      continue;
    }
    resolved.push(part);
  }
  return `/${resolved.join('/')}`;
}

/** lstat of a path inside the rootfs after resolution, or undefined if it does not exist. */
export function statInRootfs(rootfs: string, target: string): fs.Stats | undefined {
  try { return fs.statSync(path.join(rootfs, resolveInRootfs(rootfs, target))); } catch { return undefined; }
}

/**
 * Where the app's /proc, /sys and /dev are mounted: resolved inside the rootfs like every
 * other mount target, so an image whose /proc is a link to /tmp/x gets its proc at its own
 * /tmp/x, never at the host's. Targets that coincide or nest (a /sys that leads to /proc,
 * or to /) would hide one another: refused.
 */
export function kernelTargets(treeRootfs: string): { proc: string; sys: string; dev: string } {
  const t = { proc: resolveInRootfs(treeRootfs, '/proc'), sys: resolveInRootfs(treeRootfs, '/sys'), dev: resolveInRootfs(treeRootfs, '/dev') };
  // A link is what moves a target onto another: report the linked name.
  const entries = Object.entries(t).sort(([a, x], [b, y]) => Number(y !== `/${b}`) - Number(x !== `/${a}`));
  for (const [name, at] of entries) {
    const under = at === '/' ? 'the rootfs itself' : entries.find(([other, o]) => other !== name && (at === o || at.startsWith(`${o}/`) || o.startsWith(`${at}/`)))?.[0];
    if (under) fail(`the image's /${name} leads to ${at}, which would share its mount with ${under.startsWith('the') ? under : `/${under}`}: make /proc, /sys and /dev separate directories in the image`);
  }
  return t;
}
