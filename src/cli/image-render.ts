/** rkt image render IMAGE DIR: unpack a stored image with its dependencies and pathWhitelist applied. */
import type { Command } from './command.js';
import { OUTPUT_FLAGS, writeImageDir } from './image-extract.js';
import { renderInto } from '../store/treestore.js';

export const command: Command = {
  name: 'image-render',
  summary: 'Render a stored image to a directory with all its dependencies',
  usage: 'image render [--rootfs-only] [--overwrite] IMAGE DIR',
  flags: OUTPUT_FLAGS,
  async run({ globals, parsed }) {
    return writeImageDir('render', globals.dir, parsed, (store, id, dir, rootfsOnly) => renderInto(store, id, dir, { rootfsOnly }));
  },
};
