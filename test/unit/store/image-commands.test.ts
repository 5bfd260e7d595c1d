import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from '../../../src/cli/command.js';
import { GLOBAL_FLAGS, type InsecureOption } from '../../../src/cli/globals.js';
import { parseFlags } from '../../../src/cli/flags.js';
import { command as fetchCmd } from '../../../src/cli/fetch.js';
import { command as listCmd } from '../../../src/cli/image-list.js';
import { goTime, humanTime, iBytes } from '../../../src/util/table.js';
import { command as rmCmd } from '../../../src/cli/image-rm.js';
import { command as catCmd } from '../../../src/cli/image-cat-manifest.js';
import { command as exportCmd } from '../../../src/cli/image-export.js';
import { command as extractCmd } from '../../../src/cli/image-extract.js';
import { command as renderCmd } from '../../../src/cli/image-render.js';
import { command as gcCmd } from '../../../src/cli/image-gc.js';
import { parseDurationMs } from '../../../src/util/duration.js';
const parseGoDuration = (s: string) => parseDurationMs(s, 'grace-period');
import { ImageStore } from '../../../src/store/imagestore.js';
import { buildTar, capture, compress, globalsFor, idOf, manifestFor, type ManifestOptions, tempDir, writeAci } from './aci-fixtures.js';

let root: string;

beforeEach(() => {
  root = tempDir('imagecmd');
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

async function run(cmd: Command, args: string[], insecure: InsecureOption[] = ['image']) {
  const parsed = parseFlags(args, [...GLOBAL_FLAGS, ...cmd.flags]);
  return capture(() => cmd.run({ globals: globalsFor(root, insecure), parsed, rawArgs: args, commands: {} }));
}

async function fetchNew(name: string, mopts: ManifestOptions = {}, entries?: Parameters<typeof buildTar>[1]) {
  const tar = await buildTar(manifestFor(name, mopts), entries);
  const aci = compress(tar, 'gzip');
  const file = await writeAci(path.join(root, `${name.replace(/\W/g, '_')}-${mopts.version ?? '1'}.aci`), aci);
  const r = await run(fetchCmd, [file]);
  expect(r.error).toBeUndefined();
  return { tar, aci, file, id: idOf(tar), stdout: r.stdout };
}

const store = () => new ImageStore(path.join(root, 'data'));

describe('rkt fetch', () => {
  test('prints the 32-hex short ID, or the full one with --full', async () => {
    const a = await fetchNew('example.com/app');
    expect(a.stdout).toBe(`${a.id.slice(0, 7 + 32)}\n`);
    const r = await run(fetchCmd, ['--full', a.file]);
    expect(r.stdout).toBe(`${a.id}\n`);
  });

  test('fetches several images and rejects a bad pull policy', async () => {
    const a = await fetchNew('example.com/a');
    const b = await fetchNew('example.com/b');
    const r = await run(fetchCmd, [a.file, b.file, '--full']);
    expect(r.stdout).toBe(`${a.id}\n${b.id}\n`);
    const bad = await run(fetchCmd, ['--pull-policy=sometimes', a.file]);
    expect(String(bad.error)).toContain('invalid --pull-policy "sometimes"');
  });

  test('an image ID argument comes from the store only', async () => {
    const a = await fetchNew('example.com/app');
    const r = await run(fetchCmd, [a.id.slice(0, 20)]);
    expect(r.stdout).toBe(`${a.id.slice(0, 39)}\n`);
  });
});

describe('rkt image list', () => {
  test('shows ID NAME IMPORT TIME LAST USED SIZE LATEST', async () => {
    const a = await fetchNew('example.com/app', { version: '1.2.3' });
    const r = await run(listCmd, []);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0].split(/\t+/)).toEqual(['ID', 'NAME', 'IMPORT TIME', 'LAST USED', 'SIZE', 'LATEST']);
    expect(lines[1].split(/\t+/)).toEqual([a.id.slice(0, 19), 'example.com/app:1.2.3', 'now', 'now', expect.stringMatching(/^\d+(\.\d)? (B|KiB)$/), 'false']);

    const full = await run(listCmd, ['--full', '--no-legend', '--fields=id,size']);
    const info = store().get(a.id)!;
    expect(full.stdout.trimEnd().split(/\t+/)).toEqual([a.id, String(a.aci.length + (info.treeSize ?? 0))]);
  });

  test('--format=json and sorting', async () => {
    const a = await fetchNew('example.com/a');
    const b = await fetchNew('example.com/b');
    const r = await run(listCmd, ['--format=json', '--sort=name', '--order=desc']);
    const entries = JSON.parse(r.stdout) as Array<{ id: string; name: string }>;
    expect(entries.map((e) => e.id)).toEqual([b.id, a.id]);
    expect(entries[0].name).toBe('example.com/b');
    const importMs = Date.parse(store().get(b.id)!.importTime);
    expect(r.stdout).toContain(`"import_time":${importMs}000000,`);
    expect(Object.keys(entries[0])).toEqual(['id', 'name', 'import_time', 'last_used_time', 'size']);
    const bad = await run(listCmd, ['--fields=id,bogus']);
    expect(String(bad.error)).toContain('unknown field "bogus"');
  });

  test('time and size formats follow rkt (go-humanize, Go time layout)', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    expect(humanTime(now - 500, now)).toBe('now');
    expect(humanTime(now - 1000, now)).toBe('1 second ago');
    expect(humanTime(now - 130_000, now)).toBe('2 minutes ago');
    expect(humanTime(now - 3 * 86400_000, now)).toBe('3 days ago');
    expect(iBytes(500)).toBe('500 B');
    expect(iBytes(1536)).toBe('1.5 KiB');
    expect(iBytes(80 * 1024 * 1024)).toBe('80 MiB');
    expect(goTime(new Date(2026, 0, 2, 3, 4, 5, 120))).toMatch(/^2026-01-02 03:04:05\.12 [+-]\d{4} \S+$/);
    expect(goTime(new Date(2026, 0, 2, 3, 4, 5, 0))).toMatch(/^2026-01-02 03:04:05 [+-]\d{4} \S+$/);
  });
});

