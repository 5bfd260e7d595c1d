import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fetchImage } from '../../../src/fetch/fetcher.js';
import { ImageStore, type ImageInfo, shortId } from '../../../src/store/imagestore.js';
import { realHost } from '../../../src/host/real.js';
import { buildTar, capture, globalsFor, manifestFor, tempDir, writeAci } from './aci-fixtures.js';

let root: string;
let store: ImageStore;

beforeEach(() => {
  root = tempDir('imagestore');
  store = new ImageStore(path.join(root, 'data'));
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

async function importImage(name: string, version: string, file = `${name.replace(/\W/g, '_')}-${version}.aci`): Promise<ImageInfo> {
  const aci = await writeAci(path.join(root, file), await buildTar(manifestFor(name, { version })));
  const r = await capture(() => fetchImage(aci, { globals: globalsFor(root, ['image']), pullPolicy: 'new' }));
  if (r.error) throw r.error;
  return r.result!;
}

/** An info record with a chosen ID (to make prefixes collide). */
function fakeInfo(id: string, name: string, extra: Partial<ImageInfo> = {}): ImageInfo {
  const info: ImageInfo = { id, name, labels: [], importTime: new Date().toISOString(), lastUsed: new Date().toISOString(), size: 1, latest: false, ...extra };
  store.ensureLayout();
  store.writeInfo(info);
  return info;
}

describe('resolve', () => {
  test('by full ID, by prefix, and by name[:version]', async () => {
    const one = await importImage('example.com/app', '1.0.0');
    const two = await importImage('example.com/app', '2.0.0');
    expect(store.resolve(one.id).id).toBe(one.id);
    expect(store.resolve(shortId(one.id, 32)).id).toBe(one.id);
    expect(store.resolve(shortId(one.id, 12)).id).toBe(one.id);
    expect(store.resolve('example.com/app:1.0.0').id).toBe(one.id);
    expect(store.resolve('example.com/app:2.0.0').id).toBe(two.id);
    // No version: the latest import wins.
    expect(store.resolve('example.com/app').id).toBe(two.id);
    expect(() => store.resolve('example.com/app:3.0.0')).toThrow('no image found for "example.com/app:3.0.0" in the local store: fetch it with "rkt fetch example.com/app:3.0.0"');
  });

  test('a name without version prefers the image marked latest', () => {
    const older = fakeInfo(`sha512-${'1'.repeat(128)}`, 'example.com/x', { latest: true, importTime: '2020-01-01T00:00:00.000Z' });
    fakeInfo(`sha512-${'2'.repeat(128)}`, 'example.com/x', { importTime: '2021-01-01T00:00:00.000Z' });
    expect(store.resolve('example.com/x').id).toBe(older.id);
  });

  test('prefixes: at least 2 hex digits; an ambiguous prefix names the count', () => {
    fakeInfo(`sha512-ab1${'0'.repeat(125)}`, 'example.com/a');
    fakeInfo(`sha512-ab2${'0'.repeat(125)}`, 'example.com/b');
    expect(() => store.resolve('sha512-a')).toThrow('too short');
    expect(() => store.resolve('sha512-ab')).toThrow('image ID "sha512-ab" is ambiguous: 2 images match it');
    expect(store.resolve('sha512-ab2').name).toBe('example.com/b');
    expect(() => store.resolve('sha512-cd')).toThrow('no image found for "sha512-cd"');
    expect(() => store.resolve('sha512-not-existed')).toThrow('invalid image ID');
  });
});

describe('store records', () => {
  test('touch updates lastUsed at most once a minute; remove deletes the image but keeps its tree', async () => {
    const image = await importImage('example.com/app', '1.0.0');
    const fresh = store.get(image.id)!.lastUsed;
    store.touch(image.id);
    expect(store.get(image.id)!.lastUsed).toBe(fresh);
    const old = new Date(Date.now() - 120_000).toISOString();
    store.writeInfo({ ...store.get(image.id)!, lastUsed: old });
    store.touch(image.id);
    expect(store.get(image.id)!.lastUsed > old).toBe(true);

    store.remove(image.id);
    expect(store.get(image.id)).toBeUndefined();
    expect(fs.existsSync(store.blobPath(image.id))).toBe(false);
    expect(fs.existsSync(store.manifestPath(image.id))).toBe(false);
    expect(fs.existsSync(path.join(store.treePath(image.id), 'rendered'))).toBe(true);
    expect(() => store.remove(image.id)).toThrow('no image found');
  });

  test('a tree removed by gc is rendered again on demand', async () => {
    const image = await importImage('example.com/app', '1.0.0');
    store.removeTree(image.id);
    expect(fs.existsSync(store.treePath(image.id))).toBe(false);
    const rootfs = await store.treeRootfs(image.id);
    expect(fs.readFileSync(path.join(rootfs, 'hello.txt'), 'utf8')).toBe('hello\n');
  });

  test('staging of dead processes is removed, live staging is kept', () => {
    store.ensureLayout();
    const mine = store.staging();
    fs.mkdirSync(mine);
    // A process that has exited: its pid has no start time any more (or another one).
    const child = spawnSync('true');
    const deadPid = child.pid!;
    const dead = path.join(store.tmpDir, `${deadPid}-123-abcdef`);
    fs.mkdirSync(path.join(dead, 'tree'), { recursive: true });
    const foreign = path.join(store.tmpDir, 'not-ours');
    fs.writeFileSync(foreign, '');
    expect(realHost.processStartTime(deadPid)).not.toBe('123');

    expect(store.removeStaleStaging()).toEqual([path.basename(dead)]);
    expect(fs.existsSync(mine)).toBe(true);
    expect(fs.existsSync(foreign)).toBe(true);
  });

  test('a kept file a live process works on stays; a dead one\'s gets its own name back, unless that name was taken since', () => {
    store.ensureLayout();
    const deadPid = spawnSync('true').pid!;
    const live = store.staging('.restore-as-partial-a');
    const deadA = path.join(store.tmpDir, `${deadPid}-123-ab.restore-as-partial-a`);
    const deadB = path.join(store.tmpDir, `${deadPid}-123-cd.restore-as-partial-b`);
    for (const [f, text] of [[live, 'live'], [deadA, 'dead a'], [deadB, 'dead b'], [path.join(store.tmpDir, 'partial-b'), 'newer b']]) fs.writeFileSync(f, text);
    expect(store.removeStaleStaging().sort()).toEqual([path.basename(deadA), path.basename(deadB)]);
    expect(fs.readdirSync(store.tmpDir).sort()).toEqual([path.basename(live), 'partial-a', 'partial-b']);
    expect(fs.readFileSync(path.join(store.tmpDir, 'partial-a'), 'utf8')).toBe('dead a');
    expect(fs.readFileSync(path.join(store.tmpDir, 'partial-b'), 'utf8')).toBe('newer b');
  });

  test('orphaned blobs and manifests (no info) are removed', async () => {
    const image = await importImage('example.com/app', '1.0.0');
    fs.rmSync(store.infoPath(image.id));
    store.removeOrphans();
    expect(fs.existsSync(store.blobPath(image.id))).toBe(false);
    expect(fs.existsSync(store.manifestPath(image.id))).toBe(false);
  });
});
