import { describe, expect, test } from '@jest/globals';
import { ceilQuantity, isQuantity, parseCpuMillis, parseMemoryBytes, parseQuantity } from '../../../src/image/quantity.js';
import { RktError } from '../../../src/util/errors.js';

describe('parseQuantity', () => {
  test.each([
    ['0', 0],
    ['1', 1],
    ['128974848', 128974848],
    ['+5', 5],
    ['-5', -5],
    ['1.5', 1.5],
    ['.5', 0.5],
    ['2.', 2],
    ['1k', 1e3],
    ['1K', 1e3],
    ['128M', 128e6],
    ['1G', 1e9],
    ['2T', 2e12],
    ['3P', 3e15],
    ['1E', 1e18],
    ['1Ki', 1024],
    ['16Mi', 16 * 2 ** 20],
    ['125952Ki', 128974848],
    ['123Mi', 128974848],
    ['1Gi', 2 ** 30],
    ['1Ti', 2 ** 40],
    ['1Pi', 2 ** 50],
    ['1Ei', 2 ** 60],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['300m', 0.3],
    ['16m', 0.016],
    ['5u', 5e-6],
    ['7n', 7e-9],
    ['1e3', 1000],
    ['1E3', 1000],
    ['2e-3', 0.002],
    ['1.5e+2', 150],
  ])('%p = %p', (s, v) => expect(parseQuantity(s)).toBeCloseTo(v, 12));

  test.each(['', 'abc', '1.2.3', '12 M', ' 1', 'M', '1Z', '1mi', '1KiB', '1e', '--1', '1e999', '0x10', '1,5'])(
    'rejects %p with a hint', (s) => {
      expect(isQuantity(s)).toBe(false);
      expect(() => parseQuantity(s)).toThrow(RktError);
      expect(() => parseQuantity(s)).toThrow(
        `bad quantity ${JSON.stringify(s)}: use a number with an optional suffix, e.g. 500m, 2, 128M or 1Gi`,
      );
    },
  );
});

describe('ceilQuantity', () => {
  test('is exact where floating point is not', () => {
    // 0.1 * 1000 is 100.00000000000001 in floating point.
    expect(ceilQuantity('0.1', 1000)).toBe(100);
    expect(ceilQuantity('0.7', 1000)).toBe(700);
    expect(ceilQuantity('1.1Gi')).toBe(Math.ceil(1.1 * 2 ** 30));
  });
  test('rounds up like Kubernetes', () => {
    expect(ceilQuantity('16m')).toBe(1);
    expect(ceilQuantity('0.5m', 1000)).toBe(1);
    expect(ceilQuantity('1500m')).toBe(2);
    expect(ceilQuantity('-1500m')).toBe(-1);
    expect(ceilQuantity('0')).toBe(0);
  });
});

describe('parseMemoryBytes', () => {
  test.each([
    ['128M', 128_000_000],
    ['128Mi', 134_217_728],
    ['16Mi', 16_777_216],
    ['4096', 4096],
    ['4Ki', 4096],
    ['1G', 1e9],
    ['1.5Gi', 1_610_612_736],
    ['4096.5', 4097],
  ])('%p = %p bytes', (s, n) => expect(parseMemoryBytes(s)).toBe(n));

  test.each(['16m', '4095', '4k', '0', '-1G'])('rejects %p as too small', (s) => {
    expect(() => parseMemoryBytes(s)).toThrow(
      `--memory value ${JSON.stringify(s)} is too small: use at least 4096 bytes (e.g. 128M or 16Mi)`,
    );
  });
  test('gives the exact message for 16m (millibytes)', () => {
    expect(() => parseMemoryBytes('16m')).toThrow('--memory value "16m" is too small: use at least 4096 bytes (e.g. 128M or 16Mi)');
  });
  test('rejects garbage', () => {
    expect(() => parseMemoryBytes('lots')).toThrow('--memory value "lots" is not a quantity: use e.g. 128M or 16Mi');
    expect(() => parseMemoryBytes('128 MB')).toThrow(RktError);
  });
  test('rejects values past the safe integer range', () => {
    expect(() => parseMemoryBytes('100Ei')).toThrow('--memory value "100Ei" is too large');
  });
});

describe('parseCpuMillis', () => {
  test.each([
    ['750m', 750],
    ['1', 1000],
    ['0.5', 500],
    ['2.5', 2500],
    ['1000m', 1000],
    ['0.0001', 1],
    ['1k', 1_000_000],
    ['3e0', 3000],
  ])('%p = %p millicores', (s, n) => expect(parseCpuMillis(s)).toBe(n));

  test.each(['0', '0m', '-1', '-500m'])('rejects %p as not positive', (s) => {
    expect(() => parseCpuMillis(s)).toThrow(
      `--cpu value ${JSON.stringify(s)} must be more than zero: use e.g. 500m for half a core or 2 for two cores`,
    );
  });
  test.each(['', 'fast', '1 core', '50%'])('rejects garbage %p', (s) => {
    expect(() => parseCpuMillis(s)).toThrow(
      `--cpu value ${JSON.stringify(s)} is not a quantity: use e.g. 500m for half a core or 2 for two cores`,
    );
  });
  test('rejects absurdly large values', () => {
    expect(() => parseCpuMillis('1Ei')).toThrow('--cpu value "1Ei" is too large');
  });
});
