import { describe, expect, test } from '@jest/globals';
import { assertPortsAllowed, parseNetFlag, parsePortFlag } from '../../../src/net/netflag.js';
import { RktError } from '../../../src/util/errors.js';

describe('parseNetFlag', () => {
  test('no --net, a bare --net and --net=default all mean the default network', () => {
    const def = { kind: 'cni', nets: [{ name: 'default' }] };
    expect(parseNetFlag([])).toEqual(def);
    expect(parseNetFlag([''])).toEqual(def);
    expect(parseNetFlag(['default'])).toEqual(def);
  });

  test('host, none and all', () => {
    expect(parseNetFlag(['host'])).toEqual({ kind: 'host' });
    expect(parseNetFlag(['none'])).toEqual({ kind: 'none' });
    expect(parseNetFlag(['all'])).toEqual({ kind: 'cni', nets: 'all' });
  });

  test('comma lists and repeated flags keep their order', () => {
    expect(parseNetFlag(['mynet,default', 'other'])).toEqual({
      kind: 'cni', nets: [{ name: 'mynet' }, { name: 'default' }, { name: 'other' }],
    });
  });

  test('per-network arguments', () => {
    expect(parseNetFlag(['default:IP=172.16.28.50', 'n2:A=1;B=x=y'])).toEqual({
      kind: 'cni',
      nets: [{ name: 'default', args: { IP: '172.16.28.50' } }, { name: 'n2', args: { A: '1', B: 'x=y' } }],
    });
  });

  test.each([
    [['default,default'], 'network "default" is given twice'],
    [['default', 'default:IP=1.2.3.4'], 'network "default" is given twice'],
    [[',default'], 'empty network name'],
    [[':IP=1.2.3.4'], 'empty network name'],
    [['default:IP=1:2'], 'more than one ":"'],
    [['default:IP'], 'bad argument "IP" for network "default"'],
    [['default:=x'], 'bad argument "=x"'],
    [['host:a=b'], '"host" takes no arguments'],
    [['all:a=b'], '"all" takes no arguments'],
    [['host,default'], '--net=host cannot be combined'],
    [['default', 'none'], '--net=none cannot be combined'],
    [['all,mynet'], '--net=all cannot be combined'],
  ])('%j is refused: %s', (values, msg) => {
    expect(() => parseNetFlag(values)).toThrow(RktError);
    expect(() => parseNetFlag(values)).toThrow(msg);
  });
});

describe('parsePortFlag', () => {
  test('NAME:HOSTPORT and NAME:HOSTIP:HOSTPORT', () => {
    expect(parsePortFlag('http:8080')).toEqual({ name: 'http', hostPort: 8080 });
    expect(parsePortFlag('80-tcp:127.0.0.1:80')).toEqual({ name: '80-tcp', hostIP: '127.0.0.1', hostPort: 80 });
  });

  test.each([
    ['http', 'use NAME:[HOSTIP:]HOSTPORT'],
    [':8080', 'use NAME:[HOSTIP:]HOSTPORT'],
    ['a:b:c:d', 'use NAME:[HOSTIP:]HOSTPORT'],
    ['http:0', 'from 1 to 65535'],
    ['http:65536', 'from 1 to 65535'],
    ['http:80a', 'from 1 to 65535'],
    ['http:', 'from 1 to 65535'],
    ['http:1.2.3:80', 'host IP "1.2.3" is not an IPv4 address'],
  ])('%s is refused', (v, msg) => {
    expect(() => parsePortFlag(v)).toThrow(msg);
  });
});

describe('assertPortsAllowed', () => {
  const port = { name: 'http', hostPort: 8080 };
  test('ports need a CNI network', () => {
    expect(() => assertPortsAllowed({ kind: 'host' }, [port])).toThrow('--port cannot be used with --net=host');
    expect(() => assertPortsAllowed({ kind: 'none' }, [port])).toThrow('--port cannot be used with --net=none');
    expect(() => assertPortsAllowed({ kind: 'cni', nets: 'all' }, [port])).not.toThrow();
  });
  test('no ports is always fine', () => {
    expect(() => assertPortsAllowed({ kind: 'host' }, [])).not.toThrow();
  });
});
