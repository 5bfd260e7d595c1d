/**
 * Random values from the kernel (/proc/sys/kernel/random/uuid: 122 random bits per read),
 * for the names and choices on the `run` path: loading node:crypto there costs a few ms
 * of start-up. Not for keys or anything secret.
 */
import fs from 'node:fs';

/** A random v4 UUID, as crypto.randomUUID() gives. */
export function randomUuid(): string {
  return fs.readFileSync('/proc/sys/kernel/random/uuid', 'utf8').trim();
}

/** 16 random hex digits (64 bits). */
export function randomHex16(): string {
  const hex = randomUuid().replace(/-/g, '');
  // Skip the version (position 12) and variant (16) digits, which are not random.
  return hex.slice(0, 12) + hex.slice(13, 16) + hex.slice(17, 18);
}

/** A random integer in [0, max), max at most 2^48 (bias below 2^-20 for the pod counts here). */
export function randomBelow(max: number): number {
  const hex = randomUuid().replace(/-/g, '');
  const bits = BigInt(`0x${hex.slice(0, 12)}${hex.slice(13, 16)}${hex.slice(17, 18)}`); // 64 random bits
  return Number(bits % BigInt(max));
}
