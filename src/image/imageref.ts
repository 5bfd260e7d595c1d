/**
 * What an IMAGE argument of run/fetch/prepare refers to (rkt's DistFromImageString and
 * guessAppcOrPath): an image ID, a local file, a URL, a docker:// reference, or an appc name with labels
 * (`name[:version][,label=value...]`, appc discovery's app string).
 */
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail } from '../util/errors.js';
import { isACIdentifier, notACIdentifier } from './acname.js';
import { parseDockerRef, stripDockerScheme, type DockerRef } from './docker/reference.js';

export type ImageArg =
  | { kind: 'hash'; id: string }
  | { kind: 'path'; path: string }
  | { kind: 'url'; url: string }
  | { kind: 'docker'; ref: DockerRef }
  | { kind: 'name'; name: string; labels: Record<string, string> };

export interface AppcName { name: string; labels: Record<string, string> }

/** Parses `name[:version][,label=value...]`; ':' may appear once, right after the name. */
export function parseAppcName(s: string): AppcName {
  const bad = (problem: string): never => fail(`bad image name ${JSON.stringify(s)}: ${problem}`);
  const colon = s.indexOf(':');
  const comma = s.indexOf(',');
  if (colon !== s.lastIndexOf(':') || (colon >= 0 && comma >= 0 && colon > comma)) {
    bad('":" may appear only once, right after the name (name:version,label=value)');
  }
  const nameEnd = colon >= 0 ? colon : comma >= 0 ? comma : s.length;
  const name = s.slice(0, nameEnd);
  if (name === '') bad('the name is missing (e.g. example.com/app:1.0)');
  if (!isACIdentifier(name)) bad(notACIdentifier(name));

  const labels: Record<string, string> = {};
  const rest = s.slice(nameEnd);
  const parts = rest === '' ? [] : rest.slice(1).split(',');
  if (colon >= 0) {
    const version = parts.shift()!;
    if (version === '') bad('the version after ":" is empty');
    labels.version = version;
  }
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) bad(`label ${JSON.stringify(part)} has no value: write ,name=value`);
    const label = part.slice(0, eq);
    if (!isACIdentifier(label)) bad(`label ${notACIdentifier(label)}`);
    if (label === 'name' || Object.hasOwn(labels, label)) bad(`label ${JSON.stringify(label)} is given twice`);
    labels[label] = part.slice(eq + 1);
  }
  return { name, labels };
}

/** The inverse of parseAppcName, for messages: `name:version,label=value`. */
export function formatAppcName(name: string, labels: Record<string, string> = {}): string {
  const { version, ...others } = labels;
  const tail = Object.entries(others).map(([k, v]) => `,${k}=${v}`).join('');
  return `${name}${version !== undefined ? `:${version}` : ''}${tail}`;
}

/** `sha512-` and 2..128 hex digits: an image ID or an unambiguous prefix of one (as rkt's store allows). */
function imageIdArg(arg: string): ImageArg {
  const id = arg.toLowerCase();
  if (!/^sha512-[0-9a-f]{2,128}$/.test(id)) {
    fail(`bad image ID ${JSON.stringify(arg)}: use "sha512-" and at least 2 hex digits of the ID (see rkt image list)`);
  }
  return { kind: 'hash', id };
}

/** A URL scheme the way Go's url.Parse finds one: letters first, then letters, digits, + - . up to ':'. */
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/**
 * Classifies an IMAGE argument. `fileExists(p)` says whether `p` is an existing regular file.
 * Relative paths are returned resolved against the current directory.
 */
export function classifyImageArg(arg: string, fileExists: (p: string) => boolean): ImageArg {
  if (arg.startsWith('sha512-')) return imageIdArg(arg);

  const scheme = SCHEME.exec(arg)?.[1]?.toLowerCase();
  if (scheme === 'docker') return { kind: 'docker', ref: parseDockerRef(stripDockerScheme(arg)) };
  if (scheme === 'http' || scheme === 'https') return { kind: 'url', url: arg };
  if (scheme === 'file') {
    try {
      return { kind: 'path', path: fileURLToPath(new URL(arg)) };
    } catch {
      fail(`bad file URL ${JSON.stringify(arg)}: use file:///absolute/path/to/image.aci`);
    }
  }
  // Any other scheme is really "name:version", e.g. "etcd:v2.0.0".
  if (scheme !== undefined) return { kind: 'name', ...parseAppcName(arg) };

  // No scheme: a path or a name, by rkt's heuristics, in rkt's order.
  if (arg.startsWith('/') || fileExists(arg)) return { kind: 'path', path: resolvePath(arg) };
  if (arg.includes(':')) return { kind: 'name', ...parseAppcName(arg) };
  if (arg.includes('./') || arg.endsWith('.aci')) return { kind: 'path', path: resolvePath(arg) };
  return { kind: 'name', ...parseAppcName(arg) };
}
