import fs from 'node:fs';
import path from 'node:path';
import type { Command } from './command.js';
import { flagBool, flagString } from './flags.js';
import { realHost } from '../host/real.js';
import { errorMessage, fail } from '../util/errors.js';
import { podState } from '../stage0/pod.js';
import { podHolderPid, podInitPid } from '../stage0/procs.js';
import { eachPodFromArgs, UUID_FILE_FLAG } from './pod-args.js';
import { parseStopTimeout } from './pod-spec.js';
import { graceSeconds } from '../stage1/scripts.js';
import { STOP_TIMEOUT_FILE } from '../pod-layout.js';
import { toStdout } from '../util/log.js';

export const command: Command = {
  name: 'stop',
  summary: 'Stop a pod',
  usage: 'stop [--force | --timeout=DURATION] UUID... | --uuid-file=FILE',
  flags: [
    UUID_FILE_FLAG,
    { name: 'force', kind: 'bool', help: 'kill the pod (SIGKILL) instead of asking its apps to stop' },
    { name: 'timeout', kind: 'string', help: "grace period before the apps still running are SIGKILLed, e.g. 30s (default: the pod's --stop-timeout)" },
  ],
  async run({ globals, parsed }) {
    let failed = 0;
    const force = flagBool(parsed.values, 'force');
    const timeout = flagString(parsed.values, 'timeout');
    if (force && timeout !== undefined) fail('--force and --timeout cannot be combined: --force kills at once, --timeout after a grace period');
    const graceMs = timeout === undefined ? undefined : parseStopTimeout(timeout, 'timeout');
    let pods;
    try { pods = eachPodFromArgs(globals.dir, parsed); } catch (e) { process.stderr.write(`stop: ${errorMessage(e)}\n`); return 254; }
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
      // SIGTERM goes to the holder (rkt-helper --pod), which forwards it to the pod's init; --force
      // kills the pod's PID 1, which takes down its whole PID namespace.
      const find = () => (force ? podInitPid(realHost, pod.dir) : podHolderPid(realHost, pod.dir));
      let target = find();
      // Just after the hand-off the holder may still be the launcher, about to exec stage1.
      for (let i = 0; i < 40 && target === undefined && podState(realHost, pod) === 'running'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        target = find();
      }
      // The pod's init reads this stop's grace period when the SIGTERM comes.
      if (graceMs !== undefined && target !== undefined) fs.writeFileSync(path.join(pod.dir, STOP_TIMEOUT_FILE), `${graceSeconds(graceMs)}\n`);
      if (target === undefined || !realHost.kill(target, force ? 'SIGKILL' : 'SIGTERM')) {
        process.stderr.write(`stop: cannot signal pod "${pod.uuid}"\n`);
        failed++;
        continue;
      }
      toStdout(`"${pod.uuid}"\n`);
    }
    if (failed > 0) process.stderr.write(`stop: failed to stop ${failed} of ${pods.length} pod(s)\n`);
    return failed > 0 ? 254 : 0;
  },
};
