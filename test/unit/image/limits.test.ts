import { afterEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { httpGet, httpGetBuffer } from '../../../src/image/http.js';
import { FetchLimitError, formatBytes, freeSpaceLimit, parseSizeFlag, sizeLimits, sizeLimitError } from '../../../src/image/limits.js';
import { closeServer, listenLocal } from '../../helpers/servers.js';

describe('size flags and limits', () => {
  test('sizes take bytes and suffixes, and refuse zero, negatives and words', () => {
    expect(parseSizeFlag('4096', 'max-download-size')).toBe(4096);
    expect(parseSizeFlag('2M', 'max-download-size')).toBe(2_000_000);
    expect(parseSizeFlag('1Gi', 'max-expanded-size')).toBe(1024 ** 3);
    expect(() => parseSizeFlag('0', 'max-expanded-size')).toThrow('must be more than 0 bytes');
    expect(() => parseSizeFlag('-5M', 'max-expanded-size')).toThrow('must be more than 0 bytes');
    expect(() => parseSizeFlag('big', 'max-download-size')).toThrow('invalid --max-download-size "big"');
  });

  test('bytes are shown in binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2_000_000)).toBe('1.9 MiB');
    expect(formatBytes(4 * 1024 ** 3)).toBe('4 GiB');
  });

  test('by default both limits are the free space of the data dir (or its nearest existing parent)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-limits-'));
    try {
      const missing = path.join(dir, 'not', 'yet');
      const free = freeSpaceLimit(missing);
      const st = fs.statfsSync(dir);
      expect(free).toBeLessThanOrEqual(st.bavail * st.bsize);
      expect(free).toBeGreaterThanOrEqual(0);
      const { download, expanded } = sizeLimits(undefined, missing);
      expect(download.freeSpaceOf).toBe(missing);
      expect(expanded.freeSpaceOf).toBe(missing);
      const given = sizeLimits({ connectTimeoutMs: 1, stallTimeoutMs: 1, maxDownloadBytes: 10 }, missing);
      expect(given.download).toEqual({ bytes: 10, flag: 'max-download-size' });
      expect(given.expanded.freeSpaceOf).toBe(missing);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  test('the error is one line naming the source, the limit and the flag', () => {
    const e = sizeLimitError('https://example.com/a.aci', { bytes: 1024, flag: 'max-expanded-size' }, 'expanded');
    expect(e).toBeInstanceOf(FetchLimitError);
    expect(e.message).toBe('image https://example.com/a.aci expands to more than 1 KiB (--max-expanded-size=1024): if that is expected, raise it with --max-expanded-size=SIZE');
    expect(e.exitCode).toBe(254);
  });
});

describe('HTTP timeouts', () => {
  let server: http.Server | net.Server | undefined;
  const sockets = new Set<net.Socket>();
  const timeouts = { connectTimeoutMs: 2000, stallTimeoutMs: 300 };
  const opts = { insecureHttp: true, insecureTls: true, timeouts };

  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (server instanceof http.Server) await closeServer(server);
    else if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
  });

  async function serve(handler: http.RequestListener): Promise<string> {
    const s = http.createServer(handler);
    s.on('connection', (c) => sockets.add(c));
    server = s;
    return `http://127.0.0.1:${await listenLocal(s)}`;
  }

  async function silent(): Promise<number> {
    const s = net.createServer((c) => { sockets.add(c); });
    server = s;
    return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)));
  }

  test('no answer after the request: the stall timeout, as a FetchLimitError', async () => {
    const url = `http://127.0.0.1:${await silent()}/x`;
    const err = await httpGetBuffer(url, opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchLimitError);
    expect((err as Error).message).toBe(`cannot fetch ${url}: the server sent no answer for 300ms (--http-stall-timeout=300ms): retry later, or raise it with --http-stall-timeout=DURATION`);
  });

  test('no TLS handshake: the connect timeout', async () => {
    const url = `https://127.0.0.1:${await silent()}/x`;
    const err = await httpGet(url, { ...opts, timeouts: { connectTimeoutMs: 300, stallTimeoutMs: 5000 } }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`cannot fetch ${url}: no connection within 300ms (--http-connect-timeout=300ms): check the server, or raise it with --http-connect-timeout=DURATION`);
  });

  test('a body that stops: the stall timeout reaches the reader of the body', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '1000' });
      res.write(Buffer.alloc(10));
    });
    const res = await httpGet(`${base}/x`, opts);
    const err = await (async () => { for await (const _ of res.body as Readable); })().catch((e: unknown) => e);
    expect((err as Error).message).toContain('the download stalled for 300ms');
  });

  test('a reader that pauses longer than the stall timeout is not a stalled server', async () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 1);
    const base = await serve((_req, res) => res.writeHead(200, { 'Content-Length': String(body.length) }).end(body));
    const res = await httpGet(`${base}/x`, opts);
    await new Promise((r) => setTimeout(r, 1200)); // socket buffers fill, rkt reads nothing
    let n = 0;
    for await (const chunk of res.body as Readable) n += (chunk as Buffer).length;
    expect(n).toBe(body.length);
  });

  test('a slow but live server passes: a byte more often than the stall timeout', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '8' });
      let i = 0;
      const t = setInterval(() => {
        res.write('x');
        if (++i === 8) { clearInterval(t); res.end(); }
      }, 100);
    });
    expect((await httpGetBuffer(`${base}/x`, opts)).toString()).toBe('xxxxxxxx');
  });
});
