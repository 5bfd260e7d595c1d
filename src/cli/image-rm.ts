/** rkt image rm IMAGE...: remove images by ID or name (every image of that name). */
import type { Command } from './command.js';
import { ImageStore, type ImageInfo } from '../store/imagestore.js';
import { errorMessage, fail, RKT_FAILURE } from '../util/errors.js';
import { info, toStdout } from '../util/log.js';

/** Removes the images, reporting each; returns how many could not be removed. */
export function removeImages(store: ImageStore, images: ImageInfo[]): number {
  let done = 0;
  let failed = 0;
  for (const image of images) {
    try {
      store.remove(image.id);
      toStdout(`successfully removed aci for image: "${image.id}"\n`);
      done++;
    } catch (e) {
      info(`cannot remove image "${image.id}" ("${image.name}"): ${errorMessage(e)}`);
      failed++;
    }
  }
  if (done > 0) info(`${done} image(s) successfully removed`);
  return failed;
}

export const command: Command = {
  name: 'image-rm',
  summary: 'Remove one or more images with the given IDs or image names from the local store',
  usage: 'image rm IMAGE...',
  flags: [],
  async run({ globals, parsed }) {
    if (parsed.positionals.length === 0) fail('image rm needs at least one image ID or name: rkt image rm IMAGE...');
    const store = new ImageStore(globals.dir);
    const targets = new Map<string, ImageInfo>();
    let failed = 0;
    for (const ref of parsed.positionals) {
      try {
        for (const image of store.resolveAll(ref)) targets.set(image.id, image);
      } catch (e) {
        info(errorMessage(e));
        failed++;
      }
    }
    failed += removeImages(store, [...targets.values()]);
    return failed > 0 ? RKT_FAILURE : 0;
  },
};
