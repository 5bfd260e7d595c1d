import { describe, expect, test } from '@jest/globals';
import { parseDurationMs, parseWaitMs } from '../../../src/util/duration.js';
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

describe('parseWaitMs (status --wait, --wait-ready)', () => {
  test.each([
    ['', Infinity], ['true', Infinity], ['1', Infinity], ['t', Infinity], ['TRUE', Infinity], ['True', Infinity],
    ['false', 0], ['0', 0], ['f', 0], ['FALSE', 0], ['0s', 0], ['-0s', 0],
    ['10s', 10_000], ['+1m', 60_000], ['1m30s', 90_000], ['500ms', 500],
    // Negative: for ever, as rkt.
    ['-1s', Infinity], ['-5m', Infinity],
  ])('%j is %d ms', (s, ms) => {
    expect(parseWaitMs(s, 'wait')).toBe(ms);
  });

  test.each([
    ['yes', 'invalid value "yes"'], ['--1s', 'invalid value "--1s"'], ['-', 'invalid value "-"'],
    ['10', 'invalid duration "10"'], ['1s-', 'invalid duration "1s-"'],
  ])('rejects %j in one line naming the flag', (s, what) => {
    expect(() => parseWaitMs(s, 'wait-ready')).toThrow(`${what} for --wait-ready: use true, false or a duration like 10s, 500ms or 1m30s`);
  });
});
