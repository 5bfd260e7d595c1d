/**
 * `rkt config`: the configuration rkt merged from --system-config, --local-config and
 * --user-config, printed as rkt printed it: `{"stage0": [entries]}`, each entry in the
 * format of the config files it stands for (rktVersion, rktKind, then its values).
 * This rkt has no auth.d/docker.d/stage1.d: its entries are paths and limits.
 */
import type { Command } from './command.js';
import { flagBool } from './flags.js';
import { configPodPidsLimit } from '../stage0/limits.js';
import type { GlobalOptions } from './globals.js';
import { toStdout } from '../util/log.js';

export function mergedConfig(globals: GlobalOptions): { stage0: Array<Record<string, unknown>> } {
  return {
    stage0: [
      { rktVersion: 'v1', rktKind: 'paths', data: globals.dir, 'stage1-images': globals.systemConfig },
      { rktVersion: 'v1', rktKind: 'limits', pidsLimit: configPodPidsLimit([globals.systemConfig, globals.localConfig, globals.userConfig]) },
    ],
  };
}

export const command: Command = {
  name: 'config',
  summary: 'Print configuration for each stage in JSON format',
  usage: 'config [--pretty-print=false]',
  flags: [{ name: 'pretty-print', kind: 'bool', help: 'apply indent to format the output (default true)' }],
  async run({ globals, parsed }) {
    const pretty = flagBool(parsed.values, 'pretty-print', true);
    toStdout(`${JSON.stringify(mergedConfig(globals), null, pretty ? '\t' : undefined)}\n`);
    return 0;
  },
};
