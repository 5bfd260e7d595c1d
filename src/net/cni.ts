/**
 * The CNI protocol, runtime side: run a plugin with the CNI_* environment and the
 * network configuration on stdin, then read its result or its error JSON.
 */
import path from 'node:path';
import type { Host } from '../host/host.js';
import { RktError, fail } from '../util/errors.js';
import { info, isDebug } from '../util/log.js';

/** Where plugins are looked up, in order; also passed to them as CNI_PATH (for IPAM plugins). */
export function cniPath(localConfig: string): string {
  return [path.join(localConfig, 'net.d'), '/usr/lib/rkt/plugins/net', '/usr/lib/cni'].join(':');
}

// Plugins such as ptp and bridge run iptables for ipMasq.
const PLUGIN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const PLUGIN_TIMEOUT_MS = 60_000;

export interface PluginCall {
  command: 'ADD' | 'DEL';
  network: string;
  type: string;
  /** Exact bytes given on stdin. */
  stdin: string;
  containerId: string;
  netns: string;
  ifName: string;
  /** K=V;K=V */
  args: string;
  cniPath: string;
  /** Log the call and the plugin's stderr (default: the global --debug). */
  debug?: boolean;
}

export interface CniDnsResult { nameservers: string[]; search?: string[]; options?: string[]; domain?: string }

export interface CniResult {
  ip: string;
  mask: string;
  gateway?: string;
  /** Host-side interfaces the plugin created or used (ptp's veth, bridge and veth). */
  hostIfs: string[];
  dns?: CniDnsResult;
  /** The plugin's answer as it was, kept to give DEL its prevResult. */
  raw: Record<string, unknown>;
}

function findPlugin(host: Host, type: string, searchPath: string): string | undefined {
  return searchPath.split(':').map((dir) => path.join(dir, type)).find((p) => host.exists(p));
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** The plugin's own error, in words a user can act on. */
function pluginError(call: PluginCall, code: number, stdout: string, stderr: string): RktError {
  let msg = '';
  try {
    const e = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
    msg = [e.msg, e.details].filter(Boolean).join(': ');
  } catch { /* not an error JSON: fall back to stderr */ }
  msg = oneLine(msg || stderr || `exit status ${code}`);
  const taken = /requested IP address (\S+) is not available/.exec(msg);
  if (taken) {
    return new RktError(`requested IP address "${taken[1]}" is not available in network: ${call.network}`);
  }
  const verb = call.command === 'ADD' ? 'set up' : 'tear down';
  return new RktError(`failed to ${verb} network "${call.network}" (plugin ${call.type}): ${msg}`);
}

/** Runs one plugin; returns its parsed stdout (empty for DEL), throws RktError on failure. */
export async function runPlugin(host: Host, call: PluginCall): Promise<Record<string, unknown> | undefined> {
  const plugin = findPlugin(host, call.type, call.cniPath);
  if (!plugin) {
    fail(`network "${call.network}": CNI plugin "${call.type}" not found in ${call.cniPath}: install containernetworking-plugins or fix "type"`);
  }
  const verbose = call.debug ?? isDebug();
  if (verbose) info(`CNI ${call.command} ${call.network} (${plugin}) ${call.ifName} in ${call.netns}`);
  const r = await host.exec(plugin, [], {
    input: call.stdin,
    cleanEnv: true,
    timeoutMs: PLUGIN_TIMEOUT_MS,
    env: {
      CNI_COMMAND: call.command,
      CNI_CONTAINERID: call.containerId,
      CNI_NETNS: call.netns,
      CNI_IFNAME: call.ifName,
      CNI_ARGS: call.args,
      CNI_PATH: call.cniPath,
      PATH: PLUGIN_PATH,
    },
  });
  if (verbose && r.stderr.trim()) info(`${call.type}: ${oneLine(r.stderr)}`);
  if (r.code !== 0) throw pluginError(call, r.code, r.stdout, r.stderr);
  if (r.stdout.trim() === '') return undefined;
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    return fail(`network "${call.network}": plugin ${call.type} printed a result that is not JSON: ${oneLine(r.stdout).slice(0, 200)}`);
  }
}

function prefixToMask(bits: number): string {
  const n = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

type RawIp = { version?: string; address?: string; gateway?: string; interface?: number };
type RawIface = { name?: string; sandbox?: string };

/** Reads a CNI result: the 0.3/0.4 format (ips[]) and the older 0.1/0.2 one (ip4). */
export function parseResult(network: string, raw: Record<string, unknown>): CniResult {
  const ips: RawIp[] = Array.isArray(raw.ips)
    ? (raw.ips as RawIp[])
    : raw.ip4 ? [{ address: (raw.ip4 as { ip?: string }).ip, gateway: (raw.ip4 as { gateway?: string }).gateway }] : [];
  const v4 = ips.find((i) => typeof i.address === 'string' && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(i.address));
  if (!v4?.address) fail(`network "${network}": the plugin returned no IPv4 address: check the "ipam" section of its configuration`);
  const [ip, bits] = v4.address.split('/');
  const ifaces = Array.isArray(raw.interfaces) ? (raw.interfaces as RawIface[]) : [];
  const hostIfs = ifaces.filter((i) => !i.sandbox && typeof i.name === 'string').map((i) => i.name as string);
  const d = (raw.dns ?? {}) as Partial<CniDnsResult>;
  const dns: CniDnsResult = { nameservers: d.nameservers ?? [] };
  if (d.search?.length) dns.search = d.search;
  if (d.options?.length) dns.options = d.options;
  if (d.domain) dns.domain = d.domain;
  const hasDns = dns.nameservers.length > 0 || !!dns.search || !!dns.options || !!dns.domain;
  return {
    ip,
    mask: prefixToMask(Number(bits)),
    ...(v4.gateway ? { gateway: v4.gateway } : {}),
    hostIfs,
    ...(hasDns ? { dns } : {}),
    raw,
  };
}
