/**
 * Partial downloads kept for resuming, as rkt kept them: when a download from a URL is cut
 * short (the connection dropped, rkt was killed), the bytes received stay in
 * cas/tmp/partial-<hash of the URL> with the response's validator (ETag, else
 * Last-Modified) in a .json beside it. The next fetch of that URL asks for the rest with
 * `Range` and `If-Range` (the server sends the whole image again if it changed), and the
 * importer reads the kept bytes then the rest, verifying the whole as usual.
 *
 * Bounds: one partial per URL, never larger than the download limit (the bytes come from a
 * download that limit already bounds), removed once the image is stored, when the fetch
 * fails for any reason other than the connection, and by `rkt image gc`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';

export interface PartialMeta { url: string; validator: string; bytes?: number }

export const PARTIAL_PREFIX = 'partial-';

export class PartialDownload {
  readonly file: string;
  readonly metaFile: string;

  constructor(tmpDir: string, readonly url: string) {
    const key = crypto.createHash('sha256').update(url).digest('hex').slice(0, 32);
    this.file = path.join(tmpDir, `${PARTIAL_PREFIX}${key}`);
    this.metaFile = `${this.file}.json`;
  }

  /** Bytes kept and their validator, when a resume can be asked for. */
  resumable(): { bytes: number; validator: string } | undefined {
    try {
      const meta = JSON.parse(fs.readFileSync(this.metaFile, 'utf8')) as PartialMeta;
      const bytes = fs.statSync(this.file).size;
      if (meta.url !== this.url || !meta.validator || bytes === 0) return undefined;
      return { bytes, validator: meta.validator };
    } catch {
      return undefined;
    }
  }

  /** Starts keeping a new download (any earlier partial of the URL is dropped). */
  start(validator: string | undefined): void {
    this.remove();
    if (!validator) return; // nothing to check a resume against: keep nothing
    fs.writeFileSync(this.metaFile, JSON.stringify({ url: this.url, validator } satisfies PartialMeta), { mode: 0o600 });
    fs.writeFileSync(this.file, '', { mode: 0o600 });
  }

  /** Passes the body on and appends each chunk to the partial file (when one is kept). */
  keeper(): Transform {
    const keep = fs.existsSync(this.metaFile);
    const fd = keep ? fs.openSync(this.file, 'a') : undefined;
    const close = () => { if (fd !== undefined) try { fs.closeSync(fd); } catch { /* closed */ } };
    return new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (fd !== undefined) fs.writeSync(fd, chunk);
        cb(null, chunk);
      },
      flush(cb) { close(); cb(); },
      destroy(err, cb) { close(); cb(err); },
    });
  }

  /** The first `bytes` kept (what was there when the resume was asked for), then `rest`. */
  resumed(bytes: number, rest: Readable): Readable {
    const file = this.file;
    return Readable.from((async function* concat() {
      yield* fs.createReadStream(file, { highWaterMark: 1024 * 1024, end: bytes - 1 });
      yield* rest;
    })(), { objectMode: false });
  }

  remove(): void {
    fs.rmSync(this.file, { force: true });
    fs.rmSync(this.metaFile, { force: true });
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
