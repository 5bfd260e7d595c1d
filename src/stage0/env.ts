/**
 * The app environment, with rkt's precedence (lowest first):
 * caller's env (--inherit-env) < image < --set-env-file < --set-env < --environment,
 * then AC_APP_NAME and the appc defaults for whatever is still unset.
 */
import fs from 'node:fs';
import { fail } from '../util/errors.js';
import type { EnvVar } from '../image/types.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

export function parseEnvAssignment(s: string, flag: string): [string, string] {
  const eq = s.indexOf('=');
  if (eq <= 0) fail(`invalid ${flag} "${s}": expected NAME=VALUE`);
  const name = s.slice(0, eq);
  if (!NAME.test(name)) fail(`invalid ${flag} "${s}": "${name}" is not a valid variable name`);
  return [name, s.slice(eq + 1)];
}

/** `--set-env` values: a duplicate name is an error, as in rkt. */
export function parseSetEnv(values: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const [k, val] = parseEnvAssignment(v, '--set-env');
    if (out.has(k)) fail(`--set-env: "${k}" is set twice: give each variable once`);
    out.set(k, val);
  }
  return out;
}

/** `--set-env-file`: K=V per line; empty lines and lines starting with # or ; are skipped. */
export function parseEnvFile(file: string): Map<string, string> {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { return fail(`cannot read --set-env-file ${file}: ${(e as Error).message}`); }
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const [k, v] = parseEnvAssignment(line, `line in ${file}`);
    out.set(k, v);
  }
  return out;
}

export interface EnvInputs {
  appName: string;
  inherit?: NodeJS.ProcessEnv;
  image?: EnvVar[];
  fileEnv: Map<string, string>;
  setEnv: Map<string, string>;
  appEnv: Map<string, string>;
  user: { name: string; home: string } | undefined;
}

export function buildAppEnv(inp: EnvInputs): Array<[string, string]> {
  const env = new Map<string, string>();
  for (const [k, v] of Object.entries(inp.inherit ?? {})) if (v !== undefined && NAME.test(k)) env.set(k, v);
  for (const e of inp.image ?? []) env.set(e.name, e.value);
  for (const m of [inp.fileEnv, inp.setEnv, inp.appEnv]) for (const [k, v] of m) env.set(k, v);
  env.set('AC_APP_NAME', inp.appName);
  const defaults: Array<[string, string]> = [
    ['PATH', DEFAULT_PATH], ['SHELL', '/bin/sh'],
    ['USER', inp.user?.name ?? 'root'], ['LOGNAME', inp.user?.name ?? 'root'], ['HOME', inp.user?.home ?? '/root'],
  ];
  for (const [k, v] of defaults) if (!env.has(k)) env.set(k, v);
  return [...env.entries()];
}
