import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DEFERRED_EXTRA_CA, httpGet, httpGetBuffer, progressStream } from '../../../src/image/http.js';
import { closeServer as close, listenLocal, selfSignedCert } from '../../helpers/servers.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const routes = new Map<string, Handler>();
const seen: Array<{ path: string; secure: boolean; headers: http.IncomingHttpHeaders }> = [];
let dir: string;
let plain: http.Server;
let secure: https.Server;
let plainBase: string;
let secureBase: string;

const STRICT = { insecureHttp: false, insecureTls: false };
const ALLOW_HTTP = { insecureHttp: true, insecureTls: false };
const ALLOW_TLS = { insecureHttp: false, insecureTls: true };
const ALLOW_ALL = { insecureHttp: true, insecureTls: true };

function handle(isSecure: boolean): Handler {
  return (req, res) => {
    const url = req.url ?? '/';
    seen.push({ path: url, secure: isSecure, headers: req.headers });
    const route = routes.get(url.split('?')[0]);
    if (route) return route(req, res);
    res.writeHead(404).end('not found');
  };
}

async function listen(server: http.Server | https.Server, scheme: string): Promise<string> {
  return `${scheme}://127.0.0.1:${await listenLocal(server)}`;
}

function text(body: string, headers: http.OutgoingHttpHeaders = {}): Handler {
  return (_req, res) => res.writeHead(200, headers).end(body);
}

function redirect(location: string, status = 302): Handler {
  return (_req, res) => res.writeHead(status, { Location: location }).end();
}

async function readAll(body: Readable | undefined): Promise<string> {
  if (!body) throw new Error('no body');
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-http-'));
  plain = http.createServer(handle(false));
  secure = https.createServer(selfSignedCert(dir), handle(true));
  plainBase = await listen(plain, 'http');
  secureBase = await listen(secure, 'https');
});

afterAll(async () => {
  await close(plain);
  await close(secure);
  fs.rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  routes.clear();
  seen.length = 0;
});

describe('plain HTTP and TLS policy', () => {
  test('plain http is refused without insecureHttp, and nothing is sent', async () => {
    routes.set('/ok', text('hello'));
    await expect(httpGet(`${plainBase}/ok`, STRICT)).rejects.toThrow(
      `refusing plain HTTP for ${plainBase}/ok: use https or --insecure-options=http`,
    );
    expect(seen).toEqual([]);
  });

  test('plain http works with insecureHttp', async () => {
    routes.set('/ok', text('hello', { 'Content-Length': '5' }));
    const res = await httpGet(`${plainBase}/ok`, ALLOW_HTTP);
    expect(res.status).toBe(200);
    expect(res.notModified).toBe(false);
    expect(res.url).toBe(`${plainBase}/ok`);
    expect(res.contentLength).toBe(5);
    expect(await readAll(res.body)).toBe('hello');
  });

  test('a self-signed certificate is refused with a hint to --insecure-options=tls', async () => {
    routes.set('/ok', text('hello'));
    const host = new URL(secureBase).host;
    const err = await httpGet(`${secureBase}/ok`, STRICT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toMatch(new RegExp(`^TLS certificate of ${host.replace(/\./g, '\\.')} is not trusted \\(.+\\): use --insecure-options=tls to accept it$`));
    expect(message).not.toContain('\n');
  });

  test('a self-signed certificate is accepted with insecureTls', async () => {
    routes.set('/ok', text('secret'));
    const res = await httpGet(`${secureBase}/ok`, ALLOW_TLS);
    expect(res.status).toBe(200);
    expect(await readAll(res.body)).toBe('secret');
  });

  describe('NODE_EXTRA_CA_CERTS, kept from Node\'s start by bin/rkt (dist/preload.cjs leaves its path)', () => {
    const deferred = globalThis as Record<symbol, unknown>;
    afterEach(() => { delete deferred[DEFERRED_EXTRA_CA]; });

    test('its certificates are trusted, besides the default ones', async () => {
      routes.set('/ok', text('trusted'));
      deferred[DEFERRED_EXTRA_CA] = path.join(dir, 'cert.pem');
      const res = await httpGet(`${secureBase}/ok`, STRICT);
      expect(await readAll(res.body)).toBe('trusted');
    });

    test('a file that cannot be read: a warning, and only the default CAs (as Node does)', async () => {
      routes.set('/ok', text('hello'));
      const missing = path.join(dir, 'missing.pem');
      deferred[DEFERRED_EXTRA_CA] = missing;
      const said: string[] = [];
      const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => { said.push(String(chunk)); return true; });
      try {
        await expect(httpGet(`${secureBase}/ok`, STRICT)).rejects.toThrow(/is not trusted/);
      } finally {
        spy.mockRestore();
      }
      expect(said.join('')).toMatch(new RegExp(`warning: ignoring extra certs from ${missing} \\(NODE_EXTRA_CA_CERTS\\): ENOENT`));
    });
  });

  test('unsupported schemes are rejected', async () => {
    await expect(httpGet('ftp://127.0.0.1/x.aci', ALLOW_ALL)).rejects.toThrow(/unsupported URL scheme "ftp:"/);
  });
});

