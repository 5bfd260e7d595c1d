/**
 * The command tree on commander. The command modules stay the source of truth: each
 * Command's `flags: FlagSpec[]` become commander Options here, for parsing, --help,
 * suggestions, shell completion and the man page alike.
 *
 * rkt's CLI (cobra) accepted a command's flags before its name (`rkt --net=host run IMG`);
 * commander does not, so `locate` first finds the command path on the line and moves it to
 * the front. Only the located command's module is loaded: `rkt run` pays for nothing else.
 * run/prepare/run-prepared/enter keep their own positional grammar (run-args.ts): commander
 * passes their arguments through untouched.
 */
import { Command as Commander, Option, CommanderError } from 'commander';
import type { Command, CommandInput } from './command.js';
import { GLOBAL_FLAGS } from './globals.js';
import { FlagSpec, FlagValues, ParsedFlags, parseBool, parseOneFlag } from './flags.js';
import { fail } from '../util/errors.js';
import { toStdout } from '../util/log.js';

const GLOBALS = GLOBAL_FLAGS.filter((s) => s.name !== 'help');

type Loader = () => Promise<Command>;
/** A command of the table (cli/registry.ts): a leaf with its lazily loaded module, or a group. */
export interface Entry { summary: string; load?: Loader; sub?: Record<string, Entry> }

export type CommandTable = Record<string, Entry>;

/** cobra-style lookup: an exact name, or an unambiguous prefix of one. */
export function lookup(table: Record<string, Entry>, name: string): [string, Entry] | undefined {
  if (table[name]) return [name, table[name]];
  const hits = Object.keys(table).filter((k) => k.startsWith(name));
  return hits.length === 1 ? [hits[0], table[hits[0]]] : undefined;
}

function globalSpec(name: string): FlagSpec | undefined {
  return GLOBALS.find((s) => s.name === name || (s.aliases ?? []).includes(name));
}

export interface Located {
  /** The command path, full names (`['image', 'list']`); empty if none was found. */
  path: string[];
  /** Its registry entry (a leaf, or a group such as `image`). */
  entry?: Entry;
  /** argv with the command path first and everything else in its original order. */
  argv: string[];
}

/**
 * Finds the command path among the arguments. A global flag's arity is known; a command
 * flag's is not before its command is loaded, so `--flag word` takes `word` as its value
 * unless `word` is a command name (`rkt --no-store fetch URL`, `rkt --format json list`).
 * The flags go after the command's path, for it to parse.
 */
export function locate(argv: string[], table: CommandTable): Located {
  const path: string[] = [];
  const rest: string[] = [];
  let entry: Entry | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') break;
    if (a.startsWith('-') && a !== '-') {
      rest.push(a);
      if (a.includes('=') || !a.startsWith('--') || i + 1 >= argv.length) continue;
      const spec = globalSpec(a.slice(2));
      const next = argv[i + 1];
      const takesValue = spec ? spec.kind !== 'bool' && !spec.optionalValue : !next.startsWith('-') && !lookup(table, next);
      if (takesValue) rest.push(argv[++i]);
      continue;
    }
    const hit = lookup(table, a);
    if (!hit) break;
    path.push(hit[0]);
    entry = hit[1];
    if (!entry.sub) { i++; break; }
    table = entry.sub;
  }
  // Stopped at a group (`rkt --dir=X image lst`, `rkt --dir=X image`): the flags go to the
  // root, which knows the global ones, not to the group, which has none of its own.
  return { path, entry, argv: entry?.sub ? [...rest, ...path, ...argv.slice(i)] : [...path, ...rest, ...argv.slice(i)] };
}

/** What the parse selected: the command and its input, ready to run. */
export interface Selected {
  path: string[];
  command: Command;
  parsed: ParsedFlags;
  rawArgs: string[];
}

/** Per-option bookkeeping: the spec it came from, and whether it is a global flag. */
const specOf = new WeakMap<Option, FlagSpec>();
const globalOption = new WeakSet<Option>();

/** A commander Command that knows its rkt Command (leaves) and parses as pflag did. */
export class RktCommand extends Commander {
  rkt?: Command;
  path: string[] = [];
  /** Set by normalize: bool flags given as `--flag=false`, and what followed a literal `--`. */
  private explicitFalse = new Set<string>();
  private afterDashes: string[] | undefined;

