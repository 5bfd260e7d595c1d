import type { Command } from './command.js';
import { parseRunArgs, runGlobals, RUN_PREPARED_FLAGS } from './run-args.js';
import { startOptionsFrom } from './pod-spec.js';
import { realHost } from '../host/real.js';
import { fail } from '../util/errors.js';
import { readPrepared } from '../stage0/prepare.js';
import { startPod } from '../stage0/start.js';
import { checkStartOptions } from '../stage0/validate.js';
import { claimPrepared, findPod, runHolder } from '../stage0/pod.js';

export const command: Command = {
  name: 'run-prepared',
  summary: 'Run a prepared application pod in rkt',
  usage: 'run-prepared [--net=...] [--interactive] UUID',
  flags: RUN_PREPARED_FLAGS,
  ownGrammar: true,
  needsRoot: true,
  async run({ parsed, rawArgs }) {
    const args = parseRunArgs(rawArgs, RUN_PREPARED_FLAGS);
    const globals = runGlobals(parsed.values, args);
    if (args.apps.length !== 1) fail('run-prepared takes exactly one pod UUID (see "rkt list")');
    // The apps' flags and arguments were fixed by "rkt prepare"; dropping them silently would run something else.
    if (args.apps[0].flags.size > 0 || args.apps[0].hasArgs) fail('app flags and arguments are not taken after the UUID: give them to "rkt prepare"');
    const found = findPod(globals.dir, args.apps[0].image);
    if (found.stateDir !== 'prepared') fail(`pod ${found.uuid} is not prepared (it is in ${found.stateDir}): prepare a new one with "rkt prepare"`);
    // Flags are checked before the claim: a bad one leaves the pod prepared.
    const start = startOptionsFrom(args.pod);
    const prepared = readPrepared(found.dir);
    await checkStartOptions(realHost, globals, prepared.apps, prepared.ports, start, true);
    // Claim the pod: the rename out of prepared/ is atomic, so only one run-prepared wins.
    const holder = runHolder();
    const pod = claimPrepared(realHost, globals.dir, found, holder.pid, holder.stage0) ?? fail(`pod ${found.uuid} was taken by another command`);
    const started = await startPod(realHost, globals, pod, prepared, start);
    return { handoff: started.handoff, podDir: started.pod.dir };
  },
};
