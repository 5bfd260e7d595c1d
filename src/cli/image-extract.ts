/** rkt image extract IMAGE DIR: unpack a stored image as it is (no dependencies). */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from './command.js';
import type { FlagSpec, ParsedFlags } from './flags.js';
import { flagBool } from './flags.js';
import { ImageStore } from '../store/imagestore.js';
import { extractStored } from '../store/treestore.js';
import { fail } from '../util/errors.js';
import { warn } from '../util/log.js';
import { privilegedEntries } from '../store/datadir.js';

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
  warnPrivileged(dir);
  return 0;
}

/**
 * The image's modes are kept, as rkt does; but outside the data dir nothing keeps other
 * users away from its setuid/setgid files and device nodes, so say that they are there.
 */
function warnPrivileged(dir: string): void {
  const found = privilegedEntries(dir, 100);
  if (found.length === 0) return;
  const shown = found.slice(0, 3).map((p) => path.relative(dir, p)).join(', ');
  const more = found.length >= 100 ? ' and more' : found.length > 3 ? ` and ${found.length - 3} more` : '';
  warn(`${dir} holds setuid/setgid files or device nodes from the image (${shown}${more}): any user who can reach ${dir} can use them; keep it private (chmod 0700 ${dir}) or remove them`);
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
