import { afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import { fetchImage, type FetchOptions, type PullPolicy } from '../../../src/fetch/fetcher.js';
import { ImageStore } from '../../../src/store/imagestore.js';
import { setDebug } from '../../../src/util/log.js';
import type { GlobalOptions, InsecureOption } from '../../../src/cli/globals.js';
import {
  buildTar, capture, compress, type Entry, globalsFor, idOf, type Key, makeKey, manifestFor, type ManifestOptions, sign, tempDir, TestServer, trustKey,
} from './aci-fixtures.js';

let root: string;
let server: TestServer;
let key: Key;

const NAME = '127.0.0.1/app';

beforeAll(async () => {
  key = await makeKey('Remote Signer');
});

beforeEach(async () => {
  setDebug(true); // rkt printed its "image:" progress lines with --debug only
  root = tempDir('fetchremote');
  trustKey(path.join(root, 'etc'), '127.0.0.1', key);
  server = await new TestServer().start();
});

afterEach(async () => {
  setDebug(false);
  await server.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

function globals(insecure: InsecureOption[] = ['http'], extra: Partial<GlobalOptions> = {}): GlobalOptions {
  return { ...globalsFor(root, insecure), ...extra };
}

function fetch(arg: string, policy: PullPolicy, opts: Partial<FetchOptions> = {}) {
  return capture(() => fetchImage(arg, { globals: globals(), pullPolicy: policy, discoveryPort: server.port, ...opts }));
}

/** Serves an ACI and its signature at `urlPath` (+ .asc); returns the tar. */
async function serveAci(urlPath: string, name: string, mopts: ManifestOptions = {}, entries?: Entry[], headers: Record<string, string> = {}): Promise<Buffer> {
  const tar = await buildTar(manifestFor(name, mopts), entries);
  const aci = compress(tar, 'gzip');
  server.routes.set(urlPath, { body: aci, headers });
  server.routes.set(`${urlPath}.asc`, { body: await sign(key, aci) });
  return tar;
}

/** A discovery page for the 127.0.0.1 prefix: {name}-{version}.{ext} under /images/. */
function serveDiscovery(pubkeys?: string): void {
  const tmpl = `${server.base}/images/{name}-{version}.{ext}`;
  const metas = [`<meta name="ac-discovery" content="127.0.0.1 ${tmpl}">`];
  if (pubkeys) metas.push(`<meta name="ac-discovery-pubkeys" content="127.0.0.1 ${pubkeys}">`);
  const page = `<html><head>${metas.join('')}</head></html>`;
  for (const p of ['/', '/app', '/base', '/lib-b', '/lib-c', '/lib-d', '/top']) server.routes.set(p, { body: page });
}

describe('fetch from a URL', () => {
  test('downloads the ACI and its .aci.asc signature and records the source', async () => {
    const tar = await serveAci('/app.aci', 'example.com/app');
    trustKey(path.join(root, 'etc'), 'example.com', key);
    const r = await fetch(`${server.base}/app.aci`, 'update');
    expect(r.error).toBeUndefined();
    expect(r.result!.id).toBe(idOf(tar));
    expect(r.result!.source?.url).toBe(`${server.base}/app.aci`);
    expect(r.stderr).toContain(`remote fetching from URL "${server.base}/app.aci"`);
    expect(server.hits('/app.aci.asc')).toBe(1);
  });

  test('a direct http:// URL is fetched without --insecure-options=http (as rkt), its signature still checked', async () => {
    trustKey(path.join(root, 'etc'), 'example.com', key);
    const tar = await serveAci('/app.aci', 'example.com/app');
    const r = await capture(() => fetchImage(`${server.base}/app.aci`, { globals: globals([]), pullPolicy: 'update' }));
    expect(r.error).toBeUndefined();
    expect(r.result!.id).toBe(idOf(tar));
    expect(server.hits('/app.aci.asc')).toBe(1);
    // A bad signature over plain HTTP is still refused, and nothing is stored.
    fs.rmSync(path.join(root, 'data'), { recursive: true, force: true });
    server.routes.set('/app.aci.asc', { body: await sign(key, Buffer.from('something else')) });
    const bad = await capture(() => fetchImage(`${server.base}/app.aci`, { globals: globals([]), pullPolicy: 'update' }));
    expect(String(bad.error)).toContain('does not match its content');
    expect(new ImageStore(path.join(root, 'data')).list()).toEqual([]);
  });

  test('discovery over plain HTTP still needs --insecure-options=http', async () => {
    serveDiscovery();
    await serveAci('/images/127.0.0.1/app-1.0.0.aci', '127.0.0.1/app', { version: '1.0.0' });
    const r = await capture(() => fetchImage('127.0.0.1/app:1.0.0', { globals: globals([]), pullPolicy: 'update', discoveryPort: server.port }));
    expect(r.error).toBeDefined();
    expect(new ImageStore(path.join(root, 'data')).list()).toEqual([]);
  });

  test('a missing signature is rkt\'s "error downloading the signature file", naming --insecure-options=image', async () => {
    trustKey(path.join(root, 'etc'), 'example.com', key);
    await serveAci('/app.aci', 'example.com/app');
    server.routes.delete('/app.aci.asc');
    const r = await fetch(`${server.base}/app.aci`, 'update');
    expect(String(r.error)).toContain('error downloading the signature file: bad HTTP status code: 404');
    expect(String(r.error)).toContain('--insecure-options=image');
  });

  test('a signature answered with 202 Accepted is fetched again after the image (rkt\'s deferred signature)', async () => {
    trustKey(path.join(root, 'etc'), 'example.com', key);
    const tar = await serveAci('/app.aci', 'example.com/app');
    server.routes.get('/app.aci.asc')!.first = [202];
    const r = await fetch(`${server.base}/app.aci`, 'update');
    expect(r.error).toBeUndefined();
    expect(r.result!.id).toBe(idOf(tar));
    expect(r.stderr).toContain('image: server requested deferring the signature download\n');
    expect(server.requests.map((q) => q.path)).toEqual(['/app.aci', '/app.aci.asc', '/app.aci.asc']);
    expect(fs.readdirSync(path.join(root, 'data', 'cas', 'tmp'))).toEqual([]);
  });

  test('a signature deferred twice, or a deferred one that does not match, stores nothing and leaves no staged file', async () => {
    trustKey(path.join(root, 'etc'), 'example.com', key);
    await serveAci('/app.aci', 'example.com/app');
    server.routes.get('/app.aci.asc')!.first = [202, 202];
    const twice = await fetch(`${server.base}/app.aci`, 'update');
    expect(String(twice.error)).toContain('error downloading the signature file: server asked to defer the download again');
    server.routes.set('/app.aci.asc', { body: await sign(key, Buffer.from('other')), first: [202] });
    const bad = await fetch(`${server.base}/app.aci`, 'update');
    expect(String(bad.error)).toContain('does not match its content');
    expect(new ImageStore(path.join(root, 'data')).list()).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'data', 'cas', 'tmp'))).toEqual([]);
  });

  test('a deferred signature does not lift the download size limit', async () => {
    trustKey(path.join(root, 'etc'), 'example.com', key);
    await serveAci('/app.aci', 'example.com/app', {}, [{ path: 'big', content: crypto.randomBytes(200_000) }]);
    const route = server.routes.get('/app.aci')!;
    route.headers = { 'Transfer-Encoding': 'chunked' }; // no Content-Length to refuse early
    server.routes.get('/app.aci.asc')!.first = [202];
    const r = await capture(() => fetchImage(`${server.base}/app.aci`, {
      globals: globals(['http'], { limits: { connectTimeoutMs: 5000, stallTimeoutMs: 5000, maxDownloadBytes: 50_000 } }), pullPolicy: 'update',
    }));
    expect(String(r.error)).toMatch(/--max-download-size/);
    expect(fs.readdirSync(path.join(root, 'data', 'cas', 'tmp'))).toEqual([]);
  });

  test('a download cut short is an error and leaves nothing behind', async () => {
    trustKey(path.join(root, 'etc'), 'example.com', key);
    await serveAci('/app.aci', 'example.com/app', {}, [{ path: 'big', content: Buffer.alloc(300_000, 7) }]);
    const full = server.routes.get('/app.aci')!.body as Buffer;
    // Announce the whole length, send half, then drop the connection.
    server.routes.set('/app.aci', { body: full.subarray(0, full.length / 2), headers: { 'Content-Length': String(full.length) } });
    const r = await fetch(`${server.base}/app.aci`, 'update');
    expect(String(r.error)).toContain(`reading image "${server.base}/app.aci" failed before its end`);
    const cas = path.join(root, 'data', 'cas');
    for (const d of ['info', 'tree', 'blob', 'tmp']) expect(fs.readdirSync(path.join(cas, d))).toEqual([]);
  });

  test('update: within max-age the stored image is used without asking the server', async () => {
    trustKey(path.join(root, 'etc'), 'example.com', key);
    await serveAci('/app.aci', 'example.com/app', {}, undefined, { 'Cache-Control': 'max-age=600' });
    const first = await fetch(`${server.base}/app.aci`, 'update');
    const second = await fetch(`${server.base}/app.aci`, 'update');
    expect(second.result!.id).toBe(first.result!.id);
    expect(second.stderr).toContain(`image for ${server.base}/app.aci isn't expired, not fetching.`);
    expect(server.hits('/app.aci')).toBe(1);
  });

  test('update: an unchanged ETag gets a 304 and the stored image', async () => {
    trustKey(path.join(root, 'etc'), 'example.com', key);
    await serveAci('/app.aci', 'example.com/app', {}, undefined, { ETag: '"v1"' });
    const first = await fetch(`${server.base}/app.aci`, 'update');
    expect(first.result!.source?.etag).toBe('"v1"');
    const second = await fetch(`${server.base}/app.aci`, 'update');
    expect(second.error).toBeUndefined();
    expect(second.result!.id).toBe(first.result!.id);
    expect(server.hits('/app.aci')).toBe(2);
    expect(server.requests.filter((q) => q.path === '/app.aci')[1].headers['if-none-match']).toBe('"v1"');
    expect(server.hits('/app.aci.asc')).toBe(1); // a 304 needs no signature
    expect(second.stderr).toContain(`image: using image from local store for url ${server.base}/app.aci\n`);
  });

  test('update: a changed ETag downloads the new image', async () => {
    trustKey(path.join(root, 'etc'), 'example.com', key);
    await serveAci('/app.aci', 'example.com/app', {}, undefined, { ETag: '"v1"' });
    const first = await fetch(`${server.base}/app.aci`, 'update');
    const tar2 = await serveAci('/app.aci', 'example.com/app', { version: '2.0.0' }, undefined, { ETag: '"v2"' });
    const second = await fetch(`${server.base}/app.aci`, 'update');
    expect(second.result!.id).toBe(idOf(tar2));
    expect(second.result!.id).not.toBe(first.result!.id);
  });

  test('new: a URL already fetched comes from the store; never: an unknown URL is an error', async () => {
    trustKey(path.join(root, 'etc'), 'example.com', key);
    await serveAci('/app.aci', 'example.com/app');
    await fetch(`${server.base}/app.aci`, 'update');
    const again = await fetch(`${server.base}/app.aci`, 'new');
    expect(again.stderr).toContain(`using image from local store for url ${server.base}/app.aci`);
    expect(server.hits('/app.aci')).toBe(1);
    const never = await fetch(`${server.base}/other.aci`, 'never');
    expect(String(never.error)).toContain('with --pull-policy=never: not in the local store; fetch it first with "rkt fetch"');
  });
});

