/**
 * The image store (CAS) under <dir>/cas:
 *   blob/<id>         the ACI exactly as fetched (compressed or not)
 *   manifest/<id>     its image manifest, as found in the archive
 *   info/<id>.json    ImageInfo; written last, so an image exists iff this file does
 *   tree/<id>/        the rendered tree (rootfs/, manifest, `rendered` marker)
 *   files/<dev>-<ino>.json  which image a local file held, for the warm `rkt run ./x.aci`
 *   layer/<algo>-<hex>  Docker layers as the registry served them, by digest: an image that
 *                     shares a layer with a stored one does not download it again (image gc
 *                     removes the layers no stored image names)
 *   tmp/              staging (see staging.ts)
 * Every write goes to tmp/ first and is renamed into place.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Dependency, ImageManifest, Label } from '../image/types.js';
import { parseImageManifest } from '../image/manifest.js';
import { parseAppcName } from '../image/imageref.js';
import { formatDockerRef, parseDockerRef, stripDockerScheme } from '../image/docker/reference.js';
import type { Host } from '../host/host.js';
import { realHost } from '../host/real.js';
import { fail } from '../util/errors.js';
import { removeStaleStaging, stagingPath } from './staging.js';
import { makeDataDirs } from './datadir.js';
import { bestMatches, newestFirst, notInStore } from './match.js';

export { bestMatches, findDependency, labelRecord, notInStore } from './match.js';

/** What identifies an unchanged local file (ctime too: it moves on every content change). */
export interface FileStamp { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }

export interface ImageSource {
  url?: string;
  path?: string;
  etag?: string;
  maxAgeSeconds?: number;
  /** ISO time of the last download or 304 revalidation. */
  downloadTime?: string;
  fileStat?: FileStamp;
  /** A docker:// image (src/image/docker/). */
  docker?: DockerSource;
}

export interface DockerSource {
  /** The canonical reference it was fetched by: docker://registry/repo:tag or @digest. */
  ref: string;
  /** Digest of what the reference named (a manifest list / index, or the manifest). */
  digest: string;
  /** Digest of the platform's image manifest. */
  manifestDigest: string;
  /** Layer digests, bottom first. */
  layers: string[];
}

export interface ImageInfo {
  /** "sha512-" + 128 hex of the uncompressed tar */
  id: string;
  name: string;
  labels: Label[];
  /** ISO times */
  importTime: string;
  lastUsed: string;
  /** blob bytes */
  size: number;
  treeSize?: number;
  /** fetched by name without a version: preferred when a name is resolved without one */
  latest: boolean;
  /** fingerprint of the key that signed it; absent when imported with --insecure-options=image */
  signer?: string;
  source?: ImageSource;
}

export const ID_PREFIX = 'sha512-';
const FULL_ID = /^sha512-[0-9a-f]{128}$/;

/** `sha512-` plus the first `hex` digits: 32 for fetch, 12 for lists. */
export function shortId(id: string, hex: number): string {
  return id.slice(0, ID_PREFIX.length + hex);
}

/** The name as lists show it: `name:version` when there is a version label. */
export function displayName(info: Pick<ImageInfo, 'name' | 'labels'>): string {
  const version = info.labels.find((l) => l.name === 'version')?.value;
  return version ? `${info.name}:${version}` : info.name;
}

/** readJson, but for root only a file root alone may have written (checked on the open fd). */
function readOwnJson<T>(file: string): T | undefined {
  if (process.getuid?.() !== 0) return readJson<T>(file);
  let fd: number;
  try { fd = fs.openSync(file, 'r'); } catch { return undefined; }
  try {
    const st = fs.fstatSync(fd);
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) return undefined;
    return JSON.parse(fs.readFileSync(fd, 'utf8')) as T;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined; // absent, or removed while we listed
  }
}

export class ImageStore {
  readonly cas: string;

  constructor(readonly dir: string, private readonly host: Host = realHost) {
    this.cas = path.join(dir, 'cas');
  }

  blobPath(id: string): string { return path.join(this.cas, 'blob', id); }
  manifestPath(id: string): string { return path.join(this.cas, 'manifest', id); }
  infoPath(id: string): string { return path.join(this.cas, 'info', `${id}.json`); }
  treePath(id: string): string { return path.join(this.cas, 'tree', id); }
  get tmpDir(): string { return path.join(this.cas, 'tmp'); }
  /** A cached Docker layer, by digest (`sha256:hex` → layer/sha256-hex). */
  layerPath(digest: string): string { return path.join(this.cas, 'layer', digest.replace(':', '-')); }

  private laidOut = false;

