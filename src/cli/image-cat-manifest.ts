/** rkt image cat-manifest IMAGE: print a stored image's manifest. */
import type { Command } from './command.js';
import { flagBool } from './flags.js';
import { ImageStore } from '../store/imagestore.js';
import { fail } from '../util/errors.js';
import { toStdout } from '../util/log.js';

export const command: Command = {
  name: 'image-cat-manifest',
  summary: 'Inspect and print the image manifest',
  usage: 'image cat-manifest [--pretty-print=false] IMAGE',
  flags: [{ name: 'pretty-print', kind: 'bool', help: 'indent the JSON (default true)' }],
  async run({ globals, parsed }) {
    if (parsed.positionals.length !== 1) fail('image cat-manifest takes one image ID or name: rkt image cat-manifest IMAGE');
    const store = new ImageStore(globals.dir);
    const image = store.resolve(parsed.positionals[0]);
    const manifest: unknown = JSON.parse(store.rawManifest(image.id).toString('utf8'));
    const pretty = flagBool(parsed.values, 'pretty-print', true);
    toStdout(`${pretty ? JSON.stringify(manifest, null, '\t') : JSON.stringify(manifest)}\n`);
    return 0;
  },
};
