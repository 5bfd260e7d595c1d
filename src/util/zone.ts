/**
 * The local time zone as Go's time package knows it. rkt printed times in Go's layout
 * "2006-01-02 15:04:05.999 -0700 MST", whose offset and abbreviation come from the zone's
 * TZif file (CET, IST, -03) where Node's Intl says GMT+1, GMT+5:30, GMT-3. So we read the
 * file Go reads: TZ's (a path, or a name under the zoneinfo dirs), /etc/localtime when TZ is
 * unset, and UTC when TZ is empty or no file loads.
 */
import fs from 'node:fs';

export interface ZoneType { offset: number; isDst: boolean; name: string }

export interface Zone {
  /** Transition times, seconds since the epoch, ascending. */
  times: number[];
  /** Index into `types` of the type in force from each transition on. */
  index: number[];
  types: ZoneType[];
  /** The TZ string at the file's end (TZif v2+): what holds after the last transition. */
  rule?: { std: ZoneType; dst?: ZoneType };
}

export const UTC_ZONE: Zone = { times: [], index: [], types: [{ offset: 0, isDst: false, name: 'UTC' }] };

const HEADER = 44;
/** Go's limit on a zone file. */
const MAX_FILE = 10 << 20;

interface Counts { version: number; isut: number; isstd: number; leap: number; time: number; type: number; char: number }

function counts(buf: Buffer, at: number): Counts | undefined {
  if (buf.length < at + HEADER || buf.toString('latin1', at, at + 4) !== 'TZif') return undefined;
  const n = (i: number) => buf.readUInt32BE(at + 20 + 4 * i);
  return { version: buf[at + 4], isut: n(0), isstd: n(1), leap: n(2), time: n(3), type: n(4), char: n(5) };
}

/** The size of a data block after its header, with 4- (v1) or 8-byte (v2+) times. */
const blockSize = (c: Counts, timeSize: number) => c.time * (timeSize + 1) + c.type * 6 + c.char + c.leap * (timeSize + 4) + c.isstd + c.isut;

/** A TZif file (RFC 8536), or undefined if it is not a sound one. */
export function parseTzif(buf: Buffer): Zone | undefined {
  let c = counts(buf, 0);
  if (!c) return undefined;
  let at = HEADER;
  let timeSize = 4;
  // Version 2 and later repeat the data with 64-bit times after the 32-bit block: read those.
  if (c.version >= 0x32) {
    at += blockSize(c, 4);
    c = counts(buf, at);
    if (!c) return undefined;
    at += HEADER;
    timeSize = 8;
  }
  const end = at + blockSize(c, timeSize);
  if (c.type === 0 || end > buf.length) return undefined;
  const times: number[] = [];
  for (let i = 0; i < c.time; i++, at += timeSize) times.push(timeSize === 8 ? Number(buf.readBigInt64BE(at)) : buf.readInt32BE(at));
  const index = [...buf.subarray(at, at + c.time)];
  at += c.time;
  if (index.some((i) => i >= c!.type)) return undefined;
  const chars = at + c.type * 6;
  const types: ZoneType[] = [];
  for (let i = 0; i < c.type; i++, at += 6) {
    const nameAt = chars + buf[at + 5];
    if (buf[at + 5] >= c.char) return undefined;
    const nul = buf.indexOf(0, nameAt);
    types.push({ offset: buf.readInt32BE(at), isDst: buf[at + 4] !== 0, name: buf.toString('latin1', nameAt, nul < 0 || nul > chars + c.char ? chars + c.char : nul) });
  }
  const zone: Zone = { times, index, types };
  if (timeSize === 8 && buf[end] === 0x0a) {
    const close = buf.indexOf(0x0a, end + 1);
    const rule = close < 0 ? undefined : parseTzRule(buf.toString('latin1', end + 1, close));
    if (rule) zone.rule = rule;
  }
  return zone;
}