  createCommand(name?: string): RktCommand { return new RktCommand(name); }

  /** The spec for `--name`, among this command's flags (aliases included). */
  specFor(name: string): FlagSpec | undefined {
    for (const o of this.options) {
      const s = specOf.get(o);
      if (s && (s.name === name || (s.aliases ?? []).includes(name))) return s;
    }
    return undefined;
  }

  parseOptions(args: string[]): { operands: string[]; unknown: string[] } {
    if (!this.rkt) return super.parseOptions(args);
    if (this.rkt.ownGrammar) {
      // Our own parser reads everything; commander only answers --help, and only before
      // `--` (after it come the app's arguments) — for enter, only before the pod UUID.
      const stopAtPositional = this.rkt.name === 'enter';
      for (const a of args) {
        if (a === '--' || (stopAtPositional && !a.startsWith('-'))) break;
        if (a === '-h' || a === '--help') return { operands: [], unknown: [a] };
      }
      return { operands: args, unknown: [] };
    }
    return super.parseOptions(this.normalize(args));
  }

  /**
   * pflag forms commander lacks: `--bool=false`, `--flag` alone for flags with an
   * optional value (`status --wait`), and long aliases.
   */
  private normalize(args: string[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '--') { this.afterDashes = args.slice(i + 1); out.push(...args.slice(i)); break; }
      if (!a.startsWith('--')) { out.push(a); continue; }
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      const spec = this.specFor(name);
      if (!spec) { out.push(a); continue; }
      const canonical = `--${spec.name}`;
      if (spec.kind === 'bool') {
        const on = eq === -1 ? true : parseBool(spec.name, a.slice(eq + 1));
        // The last occurrence wins, as in pflag.
        for (let j = out.length - 1; j >= 0; j--) if (out[j] === canonical) out.splice(j, 1);
        if (on) { this.explicitFalse.delete(spec.name); out.push(canonical); } else this.explicitFalse.add(spec.name);
      } else if (eq === -1 && spec.optionalValue) {
        out.push(`${canonical}=${spec.noValue ?? ''}`);
      } else {
        out.push(eq === -1 ? canonical : `${canonical}${a.slice(eq)}`);
      }
    }
    return out;
  }

  /** rkt's flag values from what commander parsed. */
  flagValues(): FlagValues {
    const values: FlagValues = new Map();
    for (const o of this.options) {
      const spec = specOf.get(o);
      const attr = o.attributeName();
      if (!spec || this.getOptionValueSource(attr) !== 'cli') continue;
      const v = this.getOptionValue(attr) as string | boolean | string[];
      // `--no-legend` is a negatable option to commander: false means it was given.
      values.set(spec.name, o.negate ? v === false : v);
    }
    for (const name of this.explicitFalse) values.set(name, false);
    return values;
  }

  dashes(): string[] | undefined { return this.afterDashes; }

  /** Names the flag without its value, and suggests among all flags, global ones too. */
  unknownOption(flag: string): void {
    const name = flag.split('=')[0];
    const candidates = this.options.filter((o) => !o.hidden && o.long).map((o) => o.long!);
    const hint = flag.startsWith('--') ? suggest(name, candidates) : '';
    this.error(`unknown flag ${name}${hint}; see "${['rkt', ...this.path].join(' ')} --help"`, { code: 'commander.unknownOption' });
  }

  unknownCommand(): void {
    const name = this.args[0];
    const hint = suggest(name, this.commands.map((c) => c.name()));
    const where = this.path.length > 0 ? `rkt ${this.path.join(' ')}` : 'rkt';
    this.error(`unknown command "${name}" for "${where}"${hint}; run "rkt help${this.path.length ? ` ${this.path.join(' ')}` : ''}" for the list`, { code: 'commander.unknownCommand' });
  }
}

/** Damerau-Levenshtein distance (adjacent transpositions count as one edit). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** ` (did you mean X?)` for the closest candidates, or ''. A prefix of one counts too. */
export function suggest(word: string, candidates: string[]): string {
  const bare = (s: string) => s.replace(/^--/, '');
  const w = bare(word);
  if (w.length === 0) return '';
  let best = Infinity;
  let hits: string[] = [];
  for (const c of new Set(candidates)) {
    const d = bare(c).startsWith(w) && w.length >= 2 ? 1 : distance(w, bare(c));
    if (d > Math.max(1, Math.floor(Math.max(w.length, bare(c).length) / 3))) continue;
    if (d < best) { best = d; hits = [c]; } else if (d === best) hits.push(c);
  }
  if (hits.length === 0) return '';
  hits.sort();
  return ` (did you mean ${hits.join(' or ')}?)`;
}

