/**
 * The tree store: one rendered tree per image ID, cas/tree/<id>/{manifest,rootfs,rendered}.
 * Rendering extracts the image's dependencies depth-first in order, then the image itself,
 * later files replacing earlier ones (appc ace.md); pathWhitelists filter what lands.
 * A finished tree is never changed: pods use it as a read-only overlay lower dir.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform, finished, pipeline } from 'node:stream';
import { sniffAndDecompress } from '../image/compression.js';
import { extractAci } from '../image/extract.js';
import { fail } from '../util/errors.js';
import type { ImageInfo, ImageStore } from './imagestore.js';
import { findDependency, notInStore } from './match.js';

/** One image to extract, with the whitelists that apply to it: its own and every one above it. */
export interface Layer { id: string; whitelists: string[][] }

/** Images in extraction order: for A→[B,C], C→[D] that is B, D, C, A. */
export function renderPlan(store: ImageStore, id: string): Layer[] {
  const layers: Layer[] = [];
  const visit = (info: ImageInfo, above: string[][], chain: string[]): void => {
    if (chain.includes(info.id)) fail(`image "${info.name}" depends on itself through its dependencies: fix the image manifests`);
    const manifest = store.manifest(info.id);
    const whitelists = manifest.pathWhitelist?.length ? [...above, manifest.pathWhitelist] : above;
    for (const dep of manifest.dependencies ?? []) {
      const found = findDependency(store, dep);
      if (!found) fail(`dependency "${dep.imageName}" of image "${info.name}" is not in the local store: fetch it with "rkt fetch ${dep.imageName}"`);
      visit(found, whitelists, [...chain, info.id]);
    }
    layers.push({ id: info.id, whitelists });
  };
  visit(store.get(id) ?? notInStore(id), [], []);
  return layers;
}

/**
 * A path (relative to rootfs, "/"-rooted) passes a whitelist if it is listed or is a
 * directory on the way to a listed path.
 */
export function whitelistFilter(whitelists: string[][]): ((p: string) => boolean) | undefined {
  if (whitelists.length === 0) return undefined;
  const sets = whitelists.map((wl) => {
    const keep = new Set<string>(['/']);
    for (const entry of wl) {
      const clean = path.posix.normalize(`/${entry}`).replace(/\/+$/, '') || '/';
      for (let p = clean; p !== '/'; p = path.posix.dirname(p)) keep.add(p);
    }
    return keep;
  });
  return (p: string) => {
    const clean = path.posix.normalize(`/${p}`).replace(/\/+$/, '') || '/';
    return sets.every((s) => s.has(clean));
  };
}

function changedOnDisk(id: string, what: string): never {
  return fail(`the ${what} of image ${id} in the store does not match the image (changed on disk): remove it with "rkt image rm ${id}" and fetch it again`);
}

/**
 * Extracts one stored blob into target through the safe extractor, checking that its
 * manifest is the stored one and, unless the blob is root's alone, that its content still
 * hashes to its ID: group rkt may write the store's blob/ and manifest/ (fetch), and what
 * root renders must be what was fetched. A checked blob is then made root's, so it is
 * hashed once, not on every render.
 */
export async function extractStored(
  store: ImageStore,
  id: string,
  target: string,
  opts: { rootfsOnly?: boolean; overwrite?: boolean; pathFilter?: (p: string) => boolean },
): Promise<void> {
  let fd: number;
  try { fd = fs.openSync(store.blobPath(id), 'r'); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ENOENT') notInStore(id); throw e; }
  const st = fs.fstatSync(fd);
  const rootsAlone = st.uid === 0 && (st.mode & 0o022) === 0;
  const asRoot = process.getuid?.() === 0;
  const blob = Readable.from(readFd(fd)); // never closes fd: it is fchown'd after the read
  try {
    const { stream } = await sniffAndDecompress(blob);
    const hash = crypto.createHash('sha512');
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    pipeline(stream, counter, () => {}); // errors reach counter, and through it the extractor
    const { manifest } = await extractAci(counter, target, { asRoot, ...opts });
    if (!manifest.equals(store.rawManifest(id))) changedOnDisk(id, 'manifest');
    if (!rootsAlone) {
      counter.resume(); // the ID covers the padding after the last entry too
      await new Promise<void>((resolve, reject) => finished(counter, (err) => (err ? reject(err) : resolve())));
      if (`sha512-${hash.digest('hex')}` !== id) changedOnDisk(id, 'content');
      if (asRoot) {
        fs.fchownSync(fd, 0, st.gid);
        fs.fchmodSync(fd, 0o644);
      }
    }
  } finally {
    blob.destroy();
    fs.closeSync(fd);
  }
}

async function* readFd(fd: number): AsyncGenerator<Buffer> {
  for (;;) {
    const buf = Buffer.allocUnsafe(1 << 20);
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) return;
    yield n === buf.length ? buf : buf.subarray(0, n);
  }
}

/** Renders the image with its dependencies into target (which may exist). */
export async function renderInto(store: ImageStore, id: string, target: string, opts: { rootfsOnly?: boolean }): Promise<void> {
  for (const layer of renderPlan(store, id)) {
    await extractStored(store, layer.id, target, { rootfsOnly: opts.rootfsOnly, overwrite: true, pathFilter: whitelistFilter(layer.whitelists) });
  }
  // Dependencies brought their own manifests; the image's own must be the one left.
  if (!opts.rootfsOnly) fs.writeFileSync(path.join(target, 'manifest'), store.rawManifest(id));
}

/**
 * The size of a rendered tree as rkt's `image list` counted it: the lstat size of every
 * entry under dir (itself included: directories, links, files), a hard-linked file once.
 */
export function treeBytes(dir: string, seen = new Set<string>()): number {
  let total = fs.lstatSync(dir).size;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) { total += treeBytes(p, seen); continue; }
    const st = fs.lstatSync(p);
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    total += st.size;
  }
  return total;
}

/** The cached rendered tree of an image, rendering it into tmp/ and renaming it in if absent. */
export async function renderTree(store: ImageStore, id: string): Promise<string> {
  const tree = store.treePath(id);
  if (!fs.existsSync(path.join(tree, 'rendered'))) {
    const stage = store.staging();
    try {
      // cas/tmp is open to group rkt; the tree being rendered is not (and has no setgid from it).
      fs.mkdirSync(stage, { mode: 0o700 });
      fs.chmodSync(stage, 0o700);
      await renderInto(store, id, stage, {});
      fs.writeFileSync(path.join(stage, 'rendered'), '');
      const size = treeBytes(stage);
      store.commitTree(stage, id);
      const info = store.get(id);
      if (info) store.writeInfo({ ...info, treeSize: size });
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
  }
  return path.join(tree, 'rootfs');
}
