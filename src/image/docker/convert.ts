/**
 * docker2aci's squashed conversion: the image's layers become ONE ACI tar, streamed into
 * the ordinary import (src/store/import.ts), which hashes it, stores it and unpacks it with
 * the safe extractor. Nothing here writes files.
 *
 * The layers are read top first, each entry kept only if no layer above already decided
 * that path: with a file or directory of its own, with a whiteout (`.wh.NAME` removes NAME
 * and all below it), with an opaque directory (`.wh..wh..opq` hides what lower layers have
 * inside it) or by making an ancestor a non-directory. That is the same tree as applying
 * the layers bottom first and deleting on every whiteout, in one pass per layer and
 * without writing what a later layer deletes. A layer's whiteouts apply only to the
 * layers below it (OCI image-spec layer.md).
 *
 * Hostile layers: a name that is absolute or has a ".." component, a link target that
 * does, an entry inside something the same layer made a symlink or file, and an upper
 * layer writing inside a path a lower layer has as a symlink are refused here with the
 * layer named; the extractor refuses the same again as the last line of defence.
 */
import fs from 'node:fs';
import { Readable, Transform, pipeline } from 'node:stream';
import { extract, pack as tarPack, type Header, type Pack } from 'tar-stream';
import { sniffAndDecompress } from '../compression.js';
import type { EntryExtractor } from '../extract.js';
import { RktError, errorMessage, fail } from '../../util/errors.js';

/** A layer tar on disk; `ready` (if given) settles when the file is complete and checked. */
export interface LayerFile { digest: string; file: string; ready?: Promise<void> }

/** Files of the squashed rootfs the manifest needs (User resolution). */
export interface Captured { passwd?: Buffer; group?: Buffer }

/** A header to write (tar-stream fills in what is left out). */
type OutHeader = Parameters<Pack['entry']>[0];

const EPOCH = new Date(0);
const MAX_CAPTURE = 4 * 1024 * 1024;

/** Names of layer entries, checked and cleaned ("./a//b/" → "a/b", "./" → ""). */
function cleanName(raw: string, what: string): string {
  if (raw.includes('\0')) fail(`${what} has a NUL byte in its name`);
  if (raw.startsWith('/')) fail(`${what} has an absolute name ${JSON.stringify(raw)}`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) fail(`${what} ${JSON.stringify(raw)} has a ".." component`);
  return parts.join('/');
}

function parentsOf(name: string): string[] {
  const out: string[] = [];
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) out.push(name.slice(0, i));
  return out;
}

function dirOf(name: string): string {
  const i = name.lastIndexOf('/');
  return i < 0 ? '' : name.slice(0, i);
}

/** What the layers above the one being read decided. */
class UpperState {
  /** Paths set (or whited out) above: a lower entry with the same path is dropped. */
  readonly decided = new Set<string>();
  /** Paths whose descendants lower layers may not add (whiteouts, non-directories, opaque dirs). */
  readonly hideBelow = new Set<string>();
  /** Directories that entries above live in: a lower layer must have a directory there too. */
  readonly dirsInUse = new Set<string>();

  hides(name: string): boolean {
    if (this.decided.has(name)) return true;
    return parentsOf(name).some((p) => this.hideBelow.has(p));
  }
}

/** One layer's own decisions; merged into UpperState when the layer ends. */
class LayerState {
  readonly kept = new Set<string>();
  readonly nonDirs = new Map<string, string>();
  readonly whiteouts = new Set<string>();
  readonly opaque = new Set<string>();
  readonly parents = new Set<string>();

  mergeInto(up: UpperState): void {
    for (const p of this.kept) up.decided.add(p);
    for (const p of this.whiteouts) { up.decided.add(p); up.hideBelow.add(p); }
    for (const p of this.nonDirs.keys()) up.hideBelow.add(p);
    for (const p of this.opaque) up.hideBelow.add(p);
    for (const p of this.parents) up.dirsInUse.add(p);
  }
}

function num(pax: string | undefined, value: number | undefined): number {
  return pax !== undefined ? Number(pax) : value ?? 0;
}

/**
 * Bounds the uncompressed bytes of all layers together, whether kept or dropped: a
 * decompression bomb (gzip or zstd) in content an upper layer deletes never reaches the
 * ACI, whose own size the import checks, but still costs its decompression.
 */
export interface ExpandedLimit { bytes: number; error: () => Error }

