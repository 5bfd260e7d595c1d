/** An interrupted download is resumed with Range + If-Range from the partial file rkt kept (as rkt did). */
import { afterEach, beforeAll, beforeEach, expect, test } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fetchImage } from '../../../src/image/fetcher.js';
import { removePartials } from '../../../src/store/partial.js';
import { buildTar, capture, compress, globalsFor, idOf, type Key, makeKey, manifestFor, sign, tempDir, trustKey } from './aci-fixtures.js';

let root: string;
let key: Key;
let aci: Buffer;
let tar: Buffer;
let server: http.Server;
let base: string;
/** What the server does with the next image request. */
let mode: 'cut' | 'ranges' | 'changed';
let etag: string;
const requests: Array<http.IncomingHttpHeaders> = [];
/** When set, the signature is served only after the image's connection was cut. */
let holdSignature: Promise<void> | undefined;
let cutDone: () => void = () => {};

beforeAll(async () => {
  key = await makeKey('Resume Signer');
  tar = await buildTar(manifestFor('example.com/app'), [{ path: 'big', content: crypto.randomBytes(400_000) }]);
  aci = compress(tar, 'gzip');
});

beforeEach(async () => {
  root = tempDir('fetchresume');
  trustKey(path.join(root, 'etc'), 'example.com', key);
  requests.length = 0;
  holdSignature = undefined;
  etag = '"v1"';
  const asc = await sign(key, aci);
  server = http.createServer((req, res) => {
    if (req.url === '/app.aci.asc') {
      void (holdSignature ?? Promise.resolve()).then(() => res.writeHead(200).end(asc));
      return;
    }
    requests.push(req.headers);
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    if (mode === 'cut') {
      // Announce the whole image, send 40 % of it, then drop the connection.
      res.writeHead(200, { 'Content-Length': String(aci.length), ETag: etag, 'Accept-Ranges': 'bytes' });
      res.write(aci.subarray(0, Math.floor(aci.length * 0.4)), () => setTimeout(() => {
        res.socket?.once('close', () => cutDone());
        res.socket?.destroy();
      }, 50));
      return;
    }
    if (range && mode === 'ranges' && req.headers['if-range'] === etag) {
      const from = Number(range[1]);
      res.writeHead(206, { 'Content-Range': `bytes ${from}-${aci.length - 1}/${aci.length}`, 'Content-Length': String(aci.length - from), ETag: etag });
      return void res.end(aci.subarray(from));
    }
    res.writeHead(200, { 'Content-Length': String(aci.length), ETag: etag }).end(aci);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  fs.rmSync(root, { recursive: true, force: true });
});

const fetch = () => capture(() => fetchImage(`${base}/app.aci`, { globals: globalsFor(root, []), pullPolicy: 'update' }));
const tmp = () => fs.readdirSync(path.join(root, 'data', 'cas', 'tmp')).sort();

test('a dropped connection keeps what arrived; the next fetch asks only for the rest (Range, If-Range: ETag)', async () => {
  mode = 'cut';
  const first = await fetch();
  expect(first.error).toBeDefined();
  const kept = tmp();
  expect(kept).toHaveLength(2); // the bytes and their validator
  const partial = path.join(root, 'data', 'cas', 'tmp', kept.find((n) => !n.endsWith('.json'))!);
  const got = fs.statSync(partial).size;
  expect(got).toBeGreaterThan(0);
  expect(fs.readFileSync(partial).equals(aci.subarray(0, got))).toBe(true);

  mode = 'ranges';
  const second = await fetch();
  expect(second.error).toBeUndefined();
  expect(second.result!.id).toBe(idOf(tar));
  expect(requests[1].range).toBe(`bytes=${got}-`);
  expect(requests[1]['if-range']).toBe('"v1"');
  expect(tmp()).toEqual([]); // stored: the partial is gone
});

test('the connection dropping while the signature is still being fetched fails that fetch cleanly and keeps the bytes', async () => {
  // The race behind the WIP test's flakiness, made certain: the image's connection is cut
  // before the signature arrives, so nothing reads the body yet when the error comes.
  mode = 'cut';
  holdSignature = new Promise((r) => { cutDone = r; });
  const first = await fetch();
  expect(String(first.error)).toMatch(/aborted|reset|premature/i);
  expect(tmp().length).toBeGreaterThan(0);
  holdSignature = undefined;
  mode = 'ranges';
  const second = await fetch();
  expect(second.error).toBeUndefined();
  expect(second.result!.id).toBe(idOf(tar));
  expect(tmp()).toEqual([]);
});

test('a changed image (the server answers 200 to If-Range) is downloaded whole', async () => {
  mode = 'cut';
  await fetch();
  expect(tmp()).toHaveLength(2);
  etag = '"v2"';
  mode = 'changed';
  const second = await fetch();
  expect(second.error).toBeUndefined();
  expect(second.result!.id).toBe(idOf(tar));
  expect(requests[1]['if-range']).toBe('"v1"');
  expect(tmp()).toEqual([]);
});

test('kept bytes that do not match are caught by verification and dropped, never stored', async () => {
  mode = 'cut';
  await fetch();
  const name = tmp().find((n) => !n.endsWith('.json'))!;
  const file = path.join(root, 'data', 'cas', 'tmp', name);
  const bytes = fs.readFileSync(file);
  bytes[100] ^= 0xff; // corrupted on disk
  fs.writeFileSync(file, bytes);
  mode = 'ranges';
  const second = await fetch();
  expect(second.error).toBeDefined();
  expect(fs.readdirSync(path.join(root, 'data', 'cas', 'info'))).toEqual([]);
  expect(tmp()).toEqual([]); // a failure that is not the connection's drops the partial
  const third = await fetch();
  expect(third.error).toBeUndefined();
});

test('rkt image gc removes kept partial downloads', async () => {
  mode = 'cut';
  await fetch();
  expect(tmp()).toHaveLength(2);
  expect(removePartials(path.join(root, 'data', 'cas', 'tmp'))).toHaveLength(2);
  expect(tmp()).toEqual([]);
});
