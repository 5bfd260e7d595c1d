import { describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { squashAndRender, squashLayers, type Captured } from '../../../../src/image/docker/convert.js';
import { entryExtractor, extractAci } from '../../../../src/image/extract.js';
import { RktError } from '../../../../src/util/errors.js';

type E = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string; linkname?: string };

async function layerFile(dir: string, n: number, entries: E[]): Promise<{ digest: string; file: string }> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const ended = new Promise<void>((r) => p.on('end', () => r()));
  for (const e of entries) {
    const type = e.type ?? 'file';
    if (type === 'file') p.entry({ name: e.name, type }, e.body ?? '');
    else p.entry({ name: e.name, type, linkname: e.linkname });
  }
  p.finalize();
  await ended;
  const file = path.join(dir, `layer${n}`);
  fs.writeFileSync(file, zlib.gzipSync(Buffer.concat(chunks)));
  return { digest: `sha256:${String(n).repeat(64)}`, file };
}

/** The squashed ACI's entries: name → body (or "->target" for links, "/" for dirs). */
async function squash(layers: E[][]): Promise<{ entries: Map<string, string>; captured: Captured }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-squash-'));
  const files = [];
  for (const [i, l] of layers.entries()) files.push(await layerFile(dir, i + 1, l));
  let captured: Captured = {};
  const out = squashLayers(files, (c) => { captured = c; return Buffer.from('{}'); });
  const entries = new Map<string, string>();
  const x = extract();
  x.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c) => { chunks.push(c as Buffer); });
    stream.on('end', () => {
      entries.set(h.name, h.type === 'directory' ? '/' : h.type === 'file' ? Buffer.concat(chunks).toString() : `->${h.linkname}`);
      next();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => { out.on('error', reject); x.on('error', reject); x.on('finish', resolve); out.pipe(x); });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { entries, captured };
}