describe('rkt image rm', () => {
  test('by ID and by name; unknown images fail but the others are removed', async () => {
    const a = await fetchNew('example.com/a');
    const b1 = await fetchNew('example.com/b', { version: '1' });
    const b2 = await fetchNew('example.com/b', { version: '2' });
    const r = await run(rmCmd, [a.id.slice(0, 15), 'example.com/b', 'example.com/nothere', a.id]);
    expect(r.result).toBe(254);
    expect(r.stdout).toContain(`successfully removed aci for image: "${a.id}"`);
    expect(r.stdout).toContain(`successfully removed aci for image: "${b1.id}"`);
    expect(r.stdout).toContain(`successfully removed aci for image: "${b2.id}"`);
    expect(r.stdout.match(/successfully removed/g)).toHaveLength(3);
    expect(r.stderr).toContain('3 image(s) successfully removed');
    expect(r.stderr).toContain('no image found for "example.com/nothere"');
    expect(store().list()).toEqual([]);
    // The trees stay for pods that use them.
    expect(fs.existsSync(store().treePath(a.id))).toBe(true);
  });

  test('all known: exit 0', async () => {
    const a = await fetchNew('example.com/a');
    expect((await run(rmCmd, [a.id])).result).toBe(0);
  });
});

describe('rkt image cat-manifest / export / extract / render', () => {
  test('cat-manifest prints the manifest, pretty by default', async () => {
    const a = await fetchNew('example.com/app');
    const pretty = await run(catCmd, ['example.com/app']);
    expect(JSON.parse(pretty.stdout)).toEqual(manifestFor('example.com/app'));
    expect(pretty.stdout).toContain('\n\t"name"');
    const compact = await run(catCmd, ['--pretty-print=false', a.id]);
    expect(compact.stdout).toBe(`${JSON.stringify(manifestFor('example.com/app'))}\n`);
    const unknown = await run(catCmd, ['sha512-00']);
    expect(String(unknown.error)).toContain('no image found');
  });

  test('export writes the fetched bytes and refuses to overwrite', async () => {
    const a = await fetchNew('example.com/app');
    const out = path.join(root, 'out.aci');
    expect((await run(exportCmd, [a.id, out])).error).toBeUndefined();
    expect(fs.readFileSync(out).equals(a.aci)).toBe(true);
    const again = await run(exportCmd, [a.id, out]);
    expect(String(again.error)).toContain('already exists');
    fs.writeFileSync(out, 'x');
    expect((await run(exportCmd, ['--overwrite', a.id, out])).error).toBeUndefined();
    expect(fs.readFileSync(out).equals(a.aci)).toBe(true);
    expect(fs.readdirSync(root).filter((n) => n.includes('tmp'))).toEqual([]);
  });

  test('extract gives the raw image; render applies dependencies and the whitelist', async () => {
    await fetchNew('example.com/base', {}, [{ path: 'base.txt', content: 'base' }, { path: 'drop.txt', content: 'x' }]);
    const top = await fetchNew('example.com/top', {
      dependencies: [{ imageName: 'example.com/base' }],
      pathWhitelist: ['/base.txt', '/top.txt'],
    }, [{ path: 'top.txt', content: 'top' }]);

    const ex = path.join(root, 'ex');
    expect((await run(extractCmd, [top.id, ex])).error).toBeUndefined();
    expect(fs.readdirSync(ex).sort()).toEqual(['manifest', 'rootfs']);
    expect(fs.readdirSync(path.join(ex, 'rootfs'))).toEqual(['top.txt']);
    expect(String((await run(extractCmd, [top.id, ex])).error)).toContain('already exists');
    expect((await run(extractCmd, ['--overwrite', '--rootfs-only', top.id, ex])).error).toBeUndefined();
    expect(fs.readdirSync(ex)).toEqual(['top.txt']);

    const rd = path.join(root, 'rd');
    expect((await run(renderCmd, [top.id, rd])).error).toBeUndefined();
    expect(fs.readdirSync(path.join(rd, 'rootfs')).sort()).toEqual(['base.txt', 'top.txt']);
    expect(JSON.parse(fs.readFileSync(path.join(rd, 'manifest'), 'utf8')).name).toBe('example.com/top');
    const rdOnly = path.join(root, 'rd-only');
    expect((await run(renderCmd, ['--rootfs-only', 'example.com/top', rdOnly])).error).toBeUndefined();
    expect(fs.readdirSync(rdOnly).sort()).toEqual(['base.txt', 'top.txt']);
  });
});