/** How a flag reads in help, completion and the man page. */
export function flagTerm(spec: FlagSpec): string {
  if (spec.kind === 'bool') return `--${spec.name}`;
  return spec.optionalValue ? `--${spec.name}[=VALUE]` : `--${spec.name}=VALUE`;
}

function addFlag(cmd: RktCommand, spec: FlagSpec, global: boolean): void {
  const opt = new Option(spec.kind === 'bool' ? `--${spec.name}` : `--${spec.name} <value>`, spec.help);
  if (spec.hidden) opt.hideHelp();
  if (spec.kind === 'list') opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
  cmd.addOption(opt);
  specOf.set(opt, spec);
  if (global) globalOption.add(opt);
}

/** The flags of a leaf, own first; a global flag the command redefines is its own. */
function leafFlags(cmd: Command): Array<{ spec: FlagSpec; global: boolean }> {
  const own = cmd.flags.filter((s) => s.name !== 'help');
  const names = new Set(own.map((s) => s.name));
  return [...own.map((spec) => ({ spec, global: false })), ...GLOBALS.filter((s) => !names.has(s.name)).map((spec) => ({ spec, global: true }))];
}

export interface Program { root: RktCommand; selected(): Selected | undefined }

/**
 * The whole tree. `loaded` maps a command path (`image list`) to its module; the other
 * leaves get a name and summary only (enough for listings and suggestions). With `only`
 * (a located command, no help asked), the tree is that path, and its options only where
 * commander parses them: the root sees the path first, so never an option, and an
 * own-grammar command reads its arguments itself (`run`'s ~70 Options cost ~1.3 ms).
 */
export function buildProgram(loaded: ReadonlyMap<string, Command>, commands: CommandTable, only?: readonly string[]): Program {
  let selected: Selected | undefined;
  const root = new RktCommand('rkt');
  root.description('rkt, the application container runner')
    .exitOverride()
    .configureOutput({ writeOut: (s) => toStdout(s), writeErr: (s) => toStdout(s), outputError: () => undefined })
    .helpOption('-h, --help', 'help for rkt')
    .helpCommand(false)
    .enablePositionalOptions()
    .configureHelp({ formatHelp: (cmd) => formatHelp(cmd as RktCommand) });
  if (!only) for (const spec of GLOBALS) addFlag(root, spec, true);

  const add = (parent: RktCommand, table: Record<string, Entry>, prefix: string[]): void => {
    for (const [name, entry] of Object.entries(table)) {
      if (only && name !== only[prefix.length]) continue;
      const sub = parent.command(name) as RktCommand;
      sub.path = [...prefix, name];
      sub.description(entry.summary).helpOption('-h, --help', `help for ${name}`);
      if (entry.sub) { add(sub, entry.sub, sub.path); continue; }
      const cmd = loaded.get(sub.path.join(' '));
      sub.argument('[args...]').allowExcessArguments();
      if (!cmd) { sub.allowUnknownOption(); continue; }
      sub.rkt = cmd;
      if (!(only && cmd.ownGrammar)) for (const { spec, global } of leafFlags(cmd)) addFlag(sub, spec, global);
      sub.action(() => {
        const args = sub.processedArgs[0] as string[];
        if (cmd.ownGrammar) {
          selected = { path: sub.path, command: cmd, rawArgs: args, parsed: { values: globalsAmong(args), positionals: [], afterDashes: undefined } };
        } else {
          selected = { path: sub.path, command: cmd, rawArgs: sub.args, parsed: { values: sub.flagValues(), positionals: args, afterDashes: sub.dashes() } };
        }
      });
    }
  };
  add(root, commands, []);
  return { root, selected: () => selected };
}

/** The global flags among a command's own-grammar arguments, up to a literal `--`. */
function globalsAmong(args: string[]): FlagValues {
  const values: FlagValues = new Map();
  for (let i = 0; i < args.length && args[i] !== '--'; ) i += parseOneFlag(args, i, GLOBALS, values) || 1;
  return values;
}

