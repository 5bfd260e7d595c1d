/**
 * Staging names under cas/tmp. Each carries the owner's pid and process start time, so the
 * leftovers of an rkt killed with SIGKILL can be told from the work of a live one (a reused
 * pid has another start time) and removed by the next fetch or gc. A file kept between runs
 * (a partial download) takes a staging name, ending in RESTORE_AS and its own name, while a
 * live rkt works on it: gc leaves it alone, and once its owner is gone it gets its name back.
 */
import { randomHex16 } from '../util/random.js';
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../host/host.js';

const STAGING_NAME = /^(\d+)-(\d+)-[0-9a-f]+(\..+)?$/;
/** The suffix of a kept file's staging name: RESTORE_AS + its own name. */
export const RESTORE_AS = '.restore-as-';

let ownTag: string | undefined;

function tag(host: Host): string {
  ownTag ??= `${process.pid}-${host.processStartTime(process.pid) ?? '0'}`;
  return ownTag;
}

/** A fresh, unused path in tmpDir (not created). */
export function stagingPath(tmpDir: string, host: Host, suffix = ''): string {
  return path.join(tmpDir, `${tag(host)}-${randomHex16()}${suffix}`);
}

/** Removes the staging entries whose owner process is gone (a kept file gets its name back unless taken); returns their names. */
export function removeStaleStaging(tmpDir: string, host: Host): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(tmpDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = STAGING_NAME.exec(name);
    if (!m) continue;
    if (host.processStartTime(Number(m[1])) === m[2]) continue;
    const entry = path.join(tmpDir, name);
    const kept = m[3]?.startsWith(RESTORE_AS) ? path.join(tmpDir, m[3].slice(RESTORE_AS.length)) : undefined;
    try {
      // A link, not a rename: never over a file that has the name meanwhile (EEXIST).
      if (kept) { try { fs.linkSync(entry, kept); } catch { /* taken, or not a file: dropped */ } }
      fs.rmSync(entry, { recursive: true, force: true });
    } catch (e) {
      // A group rkt member's fetch cannot remove root's leftovers; root's next fetch or gc will.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') continue;
      throw e;
    }
    removed.push(name);
  }
  return removed;
}
