/**
 * Importing an ACI in a single read of its source. Every chunk goes to the digester
 * (digester.ts, a worker thread when available), which
 *   (1) writes it as is to a staging blob file and feeds the signature verifier, and
 *   (2) decompresses it and hashes the tar (the image ID); the tar comes back here, to the
 *       extractor, which unpacks it into a staging tree.
 * Only when the bytes are verified, the signer is trusted for the name in the manifest and
 * the manifest is what was asked for, do the tree, blob, manifest and finally the info enter
 * the store, each by rename. On failure the staging directory is deleted; after a SIGKILL it
 * stays in tmp/ until the next fetch or gc sees its owner is dead.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform, finished, pipeline } from 'node:stream';
import type { ImageManifest } from '../image/types.js';
import { parseImageManifest } from '../image/manifest.js';
import { entryExtractor, extractAci, type EntryExtractor, type ExtractOptions } from '../image/extract.js';
import { FetchLimitError, sizeLimitError, sizeLimits, type FetchLimits, type SizeLimit } from '../image/limits.js';
import type { KeyStore } from '../trust/keystore.js';
import { assertTrustedFingerprint, expiredSinceWarning } from '../trust/trust-check.js';
import { startDigester, type Digester } from './digester.js';
import { RktError, errorMessage, fail } from '../util/errors.js';
import { imageInfo, warn } from '../util/log.js';
import { ID_PREFIX, type ImageInfo, type ImageSource, type ImageStore } from './imagestore.js';

export interface ImportRequest {
  /** The image as the user named it (file, URL or name), for messages. */
  label: string;
  /** The detached signature and the trust store; absent with --insecure-options=image. */
  verify?: { signature: Buffer; keystore: KeyStore };
  /** For a fetch by name: what the manifest must say. */
  expected?: { name: string; labels: Record<string, string> };
  source: ImageSource;
  /** Fetched by name without a version. */
  latest: boolean;
  /** --max-download-size and --max-expanded-size (defaults: the data dir's free space). */
  limits?: FetchLimits;
}

/** The size limits of one import, and the source to name when one is hit. */
interface Limits { download: SizeLimit; expanded: SizeLimit; source: string }

interface PassResult { tarHash: string; tarBytes: number; blobBytes: number; manifest: Buffer }

/** Reading the source failed (network, file), or unpacking what was read did. */
type PassOutcome = { ok: PassResult } | { sourceError: unknown } | { unpackError: unknown };

/** Extract the tar the digester decompresses (it hashes it too), within the size limit. */
async function unpack(treeDir: string, limits: Limits, digester: Digester): Promise<{ tarHash: string; tarBytes: number; manifest: Buffer }> {
  const asRoot = process.getuid?.() === 0;
  let tarBytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      tarBytes += chunk.length;
      // A decompression bomb stops here, before its bytes reach the disk.
      if (tarBytes > limits.expanded.bytes) return done(sizeLimitError(limits.source, limits.expanded, 'expanded'));
      done(null, chunk);
    },
  });
  pipeline(digester.tar, counter, () => {}); // errors reach counter, and through it the extractor
  // Only root renders trees (cas/tree is root's); a group rkt member's fetch stores the
  // blob and manifest, and root renders the tree when a pod first uses it.
  const { manifest } = await extractAci(counter, treeDir, { asRoot, ...(asRoot ? {} : { pathFilter: () => false }) });
  // The image ID covers the whole tar, padding after the last entry included.
  counter.resume();
  await new Promise<void>((resolve, reject) => finished(counter, (err) => (err ? reject(err) : resolve())));
  return { tarHash: await digester.tarDigest(), tarBytes, manifest };
}

/**
 * The one read of the source. A failed extraction does not stop the read while a signature
 * is checked: a tampered archive is then reported as such, not as a broken tar. A failed
 * verification stops it at once.
 */