  /** Creates the store directories with their owners and modes (datadir.ts), once. */
  ensureLayout(): void {
    if (this.laidOut) return;
    makeDataDirs(this.dir, ['blob', 'manifest', 'info', 'tree', 'files', 'tmp', 'layer'].map((sub) => `cas/${sub}`));
    this.laidOut = true;
  }

  /** A fresh staging path in tmp/ (not created). */
  staging(suffix = ''): string {
    this.ensureLayout();
    return stagingPath(this.tmpDir, this.host, suffix);
  }

  /** Deletes staging left by rkt processes that died. */
  removeStaleStaging(): string[] {
    return removeStaleStaging(this.tmpDir, this.host);
  }

  get(id: string): ImageInfo | undefined {
    if (!FULL_ID.test(id)) return undefined;
    return readJson<ImageInfo>(this.infoPath(id));
  }

  list(): ImageInfo[] {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(this.cas, 'info'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e; // EACCES must not look like an empty store
    }
    return names
      .filter((n) => n.endsWith('.json'))
      .map((n) => readJson<ImageInfo>(path.join(this.cas, 'info', n)))
      .filter((i): i is ImageInfo => i !== undefined);
  }

  /** An ID prefix (`sha512-` + at least 2 hex digits), a docker:// reference, or an appc name[:version][,label=value]. */
  resolve(ref: string): ImageInfo {
    if (ref.startsWith(ID_PREFIX)) return this.resolveId(ref);
    if (/^docker:/i.test(ref)) return this.dockerImages(ref)[0] ?? notInStore(ref);
    const { name, labels } = parseAppcName(ref);
    return bestMatches(this.list(), name, labels)[0] ?? notInStore(ref);
  }

  /** Every image an `image rm` argument names: one for an ID, all matches for a name. */
  resolveAll(ref: string): ImageInfo[] {
    if (ref.startsWith(ID_PREFIX)) return [this.resolveId(ref)];
    if (/^docker:/i.test(ref)) {
      const hits = this.dockerImages(ref);
      return hits.length > 0 ? hits : notInStore(ref);
    }
    const { name, labels } = parseAppcName(ref);
    const hits = bestMatches(this.list(), name, labels);
    return hits.length > 0 ? hits : notInStore(ref);
  }

  /** Images fetched by a docker:// reference (or, for @digest, with that digest), newest first. */
  dockerImages(ref: string): ImageInfo[] {
    const parsed = parseDockerRef(stripDockerScheme(ref));
    const canonical = formatDockerRef(parsed);
    return this.list()
      .filter((i) => {
        const d = i.source?.docker;
        if (!d) return false;
        return parsed.digest ? d.digest === parsed.digest || d.manifestDigest === parsed.digest : d.ref === canonical;
      })
      .sort((a, b) => newestFirst(a.source?.downloadTime, b.source?.downloadTime));
  }

  private resolveId(ref: string): ImageInfo {
    const hex = ref.slice(ID_PREFIX.length).toLowerCase();
    if (!/^[0-9a-f]*$/.test(hex) || hex.length > 128) {
      fail(`invalid image ID "${ref}": an image ID is "sha512-" followed by hex digits`);
    }
    if (hex.length < 2) fail(`image ID "${ref}" is too short: give "sha512-" and at least 2 hex digits`);
    const id = ID_PREFIX + hex;
    const exact = this.get(id);
    if (exact) return exact;
    const hits = this.list().filter((i) => i.id.startsWith(id));
    if (hits.length === 0) notInStore(ref);
    if (hits.length > 1) fail(`image ID "${ref}" is ambiguous: ${hits.length} images match it; give more hex digits`);
    return hits[0];
  }

  /**
   * The image's manifest: root reads the rendered tree's copy (root's alone, checked against
   * the content when rendered), others and unrendered images the one in manifest/.
   */
  rawManifest(id: string): Buffer {
    if (FULL_ID.test(id)) {
      try { return fs.readFileSync(path.join(this.treePath(id), 'manifest')); } catch { /* not rendered, or not ours to read */ }
    }
    try {
      return fs.readFileSync(this.manifestPath(id));
    } catch {
      return notInStore(id);
    }
  }

  manifest(id: string): ImageManifest {
    return parseImageManifest(this.rawManifest(id).toString('utf8'));
  }

  /** The rendered rootfs of an image (dependencies applied), rendering it first if needed. */
  async treeRootfs(id: string): Promise<string> {
    if (fs.existsSync(path.join(this.treePath(id), 'rendered'))) return path.join(this.treePath(id), 'rootfs');
    // Rendering needs tar and decompression code; the warm path above does not load it.
    const { renderTree } = await import('./treestore.js');
    return renderTree(this, id);
  }

