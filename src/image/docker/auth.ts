/**
 * Registry credentials, as rkt looked them up (Documentation/configuration.md):
 *   - `dockerAuth` files in docker.d/ of the config dirs:
 *       {"rktKind":"dockerAuth","rktVersion":"v1","registries":["quay.io"],
 *        "credentials":{"user":"u","password":"p"}}
 *   - `auth` files of type basic in auth.d/ whose domains name the registry host;
 *   - then the user's ~/.docker/config.json (`auths` with a base64 "user:password" `auth`,
 *     or `username` and `password`).
 * The user config dir wins over the local one (/etc/rkt), which wins over the system one
 * (/usr/lib/rkt). A file that is not valid JSON is an error that names it: silently
 * fetching without the credentials someone configured would only move the failure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fail } from '../../util/errors.js';
import { DOCKER_HUB } from './reference.js';

export interface Credentials { user: string; password: string }

export interface ConfigDirs { systemConfig: string; localConfig: string; userConfig?: string }

function readJsonFiles(dir: string): Array<{ file: string; json: Record<string, unknown> }> {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return names.map((n) => {
    const file = path.join(dir, n);
    try {
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
      if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error('not a JSON object');
      return { file, json: json as Record<string, unknown> };
    } catch (e) {
      return fail(`cannot read configuration file ${file}: ${(e as Error).message}: fix or remove it`);
    }
  });
}

function credentialsIn(file: string, v: unknown): Credentials {
  const c = v as { user?: unknown; password?: unknown } | undefined;
  if (typeof c?.user !== 'string' || typeof c.password !== 'string') {
    fail(`configuration file ${file} has no "credentials" with string "user" and "password"`);
  }
  return { user: c.user, password: c.password };
}

/** Docker Hub is written many ways in credential files. */
function sameRegistry(a: string, registry: string): boolean {
  const norm = (r: string): string => {
    const host = r.replace(/^https?:\/\//, '').replace(/\/.*$/, '').toLowerCase();
    return ['docker.io', 'index.docker.io', 'registry.hub.docker.com'].includes(host) ? DOCKER_HUB : host;
  };
  return norm(a) === norm(registry);
}

/** rkt's own config: docker.d, then basic auth.d entries, user dir first. */
function fromRktConfig(dirs: ConfigDirs, registry: string): Credentials | undefined {
  const ordered = [dirs.userConfig, dirs.localConfig, dirs.systemConfig].filter((d): d is string => !!d);
  for (const dir of ordered) {
    for (const { file, json } of readJsonFiles(path.join(dir, 'docker.d'))) {
      if (json.rktKind !== 'dockerAuth') continue;
      const registries = Array.isArray(json.registries) ? json.registries : [];
      if (registries.some((r) => typeof r === 'string' && sameRegistry(r, registry))) return credentialsIn(file, json.credentials);
    }
    for (const { file, json } of readJsonFiles(path.join(dir, 'auth.d'))) {
      if (json.rktKind !== 'auth' || json.type !== 'basic') continue;
      const domains = Array.isArray(json.domains) ? json.domains : [];
      if (domains.some((d) => typeof d === 'string' && sameRegistry(d, registry))) return credentialsIn(file, json.credentials);
    }
  }
  return undefined;
}

/** ~/.docker/config.json (or $DOCKER_CONFIG/config.json), as `docker login` writes it. */
function fromDockerConfig(registry: string, home: string): Credentials | undefined {
  const dir = process.env.DOCKER_CONFIG || path.join(home, '.docker');
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let json: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    json = JSON.parse(text) as typeof json;
  } catch (e) {
    return fail(`cannot read ${file}: ${(e as Error).message}: fix or remove it`);
  }
  for (const [key, entry] of Object.entries(json.auths ?? {})) {
    if (!sameRegistry(key, registry) || !entry) continue;
    if (typeof entry.username === 'string' && typeof entry.password === 'string') return { user: entry.username, password: entry.password };
    if (typeof entry.auth === 'string') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return undefined;
}

export function registryCredentials(dirs: ConfigDirs, registry: string, home = os.homedir()): Credentials | undefined {
  return fromRktConfig(dirs, registry) ?? fromDockerConfig(registry, home);
}
