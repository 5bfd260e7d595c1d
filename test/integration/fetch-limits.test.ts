/**
 * Hostile image servers against the real bin/rkt: an endless response, a server that
 * accepts and never answers, one that never finishes the TLS handshake, a body that stalls
 * half-way, and signed gzip bombs. Each must fail with one line naming the URL, the limit
 * and the flag, exit 254, and leave cas/tmp empty. Limits are lowered with the flags so
 * that the tests are quick; servers listen on 127.0.0.1 only.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { pack } from 'tar-stream';
import { ROOT, describeIf, isRoot, makeEnv, rktBackground, waitFor, type RktEnv } from '../helpers/rkt.js';
import { closeServer, listenLocal } from '../helpers/servers.js';
import { buildTar, compress, idOf, makeKey, manifestFor, sign, trustKey, type Key } from '../unit/store/aci-fixtures.js';

const built = fs.existsSync(path.join(ROOT, 'dist', 'cli.js'));
const suite = describeIf(!isRoot ? 'needs root' : !built ? 'needs `npm run build`' : undefined);

/** A tar whose one file is `size` zero bytes, gzipped at level 9: a few KB per 10 MB. */
async function gzipBomb(name: string, size: number): Promise<Buffer> {
  const p = pack();
  const gz = zlib.createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gz.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => { gz.on('end', resolve); gz.on('error', reject); });
  p.pipe(gz);
  p.entry({ name: 'manifest' }, JSON.stringify(manifestFor(name)));
  p.entry({ name: 'rootfs', type: 'directory', mode: 0o755 });
  const file = p.entry({ name: 'rootfs/zeros', size });
  const zeros = Buffer.alloc(1024 * 1024);
  for (let left = size; left > 0; left -= zeros.length) {
    if (!file.write(zeros.subarray(0, Math.min(left, zeros.length)))) await new Promise<void>((r) => file.once('drain', () => r()));
  }
  (file as unknown as { end(): void }).end();
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** The start of a tar whose third entry claims 1 TB: any bytes after it are valid file data. */
async function endlessTarPrefix(name: string): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  p.entry({ name: 'manifest' }, JSON.stringify(manifestFor(name)));
  p.entry({ name: 'rootfs', type: 'directory', mode: 0o755 });
  p.entry({ name: 'rootfs/endless', size: 1e12 });
  await new Promise((r) => setImmediate(r));
  return Buffer.concat(chunks);
}

