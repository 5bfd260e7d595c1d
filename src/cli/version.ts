import type { Command } from './command.js';
import { RKT_VERSION, APPC_VERSION } from '../version.js';
import { toStdout } from '../util/log.js';

export const command: Command = {
  name: 'version',
  summary: 'Print the version and exit',
  usage: 'version',
  flags: [],
  async run() {
    toStdout(`rkt Version: ${RKT_VERSION}\nappc Version: ${APPC_VERSION}\nNode Version: ${process.version}\nNode OS/Arch: ${process.platform}/${process.arch}\n`);
    return 0;
  },
};
