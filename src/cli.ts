/**
 * rkt stage0 entry point: the command line (cli/tree.ts), error reporting, and the
 * stage1 hand-off to bin/rkt (src/stage0/rkt-launch.c says why its process execs stage1).
 * Start-up time counts (`rkt version` should cost about `node -e 0`): what only some
 * commands need (child_process, crypto, the data dir checks) is imported when needed.
 */
import fs from 'node:fs';
import { resolve } from './cli/tree.js';
import { COMMANDS } from './cli/registry.js';
import { globalOptionsFrom } from './cli/globals.js';
import { RktError, RKT_FAILURE, errorMessage, hostFault, setDataDirForErrors } from './util/errors.js';
import { setDebug, setLogPrefix, logPrefix, toStderr } from './util/log.js';
import { stdioBuilt, whenBuilt } from './util/stdio.js';
import type { CommandResult } from './cli/command.js';
import type { Handoff } from './stage0/start.js';

/** Commands that never touch the data dir (install sets it up itself). */
const NO_DATA_DIR = new Set(['version', 'trust', 'install', 'help', 'completion', 'man', 'config']);

async function main(argv: string[]): Promise<CommandResult> {
  const resolution = await resolve(argv, COMMANDS);
  if ('status' in resolution) {
    if (resolution.error) toStderr(`rkt: ${resolution.error}\n`);
    return resolution.status;
  }
  const { path, command, parsed, rawArgs } = resolution.selected;
  // rkt prefixes stderr lines with the (sub)command's own name: `rm: ...` for `image rm`.
  setLogPrefix(path[path.length - 1]);
  const globals = globalOptionsFrom(parsed.values);
  setDebug(globals.debug);
  if (command.needsRoot && process.getuid && process.getuid() !== 0) {
    throw new RktError('cannot run as unprivileged user: run this command as root');
  }
  if (!NO_DATA_DIR.has(command.name)) {
    setDataDirForErrors(globals.dir);
    (await import('./store/datadir.js')).checkDataDir(globals.dir);
  }
  return command.run({ globals, parsed, rawArgs, commands: COMMANDS });
}

/**
 * Hands stage1's command line to bin/rkt's rkt-launch (fd RKT_HANDOFF_FD), which execs it
 * (src/stage0/rkt-launch.c has the record's format). startPod already recorded bin/rkt's PID,
 * which becomes the pod, as the pod's holder (with ours, until we end).
 */
async function handOff(handoff: Handoff, podDir: string): Promise<number> {
  const fd = Number(process.env.RKT_HANDOFF_FD);
  if (Number.isInteger(fd) && fd > 2) {
    if (handoff.argv.length === 0 || handoff.argv.includes('')) throw new Error(`stage1's command line has an empty field: ${JSON.stringify(handoff.argv)}`);
    // "go": the pod starts without waiting for our exit. Node's exit restores the terminal
    // mode and the O_NONBLOCK flag of fds 0-2 as they were when it started, which could undo
    // an app's own: they are closed first, so there is nothing of ours left for it to restore.
    // "wait": a stream we built may have made a shared fd non-blocking; our exit undoes that
    // before the pod starts.
    const wait = stdioBuilt();
    if (!wait) for (const f of [0, 1, 2]) { try { fs.closeSync(f); } catch { /* not open */ } }
    // If bin/rkt was killed, this fails (EPIPE) or we have been reparented.
    const launcher = process.ppid;
    fs.writeSync(fd, `${[wait ? 'wait' : 'go', ...handoff.argv].join('\0')}\0\0`);
    fs.closeSync(fd);
    if (process.ppid !== launcher) throw new RktError('the rkt process that started this pod was killed during the hand-off');
    // Our work is done: nothing left pending (a handle kept open by mistake) may keep this
    // process around beside the pod, or hold the pod's start back ("wait").
    process.exit(0);
  }
  const { realHost } = await import('./host/real.js');
  const { writeHolder } = await import('./stage0/pod.js');
  // Started without bin/rkt: run stage1 as a child (it execs, so its PID is the pod).
  const { spawn } = await import('node:child_process');
  const child = spawn(handoff.argv[0], handoff.argv.slice(1), { stdio: 'inherit' });
  if (child.pid) writeHolder(realHost, podDir, child.pid);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15))));
}

function start(argv: string[]): void {
  // A reader that went away (`rkt list | head -1`) is no error of ours: the command still
  // finishes (a fetch half done must still clean up), its output just goes nowhere.
  // (Attached when stdout is first used: see util/stdio.ts.)
  whenBuilt('stdout', (stdout) => stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  }));
  main(argv).then(
    (result) => (typeof result === 'number' ? result : handOff(result.handoff, result.podDir)),
  ).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => {
      const msg = errorMessage(err);
      toStderr(`${logPrefix()}: ${msg}\n`);
      if (!(err instanceof RktError) && process.env.RKT_DEBUG_STACK) toStderr(`${(err as Error).stack}\n`);
      process.exitCode = err instanceof RktError && !hostFault(err) ? err.exitCode : RKT_FAILURE;
    },
  );
}

start(process.argv.slice(2));
