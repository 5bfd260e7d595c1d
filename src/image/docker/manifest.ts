/**
 * The registry's documents: image manifests (Docker schema 2, OCI), manifest lists and OCI
 * indexes (one entry per platform), and the image config. Schema 1 (signed, v1 layer IDs,
 * no content-addressed config) is refused whatever --insecure-options says.
 */
import crypto from 'node:crypto';
import { fail } from '../../util/errors.js';
import { MEDIA } from './registry.js';

export interface Descriptor { mediaType: string; digest: string; size: number; platform?: { os?: string; architecture?: string; variant?: string } }

export type Parsed =
  | { kind: 'manifest'; config: Descriptor; layers: Descriptor[] }
  | { kind: 'index'; manifests: Descriptor[] };

/** The fields of an image config that become the app (OCI image-spec config.md). */
export interface ImageConfig {
  os?: string;
  architecture?: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    ExposedPorts?: Record<string, unknown>;
    Volumes?: Record<string, unknown>;
    Labels?: Record<string, string> | null;
  };
  rootfs?: { type?: string; diff_ids?: string[] };
}

export const LAYER_TYPES = new Set([
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  // Decompressed by Debian's zstd tool (compression.ts); zstd:chunked is the same type.
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

const DIGEST = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;

export function digestOf(body: Buffer, algorithm = 'sha256'): string {
  return `${algorithm}:${crypto.createHash(algorithm).update(body).digest('hex')}`;
}

/** The body must hash to `digest` (sha256 or sha512, as the digest says). */
export function checkDigest(body: Buffer, digest: string, what: string): void {
  const algorithm = digest.split(':')[0];
  if (!DIGEST.test(digest)) fail(`${what} has an unsupported digest "${digest}" (sha256 or sha512 only)`);
  const got = digestOf(body, algorithm);
  if (got !== digest) fail(`${what} does not match its digest: expected ${digest}, got ${got}`);
}

function descriptor(v: unknown, what: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (!d || typeof d !== 'object' || typeof d.digest !== 'string' || !DIGEST.test(d.digest)) {
    fail(`${what} has no valid digest (sha256: or sha512: and hex digits)`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) fail(`${what} has no valid size`);
  return { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size, platform: d.platform };
}

/** Parses a manifest or an index; `contentType` is the registry's Content-Type. */
export function parseDocument(body: Buffer, contentType: string, what: string): Parsed {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    return fail(`${what} is not valid JSON`);
  }
  if (!json || typeof json !== 'object') fail(`${what} is not a JSON object`);
  const mediaType = typeof json.mediaType === 'string' ? json.mediaType : contentType;
  if (json.schemaVersion === 1 || /^application\/vnd\.docker\.distribution\.manifest\.v1\+(prettyjws|json)$/.test(mediaType)) {
    fail(`${what} is a Docker schema 1 manifest, which rkt does not accept (it has no content-addressed config): push the image again with a current Docker, podman or skopeo (schema 2 or OCI)`);
  }
  if (json.schemaVersion !== 2) fail(`${what} has schemaVersion ${JSON.stringify(json.schemaVersion)}: rkt reads schema 2 and OCI manifests`);
  if (Array.isArray(json.manifests) || mediaType === MEDIA.dockerList || mediaType === MEDIA.ociIndex) {
    if (!Array.isArray(json.manifests)) fail(`${what} is an index without a "manifests" list`);
    return { kind: 'index', manifests: json.manifests.map((m, i) => descriptor(m, `entry ${i} of ${what}`)) };
  }
  if (mediaType !== '' && mediaType !== MEDIA.dockerManifest && mediaType !== MEDIA.ociManifest) {
    fail(`${what} has media type "${mediaType}", which is not an image manifest rkt can read`);
  }
  if (!Array.isArray(json.layers)) fail(`${what} has no "layers" list`);
  const config = descriptor(json.config, `the config of ${what}`);
  const layers = json.layers.map((l, i) => descriptor(l, `layer ${i + 1} of ${what}`));
  for (const [i, l] of layers.entries()) {
    if (l.mediaType !== '' && !LAYER_TYPES.has(l.mediaType)) {
      fail(`layer ${i + 1} of ${what} has media type "${l.mediaType}", which rkt cannot unpack (tar, tar+gzip and tar+zstd only)`);
    }
  }
  return { kind: 'manifest', config, layers };
}

/** The host's platform in Docker/OCI terms. */
export function hostPlatform(): { os: string; architecture: string; variant?: string } {
  const arch: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: process.platform, architecture: arch[process.arch] ?? process.arch, variant: process.arch === 'arm' ? 'v7' : undefined };
}

export function formatPlatform(p: { os?: string; architecture?: string; variant?: string } | undefined): string {
  if (!p) return 'unknown platform';
  return `${p.os ?? '?'}/${p.architecture ?? '?'}${p.variant ? `/${p.variant}` : ''}`;
}

/** The index entry for this host, or an error that lists what the index has. */
export function pickPlatform(manifests: Descriptor[], what: string, host = hostPlatform()): Descriptor {
  const matches = manifests.filter((m) => m.platform?.os === host.os && m.platform?.architecture === host.architecture);
  const exact = matches.find((m) => !host.variant || !m.platform?.variant || m.platform.variant === host.variant);
  if (exact) return exact;
  const offered = manifests.map((m) => formatPlatform(m.platform)).join(', ') || 'nothing';
  return fail(`${what} has no image for this host's platform ${formatPlatform(host)} (it has: ${offered})`);
}

/** appc's arch label for a Docker architecture (docker2aci's translation). */
export function appcArch(architecture: string, variant?: string): string {
  switch (architecture) {
    case 'amd64': return 'amd64';
    case '386': return 'i386';
    case 'arm64': return 'aarch64';
    case 'arm': return variant === 'v6' ? 'armv6l' : 'armv7l';
    default: return architecture;
  }
}

export function parseConfig(body: Buffer, what: string): ImageConfig {
  let json: ImageConfig;
  try {
    json = JSON.parse(body.toString('utf8')) as ImageConfig;
  } catch {
    return fail(`${what} is not valid JSON`);
  }
  if (!json || typeof json !== 'object') fail(`${what} is not a JSON object`);
  const c = json.config;
  const strings = (v: unknown): boolean => v === undefined || v === null || (Array.isArray(v) && v.every((s) => typeof s === 'string'));
  if (c !== undefined && c !== null) {
    if (typeof c !== 'object') fail(`${what}: "config" is not an object`);
    if (!strings(c.Env) || !strings(c.Entrypoint) || !strings(c.Cmd)) fail(`${what}: Env, Entrypoint and Cmd must be lists of strings`);
    for (const f of ['User', 'WorkingDir'] as const) if (c[f] !== undefined && typeof c[f] !== 'string') fail(`${what}: ${f} must be a string`);
  }
  return json;
}
