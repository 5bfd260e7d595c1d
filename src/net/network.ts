/**
 * Pod networking for CNI modes, called by stage0 before the pod starts and by gc/rm
 * after it ends. Teardown may run long after setup, or after setup was killed at any
 * point, so every step is recorded in the pod directory before it is taken:
 *   netns              path of the pod's network namespace (joined by stage1 with nsenter)
 *   net/<name>.conf    the exact configuration given to the plugin (removed after DEL)
 *   net-info.json      one entry per network, written before ADD and completed after it
 *   net/portfwd.json   the iptables chains of --port forwarding
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../host/host.js';
import { RktError, errorMessage, fail } from '../util/errors.js';
import { warn } from '../util/log.js';
import { cniPath, parseResult, runPlugin, type CniDnsResult } from './cni.js';
import { loadNets, type LoadedNet } from './conf.js';
import type { CniDns } from './dns.js';
import type { NetMode } from './netflag.js';
import { createNetns, deleteNetns, loopbackUp, netnsPathFor } from './netns.js';
import { NET_INFO, readJson, readNetInfo, toNetInfo, type NetInfo } from './netinfo.js';
import { assertOldestClaim, checkPortsFree, portChains, setupForwarding, teardownForwarding, type ForwardedPort, type PortChains } from './portfwd.js';

export interface PodNetSetup { netnsPath: string; nets: NetInfo[] }

/** An entry of net-info.json: what teardown needs, plus the outcome once ADD succeeded. */
interface NetRecord extends Partial<NetInfo> {
  netName: string;
  ifName: string;
  /** Relative to the pod dir. */
  confPath: string;
  containerID: string;
  args: string;
  cniPath: string;
  hostIfs?: string[];
  result?: Record<string, unknown>;
}

export interface SetupParams {
  uuid: string;
  podDir: string;
  mode: NetMode;
  localConfig: string;
  userConfig?: string;
  ports: ForwardedPort[];
  debug?: boolean;
}

const NETNS_FILE = 'netns';
const NET_DIR = 'net';
const PORTFWD = path.join(NET_DIR, 'portfwd.json');

function writeJson(file: string, value: unknown): void {
  // Write then rename: a kill mid-write must not leave teardown an unreadable file.
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(value, null, 2));
  fs.renameSync(`${file}.tmp`, file);
}

function readRecords(podDir: string): NetRecord[] {
  return readJson<NetRecord[]>(path.join(podDir, NET_INFO)) ?? [];
}

function cniArgs(args: Record<string, string> | undefined): string {
  return Object.entries(args ?? {}).map(([k, v]) => `${k}=${v}`).join(';');
}

export { readNetInfo, type NetInfo };


/** DNS returned by the plugins, in the shape `resolvConf` takes. */
export function cniDnsOf(nets: NetInfo[]): CniDns[] {
  return nets.flatMap((n) => (n.dns ? [{ network: n.netName, ...n.dns }] : []));
}

/** rkt forwards ports on the first network with ipMasq, else on the last one. */
function forwardingNet(nets: LoadedNet[]): number {
  const i = nets.findIndex((n) => n.conf.ipMasq === true);
  return i === -1 ? nets.length - 1 : i;
}

async function addNet(host: Host, p: SetupParams, nsPath: string, records: NetRecord[], net: LoadedNet): Promise<NetRecord> {
  const confPath = path.join(NET_DIR, `${net.name}.conf`);
  const stdin = JSON.stringify(net.conf);
  const rec: NetRecord = {
    netName: net.name,
    ifName: `eth${records.length}`,
    confPath,
    containerID: p.uuid,
    args: cniArgs(net.args),
    cniPath: cniPath(p.localConfig),
  };
  fs.writeFileSync(path.join(p.podDir, confPath), stdin);
  records.push(rec);
  writeJson(path.join(p.podDir, NET_INFO), records);
  const raw = await runPlugin(host, {
    command: 'ADD', network: net.name, type: net.conf.type, stdin,
    containerId: p.uuid, netns: nsPath, ifName: rec.ifName, args: rec.args, cniPath: rec.cniPath, debug: p.debug,
  });
  if (!raw) fail(`network "${net.name}": plugin ${net.conf.type} returned no result: check the plugin`);
  const res = parseResult(net.name, raw);
  Object.assign(rec, { ip: res.ip, mask: res.mask, hostIfs: res.hostIfs, result: res.raw });
  if (res.gateway) Object.assign(rec, { gateway: res.gateway, hostIP: res.gateway });
  if (res.dns) rec.dns = res.dns;
  writeJson(path.join(p.podDir, NET_INFO), records);
  return rec;
}

