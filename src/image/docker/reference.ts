/**
 * `docker://[REGISTRY[:PORT]/]NAME[:TAG][@DIGEST]` with rkt's (docker2aci's) defaults:
 * Docker Hub is `registry-1.docker.io`, a one-part name there gets `library/`, and a
 * reference without tag or digest means `latest`. The grammar is the distribution
 * project's: the first path part is a registry when it holds a '.' or ':' or is
 * `localhost`; repository parts are lower case alphanumerics joined by . _ __ or dashes.
 */
import { fail } from '../../util/errors.js';

export const DOCKER_HUB = 'registry-1.docker.io';
/** Names people write for Docker Hub; all mean the registry API host above. */
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry.hub.docker.com', DOCKER_HUB]);

export interface DockerRef {
  /** host[:port] of the registry API */
  registry: string;
  /** e.g. library/busybox */
  repository: string;
  /** absent only when a digest is given without a tag */
  tag?: string;
  /** sha256:<64 hex> (or another algorithm's digest) */
  digest?: string;
  /** What the user wrote after the scheme, for messages and the originalname annotation. */
  original: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?$/;
const MAX_NAME = 255;

/** Strips `docker://` or `docker:` (rkt accepts both). */
export function stripDockerScheme(arg: string): string {
  return arg.replace(/^docker:(\/\/)?/i, '');
}

/** Parses the part after `docker://`; every problem is one line naming the reference. */
export function parseDockerRef(raw: string): DockerRef {
  const bad = (problem: string): never => fail(`bad docker image reference "docker://${raw}": ${problem}`);
  if (raw === '') bad('the image name is missing (e.g. docker://busybox or docker://quay.io/org/app:1.0)');

  let rest = raw;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad(`"${digest}" is not a digest (sha256: and 64 hex digits)`);
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest)) bad(`"${digest}" is not a sha256 digest (64 lower case hex digits)`);
  }

  // A tag is after the last ':' that follows the last '/' (a ':' before it is a registry port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) bad(`"${tag}" is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }

  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0];
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!HOST.test(first)) bad(`"${first}" is not a registry host (host or host:port)`);
    const port = first.includes(':') ? Number(first.split(':')[1]) : undefined;
    if (port !== undefined && (port < 1 || port > 65535)) bad(`port ${port} of registry "${first}" is out of range`);
    registry = HUB_ALIASES.has(first.toLowerCase()) ? DOCKER_HUB : first.toLowerCase();
    parts.shift();
  }
  for (const part of parts) {
    if (!COMPONENT.test(part)) {
      bad(`"${part}" is not a valid repository name part (lower case letters and digits, joined by . _ __ or -)`);
    }
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > MAX_NAME) bad(`the repository name is longer than ${MAX_NAME} characters`);
  if (!tag && !digest) tag = 'latest';
  return { registry, repository, tag, digest, original: raw };
}

/** The canonical `docker://registry/repo:tag` or `...@digest`, as stored and shown. */
export function formatDockerRef(ref: Pick<DockerRef, 'registry' | 'repository' | 'tag' | 'digest'>): string {
  const base = `docker://${ref.registry}/${ref.repository}`;
  return ref.digest ? `${base}@${ref.digest}` : `${base}:${ref.tag ?? 'latest'}`;
}

/**
 * The ACI name docker2aci gave a squashed image: `registry/repository`, made an AC
 * identifier (lower case; a ':' of the port and any other character become '_', and a run
 * of separators shrinks to its first, e.g. `127.0.0.1:5000/my__app` → `127.0.0.1_5000/my_app`).
 */
export function aciNameOf(ref: Pick<DockerRef, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`
    .toLowerCase()
    .replace(/[^a-z0-9._~/-]/g, '_')
    .replace(/([-._~/])[-._~/]+/g, '$1')
    .replace(/^[-._~/]+|[-._~/]+$/g, '');
}
