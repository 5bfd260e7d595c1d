import type { Command } from './command.js';
import { parseRunArgs, runGlobals, RUN_POD_FLAGS, APP_FLAGS } from './run-args.js';
import { flagBool } from './flags.js';
import { podSpecFrom } from './pod-spec.js';
import { realHost } from '../host/real.js';
import { preparePod } from '../stage0/prepare.js';
import { stampState, transition } from '../stage0/pod.js';
import { info, toStdout } from '../util/log.js';

export const command: Command = {
  name: 'prepare',
  summary: 'Prepare to run image(s) in a pod in rkt',
  usage: 'prepare [--volume=...] [--quiet] IMAGE [app flags] [-- image-args...[---]]...',
  flags: [...RUN_POD_FLAGS, ...APP_FLAGS],
  ownGrammar: true,
  needsRoot: true,
  async run({ parsed, rawArgs }) {
    const args = parseRunArgs(rawArgs, RUN_POD_FLAGS);
    const globals = runGlobals(parsed.values, args);
    const { pod } = await preparePod(realHost, globals, podSpecFrom(args), false);
    stampState(realHost, transition(pod, globals.dir, 'prepared').dir);
    if (!flagBool(args.pod, 'quiet')) info(`pod ${pod.uuid} is prepared`);
    toStdout(`${pod.uuid}\n`);
    return 0;
  },
};
