/**
 * Limits on what a fetch may take from a server or an image, so that a hostile or broken
 * source can neither hang rkt nor fill the disk:
 *   --http-connect-timeout  TCP (and TLS) connection set-up, default 30s
 *   --http-stall-timeout    time without a byte while rkt is waiting for one, default 60s
 *   --max-download-size     bytes read of an image (compressed, as served or stored)
 *   --max-expanded-size     bytes of its uncompressed tar (what extraction writes)
 * The two sizes default to the free space of the data dir's filesystem less a margin,
 * measured when the import starts: a larger image could not be stored anyway.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RktError, fail } from '../util/errors.js';
import { formatDurationMs } from '../util/duration.js';
import { isQuantity, ceilQuantity } from './quantity.js';

export interface FetchLimits {
  connectTimeoutMs: number;
  stallTimeoutMs: number;
  /** undefined: the data dir's free space less a margin */
  maxDownloadBytes?: number;
  maxExpandedBytes?: number;
}

export const DEFAULT_LIMITS: FetchLimits = { connectTimeoutMs: 30_000, stallTimeoutMs: 60_000 };

/** Kept free on the data dir's filesystem: 5 % of its size, at most 1 GiB. */
const MARGIN_SHARE = 0.05;
const MARGIN_MAX = 1024 ** 3;

/** A limit stopped the fetch; nothing of it is kept. */
export class FetchLimitError extends RktError {}

/** --max-download-size or --max-expanded-size stopped the fetch. */
export class SizeLimitError extends FetchLimitError {}

/** A size flag: bytes, or a number with a suffix (k, M, G, Ki, Mi, Gi, ...). */
export function parseSizeFlag(raw: string, flag: string): number {
  const hint = 'use bytes or a number with a suffix, e.g. 512M or 2Gi';
  if (!isQuantity(raw)) fail(`invalid --${flag} "${raw}": ${hint}`);
  const bytes = ceilQuantity(raw);
  if (bytes <= 0 || !Number.isSafeInteger(bytes)) fail(`invalid --${flag} "${raw}": must be more than 0 bytes; ${hint}`);
  return bytes;
}

export function formatBytes(n: number): string {
  const units: Array<[number, string]> = [[1024 ** 4, 'TiB'], [1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']];
  for (const [size, unit] of units) {
    if (n >= size) return `${Number((n / size).toFixed(1))} ${unit}`;
  }
  return `${n} B`;
}

/** The first existing directory at or above `dir` (the data dir may not exist yet). */
function existingAncestor(dir: string): string {
  let d = dir;
  while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
}

/** Free space of `dir`'s filesystem for unprivileged writers, less the margin; at least 0. */
export function freeSpaceLimit(dir: string): number {
  const st = fs.statfsSync(existingAncestor(dir));
  const margin = Math.min(MARGIN_MAX, st.blocks * st.bsize * MARGIN_SHARE);
  return Math.max(0, Math.floor(st.bavail * st.bsize - margin));
}

export interface SizeLimit {
  bytes: number;
  flag: 'max-download-size' | 'max-expanded-size';
  /** Set when the limit is the default: the data dir whose free space it is. */
  freeSpaceOf?: string;
}

/** The download and expanded-size limits in force for an import into `dataDir`. */
export function sizeLimits(limits: FetchLimits | undefined, dataDir: string): { download: SizeLimit; expanded: SizeLimit } {
  let free: number | undefined;
  const pick = (given: number | undefined, flag: SizeLimit['flag']): SizeLimit => {
    if (given !== undefined) return { bytes: given, flag };
    free ??= freeSpaceLimit(dataDir);
    return { bytes: free, flag, freeSpaceOf: dataDir };
  };
  return { download: pick(limits?.maxDownloadBytes, 'max-download-size'), expanded: pick(limits?.maxExpandedBytes, 'max-expanded-size') };
}

/** One line naming the source, the limit and the way out. */
export function sizeLimitError(source: string, limit: SizeLimit, what: 'download' | 'expanded'): SizeLimitError {
  const size = formatBytes(limit.bytes);
  const subject = what === 'download' ? `image ${source} is larger than ${size}` : `image ${source} expands to more than ${size}`;
  if (limit.freeSpaceOf) {
    return new SizeLimitError(
      `${subject}, the free space in ${limit.freeSpaceOf} less a margin (--${limit.flag}): free space there, use another --dir, or set --${limit.flag}=SIZE`,
    );
  }
  return new SizeLimitError(`${subject} (--${limit.flag}=${limit.bytes}): if that is expected, raise it with --${limit.flag}=SIZE`);
}

export function connectTimeoutError(url: string, ms: number): FetchLimitError {
  const d = formatDurationMs(ms);
  return new FetchLimitError(`cannot fetch ${url}: no connection within ${d} (--http-connect-timeout=${d}): check the server, or raise it with --http-connect-timeout=DURATION`);
}

export function stallTimeoutError(url: string, ms: number, started: boolean): FetchLimitError {
  const d = formatDurationMs(ms);
  const what = started ? 'the download stalled' : 'the server sent no answer';
  return new FetchLimitError(`cannot fetch ${url}: ${what} for ${d} (--http-stall-timeout=${d}): retry later, or raise it with --http-stall-timeout=DURATION`);
}