describe('squashing layers', () => {
  test('upper files win; whiteouts and opaque dirs hide lower content only', async () => {
    const { entries } = await squash([
      [{ name: 'etc/', type: 'directory' }, { name: 'etc/a', body: 'lower' }, { name: 'etc/gone', body: 'x' }, { name: 'd/', type: 'directory' }, { name: 'd/old', body: 'x' }, { name: 'o/old', body: 'x' }, { name: 'etc/passwd', body: 'root:x:0:0::/:/bin/sh\n' }],
      [{ name: 'etc/a', body: 'upper' }, { name: 'etc/.wh.gone' }, { name: 'etc/gone', body: 'back in the same layer' }, { name: 'etc/.wh.d' }, { name: 'd/.wh..wh..opq' }, { name: 'd/new', body: 'n' }, { name: 'o/.wh..wh..opq' }],
    ]);
    expect(entries.get('rootfs/etc/a')).toBe('upper');
    expect(entries.get('rootfs/etc/gone')).toBe('back in the same layer');
    expect(entries.get('rootfs/d/new')).toBe('n');
    expect(entries.has('rootfs/d/old')).toBe(false);
    expect(entries.has('rootfs/o/old')).toBe(false);
    expect([...entries.keys()].filter((n) => n.includes('.wh.'))).toEqual([]);
    expect(entries.get('manifest')).toBe('{}');
    expect([...entries.keys()].at(-1)).toBe('manifest');
  });

  test('a whited-out directory takes its whole subtree; a file replacing a dir hides its children', async () => {
    const { entries } = await squash([
      [{ name: 'a/b/c', body: 'x' }, { name: 'f/inner', body: 'x' }],
      [{ name: '.wh.a' }, { name: 'f', body: 'now a file' }],
    ]);
    expect([...entries.keys()].filter((n) => n.startsWith('rootfs/a'))).toEqual([]);
    expect(entries.get('rootfs/f')).toBe('now a file');
    expect(entries.has('rootfs/f/inner')).toBe(false);
  });

  test('/etc/passwd and /etc/group of the squashed tree reach the manifest builder', async () => {
    const { captured } = await squash([[{ name: 'etc/passwd', body: 'old' }], [{ name: 'etc/passwd', body: 'new' }, { name: 'etc/group', body: 'g' }]]);
    expect(captured.passwd?.toString()).toBe('new');
    expect(captured.group?.toString()).toBe('g');
  });

  test('hard links are rewritten under rootfs/', async () => {
    const { entries } = await squash([[{ name: 'bin/a', body: 'x' }, { name: 'bin/b', type: 'link', linkname: 'bin/a' }]]);
    expect(entries.get('rootfs/bin/b')).toBe('->rootfs/bin/a');
  });

  test.each<[string, E[][], RegExp]>([
    ['a ".." name', [[{ name: '../x', body: 'x' }]], /layer 1 of 1 .*entry "\.\.\/x" has a "\.\." component/],
    ['an absolute name', [[{ name: '/etc/x', body: 'x' }]], /has an absolute name "\/etc\/x"/],
    ['a hard link out', [[{ name: 'a', body: 'x' }, { name: 'b', type: 'link', linkname: '../../a' }]], /hard link "b" to "\.\.\/\.\.\/a" has a "\.\." component/],
    ['a write through a symlink of the same layer', [[{ name: 'l', type: 'symlink', linkname: '/' }, { name: 'l/x', body: 'x' }]], /"l\/x" is inside "l", which the same layer made a symlink/],
    ['a write through a lower layer\'s symlink', [[{ name: 'l', type: 'symlink', linkname: '/etc' }], [{ name: 'l/passwd', body: 'x' }]], /layer 1 of 2 .*"l" is a symlink in this layer, but a layer above writes inside it/],
    ['a duplicate entry', [[{ name: 'a', body: 'x' }, { name: 'a', body: 'y' }]], /entry "a" appears twice/],
  ])('%s is refused with the layer named', async (_what, layers, message) => {
    const err = await squash(layers).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RktError);
    expect((err as Error).message).toMatch(message);
  });

  test('rendering while squashing gives the tree extracting the ACI gives, and the same ACI bytes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-render-'));
    try {
      const layers = [
        [{ name: 'etc/', type: 'directory' as const }, { name: 'etc/a', body: 'lower' }, { name: 'd/old', body: 'x' }, { name: 'bin/sh', body: '#!' }, { name: 'bin/ln', type: 'link' as const, linkname: 'bin/sh' }],
        [{ name: 'etc/a', body: 'upper' }, { name: 'd/.wh..wh..opq' }, { name: 'd/new', body: 'n' }, { name: 'lib', type: 'symlink' as const, linkname: '/usr/lib' }],
      ];
      const files = [];
      for (const [i, l] of layers.entries()) files.push(await layerFile(dir, i + 1, l));
      const manifest = (): Buffer => Buffer.from('{"acKind":"ImageManifest"}');
      const readAll = async (r: AsyncIterable<unknown>): Promise<Buffer> => { const c: Buffer[] = []; for await (const x of r) c.push(x as Buffer); return Buffer.concat(c); };

      const direct = squashAndRender(files, manifest, undefined, entryExtractor(path.join(dir, 'direct'), { asRoot: false }));
      const directTar = await readAll(direct.stream);
      expect((await direct.rendered).toString()).toBe('{"acKind":"ImageManifest"}');
      const plainTar = await readAll(squashLayers(files, manifest));
      expect(directTar.equals(plainTar)).toBe(true);
      await extractAci(Readable.from([plainTar]), path.join(dir, 'extracted'), { asRoot: false });

      // A walk that never follows a symlink (recursive readdir would follow "lib" to /usr/lib).
      const walk = (root: string, rel = ''): string[] => fs.readdirSync(path.join(root, rel)).flatMap((n) => {
        const p = rel ? `${rel}/${n}` : n;
        return fs.lstatSync(path.join(root, p)).isDirectory() ? [p, ...walk(root, p)] : [p];
      });
      const listing = (root: string): string[] => walk(root).sort().map((p) => {
        const st = fs.lstatSync(path.join(root, p));
        const what = st.isSymbolicLink() ? `->${fs.readlinkSync(path.join(root, p))}` : st.isFile() ? fs.readFileSync(path.join(root, p), 'utf8') : 'dir';
        return `${p} ${(st.mode & 0o7777).toString(8)} ${st.isFile() ? st.nlink : ''} ${what}`;
      });
      expect(listing(path.join(dir, 'direct'))).toEqual(listing(path.join(dir, 'extracted')));
      expect(listing(path.join(dir, 'direct'))).toContain('rootfs/etc/a 644 1 upper');
      expect(listing(path.join(dir, 'direct'))).toContain('rootfs/bin/ln 644 2 #!');
      expect(fs.existsSync(path.join(dir, 'direct/rootfs/d/old'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('rendering: a hostile layer stops the stream and the render with the same error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-render-'));
    try {
      const files = [await layerFile(dir, 1, [{ name: 'l', type: 'symlink', linkname: '/' }, { name: 'l/x', body: 'x' }])];
      const r = squashAndRender(files, () => Buffer.from('{}'), undefined, entryExtractor(path.join(dir, 'tree'), { asRoot: false }));
      await expect((async () => { for await (const _ of r.stream) { /* drain */ } })()).rejects.toThrow(/which the same layer made a symlink/);
      await expect(r.rendered).rejects.toThrow(/which the same layer made a symlink/);
      expect(fs.existsSync('/x')).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