describe('redirects', () => {
  test('relative and absolute redirects are followed; url is the final one', async () => {
    routes.set('/a', redirect('/b', 301));
    routes.set('/b', redirect(`${plainBase}/c`, 307));
    routes.set('/c', text('done'));
    const res = await httpGet(`${plainBase}/a`, ALLOW_HTTP);
    expect(res.url).toBe(`${plainBase}/c`);
    expect(await readAll(res.body)).toBe('done');
    expect(seen.map((s) => s.path)).toEqual(['/a', '/b', '/c']);
  });

  test('ten redirects are followed, the eleventh is refused', async () => {
    for (let i = 0; i < 11; i++) routes.set(`/hop${i}`, redirect(`/hop${i + 1}`));
    routes.set('/hop10', text('end'));
    const ok = await httpGet(`${plainBase}/hop0`, ALLOW_HTTP);
    expect(await readAll(ok.body)).toBe('end');

    routes.set('/hop10', redirect('/hop11'));
    routes.set('/hop11', text('too far'));
    await expect(httpGet(`${plainBase}/hop0`, ALLOW_HTTP)).rejects.toThrow(
      `too many redirects (more than 10) fetching ${plainBase}/hop0`,
    );
  });

  test('an https to http redirect is refused without insecureHttp', async () => {
    routes.set('/down', redirect(`${plainBase}/ok`));
    routes.set('/ok', text('plain'));
    await expect(httpGet(`${secureBase}/down`, ALLOW_TLS)).rejects.toThrow(
      `refusing plain HTTP for ${plainBase}/ok (redirected from ${secureBase}/down): use https or --insecure-options=http`,
    );
    expect(seen.filter((s) => !s.secure)).toEqual([]);

    const res = await httpGet(`${secureBase}/down`, ALLOW_ALL);
    expect(await readAll(res.body)).toBe('plain');
  });

  test('caller headers follow same-host redirects but not cross-host ones', async () => {
    routes.set('/same', redirect('/there'));
    routes.set('/there', text('x'));
    routes.set('/cross', redirect(`${secureBase}/there`));
    const opts = { ...ALLOW_ALL, headers: { Authorization: 'Basic abc' } };

    await readAll((await httpGet(`${plainBase}/same`, opts)).body);
    expect(seen.map((s) => s.headers.authorization)).toEqual(['Basic abc', 'Basic abc']);

    seen.length = 0;
    await readAll((await httpGet(`${plainBase}/cross`, opts)).body);
    expect(seen.map((s) => [s.secure, s.headers.authorization])).toEqual([[false, 'Basic abc'], [true, undefined]]);
  });
});

describe('caching and status', () => {
  test('If-None-Match is sent with an etag and 304 gives notModified', async () => {
    routes.set('/img.aci', (req, res) => {
      if (req.headers['if-none-match'] === '"v1"') return res.writeHead(304, { ETag: '"v1"' }).end();
      res.writeHead(200, { ETag: '"v1"', 'Cache-Control': 'max-age=60' }).end('aci bytes');
    });
    const first = await httpGet(`${plainBase}/img.aci`, ALLOW_HTTP);
    expect(first.etag).toBe('"v1"');
    expect(first.notModified).toBe(false);
    expect(await readAll(first.body)).toBe('aci bytes');
    expect(seen[0].headers['if-none-match']).toBeUndefined();

    const second = await httpGet(`${plainBase}/img.aci`, { ...ALLOW_HTTP, etag: '"v1"' });
    expect(second.status).toBe(304);
    expect(second.notModified).toBe(true);
    expect(second.body).toBeUndefined();
    expect(seen[1].headers['if-none-match']).toBe('"v1"');
  });

  test.each([
    ['max-age=3600', 3600],
    ['public, max-age="120", must-revalidate', 120],
    ['Max-Age=5', 5],
    ['no-store', 0],
    ['max-age=600, no-cache', 0],
    ['private', undefined],
  ])('Cache-Control %p gives maxAgeSeconds %p', async (header, expected) => {
    routes.set('/cc', text('x', { 'Cache-Control': header }));
    const res = await httpGet(`${plainBase}/cc`, ALLOW_HTTP);
    await readAll(res.body);
    expect(res.maxAgeSeconds).toBe(expected);
  });

  test('no Cache-Control gives no maxAgeSeconds', async () => {
    routes.set('/none', text('x'));
    const res = await httpGet(`${plainBase}/none`, ALLOW_HTTP);
    await readAll(res.body);
    expect(res.maxAgeSeconds).toBeUndefined();
    expect(res.etag).toBeUndefined();
  });

  test('a non-2xx status is one line naming the code and URL', async () => {
    await expect(httpGet(`${plainBase}/missing.aci`, ALLOW_HTTP)).rejects.toThrow(
      `bad HTTP status code: 404 fetching ${plainBase}/missing.aci`,
    );
    routes.set('/auth', (_req, res) => res.writeHead(401).end());
    routes.set('/to-auth', redirect('/auth'));
    await expect(httpGet(`${plainBase}/to-auth`, ALLOW_HTTP)).rejects.toThrow(
      `bad HTTP status code: 401 fetching ${plainBase}/auth`,
    );
  });

  test('connection refused is one line with the URL', async () => {
    const probe = http.createServer();
    const base = await listen(probe, 'http');
    await close(probe);
    await expect(httpGet(`${base}/x.aci`, ALLOW_HTTP)).rejects.toThrow(
      `cannot fetch ${base}/x.aci: connection refused (ECONNREFUSED)`,
    );
  });
});

