/**
 * The side work of an import: writing the bytes as read to the blob file, checking their
 * signature, decompressing them, and hashing the uncompressed tar (the image ID); what is
 * left to the caller is the tar itself, to extract. On this 2-core machine the main thread
 * is the bottleneck of a fetch (tar parsing and the extraction's file-system calls), so
 * this work runs in a worker thread (digest-worker.ts) when one can be started; otherwise
 * (under the unit tests, which run the TypeScript sources) in the main thread, with the
 * same interface and the same verification and decompression code.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, Transform, pipeline, type Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { KeyStore, KeyStoreConfig } from '../trust/keystore.js';
import type { SignerInfo } from '../trust/verify.js';
import { sniffAndDecompress } from '../image/compression.js';
import { RktError } from '../util/errors.js';

export interface Digester {
  /** Bytes of the image as read: blob file, signature check, decompression. Resolves when there is room for more. */
  raw(chunk: Buffer): Promise<void> | undefined;
  /**
   * No more raw bytes for the blob and the signature: `complete` ends the signature check
   * normally, else it is abandoned. Resolves once the blob file is closed; rejects if writing it failed.
   */
  endRaw(complete: boolean): Promise<void>;
  /** No more raw bytes for the decompressor; with an error, `tar` fails with it. */
  endTar(err?: Error): void;
  /** The signer; settles after endRaw, or early when the signature is already known to be bad. */
  readonly verified: Promise<SignerInfo> | undefined;
  /** The uncompressed tar; errors when the data cannot be decompressed. */
  readonly tar: Readable;
  /** The extraction gave up: stop decompressing (the blob and signature still get the bytes). */
  abandonTar(): void;
  /** Hex sha512 of the whole tar, once `tar` has ended. */
  tarDigest(): Promise<string>;
  /** Fingerprints of the keys trusted for an image name (the key store, masks applied). */
  trustedFor(imageName: string): Promise<string[]>;
  close(): void;
}

export interface DigestRequest {
  blobFile: string;
  verify?: { signature: Buffer; keystore: KeyStore; image: string };
}

/** Resolves when the stream can take more, or is gone. */
export function writeWithBackpressure(stream: Writable, chunk: Buffer): Promise<void> | undefined {
  if (stream.destroyed || stream.write(chunk)) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done).off('close', done).off('error', done);
      resolve();
    };
    stream.on('drain', done).on('close', done).on('error', done);
  });
}

/** Decompresses `rawIn` and hashes the result into `out`; `digest` is set when `out` has all of it. */
export function decompressAndHash(rawIn: PassThrough, out: Writable, onDigest: (hex: string) => void): void {
  const hash = crypto.createHash('sha512');
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      onDigest(hash.digest('hex'));
      done();
    },
  });
  sniffAndDecompress(rawIn).then(
    ({ stream }) => pipeline(stream, hasher, out, () => { /* errors reach `out` */ }),
    (e: Error) => out.destroy(e),
  );
}

/** Appends to the blob; a failed write names the blob (fd writes name no file), so ENOSPC reads as the data dir's. */
export function writeBlobChunk(fd: number, chunk: Buffer, blobFile: string): void {
  try {
    fs.writeSync(fd, chunk);
  } catch (e) {
    (e as NodeJS.ErrnoException).path ??= blobFile;
    throw e;
  }
}

/** Everything in the calling thread. */
class InThreadDigester implements Digester {
  private readonly fd: number;
  private readonly blobFile: string;
  private readonly sink: Writable | undefined;
  private readonly rawIn = new PassThrough();
  private tarAbandoned = false;
  private hex: string | undefined;
  private readonly keystore: KeyStore | undefined;
  readonly tar = new PassThrough();
  readonly verified: Promise<SignerInfo> | undefined;

  constructor(req: DigestRequest, verification: { sink: Writable; result: Promise<SignerInfo> } | undefined) {
    this.fd = fs.openSync(req.blobFile, 'wx', 0o644);
    this.blobFile = req.blobFile;
    this.keystore = req.verify?.keystore;
    this.sink = verification?.sink;
    this.verified = verification?.result;
    this.rawIn.on('error', () => {}); // what breaks the decompression surfaces on `tar`
    decompressAndHash(this.rawIn, this.tar, (hex) => { this.hex = hex; });
  }

  raw(chunk: Buffer): Promise<void> | undefined {
    writeBlobChunk(this.fd, chunk, this.blobFile);
    const verifying = this.sink && writeWithBackpressure(this.sink, chunk);
    const decompressing = this.tarAbandoned ? undefined : writeWithBackpressure(this.rawIn, chunk);
    if (!verifying) return decompressing;
    if (!decompressing) return verifying;
    return Promise.all([verifying, decompressing]).then(() => {});
  }

  async endRaw(complete: boolean): Promise<void> {
    fs.closeSync(this.fd);
    if (complete) this.sink?.end();
    else this.sink?.destroy();
  }

