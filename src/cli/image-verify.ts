/**
 * `rkt image verify IMAGE...`: checks images in the store against disk corruption, as rkt
 * did. The blob must still hash to the image ID; a rendered tree must still equal a fresh
 * render of the image, else it is rebuilt (rkt: "tree cache verification failed ...
 * rebuilding"). A damaged blob cannot be repaired: rm the image and fetch it again.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from './command.js';
import { ImageStore } from '../store/imagestore.js';
import { renderInto, renderTree } from '../store/treestore.js';
import { sniffAndDecompress } from '../image/compression.js';
import { fail } from '../util/errors.js';
import { toStdout } from '../util/log.js';

async function blobDigest(file: string): Promise<string> {
  const { stream } = await sniffAndDecompress(fs.createReadStream(file));
  const hash = crypto.createHash('sha512');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `sha512-${hash.digest('hex')}`;
}

function fileHash(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The first difference between two trees (type, mode, owner, size, content, link target), or undefined. */
export function treeDifference(a: string, b: string, rel = ''): string | undefined {
  const names = (d: string) => fs.readdirSync(path.join(d, rel)).sort();
  const left = names(a);
  const right = names(b);
  const missing = left.find((n) => !right.includes(n)) ?? right.find((n) => !left.includes(n));
  if (missing !== undefined) return `${path.join('/', rel, missing)} is ${left.includes(missing) ? 'extra' : 'missing'}`;
  for (const n of left) {
    const p = path.join(rel, n);
    const sa = fs.lstatSync(path.join(a, p));
    const sb = fs.lstatSync(path.join(b, p));
    const where = path.join('/', p);
    if (sa.mode !== sb.mode || sa.uid !== sb.uid || sa.gid !== sb.gid) return `${where} has changed mode or owner`;
    if (sa.isSymbolicLink() && fs.readlinkSync(path.join(a, p)) !== fs.readlinkSync(path.join(b, p))) return `${where} points elsewhere`;
    if (sa.isFile() && (sa.size !== sb.size || fileHash(path.join(a, p)) !== fileHash(path.join(b, p)))) return `${where} has changed content`;
    if (sa.isDirectory()) {
      const d = treeDifference(a, b, p);
      if (d) return d;
    }
  }
  return undefined;
}

export const command: Command = {
  name: 'image-verify',
  summary: 'Verify one or more images in the local store',
  usage: 'image verify IMAGE...',
  flags: [],
  async run({ globals, parsed }) {
    if (parsed.positionals.length === 0) fail('image verify needs at least one image ID or name: rkt image verify IMAGE...');
    const store = new ImageStore(globals.dir);
    const images = parsed.positionals.map((ref) => ({ ref, info: store.resolve(ref) }));
    for (const { ref, info } of images) {
      const digest = await blobDigest(store.blobPath(info.id));
      if (digest !== info.id) fail(`image ${ref} (${info.id}) is damaged: its stored ACI no longer hashes to its ID; remove it with "rkt image rm ${info.id}" and fetch it again`);
      const tree = store.treePath(info.id);
      if (fs.existsSync(path.join(tree, 'rendered'))) {
        const fresh = store.staging();
        try {
          fs.mkdirSync(fresh, { mode: 0o700 });
          await renderInto(store, info.id, fresh, {});
          const diff = treeDifference(path.join(fresh, 'rootfs'), path.join(tree, 'rootfs'));
          if (diff) {
            toStdout(`tree cache verification failed for image ${ref}: ${diff}; rebuilding...\n`);
            store.removeTree(info.id);
            await renderTree(store, info.id);
          }
        } finally {
          fs.rmSync(fresh, { recursive: true, force: true });
        }
      }
      toStdout(`successfully verified checksum for image: "${ref}" ("${info.id}")\n`);
    }
    return 0;
  },
};
