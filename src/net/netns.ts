/**
 * The pod's persistent network namespace: a bind-mounted nsfs file under
 * /var/run/netns, made and removed with iproute2's `ip netns`, which also keeps
 * /var/run/netns a shared mount point so the bind mount can be undone from any
 * mount namespace.
 */
import path from 'node:path';
import type { Host } from '../host/host.js';
import { fail } from '../util/errors.js';

export const NETNS_DIR = '/var/run/netns';

export function netnsPathFor(uuid: string): string {
  return path.join(NETNS_DIR, `rkt-${uuid}`);
}

function nameOf(nsPath: string): string {
  if (path.dirname(nsPath) !== NETNS_DIR) fail(`network namespace ${nsPath} is not under ${NETNS_DIR}: remove it by hand`);
  return path.basename(nsPath);
}

export async function createNetns(host: Host, nsPath: string): Promise<void> {
  const r = await host.exec('ip', ['netns', 'add', nameOf(nsPath)]);
  if (r.code !== 0) fail(`cannot create network namespace ${nsPath}: ${r.stderr.trim()}: is iproute2 installed and are you root?`);
}

/** rkt brought lo up itself rather than through the loopback plugin. */
export async function loopbackUp(host: Host, nsPath: string): Promise<void> {
  const r = await host.exec('ip', ['-n', nameOf(nsPath), 'link', 'set', 'lo', 'up']);
  if (r.code !== 0) fail(`cannot bring up lo in ${nsPath}: ${r.stderr.trim()}`);
}

/** Unmounts and removes the namespace file; a namespace already gone is fine. */
export async function deleteNetns(host: Host, nsPath: string): Promise<void> {
  const r = await host.exec('ip', ['netns', 'delete', nameOf(nsPath)]);
  if (r.code !== 0 && !/No such file or directory/.test(r.stderr)) {
    fail(`cannot remove network namespace ${nsPath}: ${r.stderr.trim()}`);
  }
}