describe('fetch by name (discovery)', () => {
  test('discovers, verifies and stores; new then uses the store', async () => {
    serveDiscovery();
    const tar = await serveAci(`/images/${NAME}-1.0.0.aci`, NAME);
    const r = await fetch(`${NAME}:1.0.0`, 'update');
    expect(r.error).toBeUndefined();
    expect(r.result!.id).toBe(idOf(tar));
    expect(r.result!.latest).toBe(false);
    expect(r.stderr).toContain(`searching for app image ${NAME}:1.0.0`);
    expect(r.stderr).toContain(`remote fetching from URL "${server.base}/images/${NAME}-1.0.0.aci"`);

    const again = await fetch(`${NAME}:1.0.0`, 'new');
    expect(again.result!.id).toBe(idOf(tar));
    expect(again.stderr).toContain(`using image from local store for image name ${NAME}:1.0.0`);
    expect(server.hits(`/images/${NAME}-1.0.0.aci`)).toBe(1);
  });

  test('without a version the template gets "latest" and the image is marked latest', async () => {
    serveDiscovery();
    await serveAci(`/images/${NAME}-latest.aci`, NAME, { version: 'latest' });
    const r = await fetch(NAME, 'update');
    expect(r.error).toBeUndefined();
    expect(r.result!.latest).toBe(true);
  });

  test('never: a name not in the store is an error', async () => {
    const r = await fetch(`${NAME}:1.0.0`, 'never');
    expect(String(r.error)).toContain(`unable to fetch image "${NAME}:1.0.0" with --pull-policy=never: not in the local store`);
  });

  test('labels of the fetched image must match the request', async () => {
    serveDiscovery();
    await serveAci(`/images/${NAME}-2.0.aci`, NAME, { version: '1.2.0' });
    const r = await fetch(`${NAME}:2.0`, 'update');
    expect(String(r.error)).toContain('requested value for label "version": "2.0" differs from fetched aci label value: "1.2.0"');
    await serveAci(`/images/${NAME}-1.0.0.aci`, NAME);
    const r2 = await fetch(`${NAME}:1.0.0,flavor=big`, 'update');
    expect(String(r2.error)).toContain('requested label "flavor" not provided by the image manifest');
    expect(new ImageStore(path.join(root, 'data')).list()).toEqual([]);
  });

  test('no trusted key: discovery keys are trusted only with --trust-keys-from-https', async () => {
    fs.rmSync(path.join(root, 'etc'), { recursive: true });
    server.routes.set('/pubkeys.gpg', { body: key.armored });
    serveDiscovery(`${server.base}/pubkeys.gpg`);
    await serveAci(`/images/${NAME}-1.0.0.aci`, NAME);

    const refused = await fetch(`${NAME}:1.0.0`, 'update');
    expect(String(refused.error)).toContain('rkt trust');
    expect(refused.stderr).toContain('--trust-keys-from-https');

    // The key is served over plain http here, so pubkey must be allowed as well.
    const g = globals(['http', 'pubkey'], { trustKeysFromHttps: true });
    const r = await capture(() => fetchImage(`${NAME}:1.0.0`, { globals: g, pullPolicy: 'update', discoveryPort: server.port }));
    expect(r.error).toBeUndefined();
    expect(r.stderr).toContain(`Added key for prefix "${NAME}"`);
    expect(fs.existsSync(path.join(root, 'etc', 'trustedkeys', 'prefix.d', NAME, key.fingerprint))).toBe(true);
  });
});

