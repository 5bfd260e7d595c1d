/**
 * Resource quantities as appc's resource isolators write them (the Kubernetes model):
 * a decimal number with an optional suffix, read exactly (as a fraction of BigInts) so
 * that "0.1" and "100m" give the same integer after rounding.
 *   n u m            10^-9 10^-6 10^-3   (so "16m" is 16 milli-units, not megabytes)
 *   k/K M G T P E    10^3 .. 10^18
 *   Ki Mi Gi Ti Pi Ei 2^10 .. 2^60
 *   e<N> / E<N>      10^N, e.g. "1e3"
 * appc only has lower-case "k"; "K" is accepted too since people write it.
 */
import { fail } from '../util/errors.js';

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkKMGTPE])|[eE]([+-]?\d+))?$/;

const DECIMAL_SUFFIX: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, K: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIX: Record<string, bigint> = { Ki: 10n, Mi: 20n, Gi: 30n, Ti: 40n, Pi: 50n, Ei: 60n };

const EXAMPLES = 'e.g. 500m, 2, 128M or 1Gi';

/** An exact value num/den (den > 0). */
interface Fraction { num: bigint; den: bigint }

function parseExact(s: string): Fraction | undefined {
  const m = QUANTITY.exec(s);
  if (!m) return undefined;
  const [, sign, number, suffix, exponent] = m;
  const [whole, frac = ''] = number!.split('.');
  let num = BigInt((whole || '0') + frac);
  let exp10 = -frac.length;
  if (exponent !== undefined) {
    // Bound the exponent so a typo like "1e999999" cannot make a huge BigInt.
    const e = Number(exponent);
    if (Math.abs(e) > 100) return undefined;
    exp10 += e;
  } else if (suffix !== undefined) {
    if (suffix in BINARY_SUFFIX) num <<= BINARY_SUFFIX[suffix]!;
    else exp10 += DECIMAL_SUFFIX[suffix]!;
  }
  if (sign === '-') num = -num;
  return exp10 >= 0 ? { num: num * 10n ** BigInt(exp10), den: 1n } : { num, den: 10n ** BigInt(-exp10) };
}

export function isQuantity(s: string): boolean {
  return parseExact(s) !== undefined;
}

/** The value in base units (bytes, cores, ...); may be fractional. */
export function parseQuantity(s: string): number {
  const q = parseExact(s);
  if (!q) fail(`bad quantity ${JSON.stringify(s)}: use a number with an optional suffix, ${EXAMPLES}`);
  return Number(q.num) / Number(q.den);
}

/**
 * The value times `scale`, rounded up to an integer as Kubernetes does
 * (so "0.5m" of a core is 1 millicore). Throws on a malformed quantity.
 */
export function ceilQuantity(s: string, scale = 1): number {
  const q = parseExact(s);
  if (!q) fail(`bad quantity ${JSON.stringify(s)}: use a number with an optional suffix, ${EXAMPLES}`);
  const num = q.num * BigInt(scale);
  const floor = num / q.den - (num % q.den < 0n ? 1n : 0n);
  return Number(num % q.den === 0n ? floor : floor + 1n);
}

const MIN_MEMORY = 4096;

/** `--memory` as integer bytes; rejects values under 4 KiB, which are almost always a "16m" typo. */
export function parseMemoryBytes(s: string): number {
  if (!isQuantity(s)) fail(`--memory value ${JSON.stringify(s)} is not a quantity: use e.g. 128M or 16Mi`);
  const bytes = ceilQuantity(s);
  if (bytes < MIN_MEMORY) {
    fail(`--memory value ${JSON.stringify(s)} is too small: use at least ${MIN_MEMORY} bytes (e.g. 128M or 16Mi)`);
  }
  if (!Number.isSafeInteger(bytes)) fail(`--memory value ${JSON.stringify(s)} is too large: use e.g. 128M or 16Gi`);
  return bytes;
}

/** `--cpu` in millicores: "750m" → 750, "1" → 1000, "0.5" → 500. */
export function parseCpuMillis(s: string): number {
  const hint = 'use e.g. 500m for half a core or 2 for two cores';
  if (!isQuantity(s)) fail(`--cpu value ${JSON.stringify(s)} is not a quantity: ${hint}`);
  const millis = ceilQuantity(s, 1000);
  if (millis <= 0) fail(`--cpu value ${JSON.stringify(s)} must be more than zero: ${hint}`);
  if (!Number.isSafeInteger(millis)) fail(`--cpu value ${JSON.stringify(s)} is too large: ${hint}`);
  return millis;
}
