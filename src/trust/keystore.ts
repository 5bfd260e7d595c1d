/**
 * rkt's trust store: armored public keys in files named after their fingerprint,
 *   <config>/trustedkeys/root.d/<fingerprint>                 trusted for every image
 *   <config>/trustedkeys/prefix.d/<name prefix>/<fingerprint>  trusted for names under the prefix
 * in the system (vendor), local (admin) and optional user config dirs, read in that order.
 * An empty file masks the key of that fingerprint from the keyring built so far.
 */
import fs from 'node:fs';
import path from 'node:path';
import type * as openpgp from 'openpgp';
import { RktError, errorMessage, fail } from '../util/errors.js';

export interface TrustedKey {
  /** Lowercase hex v4 fingerprint of the primary key (the file name). */
  fingerprint: string;
  key: openpgp.PublicKey;
  path: string;
  /** 'root' for root.d, else the prefix.d path the key sits in (`coreos.com/etcd`). */
  scope: 'root' | string;
}

export interface KeyStoreConfig {
  systemConfig: string;
  localConfig: string;
  userConfig?: string;
}

interface KeyFile {
  path: string;
  name: string;
  size: number;
  scope: string;
}

// appc ACIdentifier: lowercase alphanumerics joined by single "-._~/" separators,
// so no empty, "." or ".." path elements can reach the file system.
const AC_IDENTIFIER = /^[a-z0-9]+([-._~/][a-z0-9]+)*$/;

export function isACIdentifier(name: string): boolean {
  return AC_IDENTIFIER.test(name);
}

export function checkPrefix(prefix: string): void {
  if (!isACIdentifier(prefix)) {
    fail(`invalid image name or prefix "${prefix}": use lowercase letters, digits and "-._~/", e.g. example.com/app`);
  }
}

/** Regular files of one directory (symlinks followed), sorted; hidden files are our temp files. */
function keyFilesIn(dir: string, scope: string): KeyFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
  const files: KeyFile[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const file = path.join(dir, name);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (st?.isFile()) files.push({ path: file, name, size: st.size, scope });
  }
  return files;
}

function subdirs(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort().filter((n) => fs.statSync(path.join(dir, n), { throwIfNoEntry: false })?.isDirectory());
  } catch {
    return [];
  }
}

async function readKeyFile(file: KeyFile): Promise<TrustedKey> {
  let key: openpgp.PublicKey;
  try {
    // Loaded on demand: openpgp costs tens of milliseconds, and `rkt run` of a stored image needs none of it.
    const { readKey } = await import('openpgp');
    key = (await readKey({ armoredKey: fs.readFileSync(file.path, 'utf8') })).toPublic();
  } catch (e) {
    throw new RktError(`trusted key file "${file.path}" is not an armored OpenPGP public key (${errorMessage(e)}): replace or remove it`);
  }
  const fingerprint = key.getFingerprint().toLowerCase();
  if (fingerprint !== file.name) {
    fail(`fingerprint mismatch: trusted key file "${file.path}" holds key ${fingerprint}: rename it to ${fingerprint} or remove it`);
  }
  return { fingerprint, key, path: file.path, scope: file.scope };
}

export class KeyStore {
  private readonly configs: string[];

  constructor(readonly cfg: KeyStoreConfig) {
    this.configs = [cfg.systemConfig, cfg.localConfig, ...(cfg.userConfig ? [cfg.userConfig] : [])];
  }

  /** The keys trusted for an image name, in rkt's walk order with masks applied. */
  async keysForName(imageName: string): Promise<TrustedKey[]> {
    const ring = new Map<string, TrustedKey>();
    for (const file of this.walk(imageName)) {
      if (file.size === 0) ring.delete(file.name);
      else ring.set(file.name, await readKeyFile(file));
    }
    return [...ring.values()];
  }

  /**
   * Every key in the store, one per fingerprint, masks ignored: the candidates a signature
   * can be checked against before the image name is known. Trust for the name is decided
   * afterwards with keysForName, which applies the masks.
   */
  async allKeys(): Promise<TrustedKey[]> {
    const found = new Map<string, TrustedKey>();
    const visit = async (dir: string, scope: string): Promise<void> => {
      for (const file of keyFilesIn(dir, scope)) {
        if (file.size > 0 && !found.has(file.name)) found.set(file.name, await readKeyFile(file));
      }
      if (scope === 'root') return;
      for (const sub of subdirs(dir)) await visit(path.join(dir, sub), scope ? `${scope}/${sub}` : sub);
    };
    for (const config of this.configs) await visit(this.rootDir(config), 'root');
    for (const config of this.configs) await visit(this.prefixDir(config), '');
    return [...found.values()];
  }

  /**
   * The fingerprints trusted for an image name, read from file names alone (masks applied):
   * enough to re-check an already verified signer without parsing any key.
   */
  trustedFingerprints(imageName: string): Set<string> {
    const ring = new Set<string>();
    for (const file of this.walk(imageName)) {
      if (file.size === 0) ring.delete(file.name);
      else ring.add(file.name);
    }
    return ring;
  }

