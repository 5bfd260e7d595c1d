/**
 * Pod networking with the real CNI plugins (Debian's containernetworking-plugins),
 * iproute2 and iptables, as root. Every namespace, veth, IPAM lease and NAT chain it
 * makes is removed again, and the test checks that none of it is left.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Host } from '../../src/host/host.js';
import { realHost } from '../../src/host/real.js';
import { parseNetFlag } from '../../src/net/netflag.js';
import { readNetInfo, setupPodNetworks, teardownPodNetworks, type PodNetSetup } from '../../src/net/network.js';
import type { ForwardedPort } from '../../src/net/portfwd.js';
import { describeIf } from '../helpers/rkt.js';

function which(cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; }
}

const missing = [
  process.getuid?.() !== 0 ? 'root' : '',
  !fs.existsSync('/usr/lib/cni/ptp') ? 'containernetworking-plugins (/usr/lib/cni/ptp)' : '',
  ...['ip', 'iptables', 'iptables-save', 'nsenter', 'busybox'].map((c) => (which(c) ? '' : c)),
].filter(Boolean);
const SKIP = missing.length > 0
  ? `needs ${missing.join(', ')} (run as root after: apt-get install containernetworking-plugins iptables iproute2 busybox-static)`
  : '';

function sh(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
}
function shOk(file: string, args: string[]): string {
  try { return sh(file, args); } catch { return ''; }
}

const IPAM_DIR = '/var/lib/cni/networks';
const TEST_NETS = ['default', 'default-restricted', 'rkttest-good', 'rkttest-broken'];

function hostLinks(): string[] {
  return shOk('ip', ['-o', 'link']).split('\n').filter(Boolean).map((l) => l.split(':')[1].trim().split('@')[0]);
}

/** Host veths whose peer is in the pod's netns. */
function vethsOf(uuid: string): string[] {
  return shOk('ip', ['-o', 'link']).split('\n').filter((l) => l.includes(`link-netns rkt-${uuid}`)).map((l) => l.split(':')[1].trim().split('@')[0]);
}

/**
 * What is left on the host of these pods: veths, netns files and mounts, host-local
 * leases (their files hold the container ID), NAT chains and rules. Only our pods'
 * items are looked at, so other tests running on the machine cannot disturb it.
 */
function leftovers(uuids: string[], veths: string[]): string[] {
  const links = hostLinks();
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const nat = shOk('iptables-save', ['-t', 'nat']).split('\n');
  const leases = TEST_NETS.flatMap((n) => {
    const dir = path.join(IPAM_DIR, n);
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
    return files.map((f) => `lease ${n}/${f}: ${fs.readFileSync(path.join(dir, f), 'utf8').split(/\r?\n/)[0]}`);
  });
  return [
    ...veths.filter((v) => links.includes(v)).map((v) => `veth ${v}`),
    ...uuids.flatMap((u) => [
      ...(fs.existsSync(`/var/run/netns/rkt-${u}`) ? [`netns file rkt-${u}`] : []),
      ...(mounts.includes(`rkt-${u}`) ? [`netns mount rkt-${u}`] : []),
      ...leases.filter((l) => l.endsWith(u)),
      // CNI's masquerade rules carry the container ID in a comment.
      ...nat.filter((l) => l.includes(u) || l.includes(`RKT-PFWD-DNAT-${u.slice(0, 8)}`) || l.includes(`RKT-PFWD-SNAT-${u.slice(0, 8)}`)).map((l) => `nat ${l}`),
    ]),
  ];
}