describe('rkt image gc', () => {
  test('Go durations', () => {
    expect(parseGoDuration('24h')).toBe(86_400_000);
    expect(parseGoDuration('30m0s')).toBe(1_800_000);
    expect(parseGoDuration('1.5h')).toBe(5_400_000);
    expect(parseGoDuration('0s')).toBe(0);
    expect(parseGoDuration('0')).toBe(0);
    expect(() => parseGoDuration('10')).toThrow('invalid duration');
    expect(() => parseGoDuration('1d')).toThrow('invalid duration');
  });

  test('keeps what pods reference and recently used images; removes the rest', async () => {
    const used = await fetchNew('example.com/used');
    const old = await fetchNew('example.com/old');
    const fresh = await fetchNew('example.com/fresh');
    const s = store();
    const day = 86_400_000;
    for (const img of [used, old]) s.writeInfo({ ...s.get(img.id)!, lastUsed: new Date(Date.now() - 2 * day).toISOString() });
    const podDir = path.join(root, 'data', 'pods', 'run', '11111111-2222-3333-4444-555555555555');
    fs.mkdirSync(podDir, { recursive: true });
    fs.writeFileSync(path.join(podDir, 'pod'), JSON.stringify({ acKind: 'PodManifest', acVersion: '0.8.11', apps: [{ name: 'used', image: { id: used.id } }] }));
    // A dead fetch's staging
    fs.mkdirSync(path.join(s.tmpDir, '999999999-1-abcd'));

    const r = await run(gcCmd, []);
    expect(r.error).toBeUndefined();
    expect(r.result).toBe(0);
    expect(s.list().map((i) => i.name).sort()).toEqual(['example.com/fresh', 'example.com/used']);
    expect(s.treeIds()).toEqual([used.id]);
    expect(r.stderr).toContain(`removed treestore "${fresh.id}"`);
    expect(r.stdout).toContain(`successfully removed aci for image: "${old.id}"`);
    expect(fs.readdirSync(s.tmpDir)).toEqual([]);

    // Once the pod is gone, a zero grace period removes everything.
    fs.rmSync(path.join(root, 'data', 'pods'), { recursive: true });
    expect((await run(gcCmd, ['--grace-period=0s'])).result).toBe(0);
    expect(s.list()).toEqual([]);
    expect(s.treeIds()).toEqual([]);
  });
});