  /** Records that a pod used the image now (image gc's grace period counts from it). */
  touch(id: string): void {
    const info = this.get(id) ?? notInStore(id);
    // image gc counts in hours: rewriting the record on every run of a busy image buys nothing.
    if (Date.now() - Date.parse(info.lastUsed) < 60_000) return;
    this.writeInfo({ ...info, lastUsed: new Date().toISOString() });
  }

  /** Deletes the image; its tree stays for pods that use it until image gc. */
  remove(id: string): void {
    if (!this.get(id)) notInStore(id);
    fs.rmSync(this.infoPath(id), { force: true });
    fs.rmSync(this.blobPath(id), { force: true });
    fs.rmSync(this.manifestPath(id), { force: true });
    for (const [file, entry] of this.fileEntries()) if (entry.id === id) fs.rmSync(file, { force: true });
  }

  writeInfo(info: ImageInfo): void {
    this.writeAtomic(this.infoPath(info.id), JSON.stringify(info, null, 2));
  }

  /** Write to tmp/, then rename: readers see the old file or the whole new one. */
  writeAtomic(file: string, data: string | Buffer): void {
    const tmp = this.staging('.tmp');
    try {
      fs.writeFileSync(tmp, data);
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Moves a complete staging tree to tree/<id>. When another rkt got there first, its tree
   * (same image, same content) stays and ours is deleted.
   */
  commitTree(staged: string, id: string): void {
    try {
      fs.renameSync(staged, this.treePath(id));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      fs.rmSync(staged, { recursive: true, force: true });
    }
  }

  treeIds(): string[] {
    try {
      return fs.readdirSync(path.join(this.cas, 'tree')).filter((n) => FULL_ID.test(n));
    } catch {
      return [];
    }
  }

  /** Renames the tree away first, so a half-deleted tree is never taken for a rendered one. */
  removeTree(id: string): void {
    const doomed = this.staging();
    try {
      fs.renameSync(this.treePath(id), doomed);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    fs.rmSync(doomed, { recursive: true, force: true });
  }

  /** Blobs and manifests whose info is gone (a fetch killed between its renames). */
  removeOrphans(): void {
    for (const sub of ['blob', 'manifest']) {
      let names: string[] = [];
      try { names = fs.readdirSync(path.join(this.cas, sub)); } catch { /* no store yet */ }
      for (const n of names) if (FULL_ID.test(n) && !fs.existsSync(this.infoPath(n))) fs.rmSync(path.join(this.cas, sub, n), { force: true });
    }
  }

  /** Cached Docker layers that no stored image lists; returns the digests removed. */
  removeUnusedLayers(): string[] {
    const dir = path.join(this.cas, 'layer');
    let names: string[] = [];
    try { names = fs.readdirSync(dir); } catch { return []; }
    const used = new Set(this.list().flatMap((i) => i.source?.docker?.layers ?? []).map((d) => d.replace(':', '-')));
    const removed: string[] = [];
    for (const n of names) {
      if (used.has(n) || !/^[a-z0-9]+-[a-f0-9]+$/.test(n)) continue;
      fs.rmSync(path.join(dir, n), { force: true });
      removed.push(n.replace('-', ':'));
    }
    return removed;
  }

  private fileIndexPath(st: FileStamp): string {
    return path.join(this.cas, 'files', `${st.dev}-${st.ino}.json`);
  }

  /**
   * The image a local file held when it was last imported, if the file is unchanged. Root
   * believes only its own entries: group rkt may write files/ and could map root's file
   * to another image.
   */
  imageForFile(st: FileStamp): ImageInfo | undefined {
    const entry = readOwnJson<FileStamp & { id: string }>(this.fileIndexPath(st));
    if (!entry || entry.size !== st.size || entry.mtimeMs !== st.mtimeMs || entry.ctimeMs !== st.ctimeMs) return undefined;
    return this.get(entry.id);
  }

  rememberFile(st: FileStamp, id: string): void {
    const { dev, ino, size, mtimeMs, ctimeMs } = st;
    this.writeAtomic(this.fileIndexPath(st), JSON.stringify({ dev, ino, size, mtimeMs, ctimeMs, id }));
  }

  private fileEntries(): Array<[string, { id: string }]> {
    const dir = path.join(this.cas, 'files');
    let names: string[] = [];
    try { names = fs.readdirSync(dir); } catch { /* no store yet */ }
    return names
      .map((n): [string, { id: string } | undefined] => [path.join(dir, n), readJson<{ id: string }>(path.join(dir, n))])
      .filter((e): e is [string, { id: string }] => e[1] !== undefined);
  }
}
