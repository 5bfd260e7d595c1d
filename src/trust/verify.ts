/**
 * Detached OpenPGP signature checks for images, in the same pass as the download:
 * the fetcher writes each chunk into `sink` as it hashes and extracts it.
 *
 * Policy (openpgp.js defaults, tested in test/unit/trust/verify.test.ts): the signer must be
 * one of the candidate keys; revoked keys are rejected; a key must be valid (not expired)
 * when the signature was made, so images signed before a key expired stay valid;
 * RSA keys need 2048 bits or more; SHA-1 signatures are rejected.
 */
import { PassThrough, Readable, Writable } from 'node:stream';
import { ReadableStream } from 'node:stream/web';
import * as openpgp from 'openpgp';
import { RktError, errorMessage } from '../util/errors.js';
import { isACIdentifier, keyValidity, type KeyStore, type TrustedKey } from './keystore.js';
import { assertTrustedFingerprint, expiredSinceWarning } from './trust-check.js';

export interface SignerInfo {
  /** Lowercase hex fingerprint of the signer's PRIMARY key, even when a subkey signed. */
  fingerprint: string;
  /** User IDs of the key, e.g. `Example Signer <release@example.com>`. */
  identities: string[];
  /** When the key (or the subkey that signed) expired, if it has since the signature was made. */
  expiredSince?: Date;
  /** When the signature was made, as it says. */
  signedAt?: Date;
}

/** rkt's words ("error opening signature file"), then which file and the fix. */
export function noSignatureError(image: string, sigFile?: string): RktError {
  const which = sigFile ? `${sigFile}: no such file or directory` : `no signature found for image "${image}"`;
  return new RktError(`error opening signature file: ${which}: provide it with --signature=FILE or as <file>.asc, or skip verification with --insecure-options=image`);
}

/** What to write after --prefix= in hints: the image name if we have one. */
function prefixHint(image: string | undefined): string {
  return image && isACIdentifier(image) ? image : 'IMAGE_NAME_PREFIX';
}

/**
 * Sink that forwards to the verifier with backpressure, and swallows the rest once the
 * verification has failed, so the fetch pipeline is never left waiting on a dead reader.
 */
class VerifySink extends Writable {
  private waiting: (() => void) | undefined;
  private abandoned = false;
  /** Why the writer gave up, if it did: then that, not a signature problem, is the error. */
  aborted: Error | undefined;

  constructor(private readonly out: PassThrough) {
    super();
    out.on('drain', () => this.release());
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    if (this.abandoned || this.out.write(chunk)) done();
    else this.waiting = done;
  }

  override _final(done: () => void): void {
    if (!this.abandoned) this.out.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // Destroyed before the end (the fetch failed): stop the verification too, so it rejects.
    if (!this.abandoned && (err || !this.writableFinished)) {
      this.aborted = err ?? new Error('image download was aborted');
      this.out.destroy(this.aborted);
    }
    done(err);
  }

  abandon(): void {
    this.abandoned = true;
    this.release();
  }

  private release(): void {
    const done = this.waiting;
    this.waiting = undefined;
    done?.();
  }
}

async function readSignature(signature: Buffer): Promise<openpgp.Signature> {
  const text = signature.toString('latin1').trimStart();
  if (text.startsWith('-----BEGIN PGP')) return openpgp.readSignature({ armoredSignature: text });
  return openpgp.readSignature({ binarySignature: new Uint8Array(signature) });
}

/**
 * Starts checking `signature` over the bytes written to `sink`. `image` names the image in
 * error messages (as the user gave it: name, file or URL). `result` settles after `sink` ends.
 */
export function startVerification(
  signature: Buffer,
  candidateKeys: TrustedKey[],
  image?: string,
): { sink: Writable; result: Promise<SignerInfo> } {
  const data = new PassThrough();
  data.on('error', () => {}); // failures surface through `result`
  const sink = new VerifySink(data);
  const result = verifyStream(signature, candidateKeys, image, webStreamOf(data)).catch((e: unknown) => {
    sink.abandon();
    throw sink.aborted ?? e;
  });
  // Marked handled so a fetch that aborts before awaiting it does not crash the process;
  // whoever awaits `result` still gets the rejection.
  result.catch(() => {});
  return { sink, result };
}

