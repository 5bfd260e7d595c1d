/** rkt image export IMAGE OUT.aci: write out a stored image exactly as it was fetched. */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from './command.js';
import { flagBool } from './flags.js';
import { ImageStore } from '../store/imagestore.js';
import { errorMessage, fail } from '../util/errors.js';

export const command: Command = {
  name: 'image-export',
  summary: 'Export a stored image to an aci file',
  usage: 'image export [--overwrite] IMAGE OUTPUT_ACI_FILE',
  flags: [{ name: 'overwrite', kind: 'bool', help: 'replace the output file if it exists' }],
  async run({ globals, parsed }) {
    if (parsed.positionals.length !== 2) fail('image export takes an image and an output file: rkt image export IMAGE OUT.aci');
    const [ref, out] = parsed.positionals;
    const store = new ImageStore(globals.dir);
    const image = store.resolve(ref);
    if (!flagBool(parsed.values, 'overwrite') && fs.existsSync(out)) {
      fail(`output file "${out}" already exists: remove it or pass --overwrite`);
    }
    // Copy next to the target, then rename: a reader never sees half a file.
    const tmp = path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.${process.pid}.tmp`);
    try {
      fs.copyFileSync(store.blobPath(image.id), tmp);
      fs.renameSync(tmp, out);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      fail(`cannot export image ${image.id} to "${out}": ${errorMessage(e)}`);
    }
    return 0;
  },
};