  endTar(err?: Error): void {
    if (err) this.rawIn.destroy(err);
    else this.rawIn.end();
  }

  abandonTar(): void {
    this.tarAbandoned = true;
    this.rawIn.destroy();
  }

  async tarDigest(): Promise<string> {
    if (this.hex === undefined) throw new Error('the tar was not read to its end');
    return this.hex;
  }

  async trustedFor(imageName: string): Promise<string[]> {
    return (await this.keystore!.keysForName(imageName)).map((k) => k.fingerprint);
  }

  close(): void { /* nothing held */ }
}

/** Messages to the worker. */
export type ToWorker =
  | { kind: 'init'; blobFile: string; verify?: { signature: Uint8Array; keystore: KeyStoreConfig; image: string } }
  | { kind: 'trusted-for'; name: string }
  | { kind: 'raw'; buf: ArrayBuffer; length: number }
  | { kind: 'raw-end'; complete: boolean }
  | { kind: 'tar-input-end'; error?: string }
  // Handled at once, not in turn with the rest:
  | { kind: 'tar-ack'; bytes: number }
  | { kind: 'tar-abandon' };

/** Messages from the worker. */
export type FromWorker =
  | { kind: 'ack'; bytes: number }
  | { kind: 'raw-closed' }
  | { kind: 'raw-error'; error: SerializedError }
  | { kind: 'verified'; signer: SignerInfo }
  | { kind: 'verify-failed'; error: SerializedError }
  | { kind: 'tar'; buf: ArrayBuffer; length: number }
  | { kind: 'tar-end'; hex: string }
  | { kind: 'tar-error'; error: SerializedError }
  | { kind: 'trusted'; fingerprints?: string[]; error?: SerializedError };

export interface SerializedError { message: string; rkt: boolean; code?: string; syscall?: string; path?: string }

export function serializeError(e: unknown): SerializedError {
  const err = e as NodeJS.ErrnoException;
  return { message: err?.message ?? String(e), rkt: e instanceof RktError, code: err?.code, syscall: err?.syscall, path: err?.path };
}

function deserializeError(s: SerializedError): Error {
  if (s.rkt) return new RktError(s.message);
  return Object.assign(new Error(s.message), { code: s.code, syscall: s.syscall, path: s.path });
}

/** Batches of this size are handed over, so that a 64 KiB chunk is not a message of its own. */
const BATCH = 1024 * 1024;
/** Raw bytes the worker may be behind before the reader waits. */
const MAX_IN_FLIGHT = 32 * 1024 * 1024;

/** Collects chunks into 1 MiB buffers and hands each full one to `send`. */
export class Batch {
  private buf = Buffer.allocUnsafeSlow(BATCH);
  private used = 0;

  /** `moveLarge` false: every chunk is copied (its memory may still be used by its owner). */
  constructor(private readonly send: (buf: ArrayBuffer, length: number) => void, private readonly moveLarge = true) {}

  add(chunk: Buffer): void {
    // A large chunk that has its memory to itself (the 1 MiB reads of a local image) moves as
    // it is, without a copy. Socket and zlib chunks (64 KiB at most) are always copied: their
    // memory may be shared.
    if (this.moveLarge && chunk.length >= 256 * 1024 && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer) {
      this.flush();
      this.send(chunk.buffer, chunk.length);
      return;
    }
    let off = 0;
    while (off < chunk.length) {
      const n = chunk.copy(this.buf, this.used, off);
      this.used += n;
      off += n;
      if (this.used === BATCH) this.flush();
    }
  }

  flush(): void {
    if (this.used === 0) return;
    // The batch's own memory is moved (not copied) to the worker; a new one takes its place.
    const ab = this.buf.buffer as ArrayBuffer;
    const length = this.used;
    this.buf = Buffer.allocUnsafeSlow(BATCH);
    this.used = 0;
    this.send(ab, length);
  }
}

/** The tar the worker decompressed; how much of it was consumed is acknowledged, so the worker never runs far ahead. */
class TarFromWorker extends Readable {
  private pushed = 0;
  private acked = 0;

  constructor(private readonly ack: (bytes: number) => void) {
    super({ highWaterMark: 4 * 1024 * 1024 });
  }

  add(chunk: Buffer): void {
    this.pushed += chunk.length;
    this.push(chunk);
  }

  override _read(): void {
    const consumed = this.pushed - this.readableLength;
    if (consumed > this.acked) {
      this.ack(consumed - this.acked);
      this.acked = consumed;
    }
  }
}

