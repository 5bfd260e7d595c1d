import type { Command } from './command.js';
import { flagBool } from './flags.js';
import { realHost } from '../host/real.js';
import { errorMessage } from '../util/errors.js';
import { podState } from '../stage0/pod.js';
import { podHolderPid, podInitPid } from '../stage0/procs.js';
import { eachPodFromArgs, UUID_FILE_FLAG } from './pod-args.js';

export const command: Command = {
  name: 'stop',
  summary: 'Stop a pod',
  usage: 'stop [--force] UUID... | --uuid-file=FILE',
  flags: [UUID_FILE_FLAG, { name: 'force', kind: 'bool', help: 'kill the pod (SIGKILL) instead of asking its apps to stop' }],
  async run({ globals, parsed }) {
    let failed = 0;
    let pods;
    try { pods = eachPodFromArgs(globals.dir, parsed); } catch (e) { process.stderr.write(`stop: ${errorMessage(e)}\n`); return 254; }
    const force = flagBool(parsed.values, 'force');
    // Each pod is handled on its own, as rkt: one failure does not keep the others running.
    for (const { pod, error } of pods) {
      if (!pod) {
        process.stderr.write(`stop: ${error}\n`);
        failed++;
        continue;
      }
      if (podState(realHost, pod) !== 'running') {
        process.stderr.write(`stop: pod "${pod.uuid}" is already stopped\n`);
        continue;
      }
      // SIGTERM goes to the holder (tini), which forwards it to the pod's init; --force
      // kills the pod's PID 1, which takes down its whole PID namespace.
      const find = () => (force ? podInitPid(realHost, pod.dir) : podHolderPid(realHost, pod.dir));
      let target = find();
      // Just after the hand-off the holder may still be the launcher, about to exec stage1.
      for (let i = 0; i < 40 && target === undefined && podState(realHost, pod) === 'running'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        target = find();
      }
      if (target === undefined || !realHost.kill(target, force ? 'SIGKILL' : 'SIGTERM')) {
        process.stderr.write(`stop: cannot signal pod "${pod.uuid}"\n`);
        failed++;
        continue;
      }
      process.stdout.write(`"${pod.uuid}"\n`);
    }
    if (failed > 0) process.stderr.write(`stop: failed to stop ${failed} of ${pods.length} pod(s)\n`);
    return failed > 0 ? 254 : 0;
  },
};
