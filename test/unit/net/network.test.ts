import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecResult } from '../../../src/host/host.js';
import { BUILTIN_NETS } from '../../../src/net/conf.js';
import { cniDnsOf, readNetInfo, setupPodNetworks, teardownPodNetworks, type SetupParams } from '../../../src/net/network.js';
import { RktError } from '../../../src/util/errors.js';
import { FakeHost, type ExecCall } from '../../helpers/fake-host.js';

const UUID = 'abcdef01-2345-6789-abcd-ef0123456789';
const NS = `/var/run/netns/rkt-${UUID}`;
const LOCAL = '/etc/rkt';
const OK: ExecResult = { code: 0, stdout: '', stderr: '' };

/** A FakeHost that answers like iproute2, iptables and CNI plugins with host-local IPAM. */
class FakeNetHost extends FakeHost {
  netns = new Set<string>();
  leases = new Map<string, string>(); // "<net>/<ifname>" -> ip
  adds: ExecCall[] = [];
  dels: ExecCall[] = [];
  /** Return a result to make a plugin call fail. */
  failPlugin: (c: ExecCall) => ExecResult | undefined = () => undefined;
  onAdd: (c: ExecCall) => void = () => undefined;

  constructor() {
    super();
    this.files.set('/usr/lib/cni/ptp', '');
    this.files.set('/usr/lib/cni/bridge', '');
    this.execHandler = (c) => this.answer(c);
  }

  private answer(c: ExecCall): ExecResult {
    if (c.file === 'ip') return this.ip(c.args);
    if (c.file === 'iptables') return OK;
    const env = c.opts.env ?? {};
    const conf = JSON.parse(c.opts.input ?? '{}') as { name: string; dns?: unknown };
    const key = `${conf.name}/${env.CNI_IFNAME}`;
    if (env.CNI_COMMAND === 'DEL') {
      this.dels.push(c);
      const failed = this.failPlugin(c);
      if (failed) return failed;
      this.leases.delete(key);
      return OK;
    }
    this.adds.push(c);
    this.onAdd(c);
    const failed = this.failPlugin(c);
    if (failed) return failed;
    const base = conf.name === 'default' ? '172.16.28' : '10.88.0';
    const ip = `${base}.${this.leases.size + 2}`;
    this.leases.set(key, ip);
    return {
      code: 0, stderr: '',
      stdout: JSON.stringify({
        cniVersion: '0.4.0',
        interfaces: [{ name: `veth-${conf.name}` }, { name: env.CNI_IFNAME, sandbox: env.CNI_NETNS }],
        ips: [{ version: '4', interface: 1, address: `${ip}/24`, gateway: `${base}.1` }],
        dns: conf.dns ?? {},
      }),
    };
  }

  private ip(args: string[]): ExecResult {
    const name = args[args.length - 1];
    if (args[0] === 'netns' && args[1] === 'add') { this.netns.add(name); return OK; }
    if (args[0] === 'netns' && args[1] === 'delete') {
      if (this.netns.delete(name)) return OK;
      return { code: 1, stdout: '', stderr: `Cannot remove namespace file "/run/netns/${name}": No such file or directory\n` };
    }
    return OK; // ip -n NAME link set lo up
  }
}

let podDir: string;
let host: FakeNetHost;

function params(over: Partial<SetupParams> = {}): SetupParams {
  return { uuid: UUID, podDir, mode: { kind: 'cni', nets: [{ name: 'default' }] }, localConfig: LOCAL, ports: [], ...over };
}

function podFile(rel: string): string | undefined {
  try { return fs.readFileSync(path.join(podDir, rel), 'utf8'); } catch { return undefined; }
}

beforeEach(() => {
  podDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-net-'));
  host = new FakeNetHost();
  jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(podDir, { recursive: true, force: true });
});