async function singlePass(input: Readable, treeDir: string, digester: Digester, limits: Limits): Promise<PassOutcome> {
  let unpackFailed = false;
  let limitHit = false;
  const unpacking = unpack(treeDir, limits, digester).catch((e: unknown) => {
    unpackFailed = true;
    limitHit = e instanceof FetchLimitError;
    digester.abandonTar();
    throw e;
  });
  unpacking.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"
  let verifyFailed = false;
  const verifying = digester.verified !== undefined;
  digester.verified?.catch(() => { verifyFailed = true; });

  let blobBytes = 0;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      blobBytes += chunk.length;
      if (blobBytes > limits.download.bytes) throw sizeLimitError(limits.source, limits.download, 'download');
      await digester.raw(chunk);
      // A size limit ends the fetch at once; the signature of a truncated image means nothing.
      if (limitHit) break;
      if (verifyFailed || (unpackFailed && !verifying)) break;
    }
  } catch (e) {
    digester.endTar(e as Error);
    await digester.endRaw(false).catch(() => {}); // stops the verification; `e` is the error to report
    return { sourceError: e };
  }
  // With an error: a plain end would leave a reader that waits for data hanging.
  digester.endTar(verifyFailed ? new Error('signature verification failed') : undefined);
  try {
    await digester.endRaw(!limitHit);
  } catch (e) {
    digester.abandonTar();
    return { sourceError: e };
  }
  try {
    return { ok: { ...(await unpacking), blobBytes } };
  } catch (e) {
    return { unpackError: e };
  }
}

/** Best effort: the store may be the thing that is failing. */
function removeParts(store: ImageStore, id: string): void {
  const attempts = [() => store.removeTree(id), () => fs.rmSync(store.blobPath(id), { force: true }), () => fs.rmSync(store.manifestPath(id), { force: true })];
  for (const attempt of attempts) {
    try { attempt(); } catch { /* image gc removes what is left (removeOrphans) */ }
  }
}

function checkRequested(m: ImageManifest, expected: { name: string; labels: Record<string, string> }): void {
  if (m.name !== expected.name) {
    fail(`the image fetched for "${expected.name}" is named "${m.name}": the server offered the wrong image`);
  }
  for (const [name, value] of Object.entries(expected.labels)) {
    if (value === '') continue;
    const got = m.labels?.find((l) => l.name === name);
    if (!got) fail(`requested label "${name}" not provided by the image manifest`);
    if (got.value !== value) {
      fail(`requested value for label "${name}": "${value}" differs from fetched aci label value: "${got.value}"`);
    }
  }
}

/**
 * An ACI made here (a docker:// conversion) rather than read: an uncompressed tar whose
 * entries the maker also renders into the tree itself, through `render`. The import then
 * only hashes the tar and writes it as the blob (no second parse, no digest worker).
 */
export type RenderedSource = (render: EntryExtractor) => { stream: Readable; rendered: Promise<Buffer> };

/** The one read of a rendered source: hash and blob; the maker extracts. */
async function renderedPass(make: RenderedSource, treeDir: string, extractOpts: ExtractOptions, blobFile: string, limits: Limits): Promise<PassOutcome> {
  let source: ReturnType<RenderedSource>;
  try {
    source = make(entryExtractor(treeDir, extractOpts));
  } catch (e) {
    return { sourceError: e };
  }
  const { stream, rendered } = source;
  rendered.catch(() => {}); // awaited below; the stream fails with the same error
  const hash = crypto.createHash('sha512');
  const fd = fs.openSync(blobFile, 'wx', 0o644);
  let bytes = 0;
  // Tar headers and bodies arrive as many small chunks: written 1 MiB at a time.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = (): void => {
    if (pendingBytes === 0) return;
    try {
      fs.writevSync(fd, pending);
    } catch (e) {
      (e as NodeJS.ErrnoException).path ??= blobFile; // ENOSPC must name the data dir's file
      throw e;
    }
    pending = [];
    pendingBytes = 0;
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > limits.expanded.bytes) throw sizeLimitError(limits.source, limits.expanded, 'expanded');
      hash.update(chunk);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= 1024 * 1024) flush();
    }
    flush();
  } catch (e) {
    stream.destroy();
    return { sourceError: e };
  } finally {
    fs.closeSync(fd);
  }
  try {
    return { ok: { tarHash: hash.digest('hex'), tarBytes: bytes, blobBytes: bytes, manifest: await rendered } };
  } catch (e) {
    return { unpackError: e };
  }
}

