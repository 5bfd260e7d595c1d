/**
 * The checks after a signature is verified that need no OpenPGP code, so that the main
 * thread of a fetch can make them without loading openpgp.js (the digest worker holds it).
 */
import { RktError } from '../util/errors.js';
import type { SignerInfo } from './verify.js';

/** The signer must be among the keys trusted for the image's own name (`trusted`: their fingerprints). */
export function assertTrustedFingerprint(imageName: string, signer: SignerInfo, trusted: string[]): void {
  if (trusted.includes(signer.fingerprint)) return;
  throw new RktError(
    `image "${imageName}" is signed by key ${signer.fingerprint}, which is not trusted for "${imageName}": trust it with "rkt trust --prefix=${imageName} <key file>"`,
  );
}

/** The warning for an image whose signing key has expired since it signed. */
export function expiredSinceWarning(image: string, signer: SignerInfo): string | undefined {
  if (!signer.expiredSince) return undefined;
  const made = signer.signedAt ? ` (signed ${new Date(signer.signedAt).toISOString()})` : '';
  return `key ${signer.fingerprint} that signed image "${image}"${made} expired on ${new Date(signer.expiredSince).toISOString()}: the signature predates it and is accepted; ask the publisher for an image signed with a current key`;
}
