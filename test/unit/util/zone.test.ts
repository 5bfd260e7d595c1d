import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { loadLocalZone, parseTzif, parseTzRule, UTC_ZONE, zoneTypeAt, type Zone } from '../../../src/util/zone.js';
import { goTime } from '../../../src/util/table.js';

interface Data { times: number[]; index: number[]; types: Array<[number, boolean, string]> }

/** One TZif data block (header included) with 4- or 8-byte times. */
function block(version: string, d: Data, timeSize: 4 | 8): Buffer {
  const names: number[] = [];
  let chars = '';
  for (const [, , name] of d.types) {
    names.push(chars.length);
    chars += `${name}\0`;
  }
  const header = Buffer.alloc(44);
  header.write('TZif', 0, 'latin1');
  header.write(version, 4, 'latin1');
  [0, 0, 0, d.times.length, d.types.length, chars.length].forEach((n, i) => header.writeUInt32BE(n, 20 + 4 * i));
  const times = Buffer.alloc(d.times.length * timeSize);
  d.times.forEach((t, i) => (timeSize === 8 ? times.writeBigInt64BE(BigInt(t), i * 8) : times.writeInt32BE(t, i * 4)));
  const types = Buffer.alloc(d.types.length * 6);
  d.types.forEach(([offset, isDst], i) => {
    types.writeInt32BE(offset, i * 6);
    types[i * 6 + 4] = isDst ? 1 : 0;
    types[i * 6 + 5] = names[i];
  });
  return Buffer.concat([header, times, Buffer.from(d.index), types, Buffer.from(chars, 'latin1')]);
}

/** A version 2 file: a 32-bit block (here deliberately different), the 64-bit one, the TZ footer. */
function tzif2(d: Data, footer: string, v1: Data = { times: [], index: [], types: [[0, false, 'V1']] }): Buffer {
  return Buffer.concat([block('2', v1, 4), block('2', d, 8), Buffer.from(`\n${footer}\n`, 'latin1')]);
}

// Berlin as the tz database has it, cut down: LMT (until 1893 there, 1906 here: a 32-bit time),
// then CET, one summer of CEST in 2024.
const SUMMER_2024 = Date.UTC(2024, 2, 31, 1) / 1000;
const WINTER_2024 = Date.UTC(2024, 9, 27, 1) / 1000;
const BERLIN: Data = {
  times: [-2e9, SUMMER_2024, WINTER_2024],
  index: [2, 1, 2],
  types: [[3208, false, 'LMT'], [7200, true, 'CEST'], [3600, false, 'CET']],
};
const berlin = () => parseTzif(tzif2(BERLIN, 'CET-1CEST,M3.5.0,M10.5.0/3'))!;
const at = (y: number, m: number, d: number) => Date.UTC(y, m, d, 12) / 1000;

describe('parseTzif', () => {
  test('reads the 64-bit block of a version 2 file and its footer rule', () => {
    const z = berlin();
    expect(z.times).toEqual(BERLIN.times);
    expect(z.index).toEqual(BERLIN.index);
    expect(z.types.map((t) => t.name)).toEqual(['LMT', 'CEST', 'CET']);
    expect(z.types[1]).toEqual({ offset: 7200, isDst: true, name: 'CEST' });
    expect(z.rule).toEqual({ std: { name: 'CET', offset: 3600, isDst: false }, dst: { name: 'CEST', offset: 7200, isDst: true } });
  });

  test('a version 1 file has 32-bit times and no rule', () => {
    const z = parseTzif(block('\0', BERLIN, 4))!;
    expect(z.times).toEqual(BERLIN.times);
    expect(z.rule).toBeUndefined();
  });

  test.each([
    ['a wrong magic', Buffer.from('TZib'.padEnd(60, '\0'), 'latin1')],
    ['a truncated file', tzif2(BERLIN, 'CET-1').subarray(0, 120)],
    ['no types', block('\0', { times: [], index: [], types: [] }, 4)],
    ['a transition to a type that does not exist', block('\0', { times: [0], index: [5], types: [[0, false, 'UTC']] }, 4)],
    ['an empty file', Buffer.alloc(0)],
  ])('refuses %s', (_, buf) => {
    expect(parseTzif(buf)).toBeUndefined();
  });
});

