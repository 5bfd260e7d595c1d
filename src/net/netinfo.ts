/**
 * Reading a pod's net-info.json (written by network.ts) for `rkt list` and `rkt status`:
 * its own module, so listing pods does not load the CNI and port-forwarding code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RktError, errorMessage } from '../util/errors.js';
import type { CniDnsResult } from './cni.js';

export interface NetInfo {
  netName: string;
  ifName: string;
  ip: string;
  mask?: string;
  gateway?: string;
  hostIP?: string;
  dns?: CniDnsResult;
}

export const NET_INFO = 'net-info.json';

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RktError(`cannot read ${file}: ${errorMessage(e)}`);
  }
}

export function toNetInfo(r: Partial<NetInfo> & { netName: string; ifName: string }): NetInfo {
  const info: NetInfo = { netName: r.netName, ifName: r.ifName, ip: r.ip as string };
  if (r.mask) info.mask = r.mask;
  if (r.gateway) info.gateway = r.gateway;
  if (r.hostIP) info.hostIP = r.hostIP;
  if (r.dns) info.dns = r.dns;
  return info;
}

/** The networks a pod joined (those still being joined have no IP yet and are left out). */
export function readNetInfo(podDir: string): NetInfo[] {
  const records = readJson<Array<Partial<NetInfo> & { netName: string; ifName: string }>>(path.join(podDir, NET_INFO)) ?? [];
  return records.filter((r) => r.ip).map(toNetInfo);
}

/** A joined network as rkt's api/v1 reports it (list/status --format=json): rkt's networking/netinfo NetInfo. */
export interface NetInfoV1 { netName: string; netConf: string; pluginPath: string; ifName: string; ip: string; args: string; mask: string }

/** net-info.json's records carry what teardown needs too: the conf used, the plugin path, the CNI args. */
export function readNetInfoV1(podDir: string): NetInfoV1[] {
  const records = readJson<Array<{ netName: string; ifName: string; ip?: string; mask?: string; confPath: string; cniPath: string; args: string }>>(path.join(podDir, NET_INFO)) ?? [];
  return records.filter((r) => r.ip).map((r) => ({
    netName: r.netName,
    netConf: path.join(podDir, r.confPath),
    pluginPath: r.cniPath,
    ifName: r.ifName,
    ip: r.ip as string,
    args: r.args,
    mask: r.mask ?? '',
  }));
}