describe('setupPodNetworks', () => {
  test('default network: netns, lo up, ptp ADD, and everything recorded in the pod dir', async () => {
    const setup = await setupPodNetworks(host, params());
    expect(setup).toEqual({
      netnsPath: NS,
      nets: [{ netName: 'default', ifName: 'eth0', ip: '172.16.28.2', mask: '255.255.255.0', gateway: '172.16.28.1', hostIP: '172.16.28.1' }],
    });
    expect(host.calls).toEqual([
      `exec ip netns add rkt-${UUID}`,
      `exec ip -n rkt-${UUID} link set lo up`,
      'exec /usr/lib/cni/ptp ',
    ]);
    expect(host.adds[0].opts.env).toMatchObject({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: UUID, CNI_NETNS: NS, CNI_IFNAME: 'eth0', CNI_ARGS: '' });
    expect(JSON.parse(host.adds[0].opts.input ?? '')).toEqual(BUILTIN_NETS.default);
    expect(podFile('netns')).toBe(NS);
    expect(podFile('net/default.conf')).toBe(host.adds[0].opts.input);
    expect(readNetInfo(podDir)).toEqual(setup.nets);
  });

  test('two networks: eth0/eth1 in load order, args as CNI_ARGS, ports on the first ipMasq network', async () => {
    host.files.set(`${LOCAL}/net.d/10-lan.conf`, JSON.stringify({ name: 'lan', type: 'bridge', ipMasq: false }));
    const setup = await setupPodNetworks(host, params({
      mode: { kind: 'cni', nets: [{ name: 'default', args: { IP: '172.16.28.50', X: 'y' } }, { name: 'lan' }] },
      ports: [{ name: 'http', hostPort: 8080, podPort: 80, protocol: 'tcp' }],
    }));
    expect(setup.nets.map((n) => [n.netName, n.ifName, n.ip])).toEqual([['lan', 'eth0', '10.88.0.2'], ['default', 'eth1', '172.16.28.3']]);
    expect(host.adds.map((c) => [c.file, c.opts.env?.CNI_IFNAME, c.opts.env?.CNI_ARGS])).toEqual([
      ['/usr/lib/cni/bridge', 'eth0', ''],
      ['/usr/lib/cni/ptp', 'eth1', 'IP=172.16.28.50;X=y'],
    ]);
    expect(host.calls).toContain('exec iptables --wait -t nat -A RKT-PFWD-DNAT-abcdef01 -d 0.0.0.0/0 -p tcp --dport 8080 -j DNAT --to-destination 172.16.28.3:80');
    expect(host.calls).toContain('write /proc/sys/net/ipv4/conf/veth-default/route_localnet 1');
    expect(JSON.parse(podFile('net/portfwd.json') ?? '')).toEqual({ chains: { dnat: 'RKT-PFWD-DNAT-abcdef01', snat: 'RKT-PFWD-SNAT-abcdef01', local: 'RKT-PFWD-LOCAL-abcdef01' } });
    // The port check comes before anything is created.
    expect(host.calls.findIndex((c) => c.endsWith('-t nat -S'))).toBeLessThan(host.calls.findIndex((c) => c.includes('netns add')));
  });

  test('with no ipMasq network, ports go to the last network', async () => {
    host.files.set(`${LOCAL}/net.d/10-lan.conf`, JSON.stringify({ name: 'lan', type: 'bridge' }));
    await setupPodNetworks(host, params({
      mode: { kind: 'cni', nets: [{ name: 'lan' }, { name: 'default-restricted' }] },
      ports: [{ name: 'http', hostPort: 8080, podPort: 80, protocol: 'tcp' }],
    }));
    expect(host.calls).toContain('exec iptables --wait -t nat -A RKT-PFWD-DNAT-abcdef01 -d 0.0.0.0/0 -p tcp --dport 8080 -j DNAT --to-destination 10.88.0.3:80');
  });

  test('net-info.json names each network before its ADD runs (so a kill during ADD is still torn down)', async () => {
    host.files.set(`${LOCAL}/net.d/10-lan.conf`, JSON.stringify({ name: 'lan', type: 'bridge' }));
    const seen: unknown[] = [];
    host.onAdd = () => seen.push(JSON.parse(podFile('net-info.json') ?? '[]'));
    await setupPodNetworks(host, params({ mode: { kind: 'cni', nets: [{ name: 'lan' }, { name: 'default' }] } }));
    expect(seen).toEqual([
      [expect.objectContaining({ netName: 'lan', ifName: 'eth0', confPath: 'net/lan.conf', containerID: UUID })],
      [expect.objectContaining({ netName: 'lan', ip: '10.88.0.2' }), expect.objectContaining({ netName: 'default', ifName: 'eth1' })],
    ]);
  });

  test('DNS returned by a plugin is kept for resolv.conf', async () => {
    host.files.set(`${LOCAL}/net.d/10-lan.conf`, JSON.stringify({ name: 'lan', type: 'bridge', dns: { nameservers: ['10.88.0.53'], search: ['lan'] } }));
    const setup = await setupPodNetworks(host, params({ mode: { kind: 'cni', nets: [{ name: 'lan' }, { name: 'default' }] } }));
    expect(cniDnsOf(setup.nets)).toEqual([{ network: 'lan', nameservers: ['10.88.0.53'], search: ['lan'] }]);
    expect(cniDnsOf(readNetInfo(podDir))).toEqual(cniDnsOf(setup.nets));
  });

  test('rollback: the second network fails, the first is DELeted and the netns removed', async () => {
    host.files.set(`${LOCAL}/net.d/10-lan.conf`, JSON.stringify({ name: 'lan', type: 'bridge' }));
    host.failPlugin = (c) => (c.opts.env?.CNI_COMMAND === 'ADD' && c.opts.env?.CNI_IFNAME === 'eth1'
      ? { code: 1, stderr: '', stdout: JSON.stringify({ code: 11, msg: 'failed to allocate for range 0: requested IP address 172.16.28.9 is not available in range set x' }) }
      : undefined);
    const err = await setupPodNetworks(host, params({
      mode: { kind: 'cni', nets: [{ name: 'lan' }, { name: 'default', args: { IP: '172.16.28.9' } }] },
      ports: [{ name: 'http', hostPort: 8080, podPort: 80, protocol: 'tcp' }],
    })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RktError);
    expect((err as Error).message).toBe('requested IP address "172.16.28.9" is not available in network: default');
    // DEL in reverse order, for the failed ADD too (CNI DEL is idempotent), with prevResult when known.
    expect(host.dels.map((c) => [c.file, c.opts.env?.CNI_IFNAME, c.opts.env?.CNI_CONTAINERID, c.opts.env?.CNI_NETNS])).toEqual([
      ['/usr/lib/cni/ptp', 'eth1', UUID, NS],
      ['/usr/lib/cni/bridge', 'eth0', UUID, NS],
    ]);
    expect(JSON.parse(host.dels[1].opts.input ?? '').prevResult.ips[0].address).toBe('10.88.0.2/24');
    expect(JSON.parse(host.dels[0].opts.input ?? '').prevResult).toBeUndefined();
    expect(host.leases.size).toBe(0);
    expect(host.netns.size).toBe(0);
    expect(host.calls).toContain(`exec ip netns delete rkt-${UUID}`);
    expect(host.calls.some((c) => c.includes('RKT-PFWD'))).toBe(false);
    expect(podFile('netns')).toBeUndefined();
    expect(fs.existsSync(path.join(podDir, 'net'))).toBe(false);
  });

  test('rollback after a port forwarding failure removes the chains too', async () => {
    const base = host.execHandler;
    host.execHandler = (c) => (c.file === 'iptables' && c.args.includes('OUTPUT') && c.args.includes('-I') ? { code: 4, stdout: '', stderr: 'boom' } : base(c));
    await expect(setupPodNetworks(host, params({ ports: [{ name: 'http', hostPort: 8080, podPort: 80, protocol: 'tcp' }] }))).rejects.toThrow('port forwarding: iptables');
    expect(host.calls).toContain('exec iptables --wait -t nat -X RKT-PFWD-DNAT-abcdef01');
    expect(host.dels).toHaveLength(1);
    expect(host.netns.size).toBe(0);
    expect(podFile('net/portfwd.json')).toBeUndefined();
  });

  test('a netns that cannot be created: nothing else is tried', async () => {
    const base = host.execHandler;
    host.execHandler = (c) => (c.file === 'ip' && c.args[1] === 'add' ? { code: 1, stdout: '', stderr: 'mount --make-shared /run/netns failed: Operation not permitted' } : base(c));
    await expect(setupPodNetworks(host, params())).rejects.toThrow(`cannot create network namespace ${NS}: mount --make-shared /run/netns failed: Operation not permitted`);
    expect(host.adds).toHaveLength(0);
    expect(podFile('netns')).toBeUndefined();
  });

  test('an unknown network or a busy port fails before any host effect', async () => {
    await expect(setupPodNetworks(host, params({ mode: { kind: 'cni', nets: [{ name: 'nope' }] } }))).rejects.toThrow('failed to setup network: network "nope" not found');
    host.files.set('/proc/net/tcp', 'header\n   0: 00000000:1F90 00000000:0000 0A 0\n');
    await expect(setupPodNetworks(host, params({ ports: [{ name: 'http', hostPort: 8080, podPort: 80, protocol: 'tcp' }] }))).rejects.toThrow(
      'port 8080 is already in use by another process',
    );
    expect(host.calls.filter((c) => !c.endsWith('-t nat -S'))).toEqual([]);
    expect(fs.readdirSync(podDir)).toEqual([]);
  });

  test('host and none are not for this function', async () => {
    await expect(setupPodNetworks(host, params({ mode: { kind: 'host' } }))).rejects.toThrow('setupPodNetworks called for --net=host');
  });
});

