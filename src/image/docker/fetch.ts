/** Fetching a docker:// image: registry client and conversion come next. */
import type { ImageInfo, ImageStore } from '../../store/imagestore.js';
import type { DockerRef } from './reference.js';
import { formatDockerRef } from './reference.js';
import { fail } from '../../util/errors.js';

export async function fetchDockerImage(_store: ImageStore, ref: DockerRef, _opts: unknown): Promise<ImageInfo> {
  return fail(`cannot fetch "${formatDockerRef(ref)}": the registry client is not built yet`);
}
