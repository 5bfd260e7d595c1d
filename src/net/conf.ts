/**
 * Which CNI network configurations a pod joins. User confs come from
 * `<localConfig>/net.d/*.conf`, then `<userConfig>/net.d/*.conf`, each dir in filename
 * order; a user conf named like a built-in (default, default-restricted) replaces it.
 * Built-ins come last, so with `--net=mynet,default` mynet is eth0 (as in rkt).
 */
import path from 'node:path';
import type { Host } from '../host/host.js';
import { fail } from '../util/errors.js';
import { info, warn } from '../util/log.js';
import type { NetRequest } from './netflag.js';

export const CNI_VERSION = '0.4.0';

export type NetConf = { name: string; type: string; cniVersion: string; ipMasq?: boolean } & Record<string, unknown>;

export interface LoadedNet {
  name: string;
  conf: NetConf;
  args?: Record<string, string>;
  /** Where the conf came from (a file, or "built-in"), for messages. */
  source: string;
}

export const BUILTIN_NETS: Record<string, NetConf> = {
  default: {
    cniVersion: CNI_VERSION,
    name: 'default',
    type: 'ptp',
    ipMasq: true,
    ipam: { type: 'host-local', subnet: '172.16.28.0/24', routes: [{ dst: '0.0.0.0/0' }] },
  },
  'default-restricted': {
    cniVersion: CNI_VERSION,
    name: 'default-restricted',
    type: 'ptp',
    ipMasq: false,
    ipam: { type: 'host-local', subnet: '172.31.0.0/16' },
  },
};

// libcni's rule for network names; names also become file names under the pod's net/.
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Keys of the CNI spec and of the standard plugins' confs, in the spelling they document.
 * rkt and the plugins decode JSON with Go's encoding/json, which matches keys
 * case-insensitively, so confs written `{"Name": ..., "Type": ..., "Ipam": {...}}` work there.
 */
const CNI_KEYS = [
  'cniVersion', 'name', 'type', 'args', 'ipMasq', 'ipam', 'dns', 'nameservers', 'domain', 'search',
  'options', 'capabilities', 'runtimeConfig', 'prevResult', 'subnet', 'rangeStart', 'rangeEnd',
  'gateway', 'routes', 'dst', 'gw', 'ranges', 'dataDir', 'resolvConf', 'addresses', 'address',
  'bridge', 'isGateway', 'isDefaultGateway', 'forceAddress', 'hairpinMode', 'promiscMode', 'mtu',
  'master', 'mode', 'vlan', 'linkInContainer',
];
const CANONICAL = new Map(CNI_KEYS.map((k) => [k.toLowerCase(), k]));

/**
 * The conf with every known key in its documented spelling, at any depth. When two keys
 * fold to the same one, the later wins, as with Go's decoder. Unknown keys stay as written.
 */
export function canonicalKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonicalKeys);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const canon = CANONICAL.get(key.toLowerCase()) ?? key;
    delete out[canon]; // keep the later key's position, as its value wins
    out[canon] = canonicalKeys(v);
  }
  return out;
}

function parseConf(file: string, text: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return fail(`bad network configuration ${file}: ${(e as Error).message}: fix the JSON`);
  }
  const obj = canonicalKeys(raw) as Record<string, unknown>;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) fail(`bad network configuration ${file}: expected a JSON object`);
  if (typeof obj.name !== 'string' || !NAME_RE.test(obj.name)) {
    fail(`bad network configuration ${file}: "name" must be letters, digits, "_", "." or "-": set a valid name`);
  }
  if (typeof obj.type !== 'string' || obj.type === '' || obj.type.includes('/')) {
    fail(`bad network configuration ${file}: "type" must name a CNI plugin, e.g. "ptp" or "bridge"`);
  }
  // Old rkt confs carry no version; plugins would then answer in the 0.1.0 format.
  return { cniVersion: CNI_VERSION, ...obj } as NetConf;
}

function userNets(host: Host, dirs: string[], wanted: (name: string) => boolean): LoadedNet[] {
  const nets: LoadedNet[] = [];
  for (const dir of dirs) {
    for (const entry of host.readdir(dir).filter((f) => f.endsWith('.conf')).sort()) {
      const file = path.join(dir, entry);
      const text = host.readFile(file);
      if (text === undefined) continue;
      const conf = parseConf(file, text);
      if (!wanted(conf.name)) continue;
      if (nets.some((n) => n.name === conf.name)) {
        warn(`network "${conf.name}" is already defined, ignoring ${file}`);
        continue;
      }
      if (conf.name in BUILTIN_NETS) info(`overriding the built-in "${conf.name}" network with ${file}`);
      nets.push({ name: conf.name, conf, source: file });
    }
  }
  return nets;
}

/**
 * The networks to join, in interface order. `all` means every user network plus
 * the built-in `default` (as rkt's "all" did).
 */
export function loadNets(host: Host, requested: NetRequest[] | 'all', localConfig: string, userConfig?: string): LoadedNet[] {
  const dirs = [path.join(localConfig, 'net.d'), ...(userConfig ? [path.join(userConfig, 'net.d')] : [])];
  const names = requested === 'all' ? ['default'] : requested.map((r) => r.name);
  const nets = userNets(host, dirs, (name) => requested === 'all' || names.includes(name));
  for (const name of Object.keys(BUILTIN_NETS)) {
    if (names.includes(name) && !nets.some((n) => n.name === name)) {
      nets.push({ name, conf: BUILTIN_NETS[name], source: 'built-in' });
    }
  }
  const missing = names.filter((name) => !nets.some((n) => n.name === name));
  if (missing.length > 0) {
    // rkt said "failed to setup network"; scripts grep for it, so the line keeps those words.
    const what = missing.map((m) => `"${m}"`).join(', ');
    fail(`failed to setup network: ${missing.length > 1 ? 'networks' : 'network'} ${what} not found in ${dirs.join(' or ')}: `
      + `define ${missing.length > 1 ? 'them' : 'it'} in a .conf file there or use default, default-restricted, host or none`);
  }
  if (requested === 'all') return nets;
  return nets.map((n) => {
    const args = requested.find((r) => r.name === n.name)?.args;
    return args ? { ...n, args } : n;
  });
}
