/**
 * Staging names under cas/tmp. Each carries the owner's pid and process start time, so the
 * leftovers of an rkt killed with SIGKILL can be told from the work of a live one (a reused
 * pid has another start time) and removed by the next fetch or gc.
 */
import { randomHex16 } from '../util/random.js';
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../host/host.js';

const STAGING_NAME = /^(\d+)-(\d+)-[0-9a-f]+(\..+)?$/;

let ownTag: string | undefined;

function tag(host: Host): string {
  ownTag ??= `${process.pid}-${host.processStartTime(process.pid) ?? '0'}`;
  return ownTag;
}

/** A fresh, unused path in tmpDir (not created). */
export function stagingPath(tmpDir: string, host: Host, suffix = ''): string {
  return path.join(tmpDir, `${tag(host)}-${randomHex16()}${suffix}`);
}

/** Removes the staging entries whose owner process is gone; returns their names. */
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
    try {
      fs.rmSync(path.join(tmpDir, name), { recursive: true, force: true });
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