function httpGet(url: string, timeoutMs = 1500): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout fetching ${url}`)));
    req.on('error', reject);
  });
}

async function waitForHttp(url: string): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 40; i++) {
    try { return await httpGet(url, 500); } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw last;
}

function hostAddress(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('172.16.28.') && !a.address.startsWith('172.31.')) return a.address;
    }
  }
  throw new Error('no non-loopback IPv4 address on this host');
}

const d = describeIf(SKIP || undefined);

d('pod networking with real CNI plugins', () => {
  const procs: ChildProcess[] = [];
  const podDirs: string[] = [];
  let tmp: string;
  let localConfig: string;
  const uuids: string[] = [];
  const veths: string[] = [];
  let ipForward: string;
  let hadNetnsDir: boolean;
  let hadIpamDirs: Set<string>;
  const hostPort = 20000 + (process.pid % 20000);

  function newPod(): { uuid: string; podDir: string } {
    const uuid = crypto.randomUUID();
    uuids.push(uuid);
    const podDir = path.join(tmp, 'pods', uuid);
    fs.mkdirSync(podDir, { recursive: true });
    podDirs.push(podDir);
    return { uuid, podDir };
  }

  async function setupPod(net: string[], ports: ForwardedPort[] = []) {
    const pod = newPod();
    const setup = await setupPodNetworks(realHost, { ...pod, mode: parseNetFlag(net), localConfig, ports });
    veths.push(...vethsOf(pod.uuid));
    return { ...pod, setup };
  }

  function serve(setup: PodNetSetup, text: string): void {
    const www = fs.mkdtempSync(path.join(tmp, 'www-'));
    fs.writeFileSync(path.join(www, 'index.html'), text);
    const p = spawn('nsenter', [`--net=${setup.netnsPath}`, 'busybox', 'httpd', '-f', '-p', '80', '-h', www], { stdio: 'ignore' });
    procs.push(p);
  }

  function inPod(setup: PodNetSetup, args: string[]): string {
    return sh('nsenter', [`--net=${setup.netnsPath}`, ...args]);
  }

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-net-it-'));
    localConfig = path.join(tmp, 'etc-rkt');
    fs.mkdirSync(path.join(localConfig, 'net.d'), { recursive: true });
    ipForward = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    hadNetnsDir = fs.existsSync('/run/netns');
    hadIpamDirs = new Set(['/var/lib/cni', IPAM_DIR, ...TEST_NETS.map((n) => path.join(IPAM_DIR, n))].filter((dir) => fs.existsSync(dir)));
  });

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? undefined : new Promise((r) => p.once('exit', r)))));
    for (const dir of podDirs) await teardownPodNetworks(realHost, dir).catch((e: unknown) => process.stderr.write(`cleanup: ${String(e)}\n`));
    // Undo what the plugins and `ip netns` leave on the host by design.
    fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', ipForward);
    // host-local keeps a lock and a last-reserved file per network; drop the dirs we caused,
    // unless someone else holds a lease there meanwhile.
    for (const dir of TEST_NETS.map((n) => path.join(IPAM_DIR, n))) {
      const files = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
      if (!hadIpamDirs.has(dir) && files.every((f) => f === 'lock' || f.startsWith('last_reserved_ip'))) fs.rmSync(dir, { recursive: true, force: true });
    }
    for (const dir of [IPAM_DIR, '/var/lib/cni']) {
      if (!hadIpamDirs.has(dir) && fs.existsSync(dir) && fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
    }
    if (!hadNetnsDir && fs.existsSync('/run/netns') && fs.readdirSync('/run/netns').length === 0) {
      shOk('umount', ['/run/netns']);
      fs.rmdirSync('/run/netns');
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  let a: Awaited<ReturnType<typeof setupPod>>;

  test('default network: eth0 in 172.16.28.0/24, lo up, reachable from the host and through --port', async () => {
    a = await setupPod([], [{ name: 'http', hostPort, podPort: 80, protocol: 'tcp' }]);
    const [net] = a.setup.nets;
    expect(net).toMatchObject({ netName: 'default', ifName: 'eth0', mask: '255.255.255.0', gateway: '172.16.28.1', hostIP: '172.16.28.1' });
    expect(net.ip).toMatch(/^172\.16\.28\.\d+$/);
    expect(readNetInfo(a.podDir)).toEqual(a.setup.nets);
    expect(fs.readFileSync(path.join(a.podDir, 'netns'), 'utf8')).toBe(`/var/run/netns/rkt-${a.uuid}`);
    expect(fs.existsSync(path.join(a.podDir, 'net/default.conf'))).toBe(true);

    expect(inPod(a.setup, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).toContain(`inet ${net.ip}/24`);
    expect(inPod(a.setup, ['ip', 'link', 'show', 'lo'])).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    expect(inPod(a.setup, ['ip', 'route'])).toContain('default via 172.16.28.1');

    serve(a.setup, 'hello from pod a\n');
    expect(await waitForHttp(`http://${net.ip}/`)).toBe('hello from pod a\n');
    expect(await httpGet(`http://127.0.0.1:${hostPort}/`)).toBe('hello from pod a\n');
    expect(await httpGet(`http://${hostAddress()}:${hostPort}/`)).toBe('hello from pod a\n');
    expect(sh('iptables-save', ['-t', 'nat'])).toContain(`-A RKT-PFWD-DNAT-${a.uuid.slice(0, 8)} -p tcp -m tcp --dport ${hostPort} -j DNAT --to-destination ${net.ip}:80`);
  });

  test('the same host port cannot be forwarded twice', async () => {
    await expect(setupPod([], [{ name: 'http', hostPort, podPort: 80, protocol: 'tcp' }])).rejects.toThrow(
      `port ${hostPort} is already in use by pod ${a.uuid.slice(0, 8)}: choose another --port`,
    );
  });

  test('two pods reach each other', async () => {
    const b = await setupPod(['default']);
    expect(b.setup.nets[0].ip).not.toBe(a.setup.nets[0].ip);
    // (busybox 1.35's wget crashes with -T; sh() has its own timeout.)
    expect(inPod(b.setup, ['busybox', 'wget', '-q', '-O', '-', `http://${a.setup.nets[0].ip}/`])).toBe('hello from pod a\n');
  });

  test('an explicit IP through --net args, and the error when it is taken', async () => {
    const c = await setupPod(['default:IP=172.16.28.200']);
    expect(c.setup.nets[0].ip).toBe('172.16.28.200');
    const nsBefore = fs.readdirSync('/var/run/netns').length;
    await expect(setupPod(['default:IP=172.16.28.200'])).rejects.toThrow('requested IP address "172.16.28.200" is not available in network: default');
    expect(fs.readdirSync('/var/run/netns')).toHaveLength(nsBefore);
  });

  test('default-restricted: 172.31.0.0/16 without a default route', async () => {
    const r = await setupPod(['default-restricted']);
    expect(r.setup.nets[0].ip).toMatch(/^172\.31\.\d+\.\d+$/);
    expect(inPod(r.setup, ['ip', 'route'])).not.toContain('default');
    expect(inPod(r.setup, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).toContain(`inet ${r.setup.nets[0].ip}/16`);
  });

  test('a failing second network rolls back the first one', async () => {
    const ipam = (subnet: string) => ({ type: 'host-local', subnet });
    fs.writeFileSync(path.join(localConfig, 'net.d/10-good.conf'), JSON.stringify({ name: 'rkttest-good', type: 'ptp', ipMasq: true, ipam: ipam('10.99.0.0/24') }));
    fs.writeFileSync(path.join(localConfig, 'net.d/20-broken.conf'), JSON.stringify({ name: 'rkttest-broken', type: 'ptp', ipam: { type: 'no-such-ipam' } }));
    const links = hostLinks();
    const pod = newPod();
    await expect(setupPodNetworks(realHost, { ...pod, mode: parseNetFlag(['rkttest-good,rkttest-broken']), localConfig, ports: [] })).rejects.toThrow(
      'failed to set up network "rkttest-broken" (plugin ptp)',
    );
    expect(hostLinks().filter((l) => l.startsWith('veth') && !links.includes(l))).toEqual([]);
    expect(leftovers([pod.uuid], [])).toEqual([]);
    expect(fs.readdirSync(pod.podDir)).toEqual(['net-info.json']);
  });

  test('a setup killed after its first ADD is torn down from what the pod dir recorded', async () => {
    // A host that "dies" at the second plugin ADD: from then on nothing reaches the machine,
    // as after a SIGKILL, so only the records in the pod dir are left for teardown.
    let dead = false;
    let adds = 0;
    const dying: Host = Object.assign(Object.create(realHost) as Host, {
      async exec(file: string, args: string[], opts?: Parameters<Host['exec']>[2]) {
        if (opts?.env?.CNI_COMMAND === 'ADD' && ++adds === 2) dead = true;
        if (dead) throw new Error('killed');
        return realHost.exec(file, args, opts);
      },
      writeFile(p: string, data: string) {
        if (dead) throw new Error('killed');
        realHost.writeFile(p, data);
      },
    });
    const pod = newPod();
    await expect(setupPodNetworks(dying, { ...pod, mode: parseNetFlag(['rkttest-good,default']), localConfig, ports: [] })).rejects.toThrow('killed');
    // Left behind: the netns, the first network's veth, lease and masquerade chain.
    const [rec] = readNetInfo(pod.podDir);
    expect(rec.netName).toBe('rkttest-good');
    const podVeths = vethsOf(pod.uuid);
    expect(podVeths).toHaveLength(1);
    veths.push(...podVeths);
    const left = leftovers([pod.uuid], podVeths);
    expect(left).toEqual(expect.arrayContaining([`veth ${podVeths[0]}`, `netns file rkt-${pod.uuid}`, `lease rkttest-good/${rec.ip}: ${pod.uuid}`]));
    expect(left.filter((l) => l.startsWith('nat') && l.includes('MASQUERADE'))).toHaveLength(1);

    await teardownPodNetworks(realHost, pod.podDir);
    expect(leftovers([pod.uuid], podVeths)).toEqual([]);
    expect(fs.readdirSync(pod.podDir)).toEqual(['net-info.json']);
  });

  test('teardown of every pod leaves the host as it was', async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const dir of podDirs) await teardownPodNetworks(realHost, dir);
    for (const dir of podDirs) await teardownPodNetworks(realHost, dir); // idempotent
    expect(veths.length).toBeGreaterThanOrEqual(5);
    expect(leftovers(uuids, veths)).toEqual([]);
    await expect(httpGet(`http://127.0.0.1:${hostPort}/`, 300)).rejects.toThrow();
  });
});