/** Verifies and stores one ACI read from `input` (or made and rendered by it); returns its info. */
export async function importAci(store: ImageStore, input: Readable | RenderedSource, req: ImportRequest): Promise<ImageInfo> {
  store.ensureLayout();
  store.removeStaleStaging();
  const stage = store.staging();
  fs.mkdirSync(stage, { mode: 0o700 });
  let digester: Digester | undefined;
  try {
    // Root: no setgid from cas/tmp, so extracted dirs keep the archive's groups. A group rkt
    // member extracts no rootfs, and keeps the setgid so the blob is group rkt's.
    fs.chmodSync(stage, process.getuid?.() === 0 ? 0o700 : 0o2700);
    const treeDir = path.join(stage, 'tree');
    const blobFile = path.join(stage, 'blob');
    fs.mkdirSync(treeDir, { mode: 0o755 });

    const verify = req.verify && { signature: req.verify.signature, keystore: req.verify.keystore, image: req.label };
    if (!verify) imageInfo('warning: image signature verification has been disabled');
    if (verify && typeof input === 'function') throw new Error('a rendered source has no signature to verify');

    const { download, expanded } = sizeLimits(req.limits, store.dir);
    const source = req.source.url ?? req.source.path ?? req.label;
    let outcome: PassOutcome;
    if (typeof input === 'function') {
      const asRoot = process.getuid?.() === 0;
      outcome = await renderedPass(input, treeDir, { asRoot, ...(asRoot ? {} : { pathFilter: () => false }) }, blobFile, { download, expanded, source });
    } else {
      digester = await startDigester({ blobFile, verify });
      outcome = await singlePass(input, treeDir, digester, { download, expanded, source });
    }
    if ('sourceError' in outcome) {
      const e = outcome.sourceError;
      if (e instanceof RktError || (e as NodeJS.ErrnoException).path === blobFile) throw e; // the store's fault
      fail(`reading image "${req.label}" failed before its end (${errorMessage(e)}): fetch it again`);
    }
    if ('unpackError' in outcome && outcome.unpackError instanceof FetchLimitError) throw outcome.unpackError;
    // A bad signature explains a broken archive better than the archive's own error.
    const signer = digester?.verified ? await digester.verified : undefined;
    if ('unpackError' in outcome) throw outcome.unpackError;
    const pass = outcome.ok;

    const manifest = parseImageManifest(pass.manifest.toString('utf8'));
    if (signer && req.verify) {
      assertTrustedFingerprint(manifest.name, signer, await digester!.trustedFor(manifest.name));
      imageInfo(`signature verified:\n  ${signer.identities.join('\n  ')}`);
      const expired = expiredSinceWarning(manifest.name, signer);
      if (expired) warn(expired);
    }
    if (req.expected) checkRequested(manifest, req.expected);

    const id = ID_PREFIX + pass.tarHash;
    // A tree with dependencies or a whitelist is rendered from the blobs later (treestore.ts).
    const treeReady = !manifest.dependencies?.length && !manifest.pathWhitelist?.length && process.getuid?.() === 0;
    const prev = store.get(id);
    try {
      if (treeReady) {
        fs.writeFileSync(path.join(treeDir, 'rendered'), '');
        store.commitTree(treeDir, id);
      }
      fs.renameSync(blobFile, store.blobPath(id));
      store.writeAtomic(store.manifestPath(id), pass.manifest);
    } catch (e) {
      // A full or read-only store: no tree or blob of an image the store does not list.
      if (!prev && !store.get(id)) removeParts(store, id);
      throw e;
    }

    const now = new Date().toISOString();
    const stored: ImageInfo = {
      id,
      name: manifest.name,
      labels: manifest.labels ?? [],
      importTime: prev?.importTime ?? now,
      lastUsed: prev?.lastUsed ?? now,
      size: pass.blobBytes,
      treeSize: treeReady ? pass.tarBytes : prev?.treeSize,
      latest: req.latest || (prev?.latest ?? false),
      // Same ID, same content: an earlier verification still vouches for it.
      signer: signer?.fingerprint ?? prev?.signer,
      source: req.source,
    };
    try {
      store.writeInfo(stored);
    } catch (e) {
      if (!prev) removeParts(store, id);
      throw e;
    }
    return stored;
  } finally {
    digester?.close();
    fs.rmSync(stage, { recursive: true, force: true });
  }
}
