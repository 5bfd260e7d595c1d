/** Go-style durations as rkt's flags take them: "30m0s", "24h", "1h30m", "10s", "500ms", "0". */
import { fail } from './errors.js';

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDurationMs(s: string, flag: string, hint = 'use forms like 30m0s, 24h, 10s or 0s'): number {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * UNITS[m[2]];
    pos = re.lastIndex;
  }
  if (pos !== s.length || s.length === 0) fail(`invalid duration "${s}" for --${flag}: ${hint}`);
  return total;
}

const TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False'];

/**
 * rkt's `--wait[=bool|duration]` flags (status): how long to wait, in ms. true (or no value)
 * and a negative duration wait for ever (Infinity); false and zero do not wait (0).
 */
export function parseWaitMs(s: string, flag: string): number {
  if (s === '' || TRUE.includes(s)) return Infinity;
  if (FALSE.includes(s)) return 0;
  const unsigned = s.replace(/^[-+]/, '');
  if (!/^\d/.test(unsigned)) fail(`invalid value "${s}" for --${flag}: use true, false or a duration like 10s, 500ms or 1m30s`);
  const ms = parseDurationMs(unsigned, flag, 'use true, false or a duration like 10s, 500ms or 1m30s');
  return s.startsWith('-') && ms > 0 ? Infinity : ms;
}

/** Formats a duration as Go prints one (rkt's messages): "30m0s", "24h0m0s", "10s", "1.5s", "500ms", "0s". */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
