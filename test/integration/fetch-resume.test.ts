/**
 * Resuming an interrupted download (as rkt did), against the real bin/rkt as root and
 * hostile servers: one that drops the connection mid-body and then serves the rest, and
 * ones that lie about ranges. The store must get the right (verified) image or nothing,
 * and cas/tmp must be empty after. A member of group rkt (who may write cas/tmp) can
 * neither read the kept bytes nor get root to splice in bytes of their own.
 */
import { afterEach, beforeAll, beforeEach, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { ROOT, describeIf, isRoot, makeEnv, rktBackground, waitFor, type RktEnv } from '../helpers/rkt.js';
import { rkt as rktNode } from './store-cli.js';
import { closeServer, listenLocal } from '../helpers/servers.js';
import { buildTar, compress, idOf, makeKey, manifestFor, sign, trustKey, type Key } from '../unit/store/aci-fixtures.js';
import { PartialDownload } from '../../src/store/partial.js';
import { rktGid } from '../../src/store/datadir.js';

const built = fs.existsSync(path.join(ROOT, 'dist', 'cli.js'));
const suite = describeIf(!isRoot ? 'needs root' : !built ? 'needs `npm run build`' : undefined);

/** An unprivileged uid for the group rkt member of the attacks. */
const NOBODY = 65534;

/**
 * What the server does with each image request, in order (the last repeats):
 *   cut          200 with the whole length announced, 1 MiB of it, then the connection is dropped
 *   slow         200 with the whole length announced, 64 KiB every 20 ms up to 1.5 MiB, then nothing more
 *   rest         206 with exactly the rest asked for (Range + If-Range), else 200 whole
 *   other-range  206 whose Content-Range starts 4096 bytes before the range asked for
 *   wrong-bytes  206 with the Content-Range asked for, but the bytes of another offset
 */
type Step = 'cut' | 'slow' | 'rest' | 'other-range' | 'wrong-bytes';

suite('resuming an interrupted download', () => {
  let env: RktEnv;
  let key: Key;
  let content: Buffer;
  let tar: Buffer;
  let aci: Buffer;
  let asc: Buffer;
  let server: http.Server | undefined;
  const sockets = new Set<net.Socket>();
  let plan: Step[];
  let requests: http.IncomingHttpHeaders[];
  const ETAG = '"resume-1"';

  beforeAll(async () => {
    key = await makeKey('Resume Signer');
    content = crypto.randomBytes(3 * 1024 * 1024);
    tar = await buildTar(manifestFor('example.com/resume'), [{ path: 'data.bin', content }]);
    aci = compress(tar, 'gzip');
    asc = await sign(key, aci);
  });

  beforeEach(() => {
    env = makeEnv('rkt-it-resume-');
    trustKey(env.localConfig, 'example.com', key);
    plan = [];
    requests = [];
  });

  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (server) await closeServer(server);
    server = undefined;
    fs.rmSync(env.base, { recursive: true, force: true });
  });

  const cas = (...p: string[]) => path.join(env.dir, 'cas', ...p);
  const ls = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d).sort() : []);

  async function serve(): Promise<string> {
    const s = http.createServer((req, res) => {
      if (req.url === '/resume.aci.asc') return void res.writeHead(200).end(asc);
      requests.push(req.headers);
      const step = plan.length > 1 ? plan.shift()! : plan[0];
      const asked = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
      const from = asked && req.headers['if-range'] === ETAG ? Number(asked[1]) : undefined;
      const partial = (first: number, bytes: Buffer) => {
        res.writeHead(206, { 'Content-Range': `bytes ${first}-${aci.length - 1}/${aci.length}`, 'Content-Length': String(bytes.length), ETag: ETAG });
        res.end(bytes);
      };
      if (step === 'cut') {
        res.writeHead(200, { 'Content-Length': String(aci.length), ETag: ETAG, 'Accept-Ranges': 'bytes' });
        res.write(aci.subarray(0, 1024 * 1024), () => res.socket?.destroy());
        return;
      }
      if (step === 'slow') {
        res.writeHead(200, { 'Content-Length': String(aci.length), ETag: ETAG });
        let off = 0;
        const timer = setInterval(() => {
          if (res.destroyed || off >= 1.5 * 1024 * 1024) return void clearInterval(timer);
          res.write(aci.subarray(off, off + 65536));
          off += 65536;
        }, 20);
        return;
      }
      if (from !== undefined && step === 'rest') return partial(from, aci.subarray(from));
      if (from !== undefined && step === 'other-range') return partial(from - 4096, aci.subarray(from - 4096));
      if (from !== undefined && step === 'wrong-bytes') return partial(from, aci.subarray(from - 4096, aci.length - 4096));
      res.writeHead(200, { 'Content-Length': String(aci.length), ETag: ETAG }).end(aci);
    });
    s.on('connection', (c) => { sockets.add(c); c.on('close', () => sockets.delete(c)); });
    server = s;
    return `http://127.0.0.1:${await listenLocal(s)}/resume.aci`;
  }

  const fetch = (url: string) => rktBackground(env, ['fetch', '--full', url]).done;
  const partialFile = (url: string) => new PartialDownload(cas('tmp'), url, (suffix) => path.join(cas('tmp'), `unused${suffix}`)).file;
  /** The partial a running fetch writes: its own staging name, ending in the partial's. */
  const inUse = (url: string) => {
    const name = ls(cas('tmp')).find((n) => n.endsWith(`.restore-as-${path.basename(partialFile(url))}`));
    return name === undefined ? undefined : path.join(cas('tmp'), name);
  };
  const sizeOf = (file: string | undefined) => (file ? fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0 : 0);

  /** The first fetch, cut mid-body: fails in one line, 254; keeps a private partial. Returns its byte count. */
  async function cutFirst(url: string): Promise<number> {
    const r = await fetch(url);
    expect(r.code).toBe(254);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(/^fetch: .*resume\.aci.*/);
    expect(ls(cas('tmp'))).toEqual([path.basename(partialFile(url))]);
    const st = fs.statSync(partialFile(url));
    expect([st.uid, st.mode & 0o777]).toEqual([0, 0o600]);
    const all = fs.readFileSync(partialFile(url));
    const kept = all.subarray(all.indexOf(0x0a) + 1);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(aci.length);
    expect(kept.equals(aci.subarray(0, kept.length))).toBe(true);
    expect(ls(cas('info'))).toEqual([]);
    return kept.length;
  }

  /** The fetch stored exactly the signed image, and left nothing in cas/tmp. */
  function expectStored(r: { code: number | null; stdout: string; stderr: string }): void {
    expect(r.stderr).not.toMatch(/warning|error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${idOf(tar)}\n`);
    expect(ls(cas('info'))).toEqual([`${idOf(tar)}.json`]);
    expect(fs.readFileSync(cas('tree', idOf(tar), 'rootfs', 'data.bin')).equals(content)).toBe(true);
    expect(ls(cas('tmp'))).toEqual([]);
  }

  test('a connection dropped mid-body: the next fetch asks for the rest only and stores the right image', async () => {
    const url = await serve();
    plan = ['cut', 'rest'];
    const kept = await cutFirst(url);
    // A member of group rkt may enter cas/tmp, but not read the bytes kept there.
    const gid = fs.statSync(cas('tmp')).gid;
    const peek = spawnSync('cat', [partialFile(url)], { uid: NOBODY, gid, encoding: 'utf8' });
    expect(peek.status).not.toBe(0);
    expect(peek.stderr).toMatch(/Permission denied/);

    const r = await fetch(url);
    expectStored(r);
    expect(requests.map((h) => [h.range, h['if-range']])).toEqual([[undefined, undefined], [`bytes=${kept}-`, ETAG]]);
  });

  test('a fetch killed with SIGKILL mid-download leaves its partial; rkt image gc meanwhile leaves it alone; the next fetch resumes from it', async () => {
    const url = await serve();
    plan = ['slow', 'rest'];
    // The Node process itself, so that SIGKILL hits rkt.
    const { child, done } = rktNode([...env.globals, 'fetch', '--full', url]);
    await waitFor(() => sizeOf(inUse(url)) > 1024 * 1024, 30_000, 'a MiB to be kept');
    const file = inUse(url)!;
    // The fetch is alive: its partial is not garbage.
    const gc = await rktBackground(env, ['image', 'gc']).done;
    expect([gc.code, gc.stderr]).toEqual([0, '']);
    expect(fs.existsSync(file)).toBe(true);
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    const all = fs.readFileSync(file);
    const kept = all.subarray(all.indexOf(0x0a) + 1);
    expect(kept.length).toBeLessThan(aci.length);
    expect(kept.equals(aci.subarray(0, kept.length))).toBe(true);

    const r = await fetch(url);
    expectStored(r); // also: the killed process's staging is gone from cas/tmp
    expect(requests.map((h) => h.range)).toEqual([undefined, `bytes=${kept.length}-`]);
  });

  test('a server that answers another range than asked: nothing spliced, the same fetch starts again from zero', async () => {
    const url = await serve();
    plan = ['cut', 'other-range', 'rest'];
    const kept = await cutFirst(url);
    const r = await fetch(url);
    expect(r.stderr).toContain(`image: cannot use cached partial download, the server answered another range (bytes ${kept - 4096}-${aci.length - 1}/${aci.length}).`);
    expectStored({ ...r, stderr: r.stderr.replace(/^image: cannot use cached partial download.*\n/m, '') });
    expect(requests.map((h) => h.range)).toEqual([undefined, `bytes=${kept}-`, undefined]);
  });

  test('a server whose 206 carries other bytes than its Content-Range says: verification refuses, nothing stored or kept', async () => {
    const url = await serve();
    plan = ['cut', 'wrong-bytes', 'rest'];
    await cutFirst(url);
    const r = await fetch(url);
    expect(r.code).toBe(254);
    expect(r.stdout).toBe('');
    const last = r.stderr.trimEnd().split('\n');
    expect(last).toHaveLength(1);
    expect(last[0]).toMatch(/^fetch: .*(signature|verif)/i);
    expect(ls(cas('info'))).toEqual([]);
    expect(ls(cas('blob'))).toEqual([]);
    expect(ls(cas('tmp'))).toEqual([]);
    // Nothing kept: the next fetch asks for the whole image, and gets the right one.
    const again = await fetch(url);
    expectStored(again);
    expect(requests.at(-1)!.range).toBeUndefined();
  });

  test("a group rkt member's planted partial (their bytes under the URL's name, or a symlink) is never spliced in or written through", async () => {
    const url = await serve();
    // Planted before rkt ever ran on this --dir; the fetch lays cas/ out with group rkt's
    // rights, which is what lets a member write there.
    const plant = (): string => {
      fs.rmSync(path.join(env.dir, 'cas'), { recursive: true, force: true });
      fs.mkdirSync(cas('tmp'), { recursive: true });
      return partialFile(url);
    };
    const evil = Buffer.concat([Buffer.from(`${JSON.stringify({ url, validator: ETAG })}\n`), crypto.randomBytes(100_000)]);

    // Their bytes, with a header naming this URL, mode 0600, but theirs.
    let planted = plant();
    fs.writeFileSync(planted, evil, { mode: 0o600 });
    fs.chownSync(planted, NOBODY, rktGid());
    plan = ['rest'];
    expectStored(await fetch(url));
    expect(requests.map((h) => h.range)).toEqual([undefined]);

    // A symlink to a file of theirs: not read, and root never writes through it.
    planted = plant();
    const theirs = path.join(env.base, 'theirs');
    fs.writeFileSync(theirs, evil, { mode: 0o600 });
    fs.chownSync(theirs, NOBODY, rktGid());
    fs.symlinkSync(theirs, planted);
    plan = ['cut'];
    requests = [];
    expect((await fetch(url)).code).toBe(254);
    expect(requests.map((h) => h.range)).toEqual([undefined]);
    expect(fs.readFileSync(theirs).equals(evil)).toBe(true);
    const now = fs.lstatSync(planted);
    expect([now.isFile(), now.uid, now.mode & 0o777]).toEqual([true, 0, 0o600]); // rkt's own partial, made afresh
  });

  test('rkt image gc removes a kept partial download', async () => {
    const url = await serve();
    plan = ['cut'];
    await cutFirst(url);
    const gc = await rktBackground(env, ['image', 'gc']).done;
    expect(gc.code).toBe(0);
    expect(gc.stderr).toContain(`removed partial download "${path.basename(partialFile(url))}"`);
    expect(ls(cas('tmp'))).toEqual([]);
  });
});
