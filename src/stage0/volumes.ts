/**
 * Volumes and mounts: `--volume NAME,kind=host,source=P[,readOnly=B][,recursive=B][,idmap=B]` or
 * `NAME,kind=empty[,mode=0755][,uid=0][,gid=0][,readOnly=B]`, `--mount volume=NAME,target=PATH`,
 * and the image's mountPoints. rkt's rules: an unmatched mountPoint gets an implicit empty
 * volume, a volume's readOnly overrides the mountPoint's, unused volumes are ignored.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../util/errors.js';
import { warn } from '../util/log.js';
import { isACName } from '../image/acname.js';
import type { MountPoint, PodVolume } from '../image/types.js';

function parseKV(spec: string, flag: string): { first: string; kv: Map<string, string> } {
  const parts = spec.split(',');
  const kv = new Map<string, string>();
  let first = '';
  parts.forEach((p, i) => {
    const eq = p.indexOf('=');
    if (eq === -1) {
      if (i === 0) { first = p; return; }
      fail(`invalid ${flag} "${spec}": "${p}" is not KEY=VALUE`);
    }
    kv.set(p.slice(0, eq), p.slice(eq + 1));
  });
  return { first, kv };
}

function parseBoolOpt(v: string | undefined, what: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  return fail(`invalid ${what} "${v}": use true or false`);
}

export function parseVolume(spec: string): PodVolume {
  const { first, kv } = parseKV(spec, '--volume');
  const name = first || kv.get('name') || '';
  if (!isACName(name)) fail(`invalid --volume "${spec}": volume name "${name}" must be lower case alphanumerics and dashes`);
  const kind = kv.get('kind');
  const readOnly = parseBoolOpt(kv.get('readOnly'), 'readOnly');
  if (kind === 'host') {
    const source = kv.get('source');
    if (!source || !source.startsWith('/')) fail(`invalid --volume "${spec}": kind=host needs source=ABSOLUTE_PATH`);
    const idmap = parseBoolOpt(kv.get('idmap'), 'idmap');
    return { name, kind, source, readOnly, recursive: parseBoolOpt(kv.get('recursive'), 'recursive') ?? true, ...(idmap === undefined ? {} : { idmap }) };
  }
  if (kind === 'empty') {
    const mode = kv.get('mode') ?? '0755';
    if (!/^0?[0-7]{3,4}$/.test(mode)) fail(`invalid --volume "${spec}": mode must be octal like 0755`);
    const num = (k: string) => {
      const v = kv.get(k);
      if (v === undefined) return 0;
      if (!/^\d+$/.test(v)) fail(`invalid --volume "${spec}": ${k} must be a number`);
      return Number(v);
    };
    return { name, kind, mode, uid: num('uid'), gid: num('gid'), readOnly };
  }
  return fail(`invalid --volume "${spec}": kind must be host or empty`);
}

export interface MountSpec { volume: string; target: string }

export function parseMount(spec: string): MountSpec {
  const { kv } = parseKV(spec, '--mount');
  const volume = kv.get('volume');
  const target = kv.get('target');
  if (!volume || !target) fail(`invalid --mount "${spec}": expected volume=NAME,target=PATH`);
  // As rkt: a relative target is taken from the app's root (`dir1` is /dir1). Its `..`
  // cannot climb out: targets are resolved inside the rootfs (resolveInRootfs).
  return { volume, target: target.startsWith('/') ? target : `/${target}` };
}

export interface ResolvedMount {
  volume: PodVolume;
  /** Path inside the app as asked for (resolved later inside the rootfs). */
  target: string;
  readOnly: boolean;
  /** An implicit volume of a Docker-converted image: starts with the image's files at the target. */
  seed?: boolean;
}

/**
 * Mounts for one app: explicit --mount flags, then image mountPoints matched to volumes
 * by name; unmatched mountPoints get an implicit empty volume `<app>-<mp>` (added to `volumes`).
 * For an image converted from Docker (`dockerImage`), such a volume starts with the image's
 * content at its path, as Docker's volumes do and as rkt did for those images only.
 */
export function appMounts(appName: string, mountPoints: MountPoint[] | undefined, mounts: MountSpec[], volumes: PodVolume[], dockerImage = false): ResolvedMount[] {
  const out: ResolvedMount[] = [];
  const byName = (n: string) => volumes.find((v) => v.name === n);
  const targets = new Set<string>();
  // One spelling per target (`/a//b/../c/` is /a/c), so duplicates are found.
  const norm = (target: string) => path.posix.normalize(target).replace(/\/+$/, '') || '/';
  const add = (volume: PodVolume, target: string, mpReadOnly: boolean | undefined) => {
    const key = norm(target);
    if (targets.has(key)) fail(`app "${appName}": two mounts target ${key}: give each target once`);
    targets.add(key);
    out.push({ volume, target: key, readOnly: volume.readOnly ?? mpReadOnly ?? false });
  };
  for (const m of mounts) {
    const v = byName(m.volume);
    if (!v) fail(`--mount refers to volume "${m.volume}", which no --volume defines: add --volume=${m.volume},kind=host,source=PATH`);
    add(v, m.target, undefined);
  }
  for (const mp of mountPoints ?? []) {
    if (targets.has(norm(mp.path))) continue;
    let v = byName(mp.name);
    if (!v) {
      warn(`no volume specified for mount point "${mp.name}" of app "${appName}": using an empty volume`
        + (dockerImage ? ' that starts with the image\'s files there (a Docker image)' : ''));
      v = { name: `${appName}-${mp.name}`, kind: 'empty', mode: '0755', uid: 0, gid: 0 };
      volumes.push(v);
      add(v, mp.path, mp.readOnly);
      if (dockerImage) out[out.length - 1].seed = true;
      continue;
    }
    add(v, mp.path, mp.readOnly);
  }
  return out;
}

export function checkHostSources(volumes: PodVolume[]): void {
  for (const v of volumes) {
    if (v.kind !== 'host') continue;
    try { fs.statSync(v.source!); } catch (e) {
      fail(`volume "${v.name}": Failed to stat ${v.source}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message}`);
    }
  }
}
