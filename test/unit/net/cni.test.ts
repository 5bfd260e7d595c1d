import { describe, expect, test } from '@jest/globals';
import { cniPath, parseResult, runPlugin, type PluginCall } from '../../../src/net/cni.js';
import { RktError } from '../../../src/util/errors.js';
import { FakeHost } from '../../helpers/fake-host.js';

const STDIN = '{"cniVersion":"0.4.0","name":"default","type":"ptp"}';

function call(over: Partial<PluginCall> = {}): PluginCall {
  return {
    command: 'ADD', network: 'default', type: 'ptp', stdin: STDIN,
    containerId: 'c0ffee00-1111-2222-3333-444455556666', netns: '/var/run/netns/rkt-x', ifName: 'eth0',
    args: 'IP=172.16.28.50', cniPath: cniPath('/etc/rkt'), ...over,
  };
}

const RESULT_040 = {
  cniVersion: '0.4.0',
  interfaces: [{ name: 'veth1234', mac: 'aa' }, { name: 'eth0', mac: 'bb', sandbox: '/var/run/netns/rkt-x' }],
  ips: [{ version: '4', interface: 1, address: '172.16.28.7/24', gateway: '172.16.28.1' }],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: {},
};

describe('runPlugin', () => {
  test('CNI_PATH is net.d of the local config, rkt plugins, then Debian plugins', () => {
    expect(cniPath('/etc/rkt')).toBe('/etc/rkt/net.d:/usr/lib/rkt/plugins/net:/usr/lib/cni');
  });

  test('exact environment, clean env, stdin, and the parsed stdout', async () => {
    const host = new FakeHost();
    host.files.set('/usr/lib/cni/ptp', '');
    host.execHandler = () => ({ code: 0, stdout: JSON.stringify(RESULT_040), stderr: '' });
    expect(await runPlugin(host, call())).toEqual(RESULT_040);
    expect(host.execCalls).toHaveLength(1);
    const c = host.execCalls[0];
    expect(c.file).toBe('/usr/lib/cni/ptp');
    expect(c.args).toEqual([]);
    expect(c.opts.input).toBe(STDIN);
    expect(c.opts.cleanEnv).toBe(true);
    expect(c.opts.env).toEqual({
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'c0ffee00-1111-2222-3333-444455556666',
      CNI_NETNS: '/var/run/netns/rkt-x',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'IP=172.16.28.50',
      CNI_PATH: '/etc/rkt/net.d:/usr/lib/rkt/plugins/net:/usr/lib/cni',
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    });
  });

  test('a plugin in <localConfig>/net.d is found first', async () => {
    const host = new FakeHost();
    host.files.set('/usr/lib/cni/ptp', '');
    host.files.set('/etc/rkt/net.d/ptp', '');
    await runPlugin(host, call({ command: 'DEL' }));
    expect(host.execCalls[0].file).toBe('/etc/rkt/net.d/ptp');
    expect(host.execCalls[0].opts.env?.CNI_COMMAND).toBe('DEL');
  });

  test('an empty stdout (DEL) gives undefined', async () => {
    const host = new FakeHost();
    host.files.set('/usr/lib/cni/ptp', '');
    expect(await runPlugin(host, call({ command: 'DEL' }))).toBeUndefined();
  });

  test('a missing plugin', async () => {
    const host = new FakeHost();
    await expect(runPlugin(host, call({ type: 'flannel' }))).rejects.toThrow(
      'network "default": CNI plugin "flannel" not found in /etc/rkt/net.d:/usr/lib/rkt/plugins/net:/usr/lib/cni',
    );
    expect(host.execCalls).toHaveLength(0);
  });

  test('a taken IP is reported as rkt did', async () => {
    const host = new FakeHost();
    host.files.set('/usr/lib/cni/ptp', '');
    host.execHandler = () => ({
      code: 1, stderr: '',
      stdout: JSON.stringify({ code: 999, msg: 'failed to allocate for range 0: requested IP address 172.16.28.50 is not available in range set 172.16.28.1-172.16.28.254' }),
    });
    const err = await runPlugin(host, call()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RktError);
    expect((err as Error).message).toBe('requested IP address "172.16.28.50" is not available in network: default');
  });

  test('other plugin errors: one line naming the network, the plugin and its msg and details', async () => {
    const host = new FakeHost();
    host.files.set('/usr/lib/cni/ptp', '');
    host.execHandler = () => ({ code: 1, stderr: 'noise', stdout: JSON.stringify({ code: 7, msg: 'ARGS: unknown args ["FOO=bar"]', details: 'line1\nline2' }) });
    await expect(runPlugin(host, call())).rejects.toThrow(
      'failed to set up network "default" (plugin ptp): ARGS: unknown args ["FOO=bar"]: line1 line2',
    );
  });

  test('a plugin that prints no error JSON: its stderr, then its exit status', async () => {
    const host = new FakeHost();
    host.files.set('/usr/lib/cni/ptp', '');
    host.execHandler = () => ({ code: 2, stdout: '', stderr: 'panic: boom\n  at x\n' });
    await expect(runPlugin(host, call({ command: 'DEL' }))).rejects.toThrow('failed to tear down network "default" (plugin ptp): panic: boom at x');
    host.execHandler = () => ({ code: 3, stdout: '', stderr: '' });
    await expect(runPlugin(host, call())).rejects.toThrow('(plugin ptp): exit status 3');
  });

  test('a result that is not JSON', async () => {
    const host = new FakeHost();
    host.files.set('/usr/lib/cni/ptp', '');
    host.execHandler = () => ({ code: 0, stdout: 'hello', stderr: '' });
    await expect(runPlugin(host, call())).rejects.toThrow('plugin ptp printed a result that is not JSON: hello');
  });
});

describe('parseResult', () => {
  test('0.4.0: address, mask, gateway and the host-side interfaces', () => {
    expect(parseResult('default', RESULT_040)).toEqual({
      ip: '172.16.28.7', mask: '255.255.255.0', gateway: '172.16.28.1', hostIfs: ['veth1234'], raw: RESULT_040,
    });
  });

  test('DNS is kept when not empty; the first IPv4 address wins over IPv6', () => {
    const raw = {
      cniVersion: '0.4.0',
      ips: [{ version: '6', address: 'fd00::5/64' }, { version: '4', address: '10.1.2.3/16' }],
      dns: { nameservers: ['10.1.0.53'], search: ['corp'], domain: 'corp', options: [] },
    };
    expect(parseResult('n', raw)).toEqual({
      ip: '10.1.2.3', mask: '255.255.0.0', hostIfs: [], dns: { nameservers: ['10.1.0.53'], search: ['corp'], domain: 'corp' }, raw,
    });
  });

  test('the old 0.1/0.2 format (ip4)', () => {
    const raw = { ip4: { ip: '172.16.28.9/32', gateway: '172.16.28.1' } };
    expect(parseResult('n', raw)).toMatchObject({ ip: '172.16.28.9', mask: '255.255.255.255', gateway: '172.16.28.1' });
  });

  test('no IPv4 address', () => {
    expect(() => parseResult('n', { ips: [{ address: 'fd00::5/64' }] })).toThrow('network "n": the plugin returned no IPv4 address');
    expect(() => parseResult('n', {})).toThrow('no IPv4 address');
  });
});