suite('fetch limits against hostile servers', () => {
  let env: RktEnv;
  let server: http.Server | net.Server | undefined;
  const sockets = new Set<net.Socket>();
  let key: Key;

  beforeAll(async () => {
    key = await makeKey('Limits Signer');
  });

  beforeEach(() => {
    env = makeEnv('rkt-it-limits-');
    trustKey(env.localConfig, 'example.com', key);
  });

  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (server instanceof http.Server) await closeServer(server);
    else if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    fs.rmSync(env.base, { recursive: true, force: true });
  });

  const tmp = (): string[] => {
    const d = path.join(env.dir, 'cas', 'tmp');
    return fs.existsSync(d) ? fs.readdirSync(d) : [];
  };

  async function serve(handler: http.RequestListener): Promise<string> {
    const s = http.createServer(handler);
    s.on('connection', (c) => { sockets.add(c); c.on('close', () => sockets.delete(c)); });
    server = s;
    return `http://127.0.0.1:${await listenLocal(s)}`;
  }

  /** Runs rkt; the limit error must be its last stderr line, one line, with status 254. */
  async function fetchFails(args: string[]): Promise<string> {
    const { done } = rktBackground(env, args);
    const r = await done;
    expect(r.stdout).toBe('');
    expect(r.code).toBe(254);
    const lines = r.stderr.trimEnd().split('\n');
    return lines[lines.length - 1];
  }

  test('an endless response stops at --max-download-size and leaves cas/tmp empty', async () => {
    let sent = 0;
    const prefix = await endlessTarPrefix('example.com/endless');
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.write(prefix);
      const chunk = crypto.randomBytes(64 * 1024);
      const more = (): void => {
        while (!res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
      };
      more();
    });
    const url = `${base}/endless.aci`;
    const line = await fetchFails(['--insecure-options=image,http', '--max-download-size=2M', 'fetch', url]);
    expect(line).toBe(`fetch: image ${url} is larger than 1.9 MiB (--max-download-size=2000000): if that is expected, raise it with --max-download-size=SIZE`);
    expect(tmp()).toEqual([]);
    expect(sent).toBeGreaterThan(2_000_000);
  }, 60_000);

  test('a Content-Length over --max-download-size is refused before the body is read', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(50 * 1024 ** 3) });
      res.write(Buffer.alloc(1024));
    });
    const url = `${base}/huge.aci`;
    const line = await fetchFails(['--insecure-options=image,http', '--max-download-size=1Mi', 'fetch', url]);
    expect(line).toBe(`fetch: image ${url} is larger than 1 MiB (--max-download-size=1048576): if that is expected, raise it with --max-download-size=SIZE`);
    expect(tmp()).toEqual([]);
  }, 60_000);

  test('by default, a download larger than the free space of --dir is refused, naming the dir', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(2 ** 52) }); // 4 PiB: more than any test machine has
      res.write(Buffer.alloc(1024));
    });
    const url = `${base}/huge.aci`;
    const line = await fetchFails(['--insecure-options=image,http', 'fetch', url]);
    expect(line).toMatch(new RegExp(`^fetch: image ${url} is larger than [0-9.]+ [KMGT]?i?B, the free space in ${env.dir} less a margin \\(--max-download-size\\): free space there, use another --dir, or set --max-download-size=SIZE$`));
    expect(tmp()).toEqual([]);
  }, 60_000);

  test('a server that accepts and never answers fails at --http-stall-timeout', async () => {
    const s = net.createServer((c) => { sockets.add(c); });
    server = s;
    const port = await new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)));
    const url = `http://127.0.0.1:${port}/silent.aci`;
    const line = await fetchFails(['--insecure-options=image,http', '--http-stall-timeout=1s', 'fetch', url]);
    expect(line).toBe(`fetch: cannot fetch ${url}: the server sent no answer for 1s (--http-stall-timeout=1s): retry later, or raise it with --http-stall-timeout=DURATION`);
    expect(tmp()).toEqual([]);
  }, 60_000);

  test('an https server that never completes the TLS handshake fails at --http-connect-timeout', async () => {
    const s = net.createServer((c) => { sockets.add(c); }); // takes the TCP connection, says nothing
    server = s;
    const port = await new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)));
    const url = `https://127.0.0.1:${port}/mute.aci`;
    const line = await fetchFails(['--insecure-options=image,tls', '--http-connect-timeout=1s', 'fetch', url]);
    expect(line).toBe(`fetch: cannot fetch ${url}: no connection within 1s (--http-connect-timeout=1s): check the server, or raise it with --http-connect-timeout=DURATION`);
    expect(tmp()).toEqual([]);
  }, 60_000);

  test('a body that stops half-way fails at --http-stall-timeout and leaves cas/tmp empty', async () => {
    const tar = await buildTar(manifestFor('example.com/stall'), [{ path: 'data.bin', content: crypto.randomBytes(1024 * 1024) }]);
    const aci = compress(tar, 'gzip');
    let half = false;
    const base = await serve((req, res) => {
      if (req.url?.endsWith('.asc')) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Length': String(aci.length) });
      res.write(aci.subarray(0, aci.length / 2), () => { half = true; });
      // ... and nothing more, with the connection kept open.
    });
    const url = `${base}/stall.aci`;
    const line = await fetchFails(['--insecure-options=image,http', '--http-stall-timeout=1s', 'fetch', url]);
    expect(half).toBe(true);
    expect(line).toBe(`fetch: cannot fetch ${url}: the download stalled for 1s (--http-stall-timeout=1s): retry later, or raise it with --http-stall-timeout=DURATION`);
    expect(tmp()).toEqual([]);
    expect(fs.readdirSync(path.join(env.dir, 'cas', 'blob'))).toEqual([]);
  }, 60_000);

  test('a signed gzip bomb over HTTP stops at --max-expanded-size, its bytes never all written', async () => {
    const bomb = await gzipBomb('example.com/bomb', 256 * 1024 * 1024);
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    const asc = await sign(key, bomb);
    const base = await serve((req, res) => {
      const body = req.url === '/bomb.aci' ? bomb : req.url === '/bomb.aci.asc' ? asc : undefined;
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Length': String(body.length) }).end(body);
    });
    const url = `${base}/bomb.aci`;
    const line = await fetchFails(['--insecure-options=http', '--max-expanded-size=8M', 'fetch', url]);
    expect(line).toBe(`fetch: image ${url} expands to more than 7.6 MiB (--max-expanded-size=8000000): if that is expected, raise it with --max-expanded-size=SIZE`);
    expect(tmp()).toEqual([]);
    expect(fs.readdirSync(path.join(env.dir, 'cas', 'tree'))).toEqual([]);
  }, 60_000);

  test('a signed gzip bomb in a file stops at --max-expanded-size; a raised limit lets a genuine image in', async () => {
    const bomb = await gzipBomb('example.com/bomb', 64 * 1024 * 1024);
    const file = path.join(env.base, 'bomb.aci');
    fs.writeFileSync(file, bomb);
    fs.writeFileSync(`${file}.asc`, await sign(key, bomb));
    const line = await fetchFails(['--max-expanded-size=4Mi', 'fetch', file]);
    expect(line).toBe(`fetch: image ${file} expands to more than 4 MiB (--max-expanded-size=4194304): if that is expected, raise it with --max-expanded-size=SIZE`);
    expect(tmp()).toEqual([]);

    const ok = await rktBackground(env, ['--max-expanded-size=65Mi', 'fetch', '--full', file]).done;
    expect(ok.stderr).toContain('signature verified');
    expect(ok.code).toBe(0);
    expect(fs.statSync(path.join(env.dir, 'cas', 'tree', ok.stdout.trim(), 'rootfs', 'zeros')).size).toBe(64 * 1024 * 1024);
    expect(tmp()).toEqual([]);
  }, 60_000);

  test('bad limit flags are one-line errors', async () => {
    for (const [flag, want] of [
      ['--max-download-size=lots', 'invalid --max-download-size "lots": use bytes or a number with a suffix, e.g. 512M or 2Gi'],
      ['--max-expanded-size=0', 'invalid --max-expanded-size "0": must be more than 0 bytes; use bytes or a number with a suffix, e.g. 512M or 2Gi'],
      ['--http-stall-timeout=soon', 'invalid duration "soon" for --http-stall-timeout: use forms like 30m0s, 24h, 10s or 0s'],
      ['--http-connect-timeout=0s', 'invalid --http-connect-timeout "0s": must be more than 0, e.g. 30s or 2m'],
    ]) {
      const line = await fetchFails([flag, 'fetch', 'example.com/app']);
      expect(line).toBe(`fetch: ${want}`);
    }
  }, 60_000);

  test("a SIGKILLed fetch's leftover in cas/tmp is removed by the next fetch, and by image gc", async () => {
    const tar = await buildTar(manifestFor('example.com/slow'), [{ path: 'data.bin', content: crypto.randomBytes(2 * 1024 * 1024) }]);
    const aci = compress(tar, 'gzip');
    const small = await buildTar(manifestFor('example.com/small'));
    const smallFile = path.join(env.base, 'small.aci');
    fs.writeFileSync(smallFile, small);
    let sent = 0;
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(aci.length) });
      res.write(aci.subarray(0, 64 * 1024), () => { sent = 64 * 1024; }); // then waits for ever
    });

    for (const cleaner of [['--insecure-options=image', 'fetch', smallFile], ['image', 'gc']]) {
      const killed = rktBackground(env, ['--insecure-options=image,http', 'fetch', `${base}/slow.aci`]);
      await waitFor(() => sent > 0 && tmp().length > 0, 20_000, 'the download to start');
      // bin/rkt is a shell launcher: the staging name carries the pid of its node process.
      const pid = Number(tmp()[0].split('-')[0]);
      expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('dist/rkt.cjs');
      process.kill(pid, 'SIGKILL');
      expect((await killed.done).code).not.toBe(0);
      expect(tmp().length).toBeGreaterThan(0);
      sent = 0;

      const r = await rktBackground(env, cleaner).done;
      expect(r.code).toBe(0);
      expect(tmp()).toEqual([]);
    }
    expect(fs.readdirSync(path.join(env.dir, 'cas', 'info'))).toEqual([`${idOf(small)}.json`]);
  }, 90_000);
});

