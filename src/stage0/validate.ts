/**
 * Checks of the start options that need the pod's apps or the host (ports by name, the
 * network for --port and its config, --interactive). Their syntax was checked by cli/ when
 * the options were made. These run BEFORE the pod dir exists (run, prepare) or before a
 * prepared pod is claimed (run-prepared), so a bad option leaves nothing behind.
 */
import { fail } from '../util/errors.js';
import type { GlobalOptions } from '../options.js';
import type { Host } from '../host/host.js';
import { assertPortsAllowed, PortForward } from '../net/netflag.js';
import type { PreparedApp } from './prepare.js';
import type { StartOptions } from './spec.js';

const portSpec = (p: PortForward) => `${p.name}:${p.hostIP ? `${p.hostIP}:` : ''}${p.hostPort}`;

/** Forwarded ports, matched by name to a port some app's image declares. */
export function resolvePorts(apps: PreparedApp[], forwards: PortForward[]) {
  return forwards.map((fwd) => {
    const decl = apps.flatMap((a) => a.ports).find((p) => p.name === fwd.name);
    if (!decl) fail(`--port ${portSpec(fwd)}: no app in this pod declares a port named "${fwd.name}" (see "rkt image cat-manifest")`);
    return { ...fwd, podPort: decl.port, protocol: decl.protocol as 'tcp' | 'udp' };
  });
}

/**
 * Every check of the start options that needs no pod dir. `run` is false for `prepare`,
 * where the network is chosen later by run-prepared: then only the port names are checked.
 */
export async function checkStartOptions(host: Host, globals: GlobalOptions, apps: PreparedApp[], ports: PortForward[], opts: StartOptions, run: boolean): Promise<void> {
  const resolved = resolvePorts(apps, ports);
  if (!run) return;
  assertPortsAllowed(opts.net, resolved);
  if (opts.interactive && apps.length > 1) fail('--interactive works with one app only: run a single image');
  if (opts.net.kind === 'cni') {
    // Loaded only here: --net=host and --net=none stay light.
    const { loadNets } = await import('../net/conf.js');
    loadNets(host, opts.net.nets, globals.localConfig, globals.userConfig);
  }
}
