/**
 * Worker thread of digester.ts: writes the raw bytes to the blob file, feeds them to the
 * signature check (verify.ts) and to the decompressor (compression.ts), hashes the tar
 * that comes out and sends it to the main thread in 1 MiB batches. Raw batches are handled
 * strictly in order and acknowledged once taken; the tar is sent only as far as the main
 * thread has acknowledged consuming it, so neither side runs far ahead of the other.
 */
import fs from 'node:fs';
import { PassThrough, Writable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { KeyStore } from '../trust/keystore.js';
import { Batch, decompressAndHash, serializeError, writeBlobChunk, writeWithBackpressure, type FromWorker, type ToWorker } from './digester.js';

const port = parentPort!;
const post = (msg: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);

/** Tar bytes sent but not yet consumed by the main thread before decompression pauses. */
const MAX_TAR_IN_FLIGHT = 16 * 1024 * 1024;

let fd: number | undefined;
let blobFile = '';
let rawFailed = false;
let sink: Writable | undefined;
let keystore: KeyStore | undefined;

// Decompression: raw bytes in, tar batches out to the main thread.
const rawIn = new PassThrough();
rawIn.on('error', () => {}); // what breaks the decompression surfaces as 'tar-error'
let tarAbandoned = false;
let tarInFlight = 0;
let resumeTar: (() => void) | undefined;
// Always copied: an uncompressed image's tar chunks are the raw batches themselves, which the
// blob, the signature check and the raw acknowledgement still use (a moved buffer reads as empty).
const tarBatch = new Batch((buf, length) => {
  tarInFlight += length;
  post({ kind: 'tar', buf, length }, [buf]);
}, false);
const tarOut = new Writable({
  highWaterMark: 1024 * 1024,
  write(chunk: Buffer, _enc, done) {
    tarBatch.add(chunk);
    if (tarInFlight <= MAX_TAR_IN_FLIGHT || tarAbandoned) return done();
    resumeTar = done; // resumed by a 'tar-ack'
  },
  final(done) {
    tarBatch.flush();
    done();
  },
});
let hex: string | undefined;
decompressAndHash(rawIn, tarOut, (h) => { hex = h; });
tarOut.on('finish', () => post({ kind: 'tar-end', hex: hex! }));
tarOut.on('error', (e) => { if (!tarAbandoned) post({ kind: 'tar-error', error: serializeError(e) }); });

function tarAck(bytes: number): void {
  tarInFlight -= bytes;
  if (tarInFlight <= MAX_TAR_IN_FLIGHT / 2) {
    const resume = resumeTar;
    resumeTar = undefined;
    resume?.();
  }
}

function abandonTar(): void {
  tarAbandoned = true;
  rawIn.destroy();
  tarOut.destroy();
  const resume = resumeTar;
  resumeTar = undefined;
  resume?.();
}

async function init(msg: Extract<ToWorker, { kind: 'init' }>): Promise<void> {
  blobFile = msg.blobFile;
  try {
    fd = fs.openSync(msg.blobFile, 'wx', 0o644);
  } catch (e) {
    rawFailed = true;
    post({ kind: 'raw-error', error: serializeError(e) });
  }
  if (!msg.verify) return;
  keystore = new KeyStore(msg.verify.keystore);
  const { startVerification } = await import('../trust/verify.js');
  const v = startVerification(Buffer.from(msg.verify.signature), await keystore.allKeys(), msg.verify.image);
  sink = v.sink;
  v.result.then(
    (signer) => post({ kind: 'verified', signer }),
    (e: unknown) => post({ kind: 'verify-failed', error: serializeError(e) }),
  );
}

async function raw(buf: Buffer): Promise<void> {
  const length = buf.length;
  if (!rawFailed && fd !== undefined) {
    try {
      writeBlobChunk(fd, buf, blobFile);
    } catch (e) {
      rawFailed = true;
      post({ kind: 'raw-error', error: serializeError(e) });
    }
  }
  await Promise.all([
    sink && writeWithBackpressure(sink, buf),
    tarAbandoned ? undefined : writeWithBackpressure(rawIn, buf),
  ]);
  post({ kind: 'ack', bytes: length });
}

function rawEnd(complete: boolean): void {
  if (fd !== undefined) {
    try {
      fs.closeSync(fd);
    } catch (e) {
      if (!rawFailed) post({ kind: 'raw-error', error: serializeError(e) });
      rawFailed = true;
    }
    fd = undefined;
  }
  if (complete) sink?.end();
  else sink?.destroy();
  if (!rawFailed) post({ kind: 'raw-closed' });
}

function tarInputEnd(error: string | undefined): void {
  if (error !== undefined) rawIn.destroy(new Error(error));
  else rawIn.end();
}

async function trustedFor(name: string): Promise<void> {
  try {
    post({ kind: 'trusted', fingerprints: (await keystore!.keysForName(name)).map((k) => k.fingerprint) });
  } catch (e) {
    post({ kind: 'trusted', error: serializeError(e) });
  }
}

// Raw data and the ends, one at a time and in order (a chain of promises); acks and
// abandonment at once, since a raw batch may be waiting for exactly those.
let queue: Promise<void> = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  if (msg.kind === 'tar-ack') return tarAck(msg.bytes);
  if (msg.kind === 'tar-abandon') return abandonTar();
  queue = queue.then(async () => {
    switch (msg.kind) {
      case 'init': return init(msg);
      case 'raw': return raw(Buffer.from(msg.buf, 0, msg.length));
      case 'raw-end': return rawEnd(msg.complete);
      case 'tar-input-end': return tarInputEnd(msg.error);
      case 'trusted-for': return trustedFor(msg.name);
    }
  }).catch((e: unknown) => {
    // Unexpected (a key that no longer parses, ...): the import fails with it.
    if (msg.kind === 'init' && !sink) post({ kind: 'verify-failed', error: serializeError(e) });
    else post({ kind: 'raw-error', error: serializeError(e) });
  });
});