const NAME = '(<[^>]*>|[A-Za-z]+)';
const OFFSET = '([+-]?\\d{1,3}(?::\\d{1,2}){0,2})';
const TZ_RULE = new RegExp(`^${NAME}${OFFSET}(?:${NAME}${OFFSET}?)?(?:,.*)?$`);

/** A POSIX TZ string's names and offsets ("CET-1CEST,M3.5.0,M10.5.0/3", "<+03>-3"); its dates are not needed. */
export function parseTzRule(s: string): Zone['rule'] {
  const m = TZ_RULE.exec(s);
  if (!m) return undefined;
  const name = (n: string) => n.replace(/^<(.*)>$/, '$1');
  // POSIX counts west of Greenwich as positive: CET-1 is UTC+1.
  const seconds = (o: string) => {
    const [h, min = 0, sec = 0] = o.replace(/^[+-]/, '').split(':').map(Number);
    const size = h * 3600 + min * 60 + sec;
    return o.startsWith('-') ? size : 0 - size; // 0 - 0 is +0, never -0
  };
  const std = { name: name(m[1]), offset: seconds(m[2]), isDst: false };
  if (m[3] === undefined) return { std };
  return { std, dst: { name: name(m[3]), offset: m[4] === undefined ? std.offset + 3600 : seconds(m[4]), isDst: true } };
}

/** Go's choice before the first transition: the first type no transition uses, else the first standard one. */
function firstType(zone: Zone): ZoneType {
  const { types, index } = zone;
  if (!index.includes(0)) return types[0];
  if (index.length > 0 && types[index[0]].isDst) {
    for (let i = index[0] - 1; i >= 0; i--) if (!types[i].isDst) return types[i];
  }
  return types.find((t) => !t.isDst) ?? types[0];
}

/**
 * The zone's type at `sec` (seconds since the epoch). After the last transition the file's
 * rule holds: of its two types, the one whose offset `offsetNow` (what Node's Date gives)
 * is; its dates are left to Node.
 */
export function zoneTypeAt(zone: Zone, sec: number, offsetNow?: number): ZoneType {
  const { times } = zone;
  if (times.length > 0 && sec < times[0]) return firstType(zone);
  let lo = 0;
  let hi = times.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (sec < times[mid]) hi = mid; else lo = mid;
  }
  const last = times.length === 0 || lo === times.length - 1;
  if (last && zone.rule) return zone.rule.dst && offsetNow === zone.rule.dst.offset ? zone.rule.dst : zone.rule.std;
  return times.length === 0 ? zone.types[0] : zone.types[zone.index[lo]];
}

/** A regular file's contents, never blocking on a FIFO or device that TZ might name. */
function readZoneFile(file: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
    const st = fs.fstatSync(fd);
    return st.isFile() && st.size <= MAX_FILE ? fs.readFileSync(fd) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const ZONEINFO_DIRS = ['/usr/share/zoneinfo/', '/usr/share/lib/zoneinfo/', '/usr/lib/locale/TZ/'];

/** The zone Go's time.Local is for this TZ value (undefined: TZ unset). */
export function loadLocalZone(tz: string | undefined, read: (file: string) => Buffer | undefined = readZoneFile): Zone {
  const load = (file: string) => { const b = read(file); return b && parseTzif(b); };
  if (tz === undefined) return load('/etc/localtime') ?? UTC_ZONE;
  const name = tz.startsWith(':') ? tz.slice(1) : tz;
  if (name.startsWith('/')) return load(name) ?? UTC_ZONE;
  if (name === '' || name === 'UTC' || name.split('/').includes('..')) return UTC_ZONE;
  for (const dir of ZONEINFO_DIRS) {
    const zone = load(dir + name);
    if (zone) return zone;
  }
  return UTC_ZONE;
}

let local: Zone | undefined;
/** time.Local, loaded once per process. */
export function localZone(): Zone {
  local ??= loadLocalZone(process.env.TZ);
  return local;
}