describe('dependencies', () => {
  /** A→[B,C], C→[D]; shared files show the order B, D, C, A. */
  async function serveTree(topOpts: ManifestOptions = {}): Promise<void> {
    serveDiscovery();
    const dep = (n: string) => ({ imageName: `127.0.0.1/${n}`, labels: [{ name: 'version', value: '1.0.0' }] });
    await serveAci('/images/127.0.0.1/lib-b-1.0.0.aci', '127.0.0.1/lib-b', {}, [
      { path: 'b', content: 'B' }, { path: 'shared1', content: 'B' },
    ]);
    await serveAci('/images/127.0.0.1/lib-d-1.0.0.aci', '127.0.0.1/lib-d', {}, [
      { path: 'd', content: 'D' }, { path: 'shared1', content: 'D' }, { path: 'shared2', content: 'D' },
    ]);
    await serveAci('/images/127.0.0.1/lib-c-1.0.0.aci', '127.0.0.1/lib-c', { dependencies: [dep('lib-d')] }, [
      { path: 'c', content: 'C' }, { path: 'shared2', content: 'C' }, { path: 'shared3', content: 'C' },
    ]);
    await serveAci('/images/127.0.0.1/top-1.0.0.aci', '127.0.0.1/top', { dependencies: [dep('lib-b'), dep('lib-c')], ...topOpts }, [
      { path: 'a', content: 'A' }, { path: 'shared3', content: 'A' }, { path: 'keep', type: 'directory' }, { path: 'keep/x', content: 'X' },
    ]);
  }

  test('are fetched by discovery and rendered depth-first in order (B, D, C, A)', async () => {
    await serveTree();
    const r = await fetch('127.0.0.1/top:1.0.0', 'update');
    expect(r.error).toBeUndefined();
    const store = new ImageStore(path.join(root, 'data'));
    expect(store.list().map((i) => i.name).sort()).toEqual(['127.0.0.1/lib-b', '127.0.0.1/lib-c', '127.0.0.1/lib-d', '127.0.0.1/top']);
    // fetch renders the tree
    expect(fs.existsSync(path.join(store.treePath(r.result!.id), 'rendered'))).toBe(true);
    const rootfs = await store.treeRootfs(r.result!.id);
    const read = (f: string) => fs.readFileSync(path.join(rootfs, f), 'utf8');
    expect([read('a'), read('b'), read('c'), read('d')]).toEqual(['A', 'B', 'C', 'D']);
    expect([read('shared1'), read('shared2'), read('shared3')]).toEqual(['D', 'C', 'A']);
    expect(JSON.parse(fs.readFileSync(path.join(store.treePath(r.result!.id), 'manifest'), 'utf8')).name).toBe('127.0.0.1/top');
    expect(r.result!.treeSize).toBeGreaterThan(0);

    // A second image needing lib-b takes it from the store.
    await serveAci('/images/127.0.0.1/app-1.0.0.aci', NAME, { dependencies: [{ imageName: '127.0.0.1/lib-b' }] });
    const second = await fetch(`${NAME}:1.0.0`, 'update');
    expect(second.error).toBeUndefined();
    expect(second.stderr).toContain('using image from local store for image name 127.0.0.1/lib-b');
    expect(server.hits('/images/127.0.0.1/lib-b-1.0.0.aci')).toBe(1);
  });

  test('pathWhitelist keeps only the listed paths of every layer', async () => {
    await serveTree({ pathWhitelist: ['/a', '/shared1', '/keep/x'] });
    const r = await fetch('127.0.0.1/top:1.0.0', 'update');
    expect(r.error).toBeUndefined();
    const rootfs = await new ImageStore(path.join(root, 'data')).treeRootfs(r.result!.id);
    expect(fs.readdirSync(rootfs).sort()).toEqual(['a', 'keep', 'shared1']);
    expect(fs.readFileSync(path.join(rootfs, 'shared1'), 'utf8')).toBe('D');
    expect(fs.readFileSync(path.join(rootfs, 'keep/x'), 'utf8')).toBe('X');
  });

  test('a dependency pinned by image ID must have that ID', async () => {
    serveDiscovery();
    await serveAci('/images/127.0.0.1/lib-b-1.0.0.aci', '127.0.0.1/lib-b');
    await serveAci('/images/127.0.0.1/top-1.0.0.aci', '127.0.0.1/top', {
      dependencies: [{ imageName: '127.0.0.1/lib-b', imageID: `sha512-${'ab'.repeat(64)}`, labels: [{ name: 'version', value: '1.0.0' }] }],
    });
    const r = await fetch('127.0.0.1/top:1.0.0', 'update');
    expect(String(r.error)).toContain('but the manifest asks for sha512-abab');
  });
});
