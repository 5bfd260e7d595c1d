/**
 * `--port` forwarding with iptables NAT, in rkt's per-pod chains:
 *   RKT-PFWD-DNAT-<uuid8>: hostIP:hostPort -> podIP:podPort (from PREROUTING and OUTPUT
 *     for local destinations, so outside clients and the host itself are both caught);
 *   RKT-PFWD-SNAT-<uuid8>: masquerade connections the host makes from 127.0.0.1, which
 *     with route_localnet on the host veth makes 127.0.0.1:hostPort work;
 *   RKT-PFWD-LOCAL-<uuid8> (filter table, jumped to from INPUT for each host interface of
 *     the pod): route_localnet also lets whatever arrives on that interface reach the host's
 *     127.0.0.0/8, so a pod with CAP_NET_RAW could talk to every host service bound to
 *     127.0.0.1 (CVE-2020-8558). The chain drops packets to 127.0.0.0/8 that are not part
 *     of a connection the host made (replies to a forwarded 127.0.0.1:hostPort are
 *     ESTABLISHED once de-NATed) nor DNATed there, as kube-proxy does.
 */
import type { Host } from '../host/host.js';
import { fail } from '../util/errors.js';

export interface ForwardedPort {
  name: string;
  hostIP?: string;
  hostPort: number;
  podPort: number;
  protocol: 'tcp' | 'udp';
}

/** `local` is absent in records of pods set up before it existed. */
export interface PortChains { dnat: string; snat: string; local?: string }

export function portChains(uuid: string): PortChains {
  const id = uuid.slice(0, 8);
  return { dnat: `RKT-PFWD-DNAT-${id}`, snat: `RKT-PFWD-SNAT-${id}`, local: `RKT-PFWD-LOCAL-${id}` };
}

const LOCALNET_DROP = ['-d', '127.0.0.0/8', '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED,DNAT', '-j', 'DROP'];

