/**
 * Partial downloads kept for resuming, as rkt kept them: when a download from a URL is cut
 * short (the connection dropped or stalled, rkt was killed), the bytes received stay in
 * cas/tmp/partial-<hash of the URL>. The next fetch of that URL asks for the rest with
 * `Range` and `If-Range` (the server sends the whole image again if it changed), and the
 * importer reads the kept bytes then the rest, verifying the whole as usual.
 *
 * The file is one header line, JSON {url, validator}, then the bytes: the URL and the
 * validator cannot be separated from the bytes they describe. cas/tmp is writable by group
 * rkt, so a kept file is used only when it is ours (our uid, a regular file, mode 0600, one
 * link), opened without following symlinks, and read and written through that one fd.
 * Chunks are written at their offset in the download (pwrite). While a fetch uses the file
 * it has the fetch's staging name (src/store/staging.ts RESTORE_AS): `rkt image gc` leaves it
 * alone, a second fetch of the same URL starts a file of its own, and it gets its name back
 * when the fetch ends without the image, or once a killed fetch's leftovers are collected.
 *
 * Bounds: one partial per URL, never larger than the download limit (the bytes come from a
 * download that limit already bounds), removed once the image is stored, when the fetch
 * fails for any reason other than the connection, and by `rkt image gc`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { RESTORE_AS } from './staging.js';

interface Header { url: string; validator: string }

export const PARTIAL_PREFIX = 'partial-';
const MAX_HEADER = 16 * 1024;
const MODE = 0o600;

/**
 * A validator If-Range may carry: a strong ETag, else a Last-Modified date (RFC 9110
 * 13.1.5: never a weak ETag). Undefined when the response has neither: nothing is kept.
 */
export function rangeValidator(etag: string | undefined, lastModified: string | null | undefined): string | undefined {
  if (etag && !etag.startsWith('W/')) return etag;
  return lastModified ?? undefined;
}

export class PartialDownload {
  /** Its name between fetches. */
  readonly file: string;
  /** Its name while this fetch uses it. */
  private readonly inUse: string;
  private fd: number | undefined;
  /** Where the bytes start in the file (after the header). */
  private dataStart = 0;
  /** Bytes of the download written so far (what a resume asks the rest of). */
  private written = 0;

  /** `staging`: a fresh staging path of this process (ImageStore.staging). */
  constructor(tmpDir: string, readonly url: string, staging: (suffix: string) => string) {
    const key = crypto.createHash('sha256').update(url).digest('hex').slice(0, 32);
    this.file = path.join(tmpDir, `${PARTIAL_PREFIX}${key}`);
    this.inUse = staging(`${RESTORE_AS}${PARTIAL_PREFIX}${key}`);
  }

