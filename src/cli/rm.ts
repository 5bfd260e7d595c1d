import type { Command } from './command.js';
import { realHost } from '../host/real.js';
import { errorMessage } from '../util/errors.js';
import { deletePod } from '../stage0/gc.js';
import { podState, refind, transition } from '../stage0/pod.js';
import { eachPodFromArgs, UUID_FILE_FLAG } from './pod-args.js';
import { toStdout } from '../util/log.js';

export const command: Command = {
  name: 'rm',
  summary: 'Remove all files and resources associated with an exited pod',
  usage: 'rm UUID... | --uuid-file=FILE',
  flags: [UUID_FILE_FLAG],
  needsRoot: true,
  async run({ globals, parsed }) {
    let failed = 0;
    let pods;
    try { pods = eachPodFromArgs(globals.dir, parsed); } catch (e) { process.stderr.write(`rm: ${errorMessage(e)}\n`); return 254; }
    // Each pod is handled on its own, as rkt: one failure does not keep the others.
    for (const { pod: found, error } of pods) {
      if (!found) {
        process.stderr.write(`rm: ${error}\n`);
        failed++;
        continue;
      }
      const state = podState(realHost, found);
      if (state === 'running' || state === 'preparing' || state === 'embryo') {
        process.stderr.write(`rm: pod "${found.uuid}" is currently ${state === 'running' ? 'running' : 'being prepared'}: stop it first with "rkt stop ${found.uuid}"\n`);
        failed++;
        continue;
      }
      let pod = found;
      if (pod.stateDir !== 'garbage') {
        try { pod = transition(pod, globals.dir, 'garbage'); } catch { pod = refind(globals.dir, pod.uuid) ?? pod; }
      }
      if (await deletePod(realHost, globals.dir, pod)) toStdout(`"${pod.uuid}"\n`);
      else failed++;
    }
    if (failed > 0) process.stderr.write(`rm: failed to remove ${failed} of ${pods.length} pod(s)\n`);
    return failed > 0 ? 254 : 0;
  },
};