/** The module of every leaf, for help listings, completion and the man page. */
export async function loadAll(table: CommandTable, prefix: string[] = []): Promise<Map<string, Command>> {
  const out = new Map<string, Command>();
  for (const [name, entry] of Object.entries(table)) {
    const path = [...prefix, name];
    if (entry.sub) for (const [k, v] of await loadAll(entry.sub, path)) out.set(k, v);
    else if (entry.load) out.set(path.join(' '), await entry.load());
  }
  return out;
}

/** Leaves and groups of the tree, depth first. */
export function walk(cmd: RktCommand): RktCommand[] {
  return [cmd, ...cmd.commands.flatMap((c) => walk(c as RktCommand))];
}

function table(rows: Array<[string, string]>): string {
  const width = Math.min(34, Math.max(0, ...rows.map(([t]) => t.length)) + 3);
  return rows.map(([t, d]) => `  ${t.padEnd(width)}${d}`.trimEnd()).join('\n');
}

export function visibleFlags(cmd: RktCommand, global: boolean): FlagSpec[] {
  return cmd.options.filter((o) => !o.hidden && globalOption.has(o) === global).map((o) => specOf.get(o)!).filter(Boolean);
}

export function usageLine(cmd: RktCommand): string {
  if (cmd.rkt) return `rkt ${cmd.rkt.usage}`;
  if (cmd.path.length === 0) return 'rkt [global flags] COMMAND [flags] [args]';
  return `rkt ${cmd.path.join(' ')} COMMAND [flags] [args]`;
}

/** Help in the layout of rkt's (cobra's) help. */
export function formatHelp(cmd: RktCommand): string {
  const parts: string[] = [];
  if (cmd.description()) parts.push(cmd.description());
  parts.push(`Usage:\n  ${usageLine(cmd)}`);
  const subs = cmd.commands as RktCommand[];
  if (subs.length > 0) {
    const rows: Array<[string, string]> = subs.map((c) => [c.name(), c.description()]);
    parts.push(`Available Commands:\n${table(rows)}`);
  }
  const own = visibleFlags(cmd, false).map((s): [string, string] => [flagTerm(s), s.help]);
  own.push(['-h, --help', `help for ${cmd.path.length ? cmd.path[cmd.path.length - 1] : 'rkt'}`]);
  parts.push(`Flags:\n${table(own)}`);
  const globals = (cmd.rkt || cmd.path.length === 0 ? visibleFlags(cmd, true) : GLOBALS.filter((s) => !s.hidden)).map((s): [string, string] => [flagTerm(s), s.help]);
  parts.push(`Global Flags:\n${table(globals)}`);
  if (subs.length > 0) parts.push(`Use "rkt ${cmd.path.length ? `${cmd.path.join(' ')} ` : ''}COMMAND --help" (or "rkt help ${cmd.path.length ? `${cmd.path.join(' ')} ` : ''}COMMAND") for more information about a command.`);
  return `${parts.join('\n\n')}\n`;
}

/** The outcome of parsing a command line: a command to run, or an exit status (help, usage error). */
export type Resolution = { selected: Selected } | { status: number; error?: string };

/** Parses argv through the tree; loads only the located command's module. */
export async function resolve(argv: string[], commands: CommandTable): Promise<Resolution> {
  const located = locate(argv, commands);
  const loaded = new Map<string, Command>();
  if (located.entry?.load) loaded.set(located.path.join(' '), await located.entry.load());
  // A command found, and no help asked for: commander needs only its path (~40 commands'
  // objects cost ~1.5 ms of every start). Else the whole tree, for help and suggestions.
  const helpAsked = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : argv.length).some((a) => a === '-h' || a === '--help');
  const program = buildProgram(loaded, commands, located.entry?.load && !helpAsked ? located.path : undefined);
  try {
    await program.root.parseAsync(located.argv, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    // Help asked for, or a group given no subcommand (`rkt`, `rkt image`): help was printed.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') return { status: 0 };
    return { status: 254, error: e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ') };
  }
  const selected = program.selected();
  return selected ? { selected } : fail('no command given: run "rkt help" for the list');
}

export type { CommandInput };