/**
 * A web stream of a byte stream's chunks, as views: Readable.toWeb copies every chunk
 * (new Uint8Array(buffer)), which cost as much as the signature's hashing itself.
 */
function webStreamOf(stream: Readable): ReadableStream<Uint8Array> {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await chunks.next();
      if (done) controller.close();
      else controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    },
    cancel(reason) {
      stream.destroy(reason instanceof Error ? reason : undefined);
    },
  }, { highWaterMark: 0 });
}

async function verifyStream(signatureBytes: Buffer, candidates: TrustedKey[], image: string | undefined, data: ReadableStream): Promise<SignerInfo> {
  const what = image ? `image "${image}"` : 'the image';
  let signature: openpgp.Signature;
  try {
    signature = await readSignature(signatureBytes);
  } catch (e) {
    throw new RktError(`signature of ${what} is not an OpenPGP signature (${errorMessage(e)}): get the image's detached .asc signature`);
  }

  // The first signature whose key we hold decides, as Go's openpgp did for rkt.
  const packets = [...signature.packets];
  let index = -1;
  let signer: TrustedKey | undefined;
  for (const [i, packet] of packets.entries()) {
    signer = candidates.find((c) => c.key.getKeys(packet.issuerKeyID).length > 0);
    if (signer) { index = i; break; }
  }
  if (!signer) {
    const ids = packets.map((p) => p.issuerKeyID.toHex()).join(', ') || 'none';
    throw new RktError(
      `${what} is signed by key ${ids}, which is not in the trust store: trust it with "rkt trust --prefix=${prefixHint(image)} <key file>"`,
    );
  }

  const fp = signer.fingerprint;
  try {
    const message = await openpgp.createMessage({ binary: data });
    const verification = await openpgp.verify({ message, signature, verificationKeys: [signer.key], format: 'binary' });
    // The digest is computed as the data is read, so drain it; `for await` does not work on this stream.
    const reader = (verification.data as ReadableStream<Uint8Array>).getReader();
    while (!(await reader.read()).done);
    await verification.signatures[index].verified;
  } catch (e) {
    const reason = errorMessage(e);
    if (/digest did not match/i.test(reason)) {
      throw new RktError(`signature of ${what} does not match its content (signed by key ${fp}): the image or signature is corrupt or was tampered with`);
    }
    if (/revoked/i.test(reason)) throw revokedError(what, fp, signer.path);
    if (/expired/i.test(reason)) {
      const made = packets[index].created?.toISOString() ?? 'unknown time';
      throw new RktError(`${what} is signed by key ${fp}, which had already expired when the signature was made (${made}): get an image signed with a current key`);
    }
    throw new RktError(`signature of ${what} by key ${fp} was rejected: ${reason}`);
  }
  // Valid when it signed (openpgp.js checked that); it may have expired since.
  const signedAt = packets[index].created ?? undefined;
  const { expired, revoked } = await keyValidity(signer.key, new Date(), packets[index].issuerKeyID);
  // openpgp.js lets a signature older than a "soft" revocation (key superseded or retired) pass; rkt refuses any revoked key.
  if (revoked !== undefined) throw revokedError(what, fp, signer.path);
  return { fingerprint: fp, identities: signer.key.getUserIDs(), expiredSince: expired, signedAt };
}


function revokedError(what: string, fp: string, keyFile: string): RktError {
  return new RktError(`${what} is signed by key ${fp}, which was revoked by its owner: get an image signed with a current key and remove "${keyFile}"`);
}

/** After the manifest is read: the signer must be trusted for the image's own name. */
export async function assertTrustedFor(imageName: string, signer: SignerInfo, store: KeyStore): Promise<void> {
  assertTrustedFingerprint(imageName, signer, (await store.keysForName(imageName)).map((k) => k.fingerprint));
}

export { expiredSinceWarning };