  /** Whether prefix.d holds an unmasked key for the name or a parent prefix (root.d does not count, as in rkt). */
  hasKeyForPrefixOf(imageName: string): boolean {
    const scopes = new Map<string, string>();
    for (const file of this.walk(imageName)) {
      if (file.size === 0) scopes.delete(file.name);
      else scopes.set(file.name, file.scope);
    }
    return [...scopes.values()].some((scope) => scope !== 'root');
  }

  /** Stores one public key in the LOCAL config; returns where. */
  async addKey(armored: string, to: { prefix: string } | { root: true }): Promise<{ fingerprint: string; path: string }> {
    let keys: openpgp.Key[];
    try {
      keys = await (await import('openpgp')).readKeys({ armoredKeys: armored });
    } catch (e) {
      throw new RktError(`not an armored OpenPGP public key (${errorMessage(e)}): export it with "gpg --armor --export KEYID"`);
    }
    if (keys.length !== 1) fail(`expected one public key, found ${keys.length}: add the keys one at a time`);
    const key = keys[0].toPublic();
    const fingerprint = key.getFingerprint().toLowerCase();

    const base = path.join(this.cfg.localConfig, 'trustedkeys');
    let dir: string;
    if ('root' in to) {
      dir = path.join(base, 'root.d');
    } else {
      checkPrefix(to.prefix);
      dir = path.join(base, 'prefix.d', to.prefix);
    }
    const file = path.join(dir, fingerprint);
    const tmp = path.join(dir, `.${fingerprint}.${process.pid}.tmp`);
    try {
      mkdirs(dir);
      fs.writeFileSync(tmp, key.armor(), { mode: 0o644 });
      fs.chmodSync(tmp, 0o644); // the umask may have removed bits
      fs.renameSync(tmp, file);
    } catch (e) {
      if (fs.existsSync(tmp)) fs.rmSync(tmp);
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') {
        fail(`cannot write trusted key to "${file}": permission denied: run as root or choose another --local-config`);
      }
      throw new RktError(`cannot write trusted key to "${file}": ${errorMessage(e)}`);
    }
    return { fingerprint, path: file };
  }

  /** Key files that bear on one image name, in walk order: every root.d, then every prefix.d path-prefix. */
  private walk(imageName: string): KeyFile[] {
    checkPrefix(imageName);
    const files = this.configs.flatMap((c) => keyFilesIn(this.rootDir(c), 'root'));
    const parts = imageName.split('/');
    for (const config of this.configs) {
      for (let i = 1; i <= parts.length; i++) {
        const scope = parts.slice(0, i).join('/');
        files.push(...keyFilesIn(path.join(this.prefixDir(config), scope), scope));
      }
    }
    return files;
  }

  private rootDir(config: string): string {
    return path.join(config, 'trustedkeys', 'root.d');
  }

  private prefixDir(config: string): string {
    return path.join(config, 'trustedkeys', 'prefix.d');
  }
}

/**
 * mkdir -p with 0755 on every directory it creates, whatever the umask; 2775 under a
 * setgid config dir (rkt install: group rkt-admin manages trust), so every admin can add keys.
 */
function mkdirs(dir: string): void {
  if (fs.existsSync(dir)) return;
  mkdirs(path.dirname(dir));
  const mode = (fs.statSync(path.dirname(dir)).mode & 0o2000) !== 0 ? 0o2775 : 0o755;
  fs.mkdirSync(dir, { mode: mode & 0o777 });
  fs.chmodSync(dir, mode);
}

export interface KeyValidity {
  /** Set when the key's owner revoked it: the stated reason, or '' when none was given. */
  revoked?: string;
  /** Set when the key (or, for `keyID`, the subkey that signed) has expired by `now`. */
  expired?: Date;
}

/**
 * Whether a key is revoked or expired at `now`. With `keyID` (a signature's issuer), the
 * expiry of that subkey counts too, whichever comes first.
 */
export async function keyValidity(key: openpgp.PublicKey, now = new Date(), keyID?: openpgp.KeyID): Promise<KeyValidity> {
  if (await key.isRevoked(undefined, undefined, now)) {
    const reason = key.revocationSignatures.map((s) => s.reasonForRevocationString).find((r) => r) ?? '';
    return { revoked: reason };
  }
  const ends: Date[] = [];
  const primaryEnd = await key.getExpirationTime();
  if (primaryEnd instanceof Date) ends.push(primaryEnd);
  const signing = keyID ? key.getSubkeys(keyID)[0] : undefined;
  if (signing) {
    const subEnd = await signing.getExpirationTime(now).catch(() => null);
    if (subEnd instanceof Date) ends.push(subEnd);
  }
  const end = ends.sort((a, b) => a.getTime() - b.getTime())[0];
  return end && end.getTime() <= now.getTime() ? { expired: end } : {};
}
