import type { Command } from './command.js';
import { RKT_VERSION, APPC_VERSION } from '../version.js';

export const command: Command = {
  name: 'version',
  summary: 'Print the version and exit',
  usage: 'version',
  flags: [],
  async run() {
    process.stdout.write(`rkt Version: ${RKT_VERSION}\nappc Version: ${APPC_VERSION}\nNode Version: ${process.version}\nNode OS/Arch: ${process.platform}/${process.arch}\n`);
    return 0;
  },
};