class WorkerDigester implements Digester {
  private readonly worker: Worker;
  private readonly rawBatch: Batch;
  private inFlight = 0;
  private roomWaiter: (() => void) | undefined;
  private rawError: Error | undefined;
  private rawClosed: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private hex: string | undefined;
  private verifiedSettle: { resolve: (s: SignerInfo) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private trusted: { resolve: (fps: string[]) => void; reject: (e: Error) => void } | undefined;
  readonly tar: TarFromWorker;
  readonly verified: Promise<SignerInfo> | undefined;

  constructor(file: string, req: DigestRequest) {
    this.worker = new Worker(file);
    this.rawBatch = new Batch((buf, length) => {
      this.inFlight += length;
      this.post({ kind: 'raw', buf, length }, [buf]);
    });
    this.tar = new TarFromWorker((bytes) => this.post({ kind: 'tar-ack', bytes }));
    if (req.verify) {
      this.verified = new Promise<SignerInfo>((resolve, reject) => { this.verifiedSettle = { resolve, reject }; });
      this.verified.catch(() => {}); // whoever awaits it still gets the rejection
    }
    this.worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`the digest worker exited (status ${code})`)));
    const verify = req.verify && {
      signature: new Uint8Array(req.verify.signature),
      keystore: { ...req.verify.keystore.cfg },
      image: req.verify.image,
    };
    this.post({ kind: 'init', blobFile: req.blobFile, verify });
  }

  private post(msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (!this.failure) this.worker.postMessage(msg, transfer);
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.kind) {
      case 'ack':
        this.inFlight -= msg.bytes;
        if (this.inFlight <= MAX_IN_FLIGHT / 2) this.releaseRoom();
        break;
      case 'raw-closed':
        this.rawClosed?.resolve();
        break;
      case 'raw-error':
        this.rawError = deserializeError(msg.error);
        this.rawClosed?.reject(this.rawError);
        this.releaseRoom();
        break;
      case 'verified':
        this.verifiedSettle?.resolve(msg.signer);
        break;
      case 'verify-failed':
        this.verifiedSettle?.reject(deserializeError(msg.error));
        this.releaseRoom();
        break;
      case 'tar':
        if (!this.tar.destroyed) this.tar.add(Buffer.from(msg.buf, 0, msg.length));
        break;
      case 'tar-end':
        this.hex = msg.hex;
        if (!this.tar.destroyed) this.tar.push(null);
        break;
      case 'tar-error':
        this.tar.destroy(deserializeError(msg.error));
        break;
      case 'trusted': {
        const answer = this.trusted;
        this.trusted = undefined;
        if (msg.error) answer?.reject(deserializeError(msg.error));
        else answer?.resolve(msg.fingerprints ?? []);
        break;
      }
    }
  }

  /** The worker died: everything still waiting on it fails. */
  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.rawError ??= e;
    this.rawClosed?.reject(e);
    this.verifiedSettle?.reject(e);
    this.trusted?.reject(e);
    this.tar.destroy(e);
    this.releaseRoom();
  }

  private releaseRoom(): void {
    const wake = this.roomWaiter;
    this.roomWaiter = undefined;
    wake?.();
  }

  raw(chunk: Buffer): Promise<void> | undefined {
    if (this.rawError) throw this.rawError;
    this.rawBatch.add(chunk);
    if (this.inFlight <= MAX_IN_FLIGHT || this.failure) return undefined;
    return new Promise((resolve) => { this.roomWaiter = resolve; });
  }

  endRaw(complete: boolean): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    // The worker reports a failed blob write once, maybe before anyone waits for the end.
    if (this.rawError) return Promise.reject(this.rawError);
    this.rawBatch.flush();
    const closed = new Promise<void>((resolve, reject) => { this.rawClosed = { resolve, reject }; });
    this.post({ kind: 'raw-end', complete });
    return closed;
  }

  endTar(err?: Error): void {
    this.rawBatch.flush();
    this.post({ kind: 'tar-input-end', error: err?.message });
  }

  abandonTar(): void {
    this.post({ kind: 'tar-abandon' });
  }

  async tarDigest(): Promise<string> {
    if (this.hex === undefined) throw new Error('the tar was not read to its end');
    return this.hex;
  }

  trustedFor(imageName: string): Promise<string[]> {
    if (this.failure) return Promise.reject(this.failure);
    const answer = new Promise<string[]>((resolve, reject) => { this.trusted = { resolve, reject }; });
    this.post({ kind: 'trusted-for', name: imageName });
    return answer;
  }

  close(): void {
    this.failure ??= new Error('closed');
    void this.worker.terminate();
  }
}

const WORKER_FILE = path.join(import.meta.dirname, 'digest-worker.js');
let workerAvailable: boolean | undefined;

/** Starts the side work of one import; with the worker, openpgp.js is never loaded in this thread. */
export async function startDigester(req: DigestRequest): Promise<Digester> {
  // Only the compiled build has the worker's JavaScript next to this module.
  workerAvailable ??= fs.existsSync(WORKER_FILE) && process.env.RKT_DIGEST_WORKER !== '0';
  if (workerAvailable) return new WorkerDigester(WORKER_FILE, req);
  let verification: { sink: Writable; result: Promise<SignerInfo> } | undefined;
  if (req.verify) {
    const { startVerification } = await import('../trust/verify.js');
    verification = startVerification(req.verify.signature, await req.verify.keystore.allKeys(), req.verify.image);
  }
  return new InThreadDigester(req, verification);
}
