/** What every subcommand module exports. */
import type { FlagSpec, ParsedFlags } from './flags.js';
import type { GlobalOptions } from './globals.js';
import type { CommandTable } from './tree.js';
import type { Handoff } from '../stage0/start.js';

export interface CommandInput {
  globals: GlobalOptions;
  /** Flags and positionals parsed with the command's own flags plus the global ones. */
  parsed: ParsedFlags;
  /** The raw arguments after the command name, for commands with their own grammar (run). */
  rawArgs: string[];
  /** The whole command table, for the commands that describe it (help, man, completion). */
  commands: CommandTable;
}

/** A command either finishes with an exit status or hands stage1's command line to bin/rkt to exec. */
export type CommandResult = number | { handoff: Handoff; podDir: string };

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: FlagSpec[];
  /** Parse rawArgs itself (run, prepare): `parsed` then holds only the leading global flags. */
  ownGrammar?: boolean;
  /** Only root may run it (rkt: run, prepare, run-prepared, enter, gc, rm). */
  needsRoot?: boolean;
  run(input: CommandInput): Promise<CommandResult>;
}
