/**
 * stage1 is made of host tools from Debian, util-linux (nsenter) and busybox-static, and of
 * rkt's own static helpers. Only static binaries may run after pivot_root,
 * so busybox must be the static build.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../util/errors.js';
import type { Stage1Tools } from './plan.js';

/**
 * A static helper that `npm run build` (src/stage1/helper/build.sh) puts next to this
 * module in dist/stage1: rkt-helper (every app's final exec), rkt-idmap (--private-users),
 * rkt-notify (the pod's holder under a Type=notify unit).
 */
export function builtHelper(name: 'rkt-helper' | 'rkt-idmap' | 'rkt-notify', neededFor: string): string {
  const p = path.join(import.meta.dirname, name);
  if (!fs.existsSync(p)) fail(`${neededFor} needs the stage1 helper ${p}: run npm run build (it needs gcc and libc6-dev)`);
  return p;
}

const CANDIDATES: Record<Exclude<keyof Stage1Tools, 'helper'>, { paths: string[]; pkg: string }> = {
  nsenter: { paths: ['/usr/bin/nsenter', '/bin/nsenter'], pkg: 'util-linux' },
  busybox: { paths: ['/bin/busybox', '/usr/bin/busybox'], pkg: 'busybox-static' },
};

/** True if the ELF file has no program interpreter (statically linked). */
function isStatic(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return !buf.subarray(0, n).includes('/lib64/ld-linux') && !buf.subarray(0, n).includes('/lib/ld-linux');
  } finally { fs.closeSync(fd); }
}

export function findStage1Tools(): Stage1Tools {
  const found = {} as Stage1Tools;
  for (const [name, c] of Object.entries(CANDIDATES) as Array<[Exclude<keyof Stage1Tools, 'helper'>, { paths: string[]; pkg: string }]>) {
    const p = c.paths.find((x) => fs.existsSync(x));
    if (!p) fail(`stage1 needs ${name} from the Debian package ${c.pkg}: apt-get install ${c.pkg}`);
    found[name] = p;
  }
  if (!isStatic(found.busybox)) fail(`${found.busybox} is dynamically linked; stage1 needs the static build: apt-get install busybox-static`);
  found.helper = builtHelper('rkt-helper', 'stage1');
  return found;
}
