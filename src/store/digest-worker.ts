/**
 * Worker thread of digester.ts: writes the raw bytes to the blob file, feeds them to the
 * signature check (verify.ts, unchanged), and hashes the uncompressed tar. Messages are
 * handled strictly in order; each raw batch is acknowledged once it is written and
 * taken by the verifier, so the reader on the main thread never runs far ahead.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import type { TrustedKey } from '../trust/keystore.js';
import { serializeError, writeWithBackpressure, type FromWorker, type ToWorker } from './digester.js';

const port = parentPort!;
const post = (msg: FromWorker): void => port.postMessage(msg);

let fd: number | undefined;
let blobFile = '';
let rawFailed = false;
let sink: Writable | undefined;
const hash = crypto.createHash('sha512');

async function init(msg: Extract<ToWorker, { kind: 'init' }>): Promise<void> {
  blobFile = msg.blobFile;
  try {
    fd = fs.openSync(msg.blobFile, 'wx', 0o644);
  } catch (e) {
    rawFailed = true;
    post({ kind: 'raw-error', error: serializeError(e) });
  }
  if (!msg.verify) return;
  const openpgp = await import('openpgp');
  const keys: TrustedKey[] = [];
  for (const k of msg.verify.keys) {
    keys.push({ fingerprint: k.fingerprint, path: k.path, scope: k.scope, key: await openpgp.readKey({ armoredKey: k.armored }) });
  }
  const { startVerification } = await import('../trust/verify.js');
  const v = startVerification(Buffer.from(msg.verify.signature), keys, msg.verify.image);
  sink = v.sink;
  v.result.then(
    (signer) => post({ kind: 'verified', signer }),
    (e: unknown) => post({ kind: 'verify-failed', error: serializeError(e) }),
  );
}

async function raw(buf: Buffer): Promise<void> {
  if (!rawFailed && fd !== undefined) {
    try {
      fs.writeSync(fd, buf);
    } catch (e) {
      (e as NodeJS.ErrnoException).path ??= blobFile; // fd writes name no file: ENOSPC must say where
      rawFailed = true;
      post({ kind: 'raw-error', error: serializeError(e) });
    }
  }
  if (sink) await writeWithBackpressure(sink, buf);
  post({ kind: 'ack', bytes: buf.length });
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

// One message at a time, in order: a chain of promises.
let queue: Promise<void> = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  queue = queue.then(async () => {
    switch (msg.kind) {
      case 'init': return init(msg);
      case 'raw': return raw(Buffer.from(msg.buf, 0, msg.length));
      case 'tar': hash.update(Buffer.from(msg.buf, 0, msg.length)); return;
      case 'raw-end': return rawEnd(msg.complete);
      case 'tar-end': post({ kind: 'tar-digest', hex: hash.digest('hex') }); return;
    }
  }).catch((e: unknown) => {
    // Unexpected (a key that no longer parses, ...): the import fails with it.
    if (msg.kind === 'init' && !sink) post({ kind: 'verify-failed', error: serializeError(e) });
    else post({ kind: 'raw-error', error: serializeError(e) });
  });
});
