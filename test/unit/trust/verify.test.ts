import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as openpgp from 'openpgp';
import { pipeline } from 'node:stream/promises';
import { startVerification, assertTrustedFor, expiredSinceWarning, noSignatureError, type SignerInfo } from '../../../src/trust/verify.js';
import { KeyStore, keyValidity, type TrustedKey } from '../../../src/trust/keystore.js';
import { Gpg, jsKey, jsRevoke, jsSign, tempDir, trusted } from './pgp-fixtures.js';

/** Writes `data` into the sink in `chunkSize` pieces, honouring backpressure, then waits for the result. */
async function verify(sig: Buffer, keys: TrustedKey[], data: Buffer, chunkSize = 64 * 1024): Promise<SignerInfo> {
  const { sink, result } = startVerification(sig, keys, 'example.com/app');
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) chunks.push(data.subarray(i, i + chunkSize));
  await pipeline(Readable.from(chunks), sink);
  return result;
}

describe('startVerification', () => {
  let dir: string;
  let gpg: Gpg;
  let data: Buffer;
  let file: string;
  const fp: Record<string, string> = {};
  const key: Record<string, TrustedKey> = {};

  beforeAll(async () => {
    dir = tempDir('verify');
    gpg = new Gpg();
    data = crypto.randomBytes(300 * 1024);
    file = path.join(dir, 'image.aci');
    fs.writeFileSync(file, data);

    fp.rsa = gpg.genKey('RSA Signer <rsa@example.com>', 'rsa3072');
    fp.rsa2048 = gpg.genKey('RSA2048 Signer <rsa2048@example.com>', 'rsa2048');
    fp.rsa1024 = gpg.genKey('Weak Signer <weak@example.com>', 'rsa1024');
    fp.ed = gpg.genKey('Ed Signer <ed@example.com>', 'ed25519');
    // Certification-only primary with a signing subkey, the layout many release keys use.
    fp.primary = gpg.genKey('Subkey Signer <sub@example.com>', 'ed25519', { usage: 'cert' });
    fp.subkey = gpg.addSubkey(fp.primary, 'ed25519', 'sign');
    // Made in 2020, expiring 2020-02-01; one signature while valid.
    fp.oldValid = gpg.genKey('Old Signer <old@example.com>', 'ed25519', { at: '20200101T000000', expire: '2020-02-01' });
    // Made in 2020 without expiry, signed on 2020-03-01, then given an expiry of 2020-01-10.
    fp.expired = gpg.genKey('Expired Signer <expired@example.com>', 'ed25519', { at: '20200101T000000' });
    fp.revoked = gpg.genKey('Revoked Signer <revoked@example.com>', 'ed25519');
    for (const [name, f] of Object.entries(fp)) if (name !== 'subkey') key[name] = await trusted(gpg.exportKey(f));
  }, 60_000);

  afterAll(() => {
    gpg.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each(['rsa', 'rsa2048', 'ed'])('accepts an armored gpg signature (%s) and names the signer', async (name) => {
    const signer = await verify(gpg.sign(fp[name], file), [key.rsa, key.ed, key.rsa2048], data);
    expect(signer.fingerprint).toBe(fp[name]);
    expect(signer.identities).toEqual([expect.stringContaining('@example.com>')]);
  });

  it('accepts a binary gpg signature', async () => {
    const sig = gpg.sign(fp.rsa, file, { armor: false });
    expect(sig.subarray(0, 10).toString('latin1')).not.toContain('BEGIN');
    expect((await verify(sig, [key.rsa], data)).fingerprint).toBe(fp.rsa);
  });

  it('accepts a signature by an openpgp.js key', async () => {
    const k = await jsKey('Js Signer');
    const signer = await verify(await jsSign(k.privateKey, data), [await trusted(k.armored)], data);
    expect(signer).toEqual({ fingerprint: k.fingerprint, identities: ['Js Signer <jssigner@example.com>'], signedAt: expect.any(Date) });
  });

  it('reports the PRIMARY fingerprint when a signing subkey signed', async () => {
    const signer = await verify(gpg.sign(fp.subkey, file), [key.rsa, key.primary], data);
    expect(signer.fingerprint).toBe(fp.primary);
    expect(signer.fingerprint).not.toBe(fp.subkey);
  });

  it('picks the trusted signer among several signatures', async () => {
    const k = await jsKey('Other');
    const both = Buffer.concat([gpg.sign(fp.ed, file, { armor: false }), gpg.sign(fp.rsa, file, { armor: false })]);
    expect((await verify(both, [await trusted(k.armored), key.rsa], data)).fingerprint).toBe(fp.rsa);
  });

  it('rejects a signer that is not among the keys, naming its key ID', async () => {
    const keyId = fp.ed.slice(-16);
    await expect(verify(gpg.sign(fp.ed, file), [key.rsa], data)).rejects.toThrow(
      `image "example.com/app" is signed by key ${keyId}, which is not in the trust store: trust it with "rkt trust --prefix=example.com/app <key file>"`,
    );
    const { sink, result } = startVerification(gpg.sign(fp.ed, file), [], '/tmp/etcd.aci');
    sink.end(data);
    await expect(result).rejects.toThrow(`image "/tmp/etcd.aci" is signed by key ${keyId}, which is not in the trust store: trust it with "rkt trust --prefix=IMAGE_NAME_PREFIX <key file>"`);
  });

  it('rejects tampered data', async () => {
    const bad = Buffer.from(data);
    bad[1234] ^= 1;
    await expect(verify(gpg.sign(fp.rsa, file), [key.rsa], bad)).rejects.toThrow(
      `signature of image "example.com/app" does not match its content (signed by key ${fp.rsa}): the image or signature is corrupt or was tampered with`,
    );
  });

  it('rejects truncated data', async () => {
    await expect(verify(gpg.sign(fp.ed, file), [key.ed], data.subarray(0, data.length - 1))).rejects.toThrow(/does not match its content/);
  });

  it('rejects a signature that is not OpenPGP', async () => {
    await expect(verify(Buffer.from('not a signature at all'), [key.rsa], data)).rejects.toThrow(/is not an OpenPGP signature/);
  });

  it('rejects a key that had expired when it signed', async () => {
    const sig = gpg.sign(fp.expired, file, { at: '20200301T000000' });
    gpg.run(['--quick-set-expire', fp.expired, '2020-01-10'], { at: '20200102T000000' });
    const expired = await trusted(gpg.exportKey(fp.expired));
    await expect(verify(sig, [expired], data)).rejects.toThrow(
      new RegExp(`signed by key ${fp.expired}, which had already expired when the signature was made \\(2020-03-01T00:00:00.000Z\\)`),
    );
  });

  it('accepts a key that expired after it signed', async () => {
    const sig = gpg.sign(fp.oldValid, file, { at: '20200115T000000' });
    expect((await verify(sig, [key.oldValid], data)).fingerprint).toBe(fp.oldValid);
  });

  it('rejects a revoked key', async () => {
    const sig = gpg.sign(fp.revoked, file);
    expect((await verify(sig, [key.revoked], data)).fingerprint).toBe(fp.revoked); // good before revocation
    gpg.revoke(fp.revoked);
    const revoked = await trusted(gpg.exportKey(fp.revoked));
    await expect(verify(sig, [revoked], data)).rejects.toThrow(`signed by key ${fp.revoked}, which was revoked by its owner`);
  });

  it('rejects RSA keys shorter than 2048 bits and SHA-1 signatures', async () => {
    await expect(verify(gpg.sign(fp.rsa1024, file), [key.rsa1024], data)).rejects.toThrow(/was rejected: .*too weak/);
    await expect(verify(gpg.sign(fp.rsa, file, { digest: 'SHA1' }), [key.rsa], data)).rejects.toThrow(/was rejected: .*SHA1/);
  });

  it('streams a few MB in small chunks and applies backpressure', async () => {
    const big = crypto.randomBytes(6 * 1024 * 1024);
    const bigFile = path.join(dir, 'big.aci');
    fs.writeFileSync(bigFile, big);
    const sig = gpg.sign(fp.ed, bigFile);
    expect((await verify(sig, [key.ed], big, 16 * 1024)).fingerprint).toBe(fp.ed);

    // Written without waiting, the sink pushes back after a few buffers, not after megabytes.
    const { sink, result } = startVerification(sig, [key.ed]);
    const kb = Array.from({ length: big.length / 1024 }, (_, i) => big.subarray(i * 1024, (i + 1) * 1024));
    let sent = 0;
    while (sent < kb.length && sink.write(kb[sent++]));
    expect(sent).toBeLessThan(256);
    await pipeline(Readable.from(kb.slice(sent)), sink);
    expect((await result).fingerprint).toBe(fp.ed);
  }, 30_000);

  it('keeps accepting data after an early failure so the fetch is not stalled', async () => {
    const { sink, result } = startVerification(gpg.sign(fp.ed, file), [key.rsa]);
    await expect(result).rejects.toThrow(/not in the trust store/);
    const lots = Array.from({ length: 100 }, () => Buffer.alloc(64 * 1024));
    await pipeline(Readable.from(lots), sink); // would hang if the sink still waited for a reader
  });

  it('rejects when the download is aborted', async () => {
    const { sink, result } = startVerification(gpg.sign(fp.ed, file), [key.ed]);
    sink.on('error', () => {}); // the fetch pipeline reports its own error
    sink.write(data.subarray(0, 1000));
    sink.destroy(new Error('connection reset'));
    await expect(result).rejects.toThrow(/^connection reset$/);
  });
});

describe('assertTrustedFor', () => {
  let dir: string;
  let store: KeyStore;
  let signer: SignerInfo;

  beforeAll(async () => {
    dir = tempDir('assert');
    store = new KeyStore({ systemConfig: path.join(dir, 'system'), localConfig: path.join(dir, 'local') });
    const k = await jsKey('Coreos');
    await store.addKey(k.armored, { prefix: 'coreos.com' });
    signer = { fingerprint: k.fingerprint, identities: [] };
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('accepts a signer trusted for a path prefix of the name', async () => {
    await expect(assertTrustedFor('coreos.com/etcd', signer, store)).resolves.toBeUndefined();
    await expect(assertTrustedFor('coreos.com', signer, store)).resolves.toBeUndefined();
  });

  it('rejects the signer for other names, with the fixing command', async () => {
    await expect(assertTrustedFor('example.com/app', signer, store)).rejects.toThrow(
      `image "example.com/app" is signed by key ${signer.fingerprint}, which is not trusted for "example.com/app": trust it with "rkt trust --prefix=example.com/app <key file>"`,
    );
    await expect(assertTrustedFor('coreos.comx/etcd', signer, store)).rejects.toThrow(/not trusted/);
  });

  it('formats the unsigned-image error', () => {
    expect(noSignatureError('etcd.aci').message).toBe(
      'error opening signature file: no signature found for image "etcd.aci": provide it with --signature=FILE or as <file>.asc, or skip verification with --insecure-options=image',
    );
    expect(noSignatureError('etcd.aci', '/x/etcd.aci.asc').message).toBe(
      'error opening signature file: /x/etcd.aci.asc: no such file or directory: provide it with --signature=FILE or as <file>.asc, or skip verification with --insecure-options=image',
    );
  });
});

describe('expired and revoked keys made by openpgp.js', () => {
  const data = crypto.randomBytes(100 * 1024);
  const made = new Date('2020-01-01T00:00:00Z');
  const signedAt = new Date('2020-01-05T00:00:00Z');
  const DAY = 24 * 3600;

  it('a key that expired after it signed: accepted, with the expiry and signing time for a warning', async () => {
    const k = await jsKey('Lapsed', { date: made, expiresInSeconds: 30 * DAY });
    const signer = await verify(await jsSign(k.privateKey, data, signedAt), [await trusted(k.armored)], data);
    expect(signer.fingerprint).toBe(k.fingerprint);
    expect(signer.expiredSince).toEqual(new Date('2020-01-31T00:00:00Z'));
    expect(signer.signedAt).toEqual(signedAt);
    expect(expiredSinceWarning('example.com/app', signer)).toBe(
      `key ${k.fingerprint} that signed image "example.com/app" (signed 2020-01-05T00:00:00.000Z) expired on 2020-01-31T00:00:00.000Z: the signature predates it and is accepted; ask the publisher for an image signed with a current key`,
    );
  });

  it('a key without expiry gives no warning', async () => {
    const k = await jsKey('Current');
    const signer = await verify(await jsSign(k.privateKey, data), [await trusted(k.armored)], data);
    expect(signer.expiredSince).toBeUndefined();
    expect(expiredSinceWarning('example.com/app', signer)).toBeUndefined();
  });

  it('a signature dated after the key expired is refused', async () => {
    const k = await jsKey('Lapsed', { date: made });
    const sig = await jsSign(k.privateKey, data, new Date('2020-03-01T00:00:00Z'));
    // The same key re-published with self-signatures that make it expire on 2020-01-10.
    const { publicKey } = await openpgp.reformatKey({
      privateKey: k.privateKey, userIDs: [{ name: 'Lapsed' }], keyExpirationTime: 9 * DAY, date: made, format: 'armored',
    });
    await expect(verify(sig, [await trusted(publicKey)], data)).rejects.toThrow(
      `signed by key ${k.fingerprint}, which had already expired when the signature was made (2020-03-01T00:00:00.000Z)`,
    );
  });

  it.each(['keyCompromised', 'keySuperseded', 'keyRetired'] as const)('a key revoked (%s) after it signed is refused', async (reason) => {
    const k = await jsKey('Revoked', { date: made });
    const sig = await jsSign(k.privateKey, data, signedAt);
    const revoked = await trusted(await jsRevoke(k, reason, 'moved on'));
    expect(await keyValidity(revoked.key)).toEqual({ revoked: 'moved on' });
    await expect(verify(sig, [revoked], data)).rejects.toThrow(`signed by key ${k.fingerprint}, which was revoked by its owner`);
  });
});
