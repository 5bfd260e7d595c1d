/** rkt image gc [--grace-period=24h]: remove unused images and tree stores. */
import type { Command } from './command.js';
import { parseDurationMs } from '../util/duration.js';
import { flagString } from './flags.js';
import { removeImages } from './image-rm.js';
import { ImageStore } from '../store/imagestore.js';
import { planImageGc } from '../store/gc.js';
import { removePartials } from '../store/partial.js';
import { errorMessage, RKT_FAILURE } from '../util/errors.js';
import { info } from '../util/log.js';

export const command: Command = {
  name: 'image-gc',
  summary: 'Garbage collect local store',
  usage: 'image gc [--grace-period=24h0m0s]',
  flags: [{ name: 'grace-period', kind: 'string', help: 'remove images not used for this long (default 24h0m0s)' }],
  async run({ globals, parsed }) {
    const grace = parseDurationMs(flagString(parsed.values, 'grace-period') ?? '24h', 'grace-period');
    const store = new ImageStore(globals.dir);
    store.removeStaleStaging();
    // Downloads kept for resuming (src/store/partial.ts) are the store's to collect.
    for (const name of removePartials(store.tmpDir)) info(`removed partial download "${name}"`);
    store.removeOrphans();
    const plan = planImageGc(store, globals.dir, new Date(Date.now() - grace));
    let failed = 0;
    for (const id of plan.trees) {
      try {
        store.removeTree(id);
        info(`removed treestore "${id}"`);
      } catch (e) {
        info(`cannot remove treestore "${id}": ${errorMessage(e)}`);
        failed++;
      }
    }
    failed += removeImages(store, plan.images);
    // After the images: a layer is kept while a stored image still lists it.
    try {
      for (const digest of store.removeUnusedLayers()) info(`removed docker layer "${digest}"`);
    } catch (e) {
      info(`cannot remove unused docker layers: ${errorMessage(e)}`);
      failed++;
    }
    return failed > 0 ? RKT_FAILURE : 0;
  },
};
