/**
 * The `--net` and `--port` grammar of `rkt run`/`prepare`:
 *   --net=host | none | all | NAME[:K=V;K=V][,NAME...]   (repeatable; bare --net means default)
 *   --port=NAME:[HOSTIP:]HOSTPORT
 */
import { isIPv4 } from 'node:net';
import { fail } from '../util/errors.js';

export interface NetRequest { name: string; args?: Record<string, string> }

export type NetMode =
  | { kind: 'host' }
  | { kind: 'none' }
  | { kind: 'cni'; nets: NetRequest[] | 'all' };

export interface PortForward { name: string; hostIP?: string; hostPort: number }

const SPECIAL = new Set(['host', 'none', 'all']);

function parseArgs(net: string, raw: string): Record<string, string> {
  const args: Record<string, string> = {};
  for (const pair of raw.split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) fail(`--net: bad argument "${pair}" for network "${net}": use NAME:K=V;K2=V2, e.g. default:IP=172.16.28.50`);
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return args;
}

/** Each element is one `--net` occurrence; no occurrence means the default network. */
export function parseNetFlag(values: string[]): NetMode {
  const nets: NetRequest[] = [];
  for (const value of values.length === 0 ? ['default'] : values) {
    for (const item of (value === '' ? 'default' : value).split(',')) {
      const parts = item.split(':');
      const name = parts[0];
      if (name === '') fail(`--net: empty network name in "${value}": give names separated by commas, e.g. --net=default,mynet`);
      if (parts.length > 2) fail(`--net: network "${name}" has more than one ":" in "${item}": separate arguments with ";", e.g. ${name}:K1=V1;K2=V2`);
      if (nets.some((n) => n.name === name)) fail(`--net: network "${name}" is given twice: list each network once`);
      if (parts.length === 2 && SPECIAL.has(name)) fail(`--net: "${name}" takes no arguments: give arguments to a named network, e.g. default:IP=172.16.28.50`);
      nets.push(parts.length === 2 ? { name, args: parseArgs(name, parts[1]) } : { name });
    }
  }
  const special = nets.find((n) => SPECIAL.has(n.name));
  if (special && nets.length > 1) {
    fail(`--net=${special.name} cannot be combined with other networks: give it alone`);
  }
  if (special?.name === 'host') return { kind: 'host' };
  if (special?.name === 'none') return { kind: 'none' };
  if (special?.name === 'all') return { kind: 'cni', nets: 'all' };
  return { kind: 'cni', nets };
}

export function parsePortFlag(v: string): PortForward {
  const usage = `bad --port "${v}": use NAME:[HOSTIP:]HOSTPORT, e.g. http:8080 or http:127.0.0.1:8080`;
  const parts = v.split(':');
  if (parts.length < 2 || parts.length > 3 || parts[0] === '') fail(usage);
  const portText = parts[parts.length - 1];
  const hostPort = Number(portText);
  if (!/^\d+$/.test(portText) || hostPort < 1 || hostPort > 65535) {
    fail(`bad --port "${v}": host port "${portText}" must be a number from 1 to 65535`);
  }
  if (parts.length === 2) return { name: parts[0], hostPort };
  if (!isIPv4(parts[1])) fail(`bad --port "${v}": host IP "${parts[1]}" is not an IPv4 address`);
  return { name: parts[0], hostIP: parts[1], hostPort };
}

/** Port forwarding needs a pod network of its own: refuse it with host and none. */
export function assertPortsAllowed(mode: NetMode, ports: readonly unknown[]): void {
  if (ports.length === 0 || mode.kind === 'cni') return;
  fail(`--port cannot be used with --net=${mode.kind}: ${mode.kind === 'host'
    ? 'the pod already shares the host network, so its ports are reachable directly'
    : 'the pod has no network to forward to; use --net=default'}`);
}
