import { describe, expect, test } from '@jest/globals';
import { parseDurationMs } from '../../../src/util/duration.js';
import { RktError } from '../../../src/util/errors.js';

describe('parseDurationMs', () => {
  test.each([
    ['30m0s', 30 * 60_000],
    ['24h', 24 * 3_600_000],
    ['1h30m', 90 * 60_000],
    ['500ms', 500],
    ['10s', 10_000],
    ['1m', 60_000],
    ['1.5s', 1500],
    ['2h45m30s', (2 * 3600 + 45 * 60 + 30) * 1000],
    ['1000us', 1],
    ['1000µs', 1],
    ['2000000ns', 2],
    ['0', 0],
    ['0s', 0],
  ])('%s is %d ms', (s, ms) => {
    expect(parseDurationMs(s, 'grace-period')).toBe(ms);
  });

  test.each(['', '10', 'abc', '10x', '5m garbage', ' 5m', '5m ', 'm', '1h-30m'])('rejects %j with a one-line message naming the flag', (s) => {
    expect(() => parseDurationMs(s, 'grace-period')).toThrow(RktError);
    expect(() => parseDurationMs(s, 'grace-period')).toThrow(
      `invalid duration "${s}" for --grace-period: use forms like 30m0s, 24h, 10s or 0s`,
    );
  });
});
