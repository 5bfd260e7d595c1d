/**
 * Flag specs, the single definition of every flag: cli/tree.ts turns them into commander
 * options (parsing, help, completion, man page). The pflag-compatible parser here (the flag
 * library rkt used) reads the own-grammar commands (run, prepare, run-prepared, enter), whose
 * per-app flags follow their image: `--name=value` and `--name value` for value flags;
 * `--name`, `--name=true|false` for booleans; `--` ends flags.
 */
import { fail } from '../util/errors.js';

export type FlagKind = 'bool' | 'string' | 'list';

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  help: string;
  /** A bool flag given with no value takes this (rkt's `--net` alone means `default`). */
  noValue?: string;
  /** For string flags: `--flag` alone (no `=`) is allowed and yields noValue. */
  optionalValue?: boolean;
  hidden?: boolean;
  aliases?: string[];
}

export type FlagValues = Map<string, string | boolean | string[]>;

export interface ParsedFlags {
  values: FlagValues;
  positionals: string[];
  /** Arguments after a literal `--`, if any. */
  afterDashes: string[] | undefined;
}

export function parseBool(name: string, raw: string): boolean {
  const v = raw.toLowerCase();
  if (['true', '1', 't', 'yes'].includes(v)) return true;
  if (['false', '0', 'f', 'no'].includes(v)) return false;
  return fail(`invalid value "${raw}" for --${name}: expected true or false`);
}

function findSpec(specs: FlagSpec[], name: string): FlagSpec | undefined {
  return specs.find((s) => s.name === name || (s.aliases ?? []).includes(name));
}

/**
 * Parses one flag at argv[i] into `values`. Returns how many argv entries it used,
 * or 0 if argv[i] is not a flag known to `specs`.
 */
export function parseOneFlag(argv: string[], i: number, specs: FlagSpec[], values: FlagValues): number {
  const arg = argv[i];
  if (!arg.startsWith('--') || arg === '--') return 0;
  const eq = arg.indexOf('=');
  const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
  const spec = findSpec(specs, name);
  if (!spec) return 0;
  let used = 1;
  let raw: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
  if (spec.kind === 'bool') {
    values.set(spec.name, raw === undefined ? true : parseBool(spec.name, raw));
    return used;
  }
  if (raw === undefined) {
    if (spec.optionalValue) {
      raw = spec.noValue ?? '';
    } else {
      if (i + 1 >= argv.length) fail(`flag needs an argument: --${spec.name}`);
      raw = argv[i + 1];
      used = 2;
    }
  }
  if (spec.kind === 'list') {
    const prev = (values.get(spec.name) as string[] | undefined) ?? [];
    values.set(spec.name, [...prev, raw]);
  } else {
    values.set(spec.name, raw);
  }
  return used;
}

/** Parses a whole argv: flags anywhere (interspersed), positionals kept in order. */
export function parseFlags(argv: string[], specs: FlagSpec[]): ParsedFlags {
  const values: FlagValues = new Map();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; ) {
    const arg = argv[i];
    if (arg === '--') return { values, positionals, afterDashes: argv.slice(i + 1) };
    const used = parseOneFlag(argv, i, specs, values);
    if (used > 0) { i += used; continue; }
    if (arg.startsWith('-') && arg !== '-') fail(`unknown flag: ${arg.split('=')[0]} (see --help)`);
    positionals.push(arg);
    i++;
  }
  return { values, positionals, afterDashes: undefined };
}

export function flagString(values: FlagValues, name: string): string | undefined {
  const v = values.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function flagBool(values: FlagValues, name: string, dflt = false): boolean {
  const v = values.get(name);
  return typeof v === 'boolean' ? v : dflt;
}

export function flagList(values: FlagValues, name: string): string[] {
  const v = values.get(name);
  return Array.isArray(v) ? v : [];
}

export function usageOf(specs: FlagSpec[]): string {
  return specs
    .filter((s) => !s.hidden)
    .map((s) => `  --${s.name}${s.kind === 'bool' ? '' : '=VALUE'}`.padEnd(34) + s.help)
    .join('\n');
}
