/** Text output shared by the listing commands: sizes, times and tab-aligned columns, as rkt printed them. */
import { localZone, zoneTypeAt, type Zone } from './zone.js';

export function iBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  if (n < 1024) return `${n} B`;
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${units[u]}`;
}

/** go-humanize Time: "now", "1 second ago", "2 minutes ago", ... */
const HUMAN_STEPS: Array<[number, number, string]> = [
  [60, 1, 'second'], [3600, 60, 'minute'], [86400, 3600, 'hour'], [7 * 86400, 86400, 'day'],
  [30 * 86400, 7 * 86400, 'week'], [365 * 86400, 30 * 86400, 'month'], [Infinity, 365 * 86400, 'year'],
];

export function humanTime(then: number, now: number): string {
  const s = Math.max(0, (now - then) / 1000);
  if (s < 1) return 'now';
  for (const [limit, unit, name] of HUMAN_STEPS) {
    if (s < limit) {
      const n = Math.floor(s / unit);
      return `${n} ${name}${n === 1 ? '' : 's'} ago`;
    }
  }
  return 'long ago';
}

/** Go's "2006-01-02 15:04:05.999 -0700 MST" in local time: offset and abbreviation as Go reads them (zone.ts). */
export function goTime(d: Date, zone: Zone = localZone()): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const ms = d.getTime();
  const type = zoneTypeAt(zone, Math.floor(ms / 1000), -d.getTimezoneOffset() * 60);
  const local = new Date(ms + type.offset * 1000);
  const frac = local.getUTCMilliseconds() === 0 ? '' : `.${p(local.getUTCMilliseconds(), 3).replace(/0+$/, '')}`;
  // As Go: whole minutes of the offset; a zone without a name gets its offset instead.
  const minutes = Math.trunc(type.offset / 60);
  const offset = `${minutes < 0 ? '-' : '+'}${p(Math.floor(Math.abs(minutes) / 60))}${p(Math.abs(minutes) % 60)}`;
  return `${local.getUTCFullYear()}-${p(local.getUTCMonth() + 1)}-${p(local.getUTCDate())} ${p(local.getUTCHours())}:${p(local.getUTCMinutes())}:${p(local.getUTCSeconds())}${frac} `
    + `${offset} ${type.name || offset}`;
}

export function tabulate(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => r[c].length)) + 1) ?? [];
  return rows.map((r) => r.map((cell, c) => {
    if (c === r.length - 1) return cell;
    const width = Math.ceil(widths[c] / 8) * 8;
    return cell + '\t'.repeat(Math.ceil((width - cell.length) / 8));
  }).join('') + '\n').join('');
}

/** rkt's ImageListEntry: times in nanoseconds since the epoch (exact: beyond a double's integers). */
