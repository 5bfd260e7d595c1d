/**
 * PID limits: every pod's cgroup gets a pids.max, so a fork bomb in a pod ends with EAGAIN
 * inside it instead of filling the host's process table.
 *
 *  - the pod-wide default is 4096, or `pidsLimit` from rkt's config: files
 *    `limits.d/*.json` under --system-config, then --local-config, then --user-config (a
 *    later layer, and a later file name within one, overrides), each
 *    `{"rktKind": "limits", "rktVersion": "v1", "pidsLimit": N}`;
 *  - `--pids-limit=N` (an app flag) also gives that app's own cgroup pids.max = N, and
 *    raises the pod's limit to the sum of its apps' limits when that is higher.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../util/errors.js';

export const DEFAULT_POD_PIDS_LIMIT = 4096;
/** The kernel's own ceiling for pid numbers (PID_MAX_LIMIT on 64-bit). */
const PIDS_LIMIT_MAX = 4194304;

function validLimit(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 && n <= PIDS_LIMIT_MAX;
}

/** The value of --pids-limit, or undefined when not given. */
export function parsePidsLimit(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!validLimit(n)) fail(`invalid --pids-limit "${s}": give a number of processes from 1 to ${PIDS_LIMIT_MAX}, e.g. --pids-limit=512`);
  return n;
}

/** The pod-wide pids limit from the config layers (lowest first), or the default. */
export function configPodPidsLimit(configDirs: Array<string | undefined>): number {
  let limit = DEFAULT_POD_PIDS_LIMIT;
  for (const base of configDirs) {
    if (!base) continue;
    const dir = path.join(base, 'limits.d');
    let names: string[];
    try { names = fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort(); } catch { continue; }
    for (const name of names) {
      const file = path.join(dir, name);
      let conf: Record<string, unknown>;
      try {
        conf = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
      } catch (e) {
        return fail(`cannot read ${file}: ${(e as Error).message}: fix or remove the file`);
      }
      if (conf?.rktKind !== 'limits') continue;
      if (conf.rktVersion !== 'v1') fail(`${file}: unknown rktVersion ${JSON.stringify(conf.rktVersion)} for kind "limits": use "v1"`);
      if (conf.pidsLimit === undefined) continue;
      if (!validLimit(conf.pidsLimit)) fail(`${file}: invalid pidsLimit ${JSON.stringify(conf.pidsLimit)}: give a number from 1 to ${PIDS_LIMIT_MAX}`);
      limit = conf.pidsLimit;
    }
  }
  return limit;
}

/** The pod's pids.max: the configured default, or the sum of the apps' own limits when higher. */
export function podPidsLimit(configured: number, appLimits: Array<number | undefined>): number {
  const sum = appLimits.reduce<number>((a, n) => a + (n ?? 0), 0);
  return Math.min(Math.max(configured, sum), PIDS_LIMIT_MAX);
}
