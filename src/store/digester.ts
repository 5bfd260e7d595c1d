/**
 * The side work of an import: writing the bytes as read to the blob file, checking their
 * signature, and hashing the uncompressed tar (the image ID). On this 2-core machine the
 * main thread is the bottleneck of a fetch (tar parsing and the extraction's file-system
 * calls), so this work runs in a worker thread (digest-worker.ts) when one can be started;
 * otherwise (under the unit tests, which run the TypeScript sources) in the main thread,
 * with the same interface and the same verification code.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { TrustedKey } from '../trust/keystore.js';
import { startVerification, type SignerInfo } from '../trust/verify.js';
import { RktError } from '../util/errors.js';

export interface Digester {
  /** Bytes of the image as read: blob file and signature check. Resolves when there is room for more. */
  raw(chunk: Buffer): Promise<void> | undefined;
  /**
   * No more raw bytes: `complete` ends the signature check normally, else it is abandoned.
   * Resolves once the blob file is closed; rejects if writing it failed.
   */
  endRaw(complete: boolean): Promise<void>;
  /** The signer; settles after endRaw, or early when the signature is already known to be bad. */
  readonly verified: Promise<SignerInfo> | undefined;
  /** Bytes of the uncompressed tar. */
  tar(chunk: Buffer): void;
  /** Hex sha512 of all tar bytes. */
  tarDigest(): Promise<string>;
  close(): void;
}

export interface DigestRequest {
  blobFile: string;
  verify?: { signature: Buffer; keys: TrustedKey[]; image: string };
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

/** Everything in the calling thread. */
class InThreadDigester implements Digester {
  private readonly fd: number;
  private readonly sink: Writable | undefined;
  private readonly hash = crypto.createHash('sha512');
  readonly verified: Promise<SignerInfo> | undefined;

  constructor(req: DigestRequest) {
    this.fd = fs.openSync(req.blobFile, 'wx', 0o644);
    if (req.verify) {
      const { sink, result } = startVerification(req.verify.signature, req.verify.keys, req.verify.image);
      this.sink = sink;
      this.verified = result;
    }
  }

  raw(chunk: Buffer): Promise<void> | undefined {
    fs.writeSync(this.fd, chunk);
    return this.sink && writeWithBackpressure(this.sink, chunk);
  }

  async endRaw(complete: boolean): Promise<void> {
    fs.closeSync(this.fd);
    if (complete) this.sink?.end();
    else this.sink?.destroy();
  }

  tar(chunk: Buffer): void {
    this.hash.update(chunk);
  }

  async tarDigest(): Promise<string> {
    return this.hash.digest('hex');
  }

  close(): void { /* nothing held */ }
}

/** Messages to the worker. */
export type ToWorker =
  | { kind: 'init'; blobFile: string; verify?: { signature: Uint8Array; keys: Array<{ fingerprint: string; armored: string; path: string; scope: string }>; image: string } }
  | { kind: 'raw' | 'tar'; buf: ArrayBuffer; length: number }
  | { kind: 'raw-end'; complete: boolean }
  | { kind: 'tar-end' };

/** Messages from the worker. */
export type FromWorker =
  | { kind: 'ack'; bytes: number }
  | { kind: 'raw-closed' }
  | { kind: 'raw-error'; error: SerializedError }
  | { kind: 'verified'; signer: SignerInfo }
  | { kind: 'verify-failed'; error: SerializedError }
  | { kind: 'tar-digest'; hex: string };

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

class Batch {
  private buf = Buffer.allocUnsafeSlow(BATCH);
  private used = 0;

  constructor(private readonly kind: 'raw' | 'tar', private readonly send: (msg: ToWorker, transfer: ArrayBuffer[]) => void) {}

  add(chunk: Buffer): void {
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
    this.send({ kind: this.kind, buf: ab, length }, [ab]);
  }
}

class WorkerDigester implements Digester {
  private readonly worker: Worker;
  private readonly rawBatch: Batch;
  private readonly tarBatch: Batch;
  private inFlight = 0;
  private roomWaiter: (() => void) | undefined;
  private rawError: Error | undefined;
  private rawClosed: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private digest: { resolve: (hex: string) => void; reject: (e: Error) => void } | undefined;
  private verifiedSettle: { resolve: (s: SignerInfo) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  readonly verified: Promise<SignerInfo> | undefined;

  constructor(url: URL, req: DigestRequest) {
    this.worker = new Worker(url);
    const send = (msg: ToWorker, transfer: ArrayBuffer[]): void => {
      if (msg.kind === 'raw') this.inFlight += msg.length;
      this.worker.postMessage(msg, transfer);
    };
    this.rawBatch = new Batch('raw', send);
    this.tarBatch = new Batch('tar', send);
    if (req.verify) {
      this.verified = new Promise<SignerInfo>((resolve, reject) => { this.verifiedSettle = { resolve, reject }; });
      this.verified.catch(() => {}); // whoever awaits it still gets the rejection
    }
    this.worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`the digest worker exited (status ${code})`)));
    const verify = req.verify && {
      signature: new Uint8Array(req.verify.signature),
      keys: req.verify.keys.map((k) => ({ fingerprint: k.fingerprint, armored: k.key.armor(), path: k.path, scope: k.scope })),
      image: req.verify.image,
    };
    this.worker.postMessage({ kind: 'init', blobFile: req.blobFile, verify } satisfies ToWorker);
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
      case 'tar-digest':
        this.digest?.resolve(msg.hex);
        break;
    }
  }

  /** The worker died: everything still waiting on it fails. */
  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.rawError ??= e;
    this.rawClosed?.reject(e);
    this.digest?.reject(e);
    this.verifiedSettle?.reject(e);
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
    this.rawBatch.flush();
    const closed = new Promise<void>((resolve, reject) => { this.rawClosed = { resolve, reject }; });
    this.worker.postMessage({ kind: 'raw-end', complete } satisfies ToWorker);
    return closed;
  }

  tar(chunk: Buffer): void {
    if (!this.failure) this.tarBatch.add(chunk);
  }

  tarDigest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    this.tarBatch.flush();
    const hex = new Promise<string>((resolve, reject) => { this.digest = { resolve, reject }; });
    this.worker.postMessage({ kind: 'tar-end' } satisfies ToWorker);
    return hex;
  }

  close(): void {
    this.failure ??= new Error('closed');
    void this.worker.terminate();
  }
}

const WORKER_URL = new URL('./digest-worker.js', import.meta.url);
// Only the compiled build has the worker's JavaScript next to this module.
const workerAvailable = fs.existsSync(fileURLToPath(WORKER_URL)) && process.env.RKT_DIGEST_WORKER !== '0';

export function startDigester(req: DigestRequest): Digester {
  return workerAvailable ? new WorkerDigester(WORKER_URL, req) : new InThreadDigester(req);
}