describe('a store changed on disk (group rkt may write blob/ and manifest/)', () => {
  test('a swapped blob or manifest is refused when rendered, and root reads the tree\'s manifest', async () => {
    const a = await fetchNew('example.com/victim');
    const b = await fetchNew('example.com/evil');
    const s = store();
    // The tree of a rendered image is root's: its manifest wins over a replaced one in manifest/.
    fs.writeFileSync(s.manifestPath(a.id), s.rawManifest(b.id));
    expect(s.manifest(a.id).name).toBe('example.com/victim');

    s.removeTree(a.id);
    const render = await run(renderCmd, [a.id, path.join(root, 'out1')]);
    expect((render.error as Error).message).toBe(`the manifest of image ${a.id} in the store does not match the image (changed on disk): remove it with "rkt image rm ${a.id}" and fetch it again`);
    expect(fs.existsSync(path.join(root, 'out1'))).toBe(false);

    fs.copyFileSync(s.blobPath(b.id), s.blobPath(a.id));
    if (process.getuid?.() === 0) fs.chownSync(s.blobPath(a.id), 65534, 65534); // as a group rkt member would leave it
    const extract = await run(extractCmd, [a.id, path.join(root, 'out2')]);
    expect((extract.error as Error).message).toMatch(/^the content of image sha512-\w+ in the store does not match the image \(changed on disk\)/);
    await expect(s.treeRootfs(a.id)).rejects.toThrow(/does not match the image/);
    expect(fs.existsSync(s.treePath(a.id))).toBe(false);
    expect(fs.readdirSync(s.tmpDir)).toEqual([]);
  });

  test('root takes the image a local file held only from its own index entries', async () => {
    const a = await fetchNew('example.com/indexed');
    const s = store();
    const st = fs.statSync(a.file);
    const stamp = { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
    expect(s.imageForFile(stamp)?.id).toBe(a.id);
    const entry = path.join(s.cas, 'files', `${st.dev}-${st.ino}.json`);
    if (process.getuid?.() !== 0) return; // only root distrusts others' entries
    fs.chownSync(entry, 65534, 65534);
    expect(s.imageForFile(stamp)).toBeUndefined();
    fs.chownSync(entry, 0, 0);
    fs.chmodSync(entry, 0o666);
    expect(s.imageForFile(stamp)).toBeUndefined();
    fs.chmodSync(entry, 0o644);
    expect(s.imageForFile(stamp)?.id).toBe(a.id);
  });

  test('an intact blob left by someone else is hashed once, then made root\'s', async () => {
    const c = await fetchNew('example.com/fetched-by-a-member');
    const s = store();
    s.removeTree(c.id);
    const asRoot = process.getuid?.() === 0;
    if (asRoot) fs.chownSync(s.blobPath(c.id), 65534, 65534);
    fs.chmodSync(s.blobPath(c.id), 0o666);
    await expect(s.treeRootfs(c.id)).resolves.toBe(path.join(s.treePath(c.id), 'rootfs'));
    const st = fs.statSync(s.blobPath(c.id));
    expect(st.mode & 0o777).toBe(asRoot ? 0o644 : 0o666);
    if (asRoot) expect(st.uid).toBe(0);
  });
});

describe('a store that fails while the image is committed (ENOSPC writing its record)', () => {
  test('leaves no tree, blob or manifest of the image, and nothing in tmp/', async () => {
    const tar = await buildTar(manifestFor('example.com/full'), [{ path: 'f', content: 'x'.repeat(10000) }]);
    const file = await writeAci(path.join(root, 'full.aci'), compress(tar, 'gzip'));
    const spy = jest.spyOn(ImageStore.prototype, 'writeInfo').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    });
    try {
      const r = await run(fetchCmd, [file]);
      expect(String(r.error)).toContain('ENOSPC');
    } finally {
      spy.mockRestore();
    }
    const s = store();
    const id = idOf(tar);
    for (const p of [s.treePath(id), s.blobPath(id), s.manifestPath(id), s.infoPath(id)]) expect([p, fs.existsSync(p)]).toEqual([p, false]);
    expect(fs.readdirSync(s.tmpDir)).toEqual([]);
  });
});
