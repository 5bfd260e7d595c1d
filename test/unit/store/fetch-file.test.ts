import { afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { setDebug } from '../../../src/util/log.js';
import { fetchImage } from '../../../src/fetch/fetcher.js';
import { ImageStore } from '../../../src/store/imagestore.js';
import type { InsecureOption } from '../../../src/cli/globals.js';
import {
  buildTar, capture, compress, globalsFor, idOf, type Key, type Kind, makeKey, manifestFor, sign, tempDir, trustKey, writeAci,
} from './aci-fixtures.js';

let root: string;
let trustedKey: Key;
let otherKey: Key;

beforeAll(async () => {
  trustedKey = await makeKey('Trusted Signer');
  otherKey = await makeKey('Other Signer');
});

beforeEach(() => {
  setDebug(true); // rkt printed "image: using image from file ..." with --debug only
  root = tempDir('fetchfile');
  trustKey(path.join(root, 'etc'), 'example.com', trustedKey);
});

afterEach(() => {
  setDebug(false);
  fs.rmSync(root, { recursive: true, force: true });
});

function fetchFile(file: string, opts: { insecure?: InsecureOption[]; signatureFile?: string } = {}) {
  return capture(() => fetchImage(file, { globals: globalsFor(root, opts.insecure), pullPolicy: 'new', signatureFile: opts.signatureFile }));
}

function storeDirs(): { info: string[]; tree: string[]; blob: string[]; tmp: string[] } {
  const cas = path.join(root, 'data', 'cas');
  const ls = (d: string) => (fs.existsSync(path.join(cas, d)) ? fs.readdirSync(path.join(cas, d)) : []);
  return { info: ls('info'), tree: ls('tree'), blob: ls('blob'), tmp: ls('tmp') };
}

function expectNothingStored(): void {
  const d = storeDirs();
  expect(d).toEqual({ info: [], tree: [], blob: [], tmp: [] });
}

describe('fetch from a file', () => {
  test('a signed gzip ACI is verified, hashed over the uncompressed tar and stored', async () => {
    const tar = await buildTar(manifestFor('example.com/app'), [{ path: 'etc/hello.txt', content: 'hi there\n' }]);
    const aci = compress(tar, 'gzip');
    const file = await writeAci(path.join(root, 'app.aci'), aci, trustedKey);

    const r = await fetchFile(file);
    expect(r.error).toBeUndefined();
    const image = r.result!;
    expect(image.id).toBe(idOf(tar));
    expect(image.name).toBe('example.com/app');
    expect(image.signer).toBe(trustedKey.fingerprint);
    expect(image.size).toBe(aci.length);
    expect(r.stderr).toContain(`image: using image from file ${file}\n`);
    expect(r.stderr).toContain('signature verified:');
    expect(r.stderr).toContain('Trusted Signer');

    const store = new ImageStore(path.join(root, 'data'));
    expect(fs.readFileSync(store.blobPath(image.id)).equals(aci)).toBe(true);
    expect(store.get(image.id)?.name).toBe('example.com/app');
    const rootfs = await store.treeRootfs(image.id);
    expect(rootfs).toBe(path.join(store.treePath(image.id), 'rootfs'));
    expect(fs.readFileSync(path.join(rootfs, 'etc/hello.txt'), 'utf8')).toBe('hi there\n');
    expect(fs.existsSync(path.join(store.treePath(image.id), 'rendered'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(store.treePath(image.id), 'manifest'), 'utf8')).name).toBe('example.com/app');
    expect(store.manifest(image.id).name).toBe('example.com/app');
    expect(storeDirs().tmp).toEqual([]);
  });

  test.each<Kind>(['none', 'gzip', 'bzip2', 'xz'])('%s compression: the image ID is the sha512 of the tar', async (kind) => {
    const tar = await buildTar(manifestFor('example.com/app', { labels: { kind } }));
    const file = await writeAci(path.join(root, `app-${kind}.aci`), compress(tar, kind), trustedKey);
    const r = await fetchFile(file);
    expect(r.error).toBeUndefined();
    expect(r.result!.id).toBe(idOf(tar));
  });

  test('an unsigned image is refused and nothing enters the store', async () => {
    const file = await writeAci(path.join(root, 'app.aci'), compress(await buildTar(manifestFor('example.com/app')), 'gzip'));
    const r = await fetchFile(file);
    expect(String(r.error)).toContain(`error opening signature file: ${file}.asc: no such file or directory`);
    expectNothingStored();
  });

  test('a signature by an untrusted key is refused', async () => {
    const aci = compress(await buildTar(manifestFor('example.com/app')), 'gzip');
    const file = await writeAci(path.join(root, 'app.aci'), aci, otherKey);
    const r = await fetchFile(file);
    expect(String(r.error)).toContain('not in the trust store');
    expectNothingStored();
  });

  test('a key trusted only for another prefix is refused for this name', async () => {
    trustKey(path.join(root, 'etc'), 'other.org', otherKey);
    const aci = compress(await buildTar(manifestFor('example.com/app')), 'gzip');
    const file = await writeAci(path.join(root, 'app.aci'), aci, otherKey);
    const r = await fetchFile(file);
    expect(String(r.error)).toContain('which is not trusted for "example.com/app"');
    expectNothingStored();
  });

  test('a tampered image is refused', async () => {
    const tar = await buildTar(manifestFor('example.com/app'), [{ path: 'hello.txt', content: 'hello\n' }]);
    const file = await writeAci(path.join(root, 'app.aci'), tar, trustedKey);
    const tampered = Buffer.from(tar);
    const at = tampered.indexOf('hello\n');
    tampered[at] = 'j'.charCodeAt(0);
    fs.writeFileSync(file, tampered);
    const r = await fetchFile(file);
    expect(String(r.error)).toContain('does not match its content');
    expectNothingStored();
  });

  test('a tampered gzip stream is reported as a bad signature, not as corrupt data', async () => {
    const aci = compress(await buildTar(manifestFor('example.com/app')), 'gzip');
    const file = await writeAci(path.join(root, 'app.aci'), aci, trustedKey);
    const tampered = Buffer.from(aci);
    tampered[Math.floor(tampered.length / 2)] ^= 0xff;
    fs.writeFileSync(file, tampered);
    const r = await fetchFile(file);
    expect(String(r.error)).toContain('does not match its content');
    expectNothingStored();
  });

  test('--signature names the signature file', async () => {
    const aci = compress(await buildTar(manifestFor('example.com/app')), 'gzip');
    const file = await writeAci(path.join(root, 'app.aci'), aci);
    const sig = path.join(root, 'elsewhere.sig');
    fs.writeFileSync(sig, await sign(trustedKey, aci));
    const r = await fetchFile(file, { signatureFile: sig });
    expect(r.error).toBeUndefined();
    expect(r.result!.signer).toBe(trustedKey.fingerprint);
  });

  test('--insecure-options=image skips verification with a warning', async () => {
    const tar = await buildTar(manifestFor('example.com/app'));
    const file = await writeAci(path.join(root, 'app.aci'), compress(tar, 'gzip'));
    const r = await fetchFile(file, { insecure: ['image'] });
    expect(r.error).toBeUndefined();
    expect(r.stderr).toContain('image: warning: image signature verification has been disabled');
    expect(r.result!.signer).toBeUndefined();
    expect(r.result!.id).toBe(idOf(tar));
  });

  test('a bad manifest is refused after verification and nothing is stored', async () => {
    const tar = await buildTar(manifestFor('Bad_Name'));
    const file = await writeAci(path.join(root, 'app.aci'), tar);
    const r = await fetchFile(file, { insecure: ['image'] });
    expect(String(r.error)).toContain('bad image manifest');
    expectNothingStored();
  });

  test('an unsafe archive is refused and its staging removed', async () => {
    const tar = await buildTar(manifestFor('example.com/app'), [
      { path: 'evil', type: 'symlink', linkname: '/tmp' },
      { path: 'evil/escape.txt', content: 'x' },
    ]);
    const file = await writeAci(path.join(root, 'app.aci'), tar, trustedKey);
    const r = await fetchFile(file);
    expect(String(r.error)).toContain('bad ACI');
    expectNothingStored();
  });

  test('an unchanged file is not read again, but its signer must still be trusted', async () => {
    const aci = compress(await buildTar(manifestFor('example.com/app')), 'gzip');
    const file = await writeAci(path.join(root, 'app.aci'), aci, trustedKey);
    const first = await fetchFile(file);
    const store = new ImageStore(path.join(root, 'data'));
    const blobIno = fs.statSync(store.blobPath(first.result!.id)).ino;

    const second = await fetchFile(file);
    expect(second.error).toBeUndefined();
    expect(second.result!.id).toBe(first.result!.id);
    expect(second.stderr).not.toContain('signature verified');
    expect(fs.statSync(store.blobPath(first.result!.id)).ino).toBe(blobIno);

    // Distrust the key: the cached image is no longer acceptable.
    fs.rmSync(path.join(root, 'etc', 'trustedkeys'), { recursive: true });
    const third = await fetchFile(file);
    expect(String(third.error)).toContain('not trusted for "example.com/app"');
  });

  test('a file imported without verification is verified when fetched securely', async () => {
    const file = await writeAci(path.join(root, 'app.aci'), compress(await buildTar(manifestFor('example.com/app')), 'gzip'));
    expect((await fetchFile(file, { insecure: ['image'] })).error).toBeUndefined();
    const secure = await fetchFile(file);
    expect(String(secure.error)).toContain('error opening signature file');
    fs.writeFileSync(`${file}.asc`, await sign(trustedKey, fs.readFileSync(file)));
    const signed = await fetchFile(file);
    expect(signed.error).toBeUndefined();
    expect(signed.result!.signer).toBe(trustedKey.fingerprint);
  });

  test('a changed file is read again', async () => {
    const file = await writeAci(path.join(root, 'app.aci'), compress(await buildTar(manifestFor('example.com/app')), 'gzip'), trustedKey);
    const first = await fetchFile(file);
    const tar2 = await buildTar(manifestFor('example.com/app', { version: '2.0.0' }));
    await writeAci(file, compress(tar2, 'gzip'), trustedKey);
    const second = await fetchFile(file);
    expect(second.result!.id).toBe(idOf(tar2));
    expect(second.result!.id).not.toBe(first.result!.id);
    expect(second.stderr).toContain('signature verified');
  });

  test('two fetches of one image at once both succeed and store it once', async () => {
    const tar = await buildTar(manifestFor('example.com/app'), Array.from({ length: 50 }, (_, i) => ({ path: `f${i}`, content: 'x'.repeat(10000) })));
    const file = await writeAci(path.join(root, 'app.aci'), compress(tar, 'gzip'), trustedKey);
    const copy = await writeAci(path.join(root, 'copy.aci'), compress(tar, 'gzip'), trustedKey);
    const globals = globalsFor(root);
    const [a, b] = await capture(() => Promise.all([
      fetchImage(file, { globals, pullPolicy: 'new' }),
      fetchImage(copy, { globals, pullPolicy: 'new' }),
    ])).then((r) => r.result!);
    expect(a.id).toBe(idOf(tar));
    expect(b.id).toBe(a.id);
    const d = storeDirs();
    expect(d.info).toEqual([`${a.id}.json`]);
    expect(d.tree).toEqual([a.id]);
    expect(d.blob).toEqual([a.id]);
    expect(d.tmp).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'data', 'cas', 'tree', a.id, 'rootfs'))).toHaveLength(50);
  });
});

