/** Keys and signatures made in the tests: a throwaway GnuPG home and openpgp.js keys. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import type { TrustedKey } from '../../../src/trust/keystore.js';

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `rkt-${tag}-`));
}

export interface GpgOptions {
  /** gpg --faked-system-time, e.g. 20200101T000000 */
  at?: string;
  input?: string | Buffer;
}

/** A GnuPG home of its own; call close() to stop its agent and remove it. */
export class Gpg {
  readonly home = tempDir('gnupg');

  constructor() {
    fs.chmodSync(this.home, 0o700);
  }

  run(args: string[], opts: GpgOptions = {}): Buffer {
    const time = opts.at ? ['--faked-system-time', opts.at] : [];
    return execFileSync('gpg', ['--homedir', this.home, '--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...time, ...args], {
      input: opts.input,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  /** Makes a key (`algo`: rsa3072, ed25519, ...; `usage`: sign or cert); returns its fingerprint. */
  genKey(uid: string, algo: string, opts: { usage?: string; expire?: string; at?: string } = {}): string {
    this.run(['--quick-gen-key', uid, algo, opts.usage ?? 'sign', opts.expire ?? 'never'], { at: opts.at });
    return this.fingerprints(uid)[0];
  }

  /** Fingerprints of the primary key then its subkeys, lowercase. */
  fingerprints(who: string): string[] {
    const out = this.run(['--with-colons', '--list-keys', who]).toString();
    return out.split('\n').filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9].toLowerCase());
  }

  addSubkey(fingerprint: string, algo: string, usage: string): string {
    this.run(['--quick-add-key', fingerprint, algo, usage, 'never']);
    return this.fingerprints(fingerprint).at(-1)!;
  }

  exportKey(fingerprint: string): string {
    return this.run(['--armor', '--export', fingerprint]).toString();
  }

  /** Detached signature by exactly `keyFingerprint` (a primary key or a subkey). */
  sign(keyFingerprint: string, file: string, opts: { armor?: boolean; at?: string; digest?: string } = {}): Buffer {
    const args = ['--local-user', `${keyFingerprint}!`, '--detach-sign', '--output', '-'];
    if (opts.armor !== false) args.unshift('--armor');
    if (opts.digest) args.unshift('--digest-algo', opts.digest);
    return this.run([...args, file], { at: opts.at });
  }

  /** Imports the revocation certificate gpg made with the key. */
  revoke(fingerprint: string): void {
    const cert = fs.readFileSync(path.join(this.home, 'openpgp-revocs.d', `${fingerprint.toUpperCase()}.rev`), 'utf8');
    this.run(['--import'], { input: cert.replace(/^:-----BEGIN/m, '-----BEGIN') });
  }

  close(): void {
    execFileSync('gpgconf', ['--homedir', this.home, '--kill', 'all']);
    fs.rmSync(this.home, { recursive: true, force: true });
  }
}

export interface JsKey {
  privateKey: openpgp.PrivateKey;
  armored: string;
  fingerprint: string;
}

/** A curve25519 key made by openpgp.js (fast). */
export async function jsKey(name: string, opts: { date?: Date; signingSubkey?: boolean; expiresInSeconds?: number } = {}): Promise<JsKey> {
  const { privateKey } = await openpgp.generateKey({
    type: 'curve25519',
    userIDs: [{ name, email: `${name.toLowerCase().replace(/\W/g, '')}@example.com` }],
    date: opts.date,
    keyExpirationTime: opts.expiresInSeconds,
    subkeys: opts.signingSubkey ? [{ sign: true }] : undefined,
    format: 'object',
  });
  return { privateKey, armored: privateKey.toPublic().armor(), fingerprint: privateKey.getFingerprint() };
}

export async function jsSign(key: openpgp.PrivateKey, data: Uint8Array, date?: Date): Promise<Buffer> {
  const message = await openpgp.createMessage({ binary: data });
  return Buffer.from(await openpgp.sign({ message, signingKeys: key, detached: true, date }));
}

/** A candidate key as the key store would return it. */
export async function trusted(armored: string, scope = 'root'): Promise<TrustedKey> {
  const key = await openpgp.readKey({ armoredKey: armored });
  return { fingerprint: key.getFingerprint(), key, path: `/trust/${key.getFingerprint()}`, scope };
}

/** The key revoked by its owner (at `date`, default now), with a reason; the armored public key. */
export async function jsRevoke(key: JsKey, reason: 'keyCompromised' | 'keySuperseded' | 'keyRetired', text: string, date?: Date): Promise<string> {
  const { publicKey } = await openpgp.revokeKey({
    key: key.privateKey,
    reasonForRevocation: { flag: openpgp.enums.reasonForRevocation[reason], string: text },
    date,
    format: 'armored',
  });
  return publicKey;
}