describe('teardownPodNetworks', () => {
  test('undoes a full setup: forwarding, DEL in reverse, netns; then is a no-op', async () => {
    host.files.set(`${LOCAL}/net.d/10-lan.conf`, JSON.stringify({ name: 'lan', type: 'bridge' }));
    await setupPodNetworks(host, params({
      mode: { kind: 'cni', nets: [{ name: 'lan' }, { name: 'default', args: { IP: '172.16.28.9' } }] },
      ports: [{ name: 'http', hostPort: 8080, podPort: 80, protocol: 'tcp' }],
    }));
    host.calls = [];
    await teardownPodNetworks(host, podDir);
    expect(host.calls).toEqual([
      'exec iptables --wait -t nat -D POSTROUTING -s 127.0.0.1 ! -d 127.0.0.1 -j RKT-PFWD-SNAT-abcdef01',
      'exec iptables --wait -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j RKT-PFWD-DNAT-abcdef01',
      'exec iptables --wait -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j RKT-PFWD-DNAT-abcdef01',
      'exec iptables --wait -t nat -F RKT-PFWD-DNAT-abcdef01',
      'exec iptables --wait -t nat -X RKT-PFWD-DNAT-abcdef01',
      'exec iptables --wait -t nat -F RKT-PFWD-SNAT-abcdef01',
      'exec iptables --wait -t nat -X RKT-PFWD-SNAT-abcdef01',
      'exec iptables --wait -S INPUT',
      'exec iptables --wait -F RKT-PFWD-LOCAL-abcdef01',
      'exec iptables --wait -X RKT-PFWD-LOCAL-abcdef01',
      'exec /usr/lib/cni/ptp ',
      'exec /usr/lib/cni/bridge ',
      `exec ip netns delete rkt-${UUID}`,
    ]);
    expect(host.dels.map((c) => c.opts.env)).toEqual([
      expect.objectContaining({ CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth1', CNI_ARGS: 'IP=172.16.28.9', CNI_NETNS: NS, CNI_CONTAINERID: UUID }),
      expect.objectContaining({ CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth0', CNI_ARGS: '' }),
    ]);
    expect(host.leases.size).toBe(0);
    expect(host.netns.size).toBe(0);
    expect(fs.readdirSync(podDir)).toEqual(['net-info.json']);
    // list/status still see what the pod had.
    expect(readNetInfo(podDir).map((n) => n.ip)).toEqual(['10.88.0.2', '172.16.28.3']);

    host.calls = [];
    await teardownPodNetworks(host, podDir);
    expect(host.calls).toEqual([]);
  });

  test('partial state: only what is still recorded is undone; a netns already gone is fine', async () => {
    fs.mkdirSync(path.join(podDir, 'net'));
    fs.writeFileSync(path.join(podDir, 'netns'), NS);
    fs.writeFileSync(path.join(podDir, 'net/lan.conf'), JSON.stringify({ cniVersion: '0.4.0', name: 'lan', type: 'bridge' }));
    const rec = { containerID: UUID, args: '', cniPath: '/etc/rkt/net.d:/usr/lib/rkt/plugins/net:/usr/lib/cni' };
    fs.writeFileSync(path.join(podDir, 'net-info.json'), JSON.stringify([
      { ...rec, netName: 'lan', ifName: 'eth0', confPath: 'net/lan.conf' },
      { ...rec, netName: 'default', ifName: 'eth1', confPath: 'net/default.conf' },
    ]));
    await teardownPodNetworks(host, podDir);
    expect(host.dels.map((c) => [c.file, c.opts.env?.CNI_IFNAME])).toEqual([['/usr/lib/cni/bridge', 'eth0']]);
    expect(JSON.parse(host.dels[0].opts.input ?? '')).toEqual({ cniVersion: '0.4.0', name: 'lan', type: 'bridge' });
    expect(host.calls).toContain(`exec ip netns delete rkt-${UUID}`);
    expect(fs.readdirSync(podDir)).toEqual(['net-info.json']);
    expect(readNetInfo(podDir)).toEqual([]);
  });

  test('a DEL failing for a network whose ADD never completed is only a warning', async () => {
    host.files.set(`${LOCAL}/net.d/10-lan.conf`, JSON.stringify({ name: 'lan', type: 'bridge' }));
    host.failPlugin = (c) => (c.opts.env?.CNI_IFNAME === 'eth1' ? { code: 1, stdout: '{"code":1,"msg":"no such ipam"}', stderr: '' } : undefined);
    await expect(setupPodNetworks(host, params({ mode: { kind: 'cni', nets: [{ name: 'lan' }, { name: 'default' }] } }))).rejects.toThrow(
      'failed to set up network "default" (plugin ptp): no such ipam',
    );
    expect(host.dels).toHaveLength(2);
    expect(fs.readdirSync(podDir)).toEqual(['net-info.json']);
    expect(String((process.stderr.write as jest.Mock).mock.calls.flat())).toContain('warning: failed to tear down network "default" (plugin ptp): no such ipam');
  });

  test('an empty pod dir (killed before anything was recorded) is fine', async () => {
    await teardownPodNetworks(host, podDir);
    expect(host.calls).toEqual([]);
  });

  test('a failing DEL keeps its conf for a retry and is reported; the rest is still done', async () => {
    await setupPodNetworks(host, params());
    host.failPlugin = (c) => (c.opts.env?.CNI_COMMAND === 'DEL' ? { code: 1, stdout: '{"code":100,"msg":"iptables is locked"}', stderr: '' } : undefined);
    await expect(teardownPodNetworks(host, podDir)).rejects.toThrow(
      'network teardown incomplete: failed to tear down network "default" (plugin ptp): iptables is locked: run "rkt gc" again',
    );
    expect(podFile('net/default.conf')).toBeDefined();
    expect(host.netns.size).toBe(0);
    host.failPlugin = () => undefined;
    await teardownPodNetworks(host, podDir);
    expect(host.dels).toHaveLength(2);
    expect(host.leases.size).toBe(0);
    expect(fs.readdirSync(podDir)).toEqual(['net-info.json']);
  });
});
