/** rkt image gc [--grace-period=24h]: remove unused images and tree stores. */
import type { Command } from './command.js';
import { flagString } from './flags.js';
import { removeImages } from './image-rm.js';
import { ImageStore } from '../store/imagestore.js';
import { planImageGc } from '../store/gc.js';
import { errorMessage, fail, RKT_FAILURE } from '../util/errors.js';
import { info } from '../util/log.js';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("24h", "30m0s", "1.5h", "0") in milliseconds. */
export function parseGoDuration(raw: string): number {
  if (raw === '0') return 0;
  const parts = [...raw.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((m) => m[0]).join('') !== raw) {
    fail(`invalid duration "${raw}": use Go syntax such as 24h, 30m0s or 10s`);
  }
  return parts.reduce((ms, m) => ms + Number(m[1]) * UNIT_MS[m[2]], 0);
}

export const command: Command = {
  name: 'image-gc',
  summary: 'Garbage collect local store',
  usage: 'image gc [--grace-period=24h0m0s]',
  flags: [{ name: 'grace-period', kind: 'string', help: 'remove images not used for this long (default 24h0m0s)' }],
  async run({ globals, parsed }) {
    const grace = parseGoDuration(flagString(parsed.values, 'grace-period') ?? '24h');
    const store = new ImageStore(globals.dir);
    store.removeStaleStaging();
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
    return failed > 0 ? RKT_FAILURE : 0;
  },
};
