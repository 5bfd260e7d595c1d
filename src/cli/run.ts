import type { Command } from './command.js';
import { parseRunArgs, runGlobals, RUN_POD_FLAGS, APP_FLAGS } from './run-args.js';
import { podSpecFrom } from './pod-spec.js';
import { realHost } from '../host/real.js';
import { preparePod } from '../stage0/prepare.js';
import { startPod } from '../stage0/start.js';

export const command: Command = {
  name: 'run',
  summary: 'Run image(s) in a pod in rkt',
  usage: 'run [--volume=name,kind=host,...] [--mount=volume=NAME,target=PATH] IMAGE [--exec=/path] [--memory=128M] [--cpu=500m] [-- image-args...[---]]...',
  flags: [...RUN_POD_FLAGS, ...APP_FLAGS],
  ownGrammar: true,
  needsRoot: true,
  async run({ parsed, rawArgs }) {
    const args = parseRunArgs(rawArgs, RUN_POD_FLAGS);
    const globals = runGlobals(parsed.values, args);
    const spec = podSpecFrom(args);
    const { pod, prepared } = await preparePod(realHost, globals, spec);
    const started = await startPod(realHost, globals, pod, prepared, spec.start);
    return { handoff: started.handoff, podDir: started.pod.dir };
  },
};
