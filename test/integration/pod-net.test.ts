/**
 * Pod networking end to end: real `rkt run` pods on the CNI networks (Debian's
 * containernetworking-plugins), --port forwarding, masquerade, --dns/--hosts-entry,
 * teardown after a SIGKILLed run, 30 pods at once and a three-member etcd cluster.
 * Every test compares the host's network state (links, netns, host-local leases, NAT
 * rules) with a baseline taken before it, and afterEach stops and collects every pod.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {
  BUSYBOX_ACI, ETCD_ACI, IMAGES_KEY, RKT, cleanup, describeIf, hostFootprint, makeEnv, rkt, rktBackground, runBusybox, skipReason, type RktEnv,
} from '../helpers/rkt.js';

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

const missingTools = ['ip', 'iptables-save', 'etcdctl', 'busybox'].filter((c) => !which(c));
if (!fs.existsSync('/usr/lib/cni/ptp')) missingTools.push('containernetworking-plugins');
const SKIP = skipReason() ?? (missingTools.length > 0 ? `needs ${missingTools.join(', ')}` : undefined);
const d = describeIf(SKIP);

type Bg = ReturnType<typeof rktBackground>;
/** rkt's api/v1 pod (src/cli/api-v1.ts): `networks` is left out when the pod has none. */
interface PodJson { name: string; state: string; networks?: Array<{ netName: string; netConf: string; pluginPath: string; ifName: string; ip: string; args: string; mask: string }> }
interface RunningPod { uuid: string; ip: string; bg: Bg }

const IPAM_DIR = '/var/lib/cni/networks';
const IP_RE = /^\d+\.\d+\.\d+\.\d+$/;

function out(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

// Others may run pods on this machine meanwhile (other rkt data dirs, podman for
// bench/run.sh): only this file's pods (every run saves its UUID) and unattributed
// items are compared.
const ours = new Set<string>();
const PODMAN = /podman|NETAVARK|link-netns netns-/;
const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

function remember(uuidFile: string): string {
  const uuid = fs.existsSync(uuidFile) ? fs.readFileSync(uuidFile, 'utf8').trim() : '';
  if (uuid) ours.add(uuid);
  return uuid;
}

/** False for an item that names a pod of someone else's (by UUID or port-forwarding chain id). */
function isOurs(text: string): boolean {
  const uuid = UUID_RE.exec(text)?.[0];
  if (uuid) return ours.has(uuid);
  const id = /RKT-PFWD-(?:DNAT|SNAT)-([0-9a-f]{8})/.exec(text)?.[1];
  return !id || [...ours].some((u) => u.startsWith(id));
}

/** The host's network state that pods may touch. */
function netFootprint() {
  const links = out('ip', ['-o', 'link']).split('\n').filter((l) => l && !PODMAN.test(l) && isOurs(l)).map((l) => l.split(':')[1].trim().split('@')[0]).sort();
  const netns = out('ip', ['netns', 'list']).split('\n').filter((l) => l && !l.startsWith('netns-') && isOurs(l)).map((l) => l.split(' ')[0]).sort();
  let netnsFiles: string[] = [];
  try { netnsFiles = fs.readdirSync('/var/run/netns').filter((n) => !n.startsWith('netns-') && isOurs(n)).sort(); } catch { /* none */ }
  // host-local leases hold the container ID on their first line.
  const ipam = (fs.existsSync(IPAM_DIR) ? fs.readdirSync(IPAM_DIR) : []).flatMap((n) => fs.readdirSync(path.join(IPAM_DIR, n))
    .filter((f) => IP_RE.test(f) && isOurs(fs.readFileSync(path.join(IPAM_DIR, n, f), 'utf8'))).map((f) => `${n}/${f}`)).sort();
  // Counters and the dated comment lines change by themselves; CNI's chains are named by
  // a hash, so they belong to whoever's ID their rules carry.
  const rules = out('iptables-save', ['-t', 'nat']).split('\n').filter((l) => l && !l.startsWith('#') && !PODMAN.test(l));
  const theirs = new Set(rules.filter((l) => !isOurs(l)).flatMap((l) => /^-A (CNI-\S+) /.exec(l)?.[1] ?? []));
  const nat = rules.filter((l) => isOurs(l) && !theirs.has(/^(?::|-A )(CNI-\S+)/.exec(l)?.[1] ?? ''))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ''));
  return { links, netns, netnsFiles, ipam, nat };
}

/** What is left on the host of these pods outside the network: cgroups, netns files, mounts. */
function podLeftovers(uuids: string[]): string[] {
  const fp = hostFootprint();
  return [...fp.cgroups, ...fp.netns, ...fp.mounts].filter((x) => uuids.some((u) => x.includes(u)));
}

function httpGet(url: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout fetching ${url}`)));
    req.on('error', reject);
  });
}

async function waitHttp(url: string, ms = 10_000): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    try { return await httpGet(url, 1000); } catch (e) {
      if (Date.now() > until) throw e;
    }
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A TCP port nothing on the host listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function podsOf(env: RktEnv): PodJson[] {
  const r = rkt(env, ['list', '--format=json']);
  if (r.status !== 0) throw new Error(`rkt list failed: ${r.stderr}`);
  // rkt prints `null` when there are no pods (a nil Go slice).
  return (JSON.parse(r.stdout) as PodJson[] | null) ?? [];
}

function statusOf(env: RktEnv, uuid: string): PodJson {
  const r = rkt(env, ['status', '--format=json', uuid]);
  if (r.status !== 0) throw new Error(`rkt status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as PodJson;
}