async function forwardPorts(host: Host, p: SetupParams, chains: PortChains, rec: NetRecord): Promise<void> {
  writeJson(path.join(p.podDir, PORTFWD), { chains });
  if (!rec.hostIfs?.length) warn(`network "${rec.netName}" reported no host interface: forwarded ports will not answer on 127.0.0.1`);
  await setupForwarding(host, chains, rec.ip as string, rec.hostIfs ?? [], p.ports);
  await assertOldestClaim(host, chains, p.ports);
}

/**
 * Creates the pod's network namespace and joins it to each network. On any failure
 * everything done so far is undone before the error is thrown.
 */
export async function setupPodNetworks(host: Host, p: SetupParams): Promise<PodNetSetup> {
  if (p.mode.kind !== 'cni') throw new Error(`setupPodNetworks called for --net=${p.mode.kind}`);
  const nets = loadNets(host, p.mode.nets, p.localConfig, p.userConfig);
  const chains = portChains(p.uuid);
  if (p.ports.length > 0) await checkPortsFree(host, chains, p.ports);

  const nsPath = netnsPathFor(p.uuid);
  try {
    fs.mkdirSync(path.join(p.podDir, NET_DIR), { recursive: true });
    fs.writeFileSync(path.join(p.podDir, NETNS_FILE), nsPath);
    await createNetns(host, nsPath);
    await loopbackUp(host, nsPath);
    const records: NetRecord[] = [];
    for (const net of nets) await addNet(host, p, nsPath, records, net);
    if (p.ports.length > 0) await forwardPorts(host, p, chains, records[forwardingNet(nets)]);
    return { netnsPath: nsPath, nets: records.map(toNetInfo) };
  } catch (e) {
    try {
      await teardownPodNetworks(host, p.podDir);
    } catch (te) {
      warn(`cleaning up after the failed network setup: ${errorMessage(te)}`);
    }
    throw e instanceof RktError ? e : new RktError(`failed to set up pod networking: ${errorMessage(e)}`);
  }
}

/**
 * Undoes setupPodNetworks from what the pod dir recorded: port forwarding, CNI DEL in
 * reverse order, then the namespace. Safe to repeat and to run on a half-made setup;
 * a joined network whose DEL fails keeps its conf so that a later gc retries it.
 */
export async function teardownPodNetworks(host: Host, podDir: string): Promise<void> {
  const problems: string[] = [];
  const attempt = async (what: () => Promise<void>): Promise<void> => {
    try { await what(); } catch (e) { problems.push(errorMessage(e)); }
  };

  const portfwd = readJson<{ chains: PortChains }>(path.join(podDir, PORTFWD));
  if (portfwd) {
    await teardownForwarding(host, portfwd.chains);
    fs.rmSync(path.join(podDir, PORTFWD), { force: true });
  }

  const nsPath = fs.existsSync(path.join(podDir, NETNS_FILE)) ? fs.readFileSync(path.join(podDir, NETNS_FILE), 'utf8').trim() : '';
  const records = readRecords(podDir);
  for (const rec of [...records].reverse()) {
    const confFile = path.join(podDir, rec.confPath);
    if (!fs.existsSync(confFile)) continue; // already torn down
    await attempt(async () => {
      const conf = JSON.parse(fs.readFileSync(confFile, 'utf8')) as Record<string, unknown>;
      // CNI 0.4.0: DEL gets the ADD result as prevResult.
      const stdin = JSON.stringify(rec.result ? { ...conf, prevResult: rec.result } : conf);
      try {
        await runPlugin(host, {
          command: 'DEL', network: rec.netName, type: String(conf.type), stdin,
          containerId: rec.containerID, netns: nsPath, ifName: rec.ifName, args: rec.args, cniPath: rec.cniPath,
        });
      } catch (e) {
        // An ADD that never completed has cleaned up after itself, or was killed early:
        // its DEL is a courtesy, and a conf that cannot even DEL must not block gc forever.
        if (rec.result) throw e;
        warn(errorMessage(e));
      }
      fs.rmSync(confFile, { force: true });
    });
  }

  if (nsPath) {
    await attempt(async () => {
      await deleteNetns(host, nsPath);
      fs.rmSync(path.join(podDir, NETNS_FILE), { force: true });
    });
  }
  try { fs.rmdirSync(path.join(podDir, NET_DIR)); } catch { /* absent, or confs kept for a retry */ }
  if (problems.length > 0) throw new RktError(`network teardown incomplete: ${problems.join('; ')}: run "rkt gc" again`);
}
