import { describe, expect, test } from '@jest/globals';
import { randomBelow, randomHex16, randomUuid } from '../../../src/util/random.js';

describe('random values from the kernel', () => {
  test('a v4 UUID, different each time', () => {
    const a = randomUuid();
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(randomUuid()).not.toBe(a);
  });

  test('16 hex digits, different each time', () => {
    const a = randomHex16();
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(randomHex16()).not.toBe(a);
  });

  test('randomBelow stays in [0, max) and reaches both ends of a small range', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) {
      const n = randomBelow(4);
      expect(Number.isInteger(n) && n >= 0 && n < 4).toBe(true);
      seen.add(n);
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
    expect(randomBelow(1)).toBe(0);
  });
});
