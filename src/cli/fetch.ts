/** rkt fetch IMAGE...: discover, download, verify and store images; print their IDs. */
import type { Command } from './command.js';
import { flagBool, flagString } from './flags.js';
import { fetchImage, pullPolicyFrom } from '../fetch/fetcher.js';
import { shortId } from '../store/imagestore.js';
import { fail } from '../util/errors.js';
import { toStdout } from '../util/log.js';

export const command: Command = {
  name: 'fetch',
  summary: 'Fetch image(s) and store them in the local store',
  usage: 'fetch IMAGE... [--signature=FILE] [--full] [--pull-policy=update|new|never]',
  flags: [
    { name: 'signature', kind: 'string', help: 'local signature file of the image' },
    { name: 'full', kind: 'bool', help: 'print the full image ID' },
    { name: 'pull-policy', kind: 'string', help: 'new: use the store if it has the image; update (default): check the remote; never: store only' },
    { name: 'store-only', kind: 'bool', hidden: true, help: 'deprecated: --pull-policy=never' },
    { name: 'no-store', kind: 'bool', hidden: true, help: 'deprecated: --pull-policy=update' },
  ],
  async run({ globals, parsed }) {
    const images = parsed.positionals;
    const v = parsed.values;
    if (images.length === 0) fail('fetch needs at least one image: rkt fetch IMAGE...');
    const signatureFile = flagString(v, 'signature');
    if (signatureFile !== undefined && images.length > 1) {
      fail('--signature names the signature of one image: fetch that image on its own');
    }
    const pullPolicy = pullPolicyFrom(flagString(v, 'pull-policy'), flagBool(v, 'store-only'), flagBool(v, 'no-store'), 'update');
    for (const arg of images) {
      const image = await fetchImage(arg, { globals, pullPolicy, signatureFile });
      toStdout(`${flagBool(v, 'full') ? image.id : shortId(image.id, 32)}\n`);
    }
    return 0;
  },
};