describe('httpGetBuffer', () => {
  const MiB = 1024 * 1024;

  function stream(size: number, withLength: boolean): Handler {
    return (_req, res) => {
      res.writeHead(200, withLength ? { 'Content-Length': String(size) } : {});
      const chunk = Buffer.alloc(MiB, 0x61);
      let left = size;
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, MiB);
          left -= n;
          if (!res.write(chunk.subarray(0, n))) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => {});
      pump();
    };
  }

  test('returns the whole body up to 16 MiB', async () => {
    routes.set('/key.gpg', text('-----BEGIN PGP PUBLIC KEY BLOCK-----'));
    expect((await httpGetBuffer(`${plainBase}/key.gpg`, ALLOW_HTTP)).toString()).toBe('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    routes.set('/exact', stream(16 * MiB, false));
    expect((await httpGetBuffer(`${plainBase}/exact`, ALLOW_HTTP)).length).toBe(16 * MiB);
  });

  test('refuses more than 16 MiB, with or without Content-Length', async () => {
    routes.set('/chunked', stream(16 * MiB + 1, false));
    await expect(httpGetBuffer(`${plainBase}/chunked`, ALLOW_HTTP)).rejects.toThrow(
      `response from ${plainBase}/chunked is larger than 16 MiB`,
    );
    routes.set('/declared', stream(20 * MiB, true));
    await expect(httpGetBuffer(`${plainBase}/declared`, ALLOW_HTTP)).rejects.toThrow(
      `response from ${plainBase}/declared is larger than 16 MiB`,
    );
  });
});

describe('progressStream', () => {
  const stderr = process.stderr;
  const realWrite = stderr.write;
  const realTTY = Object.getOwnPropertyDescriptor(stderr, 'isTTY');

  afterEach(() => {
    stderr.write = realWrite;
    if (realTTY) Object.defineProperty(stderr, 'isTTY', realTTY);
    else delete (stderr as { isTTY?: boolean }).isTTY;
  });

  function captureStderr(isTTY: boolean): string[] {
    Object.defineProperty(stderr, 'isTTY', { value: isTTY, configurable: true, writable: true });
    const written: string[] = [];
    stderr.write = ((s: string | Uint8Array) => {
      written.push(String(s));
      return true;
    }) as typeof stderr.write;
    return written;
  }

  async function pump(input: Buffer, total: number | undefined): Promise<Buffer> {
    const out: Buffer[] = [];
    const chunks = Array.from({ length: Math.ceil(input.length / 4096) }, (_, i) => input.subarray(i * 4096, (i + 1) * 4096));
    await pipeline(
      Readable.from(chunks),
      progressStream(total, 'Downloading ACI'),
      new Writable({ write(chunk: Buffer, _enc, cb) { out.push(chunk); cb(); } }),
    );
    return Buffer.concat(out);
  }

  test('passes bytes through unchanged and draws nothing when stderr is not a TTY', async () => {
    const written = captureStderr(false);
    const input = crypto.randomBytes(300_000);
    const output = await pump(input, input.length);
    expect(output.equals(input)).toBe(true);
    expect(written).toEqual([]);
  });

  test('on a TTY draws a labelled bar and clears it at the end, bytes unchanged', async () => {
    const written = captureStderr(true);
    const input = crypto.randomBytes(2_500_000);
    const output = await pump(input, 40_100_000);
    expect(output.equals(input)).toBe(true);
    expect(written[0]).toMatch(/^\r\x1b\[KDownloading ACI: \[[= >]{20}\] \d+\.\d KB\/40\.1 MB$/);
    expect(written[written.length - 1]).toBe('\r\x1b[K');
  });
});