describe('parseTzRule', () => {
  test.each([
    ['CET-1CEST,M3.5.0,M10.5.0/3', { std: ['CET', 3600], dst: ['CEST', 7200] }],
    ['EST5EDT,M3.2.0,M11.1.0', { std: ['EST', -18000], dst: ['EDT', -14400] }],
    ['IST-5:30', { std: ['IST', 19800] }],
    ['<+03>-3', { std: ['+03', 10800] }],
    ['<-03>3', { std: ['-03', -10800] }],
    ['UTC0', { std: ['UTC', 0] }],
    ['NZST-12NZDT-13,M9.5.0,M4.1.0/3', { std: ['NZST', 43200], dst: ['NZDT', 46800] }],
  ] as Array<[string, { std: [string, number]; dst?: [string, number] }]>)('%s', (s, want) => {
    const r = parseTzRule(s)!;
    expect([r.std.name, r.std.offset]).toEqual(want.std);
    expect(r.dst && [r.dst.name, r.dst.offset]).toEqual(want.dst);
  });

  test.each(['', 'CET', '1CET', '<CET-1'])('refuses %j', (s) => {
    expect(parseTzRule(s)).toBeUndefined();
  });
});

describe('zoneTypeAt: the type Go picks', () => {
  test('between transitions: the latest one at or before the time', () => {
    expect(zoneTypeAt(berlin(), at(2024, 6, 1)).name).toBe('CEST');
    expect(zoneTypeAt(berlin(), SUMMER_2024).name).toBe('CEST');
    expect(zoneTypeAt(berlin(), SUMMER_2024 - 1).name).toBe('CET');
  });

  test('after the last transition: the rule, by the offset Node gives', () => {
    expect(zoneTypeAt(berlin(), at(2025, 0, 1), 3600).name).toBe('CET');
    expect(zoneTypeAt(berlin(), at(2025, 6, 1), 7200).name).toBe('CEST');
    expect(zoneTypeAt(berlin(), at(2025, 0, 1)).name).toBe('CET');
  });

  test('after the last transition without a rule: the last type', () => {
    expect(zoneTypeAt(parseTzif(block('\0', BERLIN, 4))!, at(2030, 6, 1), 7200).name).toBe('CET');
  });

  test('before the first transition: the first type no transition uses (LMT)', () => {
    expect(zoneTypeAt(berlin(), -3e9).name).toBe('LMT');
  });

  test('before the first transition, every type used: the standard type before a first DST one', () => {
    const z: Zone = { times: [0, 100], index: [2, 0], types: [{ offset: 0, isDst: false, name: 'A' }, { offset: 1, isDst: false, name: 'B' }, { offset: 2, isDst: true, name: 'C' }] };
    expect(zoneTypeAt(z, -5).name).toBe('B');
    expect(zoneTypeAt({ ...z, index: [0, 2] }, -5).name).toBe('A');
  });

  test('no transitions: the rule, else the only type', () => {
    expect(zoneTypeAt(UTC_ZONE, at(2024, 0, 1))).toEqual({ offset: 0, isDst: false, name: 'UTC' });
    const z = parseTzif(tzif2({ times: [], index: [], types: [[19800, false, 'IST']] }, 'IST-5:30'))!;
    expect(zoneTypeAt(z, at(2024, 0, 1)).name).toBe('IST');
  });
});