/**
 * The ACI tar of the squashed layers (given bottom first), with the manifest last: it is
 * built by `manifest` from what the rootfs holds (its /etc/passwd and /etc/group).
 */
export function squashLayers(layers: LayerFile[], manifest: (captured: Captured) => Buffer, limit?: ExpandedLimit): Readable {
  return squash(layers, manifest, limit, undefined).stream;
}

/**
 * squashLayers, each kept entry also written at once into a tree by `render` (the safe
 * extractor): the import then only hashes and stores the ACI tar instead of parsing it
 * again. `rendered` settles with the manifest once the tree is complete.
 */
export function squashAndRender(layers: LayerFile[], manifest: (captured: Captured) => Buffer, limit: ExpandedLimit | undefined, render: EntryExtractor): { stream: Readable; rendered: Promise<Buffer> } {
  return squash(layers, manifest, limit, render) as { stream: Readable; rendered: Promise<Buffer> };
}

function squash(layers: LayerFile[], manifest: (captured: Captured) => Buffer, limit: ExpandedLimit | undefined, render: EntryExtractor | undefined): { stream: Readable; rendered: Promise<Buffer | undefined> } {
  const out = tarPack();
  const upper = new UpperState();
  const captured: Captured = {};
  const expanded = { bytes: 0, limit };
  const rendered = (async () => {
    await entry(out, render, { name: 'rootfs', type: 'directory', mode: 0o755, mtime: EPOCH });
    for (let i = layers.length - 1; i >= 0; i--) {
      await layers[i].ready;
      await squashLayer(layers[i], `layer ${i + 1} of ${layers.length} (${layers[i].digest.slice(0, 19)})`, upper, out, captured, expanded, render);
    }
    const body = manifest(captured);
    await entry(out, render, { name: 'manifest', type: 'file', mode: 0o644, mtime: EPOCH, size: body.length }, body);
    const result = render?.finish();
    out.finalize();
    return result?.manifest;
  })();
  rendered.catch((e: unknown) => out.destroy(e instanceof Error ? e : new Error(String(e))));
  // A Node stream for the importer (tar-stream's are streamx streams).
  return { stream: Readable.from(out, { objectMode: false }), rendered };
}

/** The header the extractor reads for an entry written to the ACI (sizes are numbers there). */
function extractHeader(h: OutHeader): Header {
  return { ...h, size: h.size ?? 0 } as Header;
}

/** Calls `next` once both the ACI entry and its extraction are done (the first error wins). */
function joined(parts: number, next: (err?: Error) => void): (err?: Error | null) => void {
  let left = parts;
  let failed = false;
  return (err) => {
    if (failed) return;
    if (err) { failed = true; return next(err); }
    if (--left === 0) next();
  };
}

function entry(out: Pack, render: EntryExtractor | undefined, header: OutHeader, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = joined(render ? 2 : 1, (err) => (err ? reject(err) : resolve()));
    if (body) out.entry(header, body, done);
    else out.entry(header, done); // a directory: no body, the entry ends by itself
    render?.onEntry(extractHeader(header), Readable.from(body ? [body] : []), done);
  });
}

