import { afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { KeyStore } from '../../../src/trust/keystore.js';
import { jsKey, tempDir, type JsKey } from './pgp-fixtures.js';

let a: JsKey, b: JsKey, c: JsKey, r: JsKey;
let dir: string;
let system: string, local: string, user: string;

beforeAll(async () => {
  [a, b, c, r] = await Promise.all([jsKey('Alice'), jsKey('Bob'), jsKey('Carol'), jsKey('Root')]);
});

beforeEach(() => {
  dir = tempDir('keystore');
  system = path.join(dir, 'usr-lib-rkt');
  local = path.join(dir, 'etc-rkt');
  user = path.join(dir, 'user');
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Puts a key file (or an empty mask when `key` is a string) under <config>/trustedkeys/<where>. */
function place(config: string, where: string, key: JsKey | string): void {
  const name = typeof key === 'string' ? key : key.fingerprint;
  fs.mkdirSync(path.join(config, 'trustedkeys', where), { recursive: true });
  fs.writeFileSync(path.join(config, 'trustedkeys', where, name), typeof key === 'string' ? '' : key.armored);
}

async function fingerprintsFor(store: KeyStore, name: string): Promise<string[]> {
  return (await store.keysForName(name)).map((k) => k.fingerprint).sort();
}

const sorted = (...keys: JsKey[]): string[] => keys.map((k) => k.fingerprint).sort();

describe('addKey', () => {
  it('writes the armored key to the local prefix.d, named by fingerprint, 0644 in 0755 dirs', async () => {
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    const old = process.umask(0o077);
    let added;
    try {
      added = await store.addKey(a.armored, { prefix: 'example.com/app' });
    } finally {
      process.umask(old);
    }
    const expected = path.join(local, 'trustedkeys/prefix.d/example.com/app', a.fingerprint);
    expect(added).toEqual({ fingerprint: a.fingerprint, path: expected });
    expect(a.fingerprint).toMatch(/^[0-9a-f]{40}$/);
    expect(fs.readFileSync(expected, 'utf8')).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    expect(fs.statSync(expected).mode & 0o777).toBe(0o644);
    for (const d of ['', 'trustedkeys', 'trustedkeys/prefix.d', 'trustedkeys/prefix.d/example.com', 'trustedkeys/prefix.d/example.com/app']) {
      expect(fs.statSync(path.join(local, d)).mode & 0o777).toBe(0o755);
    }
    expect(fs.readdirSync(path.dirname(expected))).toEqual([a.fingerprint]); // no temp file left
    expect(await fingerprintsFor(store, 'example.com/app')).toEqual([a.fingerprint]);
  });

  it('writes root keys to root.d', async () => {
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    const added = await store.addKey(r.armored, { root: true });
    expect(added.path).toBe(path.join(local, 'trustedkeys/root.d', r.fingerprint));
    expect(await fingerprintsFor(store, 'anything.org/x')).toEqual([r.fingerprint]);
  });

  it('stores only the public part of a private key', async () => {
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    const added = await store.addKey(a.privateKey.armor(), { root: true });
    const text = fs.readFileSync(added.path, 'utf8');
    expect(text).toContain('PUBLIC KEY BLOCK');
    expect(text).not.toContain('PRIVATE');
  });

  it('refuses keyrings, garbage and bad prefixes', async () => {
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    const ring = openpgp.armor(openpgp.enums.armor.publicKey, Buffer.concat([a.privateKey.toPublic().write(), b.privateKey.toPublic().write()]));
    await expect(store.addKey(ring, { root: true })).rejects.toThrow('expected one public key, found 2');
    await expect(store.addKey('hello', { root: true })).rejects.toThrow(/not an armored OpenPGP public key/);
    for (const prefix of ['../evil', 'Example.com', 'a//b', 'https://example.com', '']) {
      await expect(store.addKey(a.armored, { prefix })).rejects.toThrow(/invalid image name or prefix/);
    }
    expect(fs.existsSync(path.join(dir, 'evil'))).toBe(false);
  });

  it('explains a store it cannot write to', async () => {
    fs.writeFileSync(path.join(dir, 'file'), '');
    const store = new KeyStore({ systemConfig: system, localConfig: path.join(dir, 'file') });
    await expect(store.addKey(a.armored, { root: true })).rejects.toThrow(/^cannot write trusted key to /);
  });
});

describe('keysForName', () => {
  it('trusts prefix.d keys for names under the prefix, path-wise, and root.d keys for all', async () => {
    place(local, 'prefix.d/coreos.com', a);
    place(local, 'prefix.d/example.com/a', b);
    place(system, 'root.d', r);
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    expect(await fingerprintsFor(store, 'coreos.com/etcd')).toEqual(sorted(a, r));
    expect(await fingerprintsFor(store, 'coreos.com')).toEqual(sorted(a, r));
    expect(await fingerprintsFor(store, 'example.com/a')).toEqual(sorted(b, r));
    expect(await fingerprintsFor(store, 'example.com/a/sub')).toEqual(sorted(b, r));
    expect(await fingerprintsFor(store, 'example.com/b')).toEqual([r.fingerprint]);
    expect(await fingerprintsFor(store, 'example.com/ab')).toEqual([r.fingerprint]);
    expect(await fingerprintsFor(store, 'example.com')).toEqual([r.fingerprint]);
    expect(await fingerprintsFor(store, 'coreos.comx/etcd')).toEqual([r.fingerprint]);
  });

  it('returns parsed keys with their file and scope', async () => {
    place(system, 'prefix.d/coreos.com', a);
    const [k] = await new KeyStore({ systemConfig: system, localConfig: local }).keysForName('coreos.com/etcd');
    expect(k.key.getFingerprint()).toBe(a.fingerprint);
    expect(k.path).toBe(path.join(system, 'trustedkeys/prefix.d/coreos.com', a.fingerprint));
    expect(k.scope).toBe('coreos.com');
  });

  it('lets an empty file mask a vendor key', async () => {
    place(system, 'root.d', a);
    place(system, 'prefix.d/coreos.com', b);
    place(local, 'prefix.d/coreos.com', a.fingerprint);
    place(local, 'prefix.d/coreos.com/etcd', b.fingerprint);
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    expect(await fingerprintsFor(store, 'coreos.com/etcd')).toEqual([]);
    expect(await fingerprintsFor(store, 'coreos.com/rkt')).toEqual([b.fingerprint]);
    expect(await fingerprintsFor(store, 'example.com/app')).toEqual([a.fingerprint]);
  });

  it('walks local after system, and user after local', async () => {
    place(system, 'root.d', a);
    place(local, 'root.d', a.fingerprint); // admin masks a vendor root key
    place(system, 'prefix.d/coreos.com', b.fingerprint);
    place(local, 'prefix.d/coreos.com', b); // a system mask does not undo an admin key
    place(user, 'root.d', c);
    place(user, 'prefix.d/coreos.com', b.fingerprint);
    expect(await fingerprintsFor(new KeyStore({ systemConfig: system, localConfig: local }), 'coreos.com/etcd')).toEqual([b.fingerprint]);
    const withUser = new KeyStore({ systemConfig: system, localConfig: local, userConfig: user });
    expect(await fingerprintsFor(withUser, 'coreos.com/etcd')).toEqual([c.fingerprint]);
  });

  it('fails on a file not named after its key, or not a key', async () => {
    place(local, 'prefix.d/coreos.com', a);
    fs.renameSync(path.join(local, 'trustedkeys/prefix.d/coreos.com', a.fingerprint), path.join(local, 'trustedkeys/prefix.d/coreos.com', b.fingerprint));
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    await expect(store.keysForName('coreos.com/etcd')).rejects.toThrow(
      new RegExp(`^fingerprint mismatch: trusted key file ".*/${b.fingerprint}" holds key ${a.fingerprint}`),
    );
    await expect(store.allKeys()).rejects.toThrow(/^fingerprint mismatch/);
    expect(await fingerprintsFor(store, 'example.com/app')).toEqual([]);

    fs.writeFileSync(path.join(local, 'trustedkeys/prefix.d/coreos.com', b.fingerprint), 'junk');
    await expect(store.keysForName('coreos.com/etcd')).rejects.toThrow(/is not an armored OpenPGP public key/);
  });

  it('ignores hidden files, subdirectories of root.d and missing dirs', async () => {
    place(local, 'root.d', '.tmp-file');
    fs.writeFileSync(path.join(local, 'trustedkeys/root.d/.tmp-file'), 'partial');
    place(local, 'root.d/sub', a);
    const store = new KeyStore({ systemConfig: path.join(dir, 'none'), localConfig: local });
    expect(await fingerprintsFor(store, 'example.com/app')).toEqual([]);
  });

  it('refuses names that are not AC identifiers', async () => {
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    await expect(store.keysForName('../../etc')).rejects.toThrow(/invalid image name or prefix/);
    expect(() => store.hasKeyForPrefixOf('a/../b')).toThrow(/invalid image name or prefix/);
  });
});

describe('allKeys', () => {
  it('lists every key once, skipping masks', async () => {
    place(system, 'root.d', r);
    place(local, 'root.d', r);
    place(local, 'prefix.d/coreos.com', a);
    place(user, 'prefix.d/example.com/a/b', b);
    place(local, 'prefix.d/example.com', c.fingerprint);
    const keys = await new KeyStore({ systemConfig: system, localConfig: local, userConfig: user }).allKeys();
    expect(keys.map((k) => k.fingerprint).sort()).toEqual(sorted(a, b, r));
    expect(keys.find((k) => k.fingerprint === b.fingerprint)?.scope).toBe('example.com/a/b');
    expect(keys.find((k) => k.fingerprint === r.fingerprint)?.path).toBe(path.join(system, 'trustedkeys/root.d', r.fingerprint));
  });
});

describe('hasKeyForPrefixOf', () => {
  it('looks at prefix.d for the name and its parents only', () => {
    place(system, 'root.d', r);
    place(system, 'prefix.d/coreos.com', a);
    place(local, 'prefix.d/example.com/a', b);
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    expect(store.hasKeyForPrefixOf('coreos.com/etcd')).toBe(true);
    expect(store.hasKeyForPrefixOf('example.com/a/x')).toBe(true);
    expect(store.hasKeyForPrefixOf('example.com/ab')).toBe(false);
    expect(store.hasKeyForPrefixOf('example.com')).toBe(false);
    expect(store.hasKeyForPrefixOf('other.org/app')).toBe(false);
  });

  it('does not count masked keys', () => {
    place(system, 'prefix.d/coreos.com', a);
    place(local, 'prefix.d/coreos.com/etcd', a.fingerprint);
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    expect(store.hasKeyForPrefixOf('coreos.com/etcd')).toBe(false);
    expect(store.hasKeyForPrefixOf('coreos.com/rkt')).toBe(true);
  });
});

describe('trustedFingerprints', () => {
  it('agrees with keysForName, masks and prefix rules included, without parsing keys', async () => {
    place(system, 'root.d', r);
    place(system, 'prefix.d/coreos.com', a);
    place(system, 'prefix.d/coreos.com', b);
    place(local, 'prefix.d/coreos.com/etcd', b.fingerprint);
    place(local, 'prefix.d/example.com/a', c);
    const store = new KeyStore({ systemConfig: system, localConfig: local });
    for (const name of ['coreos.com/etcd', 'coreos.com/rkt', 'example.com/a', 'example.com/ab', 'other.org/x']) {
      expect([...store.trustedFingerprints(name)].sort()).toEqual(await fingerprintsFor(store, name));
    }
    expect(store.trustedFingerprints('coreos.com/etcd').has(b.fingerprint)).toBe(false);
    expect(store.trustedFingerprints('example.com/ab').has(c.fingerprint)).toBe(false);
  });
});
