/**
 * `rkt export [--app=NAME] [--overwrite] UUID OUTPUT.aci`: an app of an exited pod as an
 * ACI (its image's manifest, and its root filesystem as the app left it), as rkt did.
 * An overlay pod's files are its image's tree with the app's upper dir on top: the kernel
 * merges them (a read-only overlay mount in a mount namespace that dies with the tar).
 * The ACI is written beside OUTPUT and renamed in, so a failure leaves nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from './command.js';
import { flagBool, flagString } from './flags.js';
import { realHost } from '../host/real.js';
import { fail } from '../util/errors.js';
import { podState } from '../stage0/pod.js';
import { readPrepared } from '../stage0/prepare.js';
import { RANGE_FILE } from '../stage0/userns.js';
import { ImageStore } from '../store/imagestore.js';
import { podsFromArgs, UUID_FILE_FLAG } from './pod-args.js';
import { appRootfs, overlayDir } from '../pod-layout.js';

/** Packs `manifestDir/manifest` and `rootfs` (as rootfs/) into a gzipped ACI; for overlay, rootfs = upper over lower. */
const PACK = `set -e
tmp=$1 out=$2 mdir=$3 root=$4 upper=$5
if [ -n "$upper" ]; then
  mkdir "$tmp/merged"
  mount -t overlay -o "ro,lowerdir=$upper:$root" overlay "$tmp/merged"
  root=$tmp/merged
fi
tar --numeric-owner --xattrs -czf "$out" -C "$mdir" manifest -C "$root" --transform 's,^\\.,rootfs,S' .
`;

export const command: Command = {
  name: 'export',
  summary: 'Export an app of an exited pod to an ACI file',
  usage: 'export [--app=NAME] [--overwrite] UUID OUTPUT.aci',
  flags: [
    UUID_FILE_FLAG,
    { name: 'app', kind: 'string', help: 'the app to export (needed when the pod has several)' },
    { name: 'overwrite', kind: 'bool', help: 'overwrite the output ACI' },
  ],
  needsRoot: true,
  async run({ globals, parsed }) {
    const out = parsed.positionals[parsed.positionals.length - 1];
    const refs = { ...parsed, positionals: parsed.positionals.slice(0, -1) };
    if (parsed.positionals.length < 1 || !out || !out.endsWith('.aci')) fail('export needs a pod and an output file ending in .aci: rkt export UUID OUTPUT.aci');
    const [pod] = podsFromArgs(globals.dir, refs, true);
    const state = podState(realHost, pod);
    if (state !== 'exited' && state !== 'exited garbage') fail(`pod ${pod.uuid} is ${state}: only exited pods can be exported (see "rkt stop")`);
    if (fs.existsSync(path.join(pod.dir, RANGE_FILE))) fail(`pod ${pod.uuid} ran with --private-users, whose files belong to its uid range: export is not supported for it`);
    const prepared = readPrepared(pod.dir);
    const name = flagString(parsed.values, 'app');
    if (!name && prepared.apps.length !== 1) fail(`pod ${pod.uuid} has several apps (${prepared.apps.map((a) => a.name).join(', ')}): choose one with --app`);
    const app = prepared.apps.find((a) => a.name === (name ?? prepared.apps[0].name));
    if (!app) fail(`pod ${pod.uuid} has no app "${name}" (apps: ${prepared.apps.map((a) => a.name).join(', ')})`);
    const target = path.resolve(out);
    if (fs.existsSync(target) && !flagBool(parsed.values, 'overwrite')) fail(`${out} exists: choose another file or pass --overwrite`);

    const tree = new ImageStore(globals.dir).treePath(app.imageId);
    if (!fs.existsSync(path.join(tree, 'manifest'))) fail(`the image of app ${app.name} (${app.imageId}) is no longer in the store: fetch it again to export the app`);
    let root = path.join(pod.dir, appRootfs(app.name));
    let upper = '';
    if (prepared.overlay) {
      upper = path.join(pod.dir, overlayDir(app.name), 'upper');
      root = app.treeRootfs;
      if (/[:,]/.test(upper + root)) fail(`cannot export pod ${pod.uuid}: its paths contain ":" or ",", which an overlay mount cannot take`);
    }
    const tmp = fs.mkdtempSync(path.join(path.dirname(target), '.rkt-export-'));
    try {
      const partial = path.join(tmp, 'out.aci');
      const r = await realHost.exec('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', PACK, 'sh', tmp, partial, tree, root, upper]);
      if (r.code !== 0) fail(`cannot export app ${app.name} of pod ${pod.uuid}: ${r.stderr.trim().split('\n').pop()}`);
      fs.renameSync(partial, target);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return 0;
  },
};