  /**
   * Opens what an interrupted download of this URL kept: its bytes and validator, when a
   * resume can be asked for. Anything else under the name (another URL's, another user's,
   * a symlink, a file without our header) is removed and never read.
   */
  resumable(): { bytes: number; validator: string } | undefined {
    let fd: number;
    try {
      fs.renameSync(this.file, this.inUse); // taken: no one else's from now on
      fd = fs.openSync(this.inUse, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
    } catch {
      this.discard(); // absent, or a symlink (ELOOP): nothing of ours to resume
      return undefined;
    }
    const header = ownHeader(fd);
    if (!header || header.header.url !== this.url || !header.header.validator || header.size <= header.length) {
      fs.closeSync(fd);
      this.discard();
      return undefined;
    }
    this.fd = fd;
    this.dataStart = header.length;
    this.written = header.size - header.length;
    return { bytes: this.written, validator: header.header.validator };
  }

  /**
   * Starts keeping a new download (what was kept for the URL is dropped). Without a
   * validator nothing is kept: a resume could not be checked against the server's copy.
   */
  start(validator: string | undefined): void {
    this.close();
    this.discard();
    this.written = 0;
    if (!validator) return;
    const line = Buffer.from(`${JSON.stringify({ url: this.url, validator } satisfies Header)}\n`);
    if (line.length > MAX_HEADER) return;
    try {
      // O_EXCL: never through a symlink or into a file someone else made under the name.
      const fd = fs.openSync(this.inUse, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, MODE);
      fs.fchmodSync(fd, MODE); // the umask may only take bits away; make it exact
      fs.writeSync(fd, line, 0, line.length, 0);
      this.fd = fd;
      this.dataStart = line.length;
    } catch {
      this.close();
      // Keeping is a convenience: without it the download goes on and is simply not resumable.
    }
  }

  /** Passes the body on, writing each chunk into the partial file (when one is kept). */
  keeper(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.keep(chunk);
        cb(null, chunk);
      },
    });
  }

  private keep(chunk: Buffer): void {
    if (this.fd === undefined) return;
    try {
      let done = 0;
      while (done < chunk.length) {
        done += fs.writeSync(this.fd, chunk, done, chunk.length - done, this.dataStart + this.written + done);
      }
      this.written += chunk.length;
    } catch {
      // Out of space, say: what was written is still a prefix; stop keeping more. The
      // next resume asks for the rest from the file's size, so cut any torn chunk off.
      try { fs.ftruncateSync(this.fd, this.dataStart + this.written); } catch { /* the file is dropped below */ }
      this.close();
    }
  }

  /** The first `bytes` kept (what was there when the resume was asked for), then `rest`. */
  resumed(bytes: number, rest: Readable): Readable {
    const fd = this.fd;
    if (fd === undefined) throw new Error('no partial download is open');
    const start = this.dataStart;
    return Readable.from((async function* concat() {
      yield* fs.createReadStream('', { fd, start, end: start + bytes - 1, autoClose: false, highWaterMark: 1024 * 1024 });
      yield* rest;
    })(), { objectMode: false });
  }

  /** Stops writing; what was kept stays for the next fetch, under its own name. */
  close(): void {
    if (this.fd === undefined) return;
    try { fs.closeSync(this.fd); } catch { /* already closed */ }
    this.fd = undefined;
    try { fs.renameSync(this.inUse, this.file); } catch { /* removed meanwhile */ }
  }

  /** Drops the partial: stored, refused, or not to be trusted. */
  remove(): void {
    this.close();
    this.discard();
  }

  private discard(): void {
    for (const f of [this.inUse, this.file]) {
      try { fs.rmSync(f, { force: true }); } catch { /* not ours to remove (another user's): left to gc */ }
    }
  }
}

/** The header of a partial file that is ours and private, and the file's size; else undefined. */
function ownHeader(fd: number): { header: Header; length: number; size: number } | undefined {
  const st = fs.fstatSync(fd);
  const uid = process.geteuid?.() ?? st.uid;
  if (!st.isFile() || st.uid !== uid || (st.mode & 0o777) !== MODE || st.nlink !== 1) return undefined;
  const head = Buffer.alloc(Math.min(MAX_HEADER, st.size));
  const got = fs.readSync(fd, head, 0, head.length, 0);
  const end = head.subarray(0, got).indexOf(0x0a);
  if (end < 0) return undefined;
  try {
    const header = JSON.parse(head.subarray(0, end).toString('utf8')) as Header;
    if (typeof header.url !== 'string' || typeof header.validator !== 'string') return undefined;
    return { header, length: end + 1, size: st.size };
  } catch {
    return undefined;
  }
}

/** Every partial download in tmpDir (what `rkt image gc` removes). */
export function removePartials(tmpDir: string): string[] {
  let names: string[];
  try { names = fs.readdirSync(tmpDir); } catch { return []; }
  const gone = names.filter((n) => n.startsWith(PARTIAL_PREFIX));
  for (const n of gone) fs.rmSync(path.join(tmpDir, n), { force: true });
  return gone;
}