async function squashLayer(layer: LayerFile, what: string, upper: UpperState, out: Pack, captured: Captured, expanded: { bytes: number; limit?: ExpandedLimit }, render: EntryExtractor | undefined): Promise<void> {
  const state = new LayerState();
  const file = fs.createReadStream(layer.file, { highWaterMark: 1024 * 1024 });
  let decompressed: Readable;
  try {
    ({ stream: decompressed } = await sniffAndDecompress(file, { zstd: true }));
  } catch (e) {
    file.destroy();
    throw new RktError(`${what}: ${errorMessage(e)}`);
  }
  const limit = expanded.limit;
  const tar = !limit ? decompressed : pipeline(decompressed, new Transform({
    transform(chunk: Buffer, _enc, done) {
      expanded.bytes += chunk.length;
      // Stopping here stops the decompressor (a tool is killed): the rest is never made.
      if (expanded.bytes > limit.bytes) return done(limit.error());
      done(null, chunk);
    },
  }), () => { /* errors reach the parser through the pipeline below */ });
  const parser = extract();
  parser.on('entry', (h, stream, next) => {
    stream.on('error', () => {}); // the parser's own error says what broke
    let keep: OutHeader | undefined;
    let name = '';
    try {
      name = cleanName(h.name, `${what}: entry`);
      keep = decide(h, name, what, upper, state);
    } catch (e) {
      stream.resume();
      next(e as Error);
      return;
    }
    if (!keep) {
      stream.on('end', () => next()).on('error', next).resume();
      return;
    }
    const capture = (name === 'etc/passwd' || name === 'etc/group') && keep.type === 'file' && (keep.size ?? 0) <= MAX_CAPTURE;
    const chunks: Buffer[] = [];
    const done = joined(render ? 2 : 1, next);
    const sink = out.entry(keep, (err) => {
      if (err) return done(err);
      if (capture) captured[name === 'etc/passwd' ? 'passwd' : 'group'] = Buffer.concat(chunks);
      done();
    });
    // The extractor takes the body from the same 'data' events the ACI entry is piped from.
    render?.onEntry(extractHeader(keep), stream, done);
    if (keep.type !== 'file') {
      stream.resume(); // links, directories and devices have no body; the sink ends by itself
      return;
    }
    if (capture) stream.on('data', (c) => { chunks.push(c as Buffer); });
    pipeline(stream, sink, (err) => { if (err) done(err); });
  });
  await new Promise<void>((resolve, reject) => {
    pipeline(tar, parser, (err) => {
      if (!err) return resolve();
      if (err instanceof RktError) return reject(err); // a size limit (FetchLimitError) too
      const msg = errorMessage(err);
      if (msg === 'Unexpected end of data') return reject(new RktError(`${what}: the layer's tar is truncated`));
      reject(new RktError(`${what}: ${msg}`));
    });
  });
  state.mergeInto(upper);
}

/** The header to write for a layer entry, or undefined to drop it. */
function decide(h: Header, name: string, what: string, upper: UpperState, state: LayerState): OutHeader | undefined {
  if (name === '') return undefined; // the layer's own root
  const base = name.slice(name.lastIndexOf('/') + 1);
  if (base === '.wh..wh..opq') {
    state.opaque.add(dirOf(name));
    return undefined;
  }
  if (base.startsWith('.wh..wh.')) return undefined; // aufs bookkeeping, not content
  if (base.startsWith('.wh.')) {
    const target = (dirOf(name) ? `${dirOf(name)}/` : '') + base.slice(4);
    if (target.split('/').pop() === '') fail(`${what}: whiteout ${JSON.stringify(h.name)} names nothing`);
    state.whiteouts.add(target);
    return undefined;
  }
  for (const p of parentsOf(name)) {
    const kind = state.nonDirs.get(p);
    if (kind) fail(`${what}: entry ${JSON.stringify(h.name)} is inside ${JSON.stringify(p)}, which the same layer made a ${kind}: refusing to write through it`);
  }
  if (upper.hides(name)) return undefined;
  if (state.kept.has(name)) fail(`${what}: entry ${JSON.stringify(h.name)} appears twice`);
  if (h.type !== 'directory' && upper.dirsInUse.has(name)) {
    fail(`${what}: ${JSON.stringify(name)} is a ${h.type} in this layer, but a layer above writes inside it as a directory: refusing to write through it`);
  }

  const pax = (h.pax ?? {}) as Record<string, string | undefined>;
  const header: OutHeader = {
    name: `rootfs/${name}`,
    type: h.type,
    mode: h.mode,
    uid: num(pax.uid, h.uid),
    gid: num(pax.gid, h.gid),
    uname: h.uname,
    gname: h.gname,
    mtime: pax.mtime !== undefined ? new Date(Number(pax.mtime) * 1000) : h.mtime,
  };
  switch (h.type) {
    case 'file':
    case 'contiguous-file':
      header.type = 'file';
      header.size = h.size;
      break;
    case 'directory':
      break;
    case 'symlink':
      if (!h.linkname) fail(`${what}: symlink ${JSON.stringify(h.name)} has no target`);
      header.linkname = h.linkname; // kept as written: nothing follows it during the import
      break;
    case 'link':
      header.linkname = `rootfs/${cleanName(h.linkname ?? '', `${what}: hard link ${JSON.stringify(h.name)} to`)}`;
      break;
    case 'character-device':
    case 'block-device':
      header.devmajor = h.devmajor;
      header.devminor = h.devminor;
      break;
    case 'fifo':
      break;
    default:
      fail(`${what}: entry ${JSON.stringify(h.name)} has an unsupported tar type (${h.type})`);
  }
  state.kept.add(name);
  if (header.type !== 'directory') state.nonDirs.set(name, header.type === 'symlink' ? 'symlink' : 'file');
  for (const p of parentsOf(name)) state.parents.add(p);
  return header;
}