describe('keys that expired or were revoked after signing', () => {
  test('an image signed before its key expired is stored, with a warning naming both dates', async () => {
    const { jsKey, jsSign } = await import('../trust/pgp-fixtures.js');
    const k = await jsKey('Lapsed', { date: new Date('2020-01-01T00:00:00Z'), expiresInSeconds: 30 * 24 * 3600 });
    trustKey(path.join(root, 'etc'), 'example.com/lapsed', k);
    const tar = await buildTar(manifestFor('example.com/lapsed'));
    const file = await writeAci(path.join(root, 'lapsed.aci'), tar);
    fs.writeFileSync(`${file}.asc`, await jsSign(k.privateKey, tar, new Date('2020-01-05T00:00:00Z')));
    const r = await fetchFile(file);
    expect(r.error).toBeUndefined();
    expect(r.result!.signer).toBe(k.fingerprint);
    expect(r.stderr).toContain(
      `warning: key ${k.fingerprint} that signed image "example.com/lapsed" (signed 2020-01-05T00:00:00.000Z) expired on 2020-01-31T00:00:00.000Z: the signature predates it and is accepted; ask the publisher for an image signed with a current key\n`,
    );
  });

  test('an image signed by a key revoked since is refused and nothing is stored', async () => {
    const { jsKey, jsSign, jsRevoke } = await import('../trust/pgp-fixtures.js');
    const k = await jsKey('Revoked', { date: new Date('2020-01-01T00:00:00Z') });
    const tar = await buildTar(manifestFor('example.com/revoked'));
    const file = await writeAci(path.join(root, 'revoked.aci'), tar);
    fs.writeFileSync(`${file}.asc`, await jsSign(k.privateKey, tar, new Date('2020-01-05T00:00:00Z')));
    trustKey(path.join(root, 'etc'), 'example.com/revoked', { ...k, armored: await jsRevoke(k, 'keySuperseded', 'new key') });
    const r = await fetchFile(file);
    expect(String(r.error)).toContain(`is signed by key ${k.fingerprint}, which was revoked by its owner`);
    expectNothingStored();
  });
});