/** Non-loopback IPv4 addresses of the host's own interfaces (not pod veths nor ours). */
function hostAddresses(): string[] {
  return out('ip', ['-4', '-o', 'addr']).split('\n').filter(Boolean).flatMap((l) => {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)\//.exec(l);
    if (!m || m[1] === 'lo' || m[1].startsWith('veth') || m[1].startsWith('rktext')) return [];
    return [m[2]];
  });
}

d('pod networking with real pods', () => {
  const envs: RktEnv[] = [];
  const bgs: Bg[] = [];
  let baseline: ReturnType<typeof netFootprint>;
  let hadIpamDirs: string[] = [];

  function newEnv(): RktEnv {
    const env = makeEnv('rkt-it-');
    envs.push(env);
    return env;
  }

  let runs = 0;
  /** runBusybox, with the pod's UUID saved and remembered as ours. */
  function runPod(env: RktEnv, podFlags: string[], shell: string) {
    const uuidFile = path.join(env.base, `run-${runs++}.uuid`);
    const r = runBusybox(env, [`--uuid-file-save=${uuidFile}`, ...podFlags], [], shell);
    return { ...r, uuid: remember(uuidFile) };
  }

  /** Starts `rkt run` in the background with --uuid-file-save; returns the file. */
  function launch(env: RktEnv, podFlags: string[], image: string, appArgs: string[]): { uuidFile: string; bg: Bg } {
    const uuidFile = path.join(env.base, `launch-${runs++}.uuid`);
    const bg = rktBackground(env, ['--insecure-options=image', 'run', `--uuid-file-save=${uuidFile}`, ...podFlags, image, ...appArgs]);
    bgs.push(bg);
    return { uuidFile, bg };
  }

  /** Waits until every launched pod runs and has an IP (one `rkt list` per round). */
  async function waitRunning(env: RktEnv, launched: Array<{ uuidFile: string; bg: Bg }>, ms = 30_000): Promise<RunningPod[]> {
    const until = Date.now() + ms;
    for (;;) {
      for (const l of launched) {
        if (l.bg.child.exitCode !== null || l.bg.child.signalCode !== null) {
          const o = l.bg.output();
          throw new Error(`rkt run ended early (${l.bg.child.exitCode ?? l.bg.child.signalCode}): ${o.stderr}${o.stdout}`);
        }
      }
      const uuids = launched.map((l) => remember(l.uuidFile));
      if (uuids.every(Boolean)) {
        const pods = podsOf(env);
        const ready = uuids.map((u) => pods.find((p) => p.name === u && p.state === 'running' && p.networks?.[0]?.ip));
        if (ready.every(Boolean)) return ready.map((p, i) => ({ uuid: p!.name, ip: p!.networks![0].ip, bg: launched[i].bg }));
      }
      if (Date.now() > until) throw new Error(`pods not running after ${ms} ms: ${uuids.join(' ')}`);
      await sleep(100);
    }
  }

  async function runBg(env: RktEnv, podFlags: string[], shell: string): Promise<RunningPod> {
    const [pod] = await waitRunning(env, [launch(env, podFlags, BUSYBOX_ACI, ['--exec=/bin/sh', '--', '-c', shell])]);
    return pod;
  }

  async function settle(bg: Bg, ms = 15_000): Promise<void> {
    const t = setTimeout(() => bg.child.kill('SIGKILL'), ms);
    await bg.done;
    clearTimeout(t);
  }

  async function stopAndWait(env: RktEnv, pods: RunningPod[]): Promise<void> {
    const r = rkt(env, ['stop', ...pods.map((p) => p.uuid)]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    await Promise.all(pods.map((p) => settle(p.bg)));
  }

  function gc(env: RktEnv): void {
    const r = rkt(env, ['gc', '--grace-period=0s']);
    expect(r.stderr).not.toMatch(/cannot garbage collect|warning/);
    expect(r.status).toBe(0);
  }

  const HTTPD = (text: string) => `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`;

  beforeAll(() => {
    hadIpamDirs = fs.existsSync(IPAM_DIR) ? fs.readdirSync(IPAM_DIR) : [];
  });

  beforeEach(() => {
    baseline = netFootprint();
  });

  // Stops every pod still running (a failed test), then collects them all; a pod whose
  // killed stage0 lingers as a zombie still counts as preparing for a moment: wait for it.
  afterEach(async () => {
    for (const env of envs) {
      const running = podsOf(env).filter((p) => p.state === 'running').map((p) => p.name);
      if (running.length > 0) rkt(env, ['stop', '--force', ...running]);
    }
    await Promise.all(bgs.splice(0).map((bg) => settle(bg, 10_000)));
    const until = Date.now() + 15_000;
    while (envs.some((env) => podsOf(env).some((p) => p.state === 'preparing')) && Date.now() < until) await sleep(200);
    for (const env of envs.splice(0)) cleanup(env);
  });

  afterAll(() => {
    // host-local directories of networks only these tests used, once they hold no lease
    // (a lease left means a failed test: keep it in sight).
    for (const n of ['mynet', 'fast', 'slow', 'default-restricted']) {
      const dir = path.join(IPAM_DIR, n);
      if (hadIpamDirs.includes(n) || !fs.existsSync(dir)) continue;
      if (!fs.readdirSync(dir).some((f) => IP_RE.test(f))) fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('two pods on the default network reach each other; list and status show their IPs', async () => {
    const env = newEnv();
    const a = await runBg(env, [], HTTPD('hello-from-a'));
    expect(a.ip).toMatch(/^172\.16\.28\.\d+$/);
    const st = statusOf(env, a.uuid);
    expect(st.networks).toMatchObject([{ netName: 'default', ifName: 'eth0', ip: a.ip, mask: '255.255.255.0', args: '' }]);
    expect(st.networks![0].netConf).toMatch(/\/net\/default\.conf$/);
    expect(rkt(env, ['status', a.uuid]).stdout).toContain(`networks=default:ip4=${a.ip}\n`);
    expect(rkt(env, ['list', '--no-legend']).stdout).toContain(`default:ip4=${a.ip}`);
    await waitHttp(`http://${a.ip}/`);
    // gc leaves a running pod's network alone.
    gc(env);
    expect(await httpGet(`http://${a.ip}/`)).toBe('hello-from-a\n');

    const b = runPod(env, [],
      `ip -4 -o addr show eth0; timeout 5 wget -q -O - http://${a.ip}/`);
    expect(b.stderr).not.toMatch(/wget:/);
    expect(b.status).toBe(0);
    expect(b.stdout).toContain('hello-from-a');
    const bIp = /inet (\d+\.\d+\.\d+\.\d+)\/24/.exec(b.stdout)?.[1];
    expect(bIp).toMatch(/^172\.16\.28\.\d+$/);
    expect(bIp).not.toBe(a.ip);
    const bStatus = statusOf(env, b.uuid);
    expect(bStatus.state).toBe('exited');
    expect(bStatus.networks).toMatchObject([{ netName: 'default', ifName: 'eth0', ip: bIp }]);

    await stopAndWait(env, [a]);
    gc(env);
    expect(netFootprint()).toEqual(baseline);
  });

  test('the host reaches a pod by IP and through --port on 127.0.0.1 and its own address', async () => {
    const env = newEnv();
    const port = await freePort();
    const addrs = hostAddresses();
    const onAddr = await freePort();
    const pod = await runBg(env, [`--port=http:${port}`, ...addrs.slice(0, 1).map((a) => `--port=http:${a}:${onAddr}`)], HTTPD('forwarded'));
    expect(await waitHttp(`http://${pod.ip}/`)).toBe('forwarded\n');
    expect(await waitHttp(`http://127.0.0.1:${port}/`)).toBe('forwarded\n');
    for (const addr of addrs) expect(await waitHttp(`http://${addr}:${port}/`)).toBe('forwarded\n');
    if (addrs.length > 0) {
      // HOSTIP: forwards that address only.
      expect(await waitHttp(`http://${addrs[0]}:${onAddr}/`)).toBe('forwarded\n');
      await expect(httpGet(`http://127.0.0.1:${onAddr}/`, 500)).rejects.toThrow();
    }
    // Another pod reaches the forwarded port on its gateway (the host side of its veth) and on the host's addresses.
    const targets = ['172.16.28.1', ...addrs];
    const fromPod = runPod(env, [], targets.map((a) => `timeout 3 wget -q -O - http://${a}:${port}/ || echo "FAILED ${a}"`).join('; '));
    expect(fromPod.stdout).toBe('forwarded\n'.repeat(targets.length));

    // A second pod wanting the same host port is refused before it joins any network.
    const before = netFootprint();
    const second = runPod(env, [`--port=http:${port}`], 'true');
    expect(second.status).toBe(254);
    expect(second.stderr).toContain(`port ${port} is already in use by pod ${pod.uuid.slice(0, 8)}`);
    expect(netFootprint()).toEqual(before);
    expect(await httpGet(`http://127.0.0.1:${port}/`)).toBe('forwarded\n');

    // A port a host process listens on is refused too.
    const srv = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const busy = (srv.address() as net.AddressInfo).port;
    try {
      const r = runPod(env, [`--port=http:${busy}`], 'true');
      expect(r.status).toBe(254);
      expect(r.stderr).toContain(`port ${busy} is already in use by another process`);
      expect(netFootprint()).toEqual(before);
    } finally {
      srv.close();
    }

    // rm (not only gc) removes the pod's network and forwarding.
    await stopAndWait(env, [pod]);
    const rm = rkt(env, ['rm', pod.uuid]);
    expect(rm.status).toBe(0);
    const afterRm = netFootprint();
    expect(afterRm.netns).not.toContain(`rkt-${pod.uuid}`);
    expect(afterRm.ipam).not.toContain(`default/${pod.ip}`);
    expect(afterRm.nat.filter((l) => l.includes(pod.uuid) || l.includes(`-${pod.uuid.slice(0, 8)}`))).toEqual([]);
    await expect(httpGet(`http://127.0.0.1:${port}/`, 500)).rejects.toThrow();
    gc(env);
    expect(netFootprint()).toEqual(baseline);
  });

  test('pods started at once asking for the same host port: one gets it, the others fail and leave nothing', async () => {
    const K = 6;
    const env = newEnv();
    const port = await freePort();
    const launched = Array.from({ length: K }, (_, i) => launch(env, [`--port=http:${port}`], BUSYBOX_ACI, ['--exec=/bin/sh', '--', '-c', HTTPD(`racer${i}`)]));
    const ended = () => launched.filter((l) => l.bg.child.exitCode !== null || l.bg.child.signalCode !== null);
    const until = Date.now() + 60_000;
    let running: PodJson[] = [];
    for (;;) {
      const uuids = launched.map((l) => remember(l.uuidFile));
      running = podsOf(env).filter((p) => p.state === 'running' && (p.networks ?? []).length > 0 && uuids.includes(p.name));
      if (running.length + ended().length === K) break;
      if (Date.now() > until) throw new Error(`pods neither running nor failed after 60 s: ${running.length} running, ${ended().length} ended`);
      await sleep(100);
    }
    expect(running).toHaveLength(1);
    const winner = running[0];
    const losers = await Promise.all(ended().map((l) => l.bg.done));
    for (const r of losers) {
      expect(r.code).toBe(254);
      expect(r.stderr).toMatch(new RegExp(`port ${port} is already in use by pod [0-9a-f]{8}: choose another --port`));
    }
    const i = launched.findIndex((l) => fs.readFileSync(l.uuidFile, 'utf8').trim() === winner.name);
    expect(await waitHttp(`http://127.0.0.1:${port}/`)).toBe(`racer${i}\n`);
    // Only the winner's network is left.
    const now = netFootprint();
    expect(now.netns).toEqual([...baseline.netns, `rkt-${winner.name}`].sort());
    expect(now.ipam).toEqual([...baseline.ipam, `default/${winner.networks![0].ip}`].sort());
    expect(now.links).toHaveLength(baseline.links.length + 1);
    expect(now.nat.filter((l) => l.includes('RKT-PFWD-DNAT-') && !l.includes(winner.name.slice(0, 8)) && !baseline.nat.includes(l))).toEqual([]);
    expect(podLeftovers(launched.map((l) => remember(l.uuidFile)).filter((u) => u !== winner.name))).toEqual([]);
  });

  test('--port is refused with --net=host and --net=none', () => {
    const env = newEnv();
    for (const mode of ['host', 'none']) {
      const r = runPod(env, [`--net=${mode}`, '--port=http:18080'], 'echo ran');
      expect(r.status).toBe(254);
      expect(r.stdout).not.toContain('ran');
      expect(r.stderr).toMatch(new RegExp(`--port cannot be used with --net=${mode}: `));
    }
    expect(netFootprint()).toEqual(baseline);
  });

  describe('masquerade to an address outside the pod subnet', () => {
    const NS = 'rktext';
    let www: string;
    let server: ChildProcess | undefined;
    let subnet = '';

    function removeExt(): void {
      server?.kill('SIGKILL');
      spawnSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
      spawnSync('ip', ['link', 'delete', `${NS}-h`], { stdio: 'ignore' });
    }

    beforeAll(() => {
      removeExt(); // left by an earlier run killed half-way
      // A TEST-NET the host does not already use (this VM's own network may be 192.0.2.0/24).
      const routes = out('ip', ['-4', 'route']) + out('ip', ['-4', '-o', 'addr']);
      subnet = ['192.0.2', '198.51.100', '203.0.113'].find((s) => !routes.includes(`${s}.`)) ?? '';
      if (!subnet) throw new Error('every TEST-NET is in use on this host');
      const ip = (args: string[]) => out('ip', args);
      ip(['netns', 'add', NS]);
      ip(['link', 'add', `${NS}-h`, 'type', 'veth', 'peer', 'name', `${NS}-p`, 'netns', NS]);
      ip(['addr', 'add', `${subnet}.1/24`, 'dev', `${NS}-h`]);
      ip(['link', 'set', `${NS}-h`, 'up']);
      ip(['-n', NS, 'addr', 'add', `${subnet}.2/24`, 'dev', `${NS}-p`]);
      ip(['-n', NS, 'link', 'set', `${NS}-p`, 'up']);
      ip(['-n', NS, 'link', 'set', 'lo', 'up']);
      // With a way back to any address, a missing masquerade shows as the pod's own source.
      ip(['-n', NS, 'route', 'add', 'default', 'via', `${subnet}.1`]);
      www = fs.mkdtempSync('/tmp/rkt-it-ext-');
      fs.mkdirSync(path.join(www, 'cgi-bin'));
      fs.writeFileSync(path.join(www, 'cgi-bin', 'peer'),
        `#!/bin/sh\necho "$REMOTE_ADDR" >> ${www}/peers\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' "$REMOTE_ADDR"\n`, { mode: 0o755 });
      server = spawn('ip', ['netns', 'exec', NS, 'busybox', 'httpd', '-f', '-p', `${subnet}.2:9999`, '-h', www], { stdio: 'ignore' });
    });

    afterAll(() => {
      removeExt();
      if (www) fs.rmSync(www, { recursive: true, force: true });
    });

    test('a pod on default reaches another host with the host address as source', async () => {
      // The server listens before the pod tries.
      const until = Date.now() + 30_000;
      while (!out('ip', ['netns', 'exec', NS, 'busybox', 'netstat', '-ltn']).includes(':9999 ')) {
        if (Date.now() > until) throw new Error('test server in netns rktext did not start');
        await sleep(50);
      }
      const env = newEnv();
      const r = runPod(env, [], `timeout 5 wget -q -O - http://${subnet}.2:9999/cgi-bin/peer`);
      expect(r.stderr).not.toMatch(/wget:/);
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(`${subnet}.1`);
      expect(fs.readFileSync(path.join(www, 'peers'), 'utf8')).toBe(`${subnet}.1\n`);
      gc(env);
      expect(netFootprint()).toEqual(baseline);
    });
  });

  test('--net=none has only lo, up', () => {
    const env = newEnv();
    const r = runPod(env, ['--net=none'], 'ls /sys/class/net; ip -o link');
    expect(r.status).toBe(0);
    const [names, ...links] = r.stdout.trim().split('\n');
    expect(names).toBe('lo');
    expect(links).toHaveLength(1);
    expect(links[0]).toMatch(/^1: lo: <[^>]*\bUP\b[^>]*>/);
    expect(netFootprint()).toEqual(baseline);
  });

  test('--net=default:IP=... gets that IP; a second pod asking for it fails and leaves nothing', async () => {
    const env = newEnv();
    const pod = await runBg(env, ['--net=default:IP=172.16.28.50'], 'exec sleep 1000');
    expect(pod.ip).toBe('172.16.28.50');
    const inside = runPod(env, ['--net=default:IP=172.16.28.51'], 'ip -4 -o addr show eth0');
    expect(inside.stdout).toContain('inet 172.16.28.51/24');

    const before = netFootprint();
    const second = runPod(env, ['--net=default:IP=172.16.28.50'], 'echo ran');
    expect(second.status).toBe(254);
    expect(second.stdout).not.toContain('ran');
    expect(second.stderr).toContain('requested IP address "172.16.28.50" is not available in network: default');
    expect(netFootprint()).toEqual(before);
    expect(podLeftovers([second.uuid])).toEqual([]);
    expect(statusOf(env, pod.uuid).state).toBe('running');

    await stopAndWait(env, [pod]);
    gc(env);
    expect(netFootprint()).toEqual(baseline);
  });

  test('--net=default-restricted, a user network by name, and --net=mynet,default', () => {
    const env = newEnv();
    const restricted = runPod(env, ['--net=default-restricted'], 'ip -4 -o addr show eth0');
    expect(restricted.status).toBe(0);
    expect(restricted.stdout).toMatch(/inet 172\.31\.\d+\.\d+\/16/);

    fs.mkdirSync(path.join(env.localConfig, 'net.d'));
    fs.writeFileSync(path.join(env.localConfig, 'net.d', '10-mynet.conf'), JSON.stringify({
      name: 'mynet', type: 'ptp', ipMasq: false, ipam: { type: 'host-local', subnet: '10.99.0.0/24' },
      dns: { nameservers: ['10.99.0.53'], search: ['corp.example'] },
    }));
    const mine = runPod(env, ['--net=mynet'], 'ip -4 -o addr show eth0; ls /sys/class/net; cat /etc/resolv.conf');
    expect(mine.status).toBe(0);
    expect(mine.stdout).toMatch(/inet 10\.99\.0\.\d+\/24/);
    expect(mine.stdout).not.toContain('eth1');
    // The DNS the plugin returned becomes the pod's resolv.conf; --dns wins over it.
    expect(mine.stdout).toContain('# Generated by rkt from network mynet\n\nsearch corp.example\nnameserver 10.99.0.53\n');
    const flagWins = runPod(env, ['--net=mynet', '--dns=10.99.0.54'], 'cat /etc/resolv.conf');
    expect(flagWins.stdout).toBe('# Generated by rkt run\n\nnameserver 10.99.0.54\n');

    const both = runPod(env, ['--net=mynet,default'], 'ip -4 -o addr');
    expect(both.status).toBe(0);
    const eth0 = /eth0\s+inet (10\.99\.0\.\d+)\/24/.exec(both.stdout)?.[1];
    const eth1 = /eth1\s+inet (172\.16\.28\.\d+)\/24/.exec(both.stdout)?.[1];
    expect(eth0).toBeDefined();
    expect(eth1).toBeDefined();
    expect(statusOf(env, both.uuid).networks).toMatchObject([
      { netName: 'mynet', ifName: 'eth0', ip: eth0 },
      { netName: 'default', ifName: 'eth1', ip: eth1 },
    ]);

    const all = runPod(env, ['--net=all'], 'ip -4 -o addr');
    expect(all.status).toBe(0);
    expect(all.stdout).toMatch(/eth0\s+inet 10\.99\.0\.\d+\/24/);
    expect(all.stdout).toMatch(/eth1\s+inet 172\.16\.28\.\d+\/24/);

    const missing = runPod(env, ['--net=nosuchnet'], 'true');
    expect(missing.status).toBe(254);
    expect(missing.stderr.split('\n').filter((l) => l.includes('nosuchnet'))).toEqual([
      `run: failed to setup network: network "nosuchnet" not found in ${env.localConfig}/net.d: `
      + 'define it in a .conf file there or use default, default-restricted, host or none',
    ]);

    gc(env);
    expect(netFootprint()).toEqual(baseline);
  });

  test('a net.d conf written with Go-style keys (Name, Type, IPMasq, Ipam) works, as with rkt', () => {
    const env = newEnv();
    fs.mkdirSync(path.join(env.localConfig, 'net.d'));
    fs.writeFileSync(path.join(env.localConfig, 'net.d', '10-gonet.conf'), JSON.stringify({
      Name: 'gonet', Type: 'ptp', IPMasq: false, Ipam: { Type: 'host-local', Subnet: '10.98.0.0/24' },
    }));
    const pod = runPod(env, ['--net=gonet'], 'ip -4 -o addr show eth0');
    expect(pod.status).toBe(0);
    expect(pod.stdout).toMatch(/inet 10\.98\.0\.\d+\/24/);
    expect(statusOf(env, pod.uuid).networks).toMatchObject([{ netName: 'gonet', ifName: 'eth0', ip: expect.stringMatching(/^10\.98\.0\./) }]);
    gc(env);
    expect(netFootprint()).toEqual(baseline);
  });

  test('--dns*, --dns=host, --hosts-entry and the default /etc/hosts', () => {
    const env = newEnv();
    const dns = runPod(env, ['--dns=1.2.3.4', '--dns-search=example.com', '--dns-opt=debug', '--dns-domain=example.net'], 'cat /etc/resolv.conf');
    expect(dns.status).toBe(0);
    expect(dns.stdout).toBe('# Generated by rkt run\n\nsearch example.com\nnameserver 1.2.3.4\noptions debug\ndomain example.net\n');

    const host = runPod(env, ['--dns=host'], 'cat /etc/resolv.conf');
    expect(host.status).toBe(0);
    expect(host.stdout).toBe(fs.readFileSync('/etc/resolv.conf', 'utf8'));

    const none = runPod(env, ['--dns=none'], 'test -e /etc/resolv.conf && echo exists; true');
    expect(none.status).toBe(0);
    expect(none.stdout).toBe('');

    const hostHosts = runPod(env, ['--hosts-entry=host'], 'cat /etc/hosts');
    expect(hostHosts.status).toBe(0);
    expect(hostHosts.stdout).toBe(fs.readFileSync('/etc/hosts', 'utf8'));
    // rkt accepts the magic value given twice (its own test does so).
    const twice = runPod(env, ['--hosts-entry=host', '--hosts-entry=host'], 'cat /etc/hosts');
    expect(twice.status).toBe(0);
    expect(twice.stdout).toBe(fs.readFileSync('/etc/hosts', 'utf8'));

    const entry = runPod(env, ['--hosts-entry=128.66.0.99=host1'], 'hostname; cat /etc/hosts');
    expect(entry.status).toBe(0);
    const [hostname, ...hosts] = entry.stdout.split('\n');
    expect(hostname).toMatch(/^rkt-[0-9a-f-]{36}$/);
    expect(hosts).toContain('128.66.0.99 host1');
    expect(hosts.find((l) => l.startsWith('127.0.0.1 '))?.split(' ')).toEqual(expect.arrayContaining(['localhost', hostname]));

    // No flags: the pod's own hostname resolves through /etc/hosts (busybox wget looks it up).
    const own = runPod(env, [], `mkdir /www && echo self > /www/index.html && httpd -p 8080 -h /www && timeout 5 wget -q -O - "http://$(hostname):8080/"`);
    expect(own.stderr).not.toMatch(/wget:/);
    expect(own.stdout).toBe('self\n');
    expect(own.status).toBe(0);

    // Bad --dns values are found after the pod joined its network: that is undone too.
    const before = netFootprint();
    const bad = runPod(env, ['--dns=999.1.1.1'], 'echo ran');
    expect(bad.status).toBe(254);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain('invalid IP passed to --dns: "999.1.1.1"');
    expect(bad.stderr).not.toContain('cleaning up');
    expect(netFootprint()).toEqual(before);

    gc(env);
    expect(netFootprint()).toEqual(baseline);
  });

  /** A network conf in <local-config>/net.d; with a script, also a CNI plugin of the test's own there (rkt looks there first). */
  function addNet(env: RktEnv, file: string, conf: Record<string, unknown>, script?: string): void {
    const dir = path.join(env.localConfig, 'net.d');
    fs.mkdirSync(dir, { recursive: true });
    if (script) fs.writeFileSync(path.join(dir, conf.type as string), `#!/bin/sh\n${script}`, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, file), JSON.stringify(conf));
  }

  // A ptp network joined (as eth0: its file sorts first) before the test's own plugins run.
  const FAST = { name: 'fast', type: 'ptp', ipMasq: true, ipam: { type: 'host-local', subnet: '10.97.0.0/24' } };

  test('a plugin error on the second network is reported and undoes the first', () => {
    const env = newEnv();
    addNet(env, '10-fast.conf', FAST);
    addNet(env, '20-failnet.conf', { name: 'failnet', type: 'failnet' }, [
      'cat >/dev/null',
      '[ "$CNI_COMMAND" = ADD ] || exit 0',
      `echo '{"cniVersion":"0.4.0","code":11,"msg":"simulated failure","details":"from the test plugin"}'`,
      'exit 1',
    ].join('\n'));
    const r = runPod(env, ['--net=fast,failnet'], 'echo ran');
    expect(r.status).toBe(254);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('failed to set up network "failnet" (plugin failnet): simulated failure: from the test plugin');
    expect(r.stderr).not.toContain('cleaning up');
    expect(netFootprint()).toEqual(baseline);
    // The failed pod shows no network (fast's IP went back to the pool).
    expect(statusOf(env, r.uuid).networks).toBeUndefined();
    expect(podLeftovers([r.uuid])).toEqual([]);
  });

  test('SIGKILL of rkt run while a plugin is adding the pod, then gc: nothing remains', async () => {
    const env = newEnv();
    const marker = path.join(env.base, 'added');
    // Does ptp's whole ADD (veth, lease, masquerade), then hangs before answering.
    addNet(env, '10-fast.conf', FAST);
    addNet(env, '20-slow.conf', { name: 'slow', type: 'slowptp', ipMasq: true, ipam: { type: 'host-local', subnet: '10.98.0.0/24' } }, [
      'in=$(cat)',
      'if [ "$CNI_COMMAND" = ADD ]; then',
      '  printf %s "$in" | /usr/lib/cni/ptp >/dev/null || exit 1',
      `  : > ${marker}`,
      '  exec sleep 1000',
      'fi',
      'printf %s "$in" | exec /usr/lib/cni/ptp',
    ].join('\n'));
    const uuidFile = path.join(env.base, 'uuid');
    // Its own process group, so that the kill reaches rkt, the plugin and its sleep at once.
    const child = spawn(RKT, [...env.globals, '--insecure-options=image', 'run', `--uuid-file-save=${uuidFile}`, '--net=fast,slow',
      BUSYBOX_ACI, '--exec=/bin/true'], { stdio: 'ignore', detached: true });
    const exited = new Promise((r) => child.on('close', r));
    try {
      const until = Date.now() + 20_000;
      while (!fs.existsSync(marker)) {
        if (Date.now() > until || child.exitCode !== null) throw new Error('the slow plugin was never called');
        await sleep(50);
      }
      const uuid = remember(uuidFile);
      const during = netFootprint();
      expect(during.links.length).toBe(baseline.links.length + 2);
      expect(during.ipam.filter((f) => f.startsWith('fast/') || f.startsWith('slow/'))).toHaveLength(2);
      expect(during.nat.filter((l) => l.includes(uuid)).length).toBeGreaterThan(0);
      // Mid-setup, list shows the network already joined and nothing for the one being joined.
      const listed = podsOf(env).find((p) => p.name === uuid);
      expect(listed?.state).toBe('preparing');
      expect(listed?.networks?.map((n) => n.netName)).toEqual(['fast']);
      expect(rkt(env, ['list', '--no-legend']).stdout).not.toContain('undefined');

      process.kill(-child.pid!, 'SIGKILL');
      await exited;
      // The killed stage0 may linger as a zombie for a moment.
      const dead = Date.now() + 15_000;
      while (statusOf(env, uuid).state === 'preparing') {
        if (Date.now() > dead) throw new Error('pod still preparing 15 s after its rkt run was killed');
        await sleep(100);
      }
      gc(env);
      expect(netFootprint()).toEqual(baseline);
      expect(podLeftovers([uuid])).toEqual([]);
    } finally {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
    }
  });

  test('SIGKILL of rkt run, then gc: no veth, netns, lease or NAT rule of the pod remains', async () => {
    const env = newEnv();
    const port = await freePort();
    const pod = await runBg(env, [`--port=http:${port}`], 'exec sleep 1000');
    const during = netFootprint();
    // The pod really holds each kind of resource the check below looks for.
    expect(during.netns).toContain(`rkt-${pod.uuid}`);
    expect(during.ipam).toContain(`default/${pod.ip}`);
    expect(during.links.length).toBe(baseline.links.length + 1);
    expect(during.nat.filter((l) => l.includes(`RKT-PFWD-DNAT-${pod.uuid.slice(0, 8)}`)).length).toBeGreaterThan(0);
    expect(during.nat.filter((l) => l.includes(pod.uuid)).length).toBeGreaterThan(0); // ptp's masquerade

    pod.bg.child.kill('SIGKILL');
    await pod.bg.done;
    const until = Date.now() + 10_000;
    while (statusOf(env, pod.uuid).state === 'running') {
      if (Date.now() > until) throw new Error('pod still running 10 s after its rkt run was killed');
      await sleep(100);
    }
    gc(env);
    expect(netFootprint()).toEqual(baseline);
    expect(podLeftovers([pod.uuid])).toEqual([]);
    expect(podsOf(env)).toEqual([]);
  });

  test('30 pods at once: distinct IPs, all serve the host and another pod, all collected', async () => {
    const N = 30;
    const env = newEnv();
    const launched = Array.from({ length: N }, (_, i) => launch(env, [], BUSYBOX_ACI, ['--exec=/bin/sh', '--', '-c', HTTPD(`pod${i}`)]));
    const pods = await waitRunning(env, launched, 90_000);
    const ips = pods.map((p) => p.ip);
    expect(new Set(ips).size).toBe(N);
    for (const ip of ips) expect(ip).toMatch(/^172\.16\.28\.\d+$/);

    const bodies = await Promise.all(ips.map((ip) => waitHttp(`http://${ip}/`, 20_000)));
    expect(bodies).toEqual(pods.map((_, i) => `pod${i}\n`));

    const probe = runPod(env, [], ips.map((ip) => `timeout 3 wget -q -O - http://${ip}/ || echo "FAILED ${ip}"`).join('; '));
    expect(probe.stdout.split('\n').filter(Boolean)).toEqual(pods.map((_, i) => `pod${i}`));

    await stopAndWait(env, pods);
    gc(env);
    expect(netFootprint()).toEqual(baseline);
    expect(podLeftovers(pods.map((p) => p.uuid))).toEqual([]);
  }, 300_000); // its own bounded waits (90 s to run, 20 s to serve, 30 probes of 3 s, stop, gc) exceed the default

  test('a three-member etcd cluster on the default network survives a stopped member', async () => {
    const env = newEnv();
    const trust = rkt(env, ['trust', '--prefix=coreos.com/etcd', '--skip-fingerprint-review', IMAGES_KEY]);
    expect(trust.status).toBe(0);
    const fetched = rkt(env, ['fetch', ETCD_ACI]);
    expect(fetched.status).toBe(0);
    const version = /^coreos\.com\/etcd (\S+)$/m.exec(fs.readFileSync(path.join(path.dirname(ETCD_ACI), 'VERSIONS'), 'utf8'))?.[1];
    const image = `coreos.com/etcd:${version}`;

    // Three addresses no other pod on this host holds (host-local's leases: an exited pod keeps its own until gc).
    const leases = path.join('/var/lib/cni/networks', 'default');
    const held = new Set(fs.existsSync(leases) ? fs.readdirSync(leases) : []);
    const ips = Array.from({ length: 50 }, (_, i) => `172.16.28.${201 + i}`).filter((ip) => !held.has(ip)).slice(0, 3);
    const cluster = ips.map((ip, i) => `m${i + 1}=http://${ip}:2380`).join(',');
    const launched = ips.map((ip, i) => {
      const uuidFile = path.join(env.base, `m${i + 1}.uuid`);
      const bg = rktBackground(env, ['run', `--uuid-file-save=${uuidFile}`, `--net=default:IP=${ip}`, image, '--exec=/usr/bin/etcd', '--',
        `--name=m${i + 1}`, `--data-dir=/var/lib/etcd/m${i + 1}`,
        '--listen-client-urls=http://0.0.0.0:2379', `--advertise-client-urls=http://${ip}:2379`,
        '--listen-peer-urls=http://0.0.0.0:2380', `--initial-advertise-peer-urls=http://${ip}:2380`,
        `--initial-cluster=${cluster}`, '--initial-cluster-state=new']);
      bgs.push(bg);
      return { uuidFile, bg };
    });
    const members = await waitRunning(env, launched, 30_000);
    expect(members.map((m) => m.ip)).toEqual(ips);

    const etcdctl = (ip: string, args: string[]) => spawnSync('etcdctl', [`--endpoints=http://${ip}:2379`, '--dial-timeout=2s', '--command-timeout=3s', ...args],
      { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 10_000 });
    const eventually = async (what: string, f: () => boolean, ms = 30_000) => {
      const until = Date.now() + ms;
      while (!f()) {
        if (Date.now() > until) throw new Error(`timed out: ${what}`);
        await sleep(200);
      }
    };
    await eventually('cluster healthy', () => ips.every((ip) => etcdctl(ip, ['endpoint', 'health']).status === 0));
    const put = etcdctl(ips[0], ['put', 'greeting', 'hello']);
    expect(put.stderr).toBe('');
    expect(put.stdout).toBe('OK\n');
    expect(etcdctl(ips[1], ['get', 'greeting']).stdout).toBe('greeting\nhello\n');
    const memberList = etcdctl(ips[2], ['member', 'list']).stdout;
    for (let i = 1; i <= 3; i++) expect(memberList).toContain(`m${i}`);

    await stopAndWait(env, [members[0]]);
    expect(statusOf(env, members[0].uuid).state).toBe('exited');
    expect(etcdctl(ips[0], ['get', 'greeting']).status).not.toBe(0);
    await eventually('put through m2 after m1 stopped', () => etcdctl(ips[1], ['put', 'after', 'stop']).stdout === 'OK\n', 15_000);
    expect(etcdctl(ips[2], ['get', 'after']).stdout).toBe('after\nstop\n');
    expect(etcdctl(ips[2], ['get', 'greeting']).stdout).toBe('greeting\nhello\n');

    await stopAndWait(env, members.slice(1));
    gc(env);
    expect(netFootprint()).toEqual(baseline);
    expect(podLeftovers(members.map((m) => m.uuid))).toEqual([]);
  }, 300_000); // its own bounded waits (fetch, 30 s to run, 30 s to be healthy, 15 s, three stops, gc) exceed the default
});
