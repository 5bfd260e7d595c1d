import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { BUILTIN_NETS, loadNets } from '../../../src/net/conf.js';
import { FakeHost } from '../../helpers/fake-host.js';

const LOCAL = '/etc/rkt';
const USER = '/home/u/.config/rkt';

function conf(name: string, type = 'bridge', extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ name, type, ...extra });
}

let host: FakeHost;
let stderr: string[];

beforeEach(() => {
  host = new FakeHost();
  stderr = [];
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => { stderr.push(String(chunk)); return true; });
});
afterEach(() => { jest.restoreAllMocks(); });

describe('loadNets', () => {
  test('the built-in default network, CNI 0.4.0, ptp with masquerade on 172.16.28.0/24', () => {
    const nets = loadNets(host, [{ name: 'default' }], LOCAL);
    expect(nets).toEqual([{ name: 'default', conf: BUILTIN_NETS.default, source: 'built-in' }]);
    expect(nets[0].conf).toEqual({
      cniVersion: '0.4.0', name: 'default', type: 'ptp', ipMasq: true,
      ipam: { type: 'host-local', subnet: '172.16.28.0/24', routes: [{ dst: '0.0.0.0/0' }] },
    });
  });

  test('the built-in default-restricted network: no masquerade, no routes', () => {
    const [net] = loadNets(host, [{ name: 'default-restricted' }], LOCAL);
    expect(net.conf).toEqual({
      cniVersion: '0.4.0', name: 'default-restricted', type: 'ptp', ipMasq: false,
      ipam: { type: 'host-local', subnet: '172.31.0.0/16' },
    });
  });

  test('user confs in filename order, then the built-ins; only the requested ones', () => {
    host.files.set(`${LOCAL}/net.d/20-b.conf`, conf('b'));
    host.files.set(`${LOCAL}/net.d/10-a.conf`, conf('a'));
    host.files.set(`${LOCAL}/net.d/30-c.conf`, conf('c'));
    host.files.set(`${LOCAL}/net.d/README`, 'not a conf');
    const nets = loadNets(host, [{ name: 'default' }, { name: 'c' }, { name: 'a' }], LOCAL);
    expect(nets.map((n) => [n.name, n.source])).toEqual([
      ['a', `${LOCAL}/net.d/10-a.conf`], ['c', `${LOCAL}/net.d/30-c.conf`], ['default', 'built-in'],
    ]);
  });

  test('the local config dir comes before the user config dir', () => {
    host.files.set(`${USER}/net.d/00-u.conf`, conf('u'));
    host.files.set(`${LOCAL}/net.d/99-l.conf`, conf('l'));
    expect(loadNets(host, [{ name: 'u' }, { name: 'l' }], LOCAL, USER).map((n) => n.name)).toEqual(['l', 'u']);
  });

  test('a user conf named default overrides the built-in one', () => {
    host.files.set(`${LOCAL}/net.d/50-mydefault.conf`, conf('default', 'bridge', { ipMasq: true }));
    const nets = loadNets(host, [{ name: 'default' }], LOCAL);
    expect(nets).toHaveLength(1);
    expect(nets[0].conf.type).toBe('bridge');
    expect(stderr.join('')).toContain(`overriding the built-in "default" network with ${LOCAL}/net.d/50-mydefault.conf`);
  });

  test('a duplicate name is ignored with a warning; the first file wins', () => {
    host.files.set(`${LOCAL}/net.d/10-x.conf`, conf('x', 'bridge'));
    host.files.set(`${LOCAL}/net.d/20-x.conf`, conf('x', 'macvlan'));
    host.files.set(`${USER}/net.d/10-x.conf`, conf('x', 'ipvlan'));
    const nets = loadNets(host, [{ name: 'x' }], LOCAL, USER);
    expect(nets.map((n) => n.conf.type)).toEqual(['bridge']);
    expect(stderr.join('')).toContain(`warning: network "x" is already defined, ignoring ${LOCAL}/net.d/20-x.conf`);
    expect(stderr.join('')).toContain(`ignoring ${USER}/net.d/10-x.conf`);
  });

  test('all: every user network, then the built-in default', () => {
    host.files.set(`${LOCAL}/net.d/10-a.conf`, conf('a'));
    host.files.set(`${USER}/net.d/10-b.conf`, conf('b'));
    expect(loadNets(host, 'all', LOCAL, USER).map((n) => n.name)).toEqual(['a', 'b', 'default']);
  });

  test('cniVersion defaults to 0.4.0 and is kept when given', () => {
    host.files.set(`${LOCAL}/net.d/a.conf`, conf('a'));
    host.files.set(`${LOCAL}/net.d/b.conf`, conf('b', 'bridge', { cniVersion: '0.3.1' }));
    const nets = loadNets(host, 'all', LOCAL);
    expect(nets.map((n) => n.conf.cniVersion)).toEqual(['0.4.0', '0.3.1', '0.4.0']);
  });

  test('per-network args are attached', () => {
    const [net] = loadNets(host, [{ name: 'default', args: { IP: '172.16.28.50' } }], LOCAL);
    expect(net.args).toEqual({ IP: '172.16.28.50' });
  });

  test('unknown networks: one line naming them and every net.d dir searched', () => {
    host.files.set(`${LOCAL}/net.d/10-a.conf`, conf('a'));
    expect(() => loadNets(host, [{ name: 'a' }, { name: 'nope' }, { name: 'gone' }], LOCAL, USER)).toThrow(
      `failed to setup network: networks "nope", "gone" not found in ${LOCAL}/net.d or ${USER}/net.d: `
      + 'define them in a .conf file there or use default, default-restricted, host or none',
    );
    expect(() => loadNets(host, [{ name: 'nope' }], LOCAL)).toThrow(
      `failed to setup network: network "nope" not found in ${LOCAL}/net.d: define it in a .conf file there`,
    );
  });

  test('Go-style keys are matched case-insensitively (as encoding/json did for rkt) and handed on in CNI spelling', () => {
    host.files.set(`${LOCAL}/net.d/10-go.conf`, JSON.stringify({
      Name: 'gonet', TYPE: 'ptp', IPMasq: true, CNIVersion: '0.3.1',
      Ipam: { Type: 'host-local', Subnet: '10.1.0.0/24', Routes: [{ Dst: '0.0.0.0/0' }] }, myPluginKey: 1,
    }));
    const [net] = loadNets(host, [{ name: 'gonet' }], LOCAL);
    expect(net.name).toBe('gonet');
    expect(net.conf).toEqual({
      cniVersion: '0.3.1', name: 'gonet', type: 'ptp', ipMasq: true,
      ipam: { type: 'host-local', subnet: '10.1.0.0/24', routes: [{ dst: '0.0.0.0/0' }] }, myPluginKey: 1,
    });
    // The form given to the plugin has one spelling per key.
    expect(Object.keys(JSON.parse(JSON.stringify(net.conf)))).toEqual(['cniVersion', 'name', 'type', 'ipMasq', 'ipam', 'myPluginKey']);
  });

  test('two spellings of one key: the later wins, as with Go\'s decoder', () => {
    host.files.set(`${LOCAL}/net.d/10-x.conf`, '{"name":"first","type":"ptp","Name":"second"}');
    expect(loadNets(host, [{ name: 'second' }], LOCAL)[0].conf.name).toBe('second');
  });

  test.each([
    ['{not json', 'bad network configuration /etc/rkt/net.d/x.conf: '],
    ['[1]', 'expected a JSON object'],
    [JSON.stringify({ name: 'a/b', type: 'ptp' }), '"name" must be'],
    [JSON.stringify({ type: 'ptp' }), '"name" must be'],
    [JSON.stringify({ name: 'a' }), '"type" must name a CNI plugin'],
    [JSON.stringify({ name: 'a', type: '../../bin/sh' }), '"type" must name a CNI plugin'],
  ])('bad conf %s', (text, msg) => {
    host.files.set(`${LOCAL}/net.d/x.conf`, text);
    expect(() => loadNets(host, 'all', LOCAL)).toThrow(msg);
  });
});