function jumpRules(chains: PortChains): Array<[string, string[]]> {
  return [
    ['POSTROUTING', ['-s', '127.0.0.1', '!', '-d', '127.0.0.1', '-j', chains.snat]],
    ['PREROUTING', ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', chains.dnat]],
    ['OUTPUT', ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', chains.dnat]],
  ];
}

function portRules(chains: PortChains, podIP: string, p: ForwardedPort): Array<[string, string[]]> {
  return [
    [chains.dnat, ['-d', p.hostIP ?? '0.0.0.0/0', '-p', p.protocol, '--dport', String(p.hostPort),
      '-j', 'DNAT', '--to-destination', `${podIP}:${p.podPort}`]],
    [chains.snat, ['-p', p.protocol, '-s', '127.0.0.1', '-d', podIP, '--dport', String(p.podPort), '-j', 'MASQUERADE']],
  ];
}

async function iptables(host: Host, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return host.exec('iptables', ['--wait', '-t', 'nat', ...args]);
}

async function filterIptables(host: Host, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return host.exec('iptables', ['--wait', ...args]);
}

async function mustIptables(host: Host, args: string[], table: 'nat' | 'filter' = 'nat'): Promise<void> {
  const r = await (table === 'nat' ? iptables : filterIptables)(host, args);
  if (r.code !== 0) fail(`port forwarding: iptables ${args.join(' ')} failed: ${r.stderr.trim()}: is iptables installed?`);
}

/** Local ports with a listening TCP socket or a bound UDP socket, from /proc/net (host netns). */
function boundPorts(host: Host, protocol: 'tcp' | 'udp'): Array<{ addr: string; port: number }> {
  const out: Array<{ addr: string; port: number }> = [];
  for (const file of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
    for (const line of (host.readFile(file) ?? '').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || (protocol === 'tcp' && f[3] !== '0A')) continue;
      const [hexAddr, hexPort] = f[1].split(':');
      out.push({ addr: hexAddr, port: parseInt(hexPort, 16) });
    }
  }
  return out;
}

function hexToIPv4(hex: string): string | undefined {
  if (hex.length !== 8) return undefined;
  // /proc/net/tcp prints the address in host (little-endian) byte order.
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
}

/** Two bindings of one port clash unless both name different host addresses. */
function clash(wanted: string | undefined, other: string | undefined): boolean {
  return !wanted || !other || wanted === other;
}

/** The host ports other pods' DNAT chains forward, from `iptables -t nat -S`. */
function othersPorts(listing: string, chains: PortChains) {
  return listing.split('\n').flatMap((line) => {
    const m = /^-A RKT-PFWD-DNAT-(\S+) (.*)$/.exec(line);
    if (!m || `RKT-PFWD-DNAT-${m[1]}` === chains.dnat) return [];
    const proto = /-p (\S+)/.exec(m[2])?.[1];
    const port = Number(/--dport (\d+)/.exec(m[2])?.[1]);
    const dst = /-d (\S+?)(\/32)? /.exec(m[2])?.[1];
    return [{ pod: m[1], proto, port, dst: dst === '0.0.0.0/0' ? undefined : dst }];
  });
}

function refuseTaken(p: ForwardedPort, others: ReturnType<typeof othersPorts>): void {
  const other = others.find((r) => r.proto === p.protocol && r.port === p.hostPort && clash(p.hostIP, r.dst));
  if (other) fail(`port ${p.hostPort} is already in use by pod ${other.pod}: choose another --port`);
}

/**
 * Refuses host ports already forwarded by another pod's chain or bound by a host
 * process: forwarding over them would silently steal their traffic.
 */
export async function checkPortsFree(host: Host, chains: PortChains, ports: ForwardedPort[]): Promise<void> {
  const seen = new Set<string>();
  for (const p of ports) {
    const key = `${p.protocol}/${p.hostIP ?? '*'}/${p.hostPort}`;
    if (seen.has(key)) fail(`port ${p.hostPort} is forwarded twice: give each --port a different host port`);
    seen.add(key);
  }
  const rkt = othersPorts((await iptables(host, ['-S'])).stdout, chains);
  for (const p of ports) {
    refuseTaken(p, rkt);
    const bound = boundPorts(host, p.protocol).find((b) => {
      if (b.port !== p.hostPort) return false;
      const addr = hexToIPv4(b.addr);
      return clash(p.hostIP, addr === '0.0.0.0' || !addr ? undefined : addr);
    });
    if (bound) fail(`port ${p.hostPort} is already in use by another process: choose another --port`);
  }
}

/** Rules first, jumps last: a pod whose jumps exist has all its rules (see assertOldestClaim). */
export async function setupForwarding(host: Host, chains: PortChains, podIP: string, hostIfs: string[], ports: ForwardedPort[]): Promise<void> {
  // The drop rule is in place before route_localnet opens 127.0.0.0/8 to the interface.
  if (chains.local) {
    await mustIptables(host, ['-N', chains.local], 'filter');
    await mustIptables(host, ['-A', chains.local, ...LOCALNET_DROP], 'filter');
    for (const ifName of hostIfs) await mustIptables(host, ['-I', 'INPUT', '1', '-i', ifName, '-j', chains.local], 'filter');
  }
  await mustIptables(host, ['-N', chains.dnat]);
  await mustIptables(host, ['-N', chains.snat]);
  for (const p of ports) {
    for (const [chain, rule] of portRules(chains, podIP, p)) await mustIptables(host, ['-A', chain, ...rule]);
  }
  for (const [chain, rule] of jumpRules(chains)) await mustIptables(host, ['-I', chain, '1', ...rule]);
  // Lets the kernel route packets with source 127.0.0.1 out to the pod (then masqueraded).
  for (const ifName of hostIfs) host.writeFile(`/proc/sys/net/ipv4/conf/${ifName}/route_localnet`, '1');
}

/**
 * After setupForwarding: pods started at the same time all pass checkPortsFree, then
 * forward the same port. Each jump is inserted at the top of PREROUTING, so the oldest
 * forwarding is the lowest; a pod that finds a clashing pod below its own jump lost.
 * (A clashing pod with no jump yet will insert it above ours, and lose in its own check.)
 */
export async function assertOldestClaim(host: Host, chains: PortChains, ports: ForwardedPort[]): Promise<void> {
  const listing = (await iptables(host, ['-S'])).stdout;
  const order = listing.split('\n').flatMap((l) => /^-A PREROUTING .*-j RKT-PFWD-DNAT-(\S+)$/.exec(l)?.[1] ?? []);
  const mine = order.indexOf(chains.dnat.slice('RKT-PFWD-DNAT-'.length));
  const older = othersPorts(listing, chains).filter((r) => order.indexOf(r.pod) > mine);
  for (const p of ports) refuseTaken(p, older);
}

/** `-i IF` of INPUT's jumps to RKT-PFWD-LOCAL chains, by chain, from `iptables -S INPUT`. */
function localJumps(listing: string): Array<{ chain: string; ifName: string; rule: string }> {
  return listing.split('\n').flatMap((line) => {
    const m = /^-A INPUT -i (\S+) -j (RKT-PFWD-LOCAL-\S+)$/.exec(line.trim());
    return m ? [{ ifName: m[1], chain: m[2], rule: line.trim() }] : [];
  });
}

/**
 * Removes the jump rules and the chains; anything already gone is fine. route_localnet
 * goes back to 0 on the pod's host interfaces that outlive it (a bridge) unless another
 * pod forwards ports through them: without the drop rule it must not stay on.
 */
export async function teardownForwarding(host: Host, chains: PortChains): Promise<void> {
  for (const [chain, rule] of jumpRules(chains)) await iptables(host, ['-D', chain, ...rule]);
  for (const chain of [chains.dnat, chains.snat]) {
    await iptables(host, ['-F', chain]);
    await iptables(host, ['-X', chain]);
  }
  if (!chains.local) return;
  const jumps = localJumps((await filterIptables(host, ['-S', 'INPUT'])).stdout);
  const mine = jumps.filter((j) => j.chain === chains.local);
  for (const j of mine) await filterIptables(host, ['-D', 'INPUT', '-i', j.ifName, '-j', j.chain]);
  await filterIptables(host, ['-F', chains.local]);
  await filterIptables(host, ['-X', chains.local]);
  for (const j of mine) {
    const file = `/proc/sys/net/ipv4/conf/${j.ifName}/route_localnet`;
    if (!jumps.some((o) => o.chain !== chains.local && o.ifName === j.ifName) && host.exists(file)) host.tryWriteFile(file, '0');
  }
}