/**
 * bin/rkt runs the compiled build, where the blob, the signature check and the image ID
 * are done in a worker thread (src/store/digester.ts); the unit tests cover the in-thread
 * variant. Both must agree, and the worker must fail the same way.
 */
suite('fetch with the digest worker', () => {
  let env: RktEnv;
  let key: Key;
  let tar: Buffer;
  let aci: Buffer;
  let file: string;

  beforeAll(async () => {
    key = await makeKey('Worker Signer');
    tar = await buildTar(manifestFor('example.com/worker'), Array.from({ length: 20 }, (_, i) => ({ path: `f${i}`, content: crypto.randomBytes(200_000) })));
    aci = compress(tar, 'gzip');
  });

  beforeEach(() => {
    env = makeEnv('rkt-it-worker-');
    file = path.join(env.base, 'worker.aci');
    fs.writeFileSync(file, aci);
  });

  afterEach(() => fs.rmSync(env.base, { recursive: true, force: true }));

  /** rktBackground with extra environment variables. */
  function rktBackgroundWith(vars: Record<string, string>, args: string[]) {
    const saved = { ...process.env };
    Object.assign(process.env, vars);
    try {
      return rktBackground(env, args);
    } finally {
      for (const k of Object.keys(vars)) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
    }
  }

  const stored = (d: string): string[] => {
    const p = path.join(env.dir, 'cas', d);
    return fs.existsSync(p) ? fs.readdirSync(p) : [];
  };

  test.each(['1', '0'])('RKT_DIGEST_WORKER=%s: a signed image gets its ID and its blob is the file, byte for byte', async (worker) => {
    trustKey(env.localConfig, 'example.com', key);
    fs.writeFileSync(`${file}.asc`, await sign(key, aci));
    const { child, done } = rktBackgroundWith({ RKT_DIGEST_WORKER: worker }, ['fetch', '--full', file]);
    void child;
    const r = await done;
    expect(r.stderr).toContain('signature verified');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${idOf(tar)}\n`);
    expect(fs.readFileSync(path.join(env.dir, 'cas', 'blob', idOf(tar))).equals(aci)).toBe(true);
    expect(stored('tmp')).toEqual([]);
  }, 60_000);

  test('a tampered image is refused, nothing stored', async () => {
    trustKey(env.localConfig, 'example.com', key);
    fs.writeFileSync(`${file}.asc`, await sign(key, aci));
    const bad = Buffer.from(aci);
    bad[bad.length >> 1] ^= 0xff;
    fs.writeFileSync(file, bad);
    const r = await rktBackground(env, ['fetch', file]).done;
    expect(r.code).toBe(254);
    expect(r.stderr.trimEnd().split('\n').pop()).toBe(
      `fetch: signature of image "${file}" does not match its content (signed by key ${key.fingerprint}): the image or signature is corrupt or was tampered with`,
    );
    for (const d of ['tmp', 'blob', 'tree', 'info']) expect(stored(d)).toEqual([]);
  }, 60_000);

  test('an image signed by an unknown key is refused at once, nothing stored', async () => {
    const other = await makeKey('Stranger');
    trustKey(env.localConfig, 'example.com', key);
    fs.writeFileSync(`${file}.asc`, await sign(other, aci));
    const r = await rktBackground(env, ['fetch', file]).done;
    expect(r.code).toBe(254);
    expect(r.stderr).toContain('which is not in the trust store: trust it with "rkt trust --prefix=');
    for (const d of ['tmp', 'blob', 'tree', 'info']) expect(stored(d)).toEqual([]);
  }, 60_000);

  test('a signer trusted only for another prefix is refused by name, nothing stored', async () => {
    trustKey(env.localConfig, 'example.com/other', key);
    fs.writeFileSync(`${file}.asc`, await sign(key, aci));
    const r = await rktBackground(env, ['fetch', file]).done;
    expect(r.code).toBe(254);
    expect(r.stderr.trimEnd().split('\n').pop()).toBe(
      `fetch: image "example.com/worker" is signed by key ${key.fingerprint}, which is not trusted for "example.com/worker": trust it with "rkt trust --prefix=example.com/worker <key file>"`,
    );
    for (const d of ['tmp', 'blob', 'tree', 'info']) expect(stored(d)).toEqual([]);
  }, 60_000);
});
