/**
 * rkt stage0 entry point: global flags, command lookup, error reporting, and the
 * stage1 hand-off to bin/rkt (see bin/rkt for why stage1 is exec'd by the shell).
 */
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { realHost } from './host/real.js';
import { writeHolder } from './stage0/pod.js';
import { COMMANDS, Entry, lookup } from './cli/registry.js';
import { GLOBAL_FLAGS, globalOptionsFrom } from './cli/globals.js';
import { parseFlags, parseOneFlag, FlagValues, usageOf, flagBool } from './cli/flags.js';
import { RktError, RKT_FAILURE, errorMessage, hostFault, setDataDirForErrors } from './util/errors.js';
import { checkDataDir } from './store/datadir.js';
import { setDebug, setLogPrefix, logPrefix } from './util/log.js';
import type { CommandResult } from './cli/command.js';

function topUsage(): string {
  const lines = Object.entries(COMMANDS).map(([n, e]) => `  ${n.padEnd(14)} ${e.summary}`);
  return `Usage:\n  rkt [global flags] COMMAND [flags] [args]\n\nCommands:\n${lines.join('\n')}\n\nGlobal flags:\n${usageOf(GLOBAL_FLAGS)}\n`;
}

/** Consumes leading global flags, then the command path (`image list`). */
function resolveCommand(argv: string[]): { path: string[]; entry: Entry; rest: string[]; leading: FlagValues } | undefined {
  const leading: FlagValues = new Map();
  let i = 0;
  while (i < argv.length) {
    const used = parseOneFlag(argv, i, GLOBAL_FLAGS, leading);
    if (used === 0) break;
    i += used;
  }
  let table = COMMANDS;
  const path: string[] = [];
  let entry: Entry | undefined;
  while (i < argv.length) {
    const hit = lookup(table, argv[i]);
    if (!hit) break;
    path.push(hit[0]);
    entry = hit[1];
    i++;
    if (!entry.sub) break;
    table = entry.sub;
  }
  if (!entry) return undefined;
  return { path, entry, rest: argv.slice(i), leading };
}

/** Commands that never touch the data dir (install sets it up itself). */
const NO_DATA_DIR = new Set(['version', 'trust', 'install']);

async function main(argv: string[]): Promise<CommandResult> {
  const resolved = resolveCommand(argv);
  if (!resolved) {
    const unknown = argv.find((a) => !a.startsWith('-'));
    if (unknown) throw new RktError(`unknown command "${unknown}" for "rkt" (run "rkt help" for the list)`);
    process.stdout.write(topUsage());
    return argv.length === 0 ? 2 : 0;
  }
  const { path, entry, rest, leading } = resolved;
  // rkt prefixes stderr lines with the (sub)command's own name: `rm: ...` for `image rm`.
  setLogPrefix(path[path.length - 1]);
  if (!entry.load) {
    const subs = Object.entries(entry.sub ?? {}).map(([n, e]) => `  ${n.padEnd(14)} ${e.summary}`).join('\n');
    process.stdout.write(`Usage:\n  rkt ${path.join(' ')} COMMAND\n\nCommands:\n${subs}\n`);
    return rest.length === 0 ? 0 : RKT_FAILURE;
  }
  const command = await entry.load();
  const specs = [...GLOBAL_FLAGS, ...command.flags];
  const parsed = command.ownGrammar ? { values: new Map(), positionals: [], afterDashes: undefined } : parseFlags(rest, specs);
  for (const [k, v] of leading) if (!parsed.values.has(k)) parsed.values.set(k, v);
  if (flagBool(parsed.values, 'help') || (command.ownGrammar && rest.includes('--help'))) {
    process.stdout.write(`${command.summary}\n\nUsage:\n  rkt ${command.usage}\n\nFlags:\n${usageOf(command.flags)}\n\nGlobal flags:\n${usageOf(GLOBAL_FLAGS)}\n`);
    return 0;
  }
  const globals = globalOptionsFrom(parsed.values);
  setDebug(globals.debug);
  if (command.needsRoot && process.getuid && process.getuid() !== 0) {
    throw new RktError('cannot run as unprivileged user: run this command as root');
  }
  if (!NO_DATA_DIR.has(command.name)) {
    setDataDirForErrors(globals.dir);
    checkDataDir(globals.dir);
  }
  return command.run({ globals, parsed, rawArgs: rest });
}

/**
 * Hands the stage1 script to bin/rkt (fd RKT_HANDOFF_FD), recording bin/rkt's PID, which
 * becomes the pod, as the pod's holder first.
 */
async function handOff(script: string, podDir: string): Promise<number> {
  const fd = Number(process.env.RKT_HANDOFF_FD);
  if (Number.isInteger(fd) && fd > 2) {
    // Write first: if bin/rkt was killed, this fails (EPIPE) or we have been reparented,
    // and the pod must not name some other process (init) as its holder.
    const launcher = process.ppid;
    fs.writeSync(fd, script);
    if (process.ppid !== launcher) throw new RktError('the rkt process that started this pod was killed during the hand-off');
    writeHolder(realHost, podDir, launcher);
    return 0;
  }
  // Started without bin/rkt: run stage1 as a child (it execs, so its PID is the pod).
  const child = spawn('/bin/sh', ['-c', '. "$0"', script], { stdio: 'inherit' });
  if (child.pid) writeHolder(realHost, podDir, child.pid);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15))));
}

main(process.argv.slice(2)).then(
  (result) => (typeof result === 'number' ? result : handOff(result.handoff, result.podDir)),
).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    const msg = errorMessage(err);
    process.stderr.write(`${logPrefix()}: ${msg}\n`);
    if (!(err instanceof RktError) && process.env.RKT_DEBUG_STACK) process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = err instanceof RktError && !hostFault(err) ? err.exitCode : RKT_FAILURE;
  },
);
