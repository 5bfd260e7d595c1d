/** rkt image extract IMAGE DIR: unpack a stored image as it is (no dependencies). */
import fs from 'node:fs';
import type { Command } from './command.js';
import type { FlagSpec, ParsedFlags } from './flags.js';
import { flagBool } from './flags.js';
import { ImageStore } from '../store/imagestore.js';
import { extractStored } from '../store/treestore.js';
import { fail } from '../util/errors.js';

export const OUTPUT_FLAGS: FlagSpec[] = [
  { name: 'rootfs-only', kind: 'bool', help: 'write only the rootfs contents into the directory' },
  { name: 'overwrite', kind: 'bool', help: 'replace the directory if it exists' },
];

/**
 * Shared by extract and render: resolves IMAGE, readies DIR, runs `write` into it, and
 * removes DIR again if writing fails.
 */
export async function writeImageDir(
  verb: string,
  dataDir: string,
  parsed: ParsedFlags,
  write: (store: ImageStore, id: string, dir: string, rootfsOnly: boolean) => Promise<void>,
): Promise<number> {
  if (parsed.positionals.length !== 2) fail(`image ${verb} takes an image and a directory: rkt image ${verb} IMAGE DIR`);
  const [ref, dir] = parsed.positionals;
  const store = new ImageStore(dataDir);
  const image = store.resolve(ref);
  if (fs.existsSync(dir)) {
    if (!flagBool(parsed.values, 'overwrite')) fail(`directory "${dir}" already exists: remove it or pass --overwrite`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  try {
    await write(store, image.id, dir, flagBool(parsed.values, 'rootfs-only'));
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return 0;
}

export const command: Command = {
  name: 'image-extract',
  summary: 'Extract a stored image to a directory',
  usage: 'image extract [--rootfs-only] [--overwrite] IMAGE DIR',
  flags: OUTPUT_FLAGS,
  async run({ globals, parsed }) {
    return writeImageDir('extract', globals.dir, parsed, (store, id, dir, rootfsOnly) => extractStored(store, id, dir, { rootfsOnly }));
  },
};
