/**
 * Checks of the run flags that are only used when a pod starts (network, ports, DNS,
 * hosts, hostname, IPC, --interactive). They run BEFORE the pod dir exists (run,
 * prepare) or before a prepared pod is claimed (run-prepared), so a bad flag leaves
 * nothing behind.
 */
import { fail } from '../util/errors.js';
import { flagBool, flagList, flagString, FlagValues } from '../cli/flags.js';
import type { GlobalOptions } from '../cli/globals.js';
import type { Host } from '../host/host.js';
import { parseNetFlag, parsePortFlag, assertPortsAllowed, NetMode } from '../net/netflag.js';
import { parseDnsFlags, parseHostsEntries } from '../net/dns.js';
import { parseDurationMs } from '../util/duration.js';
import type { PreparedApp } from './prepare.js';

/** Forwarded ports, matched by name to a port some app's image declares. */
export function resolvePorts(apps: PreparedApp[], specs: string[]) {
  return specs.map((spec) => {
    const fwd = parsePortFlag(spec);
    const decl = apps.flatMap((a) => a.ports).find((p) => p.name === fwd.name);
    if (!decl) fail(`--port ${spec}: no app in this pod declares a port named "${fwd.name}" (see "rkt image cat-manifest")`);
    return { ...fwd, podPort: decl.port, protocol: decl.protocol as 'tcp' | 'udp' };
  });
}

export function ipcShared(flags: FlagValues): boolean {
  const ipc = flagString(flags, 'ipc') ?? 'auto';
  if (!['auto', 'private', 'parent'].includes(ipc)) fail(`invalid --ipc "${ipc}": use auto, private or parent`);
  return ipc === 'parent';
}

/** The grace period before SIGKILL when a pod stops, unless --stop-timeout says otherwise (as before it existed). */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** A day: longer is surely a typo, and keeps the number short for the init script. */
const MAX_STOP_TIMEOUT_MS = 86_400_000;

/**
 * A grace period in milliseconds from a duration flag (`--stop-timeout` of run and
 * run-prepared, `--timeout` of stop): 10s, 1m30s, 500ms or 0 (SIGKILL at once).
 */
export function parseStopTimeout(value: string, flag: string): number {
  const ms = parseDurationMs(value, flag);
  if (ms > MAX_STOP_TIMEOUT_MS) fail(`--${flag}=${value} is longer than a day: give at most 24h`);
  return ms;
}

/** The pod's grace period from its start flags. */
export function stopTimeoutMs(flags: FlagValues): number {
  const v = flagString(flags, 'stop-timeout');
  return v === undefined ? DEFAULT_STOP_TIMEOUT_MS : parseStopTimeout(v, 'stop-timeout');
}

/** Host name rules as systemd-nspawn (rkt's stage1) applied them; the kernel takes at most 64 bytes. */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?';
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

function checkHostname(flags: FlagValues): void {
  const h = flagString(flags, 'hostname');
  if (h === undefined) return;
  if (h.length > 64 || !HOSTNAME.test(h)) {
    fail(`invalid --hostname ${JSON.stringify(h)}: use at most 64 letters, digits, "-", "_" and dots, e.g. --hostname=web-1`);
  }
}

/** resolv.conf is line based: a value with spaces or a newline would add lines of its own. */
function checkDns(flags: FlagValues): void {
  const search = flagList(flags, 'dns-search');
  const opts = flagList(flags, 'dns-opt');
  const domain = flagString(flags, 'dns-domain');
  parseDnsFlags(flagList(flags, 'dns'), search, opts, domain);
  for (const [flag, values] of [['dns-search', search], ['dns-opt', opts], ['dns-domain', domain === undefined ? [] : [domain]]] as const) {
    for (const v of values) {
      if (v === '' || /\s/.test(v)) fail(`invalid --${flag} ${JSON.stringify(v)}: give one non-empty word per --${flag}, without spaces`);
    }
  }
}

/**
 * Every check of a start flag that needs no pod dir. `run` is false for `prepare`,
 * where the network is chosen later by run-prepared: then only the flags' own syntax
 * and the port names are checked.
 */
export async function checkStartFlags(host: Host, globals: GlobalOptions, apps: PreparedApp[], portSpecs: string[], flags: FlagValues, run: boolean): Promise<void> {
  const mode: NetMode = parseNetFlag(flagList(flags, 'net'));
  const ports = resolvePorts(apps, portSpecs);
  ipcShared(flags);
  stopTimeoutMs(flags);
  checkHostname(flags);
  checkDns(flags);
  parseHostsEntries(flagList(flags, 'hosts-entry'));
  if (!run) return;
  assertPortsAllowed(mode, ports);
  if (flagBool(flags, 'interactive') && apps.length > 1) fail('--interactive works with one app only: run a single image');
  if (mode.kind === 'cni') {
    // Loaded only here: --net=host and --net=none stay light.
    const { loadNets } = await import('../net/conf.js');
    loadNets(host, mode.nets, globals.localConfig, globals.userConfig);
  }
}
