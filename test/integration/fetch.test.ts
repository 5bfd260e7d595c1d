/**
 * The fetch pipeline as separate rkt processes: concurrent fetches, a fetch killed with
 * SIGKILL mid-download, and (as root) owners and device nodes in the rendered tree.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pack } from 'tar-stream';
import { buildTar, compress, idOf, manifestFor, tempDir, writeAci } from '../unit/store/aci-fixtures.js';
import { ensureBuilt, rkt } from './store-cli.js';
import { describeIf } from '../helpers/rkt.js';

const isRoot = process.getuid?.() === 0;
let root: string;

beforeAll(() => ensureBuilt(), 180_000);

beforeEach(() => {
  root = tempDir('fetchint');
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const cas = (...p: string[]) => path.join(root, 'data', 'cas', ...p);
const ls = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d) : []);

function fetchArgs(image: string, insecure = 'image'): string[] {
  return [`--dir=${path.join(root, 'data')}`, `--insecure-options=${insecure}`, 'fetch', '--full', image];
}

test('two rkt processes fetching one image at once both succeed and store it once', async () => {
  const tar = await buildTar(manifestFor('example.com/app'), Array.from({ length: 200 }, (_, i) => ({ path: `f${i}`, content: crypto.randomBytes(20000) })));
  const a = await writeAci(path.join(root, 'a.aci'), compress(tar, 'gzip'));
  const b = await writeAci(path.join(root, 'b.aci'), compress(tar, 'gzip'));
  const [ra, rb] = await Promise.all([rkt(fetchArgs(a)).done, rkt(fetchArgs(b)).done]);
  expect([ra.code, rb.code]).toEqual([0, 0]);
  expect(ra.stdout).toBe(`${idOf(tar)}\n`);
  expect(rb.stdout).toBe(`${idOf(tar)}\n`);
  expect(ls(cas('info'))).toEqual([`${idOf(tar)}.json`]);
  expect(ls(cas('tree'))).toEqual([idOf(tar)]);
  expect(ls(cas('tmp'))).toEqual([]);
  expect(ls(cas('tree', idOf(tar), 'rootfs'))).toHaveLength(200);
});

describe('a fetch killed with SIGKILL', () => {
  let server: http.Server;
  let slow = true;
  let sent = 0;
  let aci: Buffer;
  let tar: Buffer;

  beforeEach(async () => {
    tar = await buildTar(manifestFor('example.com/big'), [{ path: 'big.bin', content: crypto.randomBytes(6 * 1024 * 1024) }]);
    aci = compress(tar, 'gzip');
    slow = true;
    sent = 0;
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(aci.length) });
      if (!slow) return void res.end(aci);
      // 64 KiB every 20 ms: about 2 s for the whole image.
      let off = 0;
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        res.write(aci.subarray(off, off + 65536));
        off += 65536;
        sent = off;
        if (off >= aci.length) {
          clearInterval(timer);
          res.end();
        }
      }, 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('leaves only tmp/ leftovers; the next fetch works and removes them', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/big.aci`;
    const { child, done } = rkt(fetchArgs(url, 'image,http'));
    const deadline = Date.now() + 20_000;
    while (sent < aci.length / 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(sent).toBeLessThan(aci.length);
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');

    expect(ls(cas('info'))).toEqual([]);
    expect(ls(cas('tree'))).toEqual([]);
    expect(ls(cas('blob'))).toEqual([]);
    const leftovers = ls(cas('tmp'));
    expect(leftovers.length).toBeGreaterThan(0);
    expect(leftovers.every((n) => n.startsWith(`${child.pid}-`))).toBe(true);

    slow = false;
    const again = await rkt(fetchArgs(url, 'image,http')).done;
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`${idOf(tar)}\n`);
    expect(ls(cas('tmp'))).toEqual([]);
    expect(fs.statSync(cas('tree', idOf(tar), 'rootfs', 'big.bin')).size).toBe(6 * 1024 * 1024);
  });
});

describeIf(isRoot ? undefined : 'needs root')('as root', () => {
  test('the tree keeps owners, modes and device nodes from the image', async () => {
    const p = pack();
    const chunks: Buffer[] = [];
    p.on('data', (c: unknown) => { chunks.push(c as Buffer); });
    const ended = new Promise<void>((resolve) => p.on('end', () => resolve()));
    p.entry({ name: 'manifest' }, JSON.stringify(manifestFor('example.com/owners')));
    p.entry({ name: 'rootfs', type: 'directory', mode: 0o755 });
    p.entry({ name: 'rootfs/owned', mode: 0o4750, uid: 1234, gid: 5678 }, 'data');
    p.entry({ name: 'rootfs/dev', type: 'directory', mode: 0o755 });
    p.entry({ name: 'rootfs/dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 });
    p.finalize();
    await ended;
    const tarBuf = Buffer.concat(chunks);
    const file = await writeAci(path.join(root, 'owners.aci'), tarBuf);
    const r = await rkt(fetchArgs(file)).done;
    expect(r.stderr).toBe('image: warning: image signature verification has been disabled\n');
    expect(r.code).toBe(0);
    const rootfs = cas('tree', idOf(tarBuf), 'rootfs');
    const owned = fs.statSync(path.join(rootfs, 'owned'));
    expect([owned.uid, owned.gid, owned.mode & 0o7777]).toEqual([1234, 5678, 0o4750]);
    const dev = fs.statSync(path.join(rootfs, 'dev', 'null'));
    expect(dev.isCharacterDevice()).toBe(true);
    expect(dev.rdev).toBe(fs.statSync('/dev/null').rdev);

    // image extract as root re-creates them from the blob too.
    const out = path.join(root, 'out');
    const ex = await rkt([`--dir=${path.join(root, 'data')}`, 'image', 'extract', '--rootfs-only', idOf(tarBuf), out]).done;
    expect(ex.code).toBe(0);
    expect(fs.statSync(path.join(out, 'owned')).uid).toBe(1234);
    expect(fs.statSync(path.join(out, 'dev', 'null')).isCharacterDevice()).toBe(true);
  });
});
