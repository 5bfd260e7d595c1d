/**
 * The ACI image manifest of a converted Docker image, as docker2aci wrote it:
 *   name      registry/repository (an AC identifier), labels version=TAG, os, arch
 *   app       exec = Entrypoint + Cmd, Env, WorkingDir, User (uid or name; the group is the
 *             user's primary group in the image's /etc/passwd when not given),
 *             ExposedPorts → ports named PORT-PROTO, Volumes → mountPoints named volume-PATH
 *   annotations  appc.io/docker/{originalname,registryurl,repository,imageid,manifesthash,
 *             entrypoint,cmd}, created, and the image's labels (those that are AC identifiers)
 * The result goes through the same validation as any fetched manifest.
 */
import { isACIdentifier, sanitizeACName } from '../acname.js';
import { validateImageManifest } from '../manifest.js';
import type { Annotation, App, EnvVar, ImageManifest, Label, MountPoint, Port } from '../types.js';
import { fail } from '../../util/errors.js';
import { warn } from '../../util/log.js';
import type { Captured } from './convert.js';
import { appcArch, type ImageConfig } from './manifest.js';
import { aciNameOf, type DockerRef } from './reference.js';

export interface ConvertInfo {
  ref: DockerRef;
  config: ImageConfig;
  /** Digest of the config blob: docker's image ID. */
  configDigest: string;
  /** Digest of the platform's image manifest. */
  manifestDigest: string;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** name → [uid, gid] from an /etc/passwd. */
function passwdEntries(text: string | undefined): Array<{ name: string; uid: string; gid: string }> {
  return (text ?? '').split('\n').map((l) => l.split(':')).filter((f) => f.length >= 4 && /^\d+$/.test(f[2]) && /^\d+$/.test(f[3]))
    .map((f) => ({ name: f[0], uid: f[2], gid: f[3] }));
}

/** Docker's User: "", "name", "uid", "name:group", "uid:gid". */
export function userAndGroup(user: string | undefined, captured: Captured, image: string): { user: string; group: string } {
  if (!user) return { user: '0', group: '0' };
  const colon = user.indexOf(':');
  const u = colon >= 0 ? user.slice(0, colon) : user;
  const g = colon >= 0 ? user.slice(colon + 1) : '';
  if (u === '') fail(`the config of ${image} has User ${JSON.stringify(user)} without a user`);
  if (g !== '') return { user: u, group: g };
  const entries = passwdEntries(captured.passwd?.toString('utf8'));
  const found = /^\d+$/.test(u) ? entries.find((e) => e.uid === u) : entries.find((e) => e.name === u);
  if (found) return { user: u, group: found.gid };
  // Docker runs a uid without a passwd entry with gid 0; a name must exist.
  if (/^\d+$/.test(u)) return { user: u, group: '0' };
  return fail(`the config of ${image} runs as user ${JSON.stringify(u)}, which the image's /etc/passwd does not have`);
}

function ports(exposed: Record<string, unknown> | undefined, image: string): Port[] {
  const out: Port[] = [];
  for (const key of Object.keys(exposed ?? {})) {
    const [num, proto = 'tcp'] = key.split('/');
    const port = Number(num);
    if (!/^\d+$/.test(num) || port < 1 || port > 65535) fail(`the config of ${image} exposes port ${JSON.stringify(key)}, which is not a port number`);
    if (proto !== 'tcp' && proto !== 'udp') {
      warn(`${image}: exposed port ${key} is left out: appc ports are tcp or udp`);
      continue;
    }
    out.push({ name: sanitizeACName(`${num}-${proto}`), protocol: proto, port, count: 1 });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

function mountPoints(volumes: Record<string, unknown> | undefined, image: string): MountPoint[] {
  const out: MountPoint[] = [];
  const used = new Map<string, number>();
  for (const p of Object.keys(volumes ?? {}).sort()) {
    if (!p.startsWith('/')) {
      warn(`${image}: volume ${JSON.stringify(p)} is left out: it is not an absolute path`);
      continue;
    }
    let name = sanitizeACName(`volume/${p}`);
    const n = used.get(name) ?? 0;
    used.set(name, n + 1);
    if (n > 0) name = `${name}-${n}`;
    out.push({ name, path: p.length > 1 ? p.replace(/\/+$/, '') : p });
  }
  return out;
}

function environment(env: string[] | undefined, image: string): EnvVar[] {
  const out = new Map<string, string>();
  for (const kv of env ?? []) {
    const eq = kv.indexOf('=');
    const name = eq < 0 ? kv : kv.slice(0, eq);
    if (eq < 0) continue; // docker: a name without '=' only passes the caller's value through
    if (!ENV_NAME.test(name)) {
      warn(`${image}: environment variable ${JSON.stringify(name)} is left out: not a valid name`);
      continue;
    }
    out.set(name, kv.slice(eq + 1));
  }
  return [...out].map(([name, value]) => ({ name, value }));
}

export function buildAciManifest(info: ConvertInfo, captured: Captured, shown: string): Buffer {
  const { ref, config } = info;
  const c = config.config ?? {};
  const labels: Label[] = [];
  if (ref.tag) labels.push({ name: 'version', value: ref.tag });
  labels.push({ name: 'os', value: config.os ?? 'linux' }, { name: 'arch', value: appcArch(config.architecture ?? 'amd64', config.variant) });

  const entrypoint = c.Entrypoint ?? [];
  const cmd = c.Cmd ?? [];
  const exec = [...entrypoint, ...cmd];
  const { user, group } = userAndGroup(c.User, captured, shown);
  const app: App = { user, group };
  if (exec.length > 0) app.exec = exec;
  const env = environment(c.Env, shown);
  if (env.length) app.environment = env;
  if (c.WorkingDir) {
    if (c.WorkingDir.startsWith('/')) app.workingDirectory = c.WorkingDir;
    else warn(`${shown}: working directory ${JSON.stringify(c.WorkingDir)} is left out: not an absolute path`);
  }
  const p = ports(c.ExposedPorts, shown);
  if (p.length) app.ports = p;
  const mp = mountPoints(c.Volumes, shown);
  if (mp.length) app.mountPoints = mp;

  const annotations: Annotation[] = [];
  const add = (name: string, value: string | undefined): void => {
    if (value && !annotations.some((a) => a.name === name)) annotations.push({ name, value });
  };
  if (config.created && RFC3339.test(config.created) && !Number.isNaN(Date.parse(config.created))) add('created', config.created);
  add('authors', config.author);
  add('appc.io/docker/originalname', ref.original);
  add('appc.io/docker/registryurl', ref.registry);
  add('appc.io/docker/repository', ref.repository);
  add('appc.io/docker/imageid', info.configDigest);
  add('appc.io/docker/manifesthash', info.manifestDigest);
  if (ref.tag) add('appc.io/docker/tag', ref.tag);
  if (entrypoint.length) add('appc.io/docker/entrypoint', JSON.stringify(entrypoint));
  if (cmd.length) add('appc.io/docker/cmd', JSON.stringify(cmd));
  for (const [key, value] of Object.entries(c.Labels ?? {})) {
    const name = key.toLowerCase();
    if (typeof value !== 'string') continue;
    if (!isACIdentifier(name) || ['created', 'homepage', 'documentation'].includes(name)) {
      warn(`${shown}: label ${JSON.stringify(key)} is not kept as an annotation: not an AC identifier`);
      continue;
    }
    add(name, value);
  }

  const manifest: ImageManifest = { acKind: 'ImageManifest', acVersion: '0.8.11', name: aciNameOf(ref), labels, app, annotations };
  try {
    validateImageManifest(JSON.parse(JSON.stringify(manifest)));
  } catch (e) {
    fail(`converting ${shown} gave an invalid image manifest (${(e as Error).message})`);
  }
  return Buffer.from(JSON.stringify(manifest));
}