describe('loadLocalZone: the file Go loads for TZ', () => {
  const files = (found: Record<string, Buffer>) => {
    const read: string[] = [];
    return { read, fn: (f: string) => { read.push(f); return found[f]; } };
  };
  const file = tzif2(BERLIN, 'CET-1CEST,M3.5.0,M10.5.0/3');

  test('TZ unset: /etc/localtime', () => {
    const r = files({ '/etc/localtime': file });
    expect(loadLocalZone(undefined, r.fn).types[2].name).toBe('CET');
    expect(r.read).toEqual(['/etc/localtime']);
  });

  test.each([':Europe/Berlin', 'Europe/Berlin'])('TZ=%s: the name under the zoneinfo dirs', (tz) => {
    const r = files({ '/usr/share/lib/zoneinfo/Europe/Berlin': file });
    expect(loadLocalZone(tz, r.fn).types[1].name).toBe('CEST');
    expect(r.read).toEqual(['/usr/share/zoneinfo/Europe/Berlin', '/usr/share/lib/zoneinfo/Europe/Berlin']);
  });

  test('TZ=/a/path (or :/a/path): that file', () => {
    const r = files({ '/srv/zone': file });
    expect(loadLocalZone(':/srv/zone', r.fn).types[1].name).toBe('CEST');
    expect(r.read).toEqual(['/srv/zone']);
  });

  test.each(['', ':', 'UTC', '../../etc/shadow', 'Europe/../../x'])('TZ=%j: UTC, nothing read', (tz) => {
    const r = files({});
    expect(loadLocalZone(tz, r.fn)).toBe(UTC_ZONE);
    expect(r.read).toEqual([]);
  });

  test('a zone found nowhere, or not a TZif file: UTC', () => {
    expect(loadLocalZone('Mars/Olympus', files({}).fn)).toBe(UTC_ZONE);
    expect(loadLocalZone(undefined, files({ '/etc/localtime': Buffer.from('not a zone') }).fn)).toBe(UTC_ZONE);
  });

  test('the real reader does not block on a FIFO that TZ names', () => {
    const fifo = `/tmp/rkt-zone-fifo-${process.pid}`;
    execFileSync('mkfifo', [fifo]);
    try {
      expect(loadLocalZone(fifo)).toBe(UTC_ZONE);
    } finally {
      fs.rmSync(fifo);
    }
  });
});

describe('goTime: Go\'s "2006-01-02 15:04:05.999 -0700 MST"', () => {
  test('offset and name from the zone, milliseconds without trailing zeros', () => {
    expect(goTime(new Date(Date.UTC(2024, 6, 1, 10, 4, 5, 120)), berlin())).toBe('2024-07-01 12:04:05.12 +0200 CEST');
    expect(goTime(new Date(Date.UTC(2024, 11, 31, 23, 30, 0, 0)), berlin())).toBe('2025-01-01 00:30:00 +0100 CET');
    expect(goTime(new Date(Date.UTC(2024, 0, 1)), UTC_ZONE)).toBe('2024-01-01 00:00:00 +0000 UTC');
  });

  test('an offset with seconds (LMT): local time to the second, whole minutes printed', () => {
    expect(goTime(new Date(Date.UTC(1880, 0, 1, 0, 0, 0)), berlin())).toBe('1880-01-01 00:53:28 +0053 LMT');
  });

  test('west of Greenwich, and a type without a name (its offset printed in its place)', () => {
    const z = parseTzif(tzif2({ times: [0], index: [0], types: [[-10800, false, '-03']] }, '<-03>3'))!;
    expect(goTime(new Date(Date.UTC(2024, 0, 1, 2)), z)).toBe('2023-12-31 23:00:00 -0300 -03');
    const unnamed: Zone = { times: [], index: [], types: [{ offset: -16200, isDst: false, name: '' }] };
    expect(goTime(new Date(Date.UTC(2024, 0, 1, 12)), unnamed)).toBe('2024-01-01 07:30:00 -0430 -0430');
  });
});

describe('the system tz database', () => {
  test('tzdata is installed (scripts/setup.sh installs it)', () => {
    expect(fs.existsSync('/usr/share/zoneinfo/Europe/Berlin')).toBe(true);
  });

  test.each([
    ['Europe/Berlin', Date.UTC(2026, 0, 15, 12), '2026-01-15 13:00:00 +0100 CET'],
    ['Europe/Berlin', Date.UTC(2026, 6, 15, 12), '2026-07-15 14:00:00 +0200 CEST'],
    ['Asia/Kolkata', Date.UTC(2026, 6, 15, 12), '2026-07-15 17:30:00 +0530 IST'],
    ['America/Sao_Paulo', Date.UTC(2026, 6, 15, 12), '2026-07-15 09:00:00 -0300 -03'],
    ['Etc/UTC', Date.UTC(2026, 6, 15, 12), '2026-07-15 12:00:00 +0000 UTC'],
  ])('TZ=%s', (tz, ms, want) => {
    expect(goTime(new Date(ms), loadLocalZone(tz))).toBe(want);
  });

  test('past the last transition of a file (2037 in Debian\'s): its rule', () => {
    const z = loadLocalZone('Europe/Berlin');
    expect(zoneTypeAt(z, Date.UTC(2040, 6, 15) / 1000, 7200).name).toBe('CEST');
    expect(zoneTypeAt(z, Date.UTC(2040, 0, 15) / 1000, 3600).name).toBe('CET');
  });
});
