import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { classifyImageArg, formatAppcName, parseAppcName } from '../../../src/image/imageref.js';
import { RktError } from '../../../src/util/errors.js';

describe('parseAppcName', () => {
  test.each<[string, string, Record<string, string>]>([
    ['coreos.com/etcd', 'coreos.com/etcd', {}],
    ['coreos.com/etcd:v2.0.0', 'coreos.com/etcd', { version: 'v2.0.0' }],
    ['coreos.com/etcd:v2.0.0,os=linux,arch=amd64', 'coreos.com/etcd', { version: 'v2.0.0', os: 'linux', arch: 'amd64' }],
    ['example.com/app,version=1.0', 'example.com/app', { version: '1.0' }],
    ['example.com/app,channel=', 'example.com/app', { channel: '' }],
    ['example.com/app,url=a=b', 'example.com/app', { url: 'a=b' }],
    ['busybox', 'busybox', {}],
  ])('%p', (s, name, labels) => expect(parseAppcName(s)).toEqual({ name, labels }));

  test.each<[string, string]>([
    ['a:b:c', 'bad image name "a:b:c": ":" may appear only once, right after the name (name:version,label=value)'],
    ['a,os=linux:1', 'bad image name "a,os=linux:1": ":" may appear only once, right after the name'],
    ['Coreos.com/etcd', 'bad image name "Coreos.com/etcd": "Coreos.com/etcd" is not a valid AC identifier (lower case alphanumerics and -._~/, starting and ending with an alphanumeric)'],
    [':1.0', 'bad image name ":1.0": the name is missing (e.g. example.com/app:1.0)'],
    ['', 'bad image name "": the name is missing'],
    ['etcd:', 'bad image name "etcd:": the version after ":" is empty'],
    ['etcd:,os=linux', 'the version after ":" is empty'],
    ['etcd,os', 'bad image name "etcd,os": label "os" has no value: write ,name=value'],
    ['etcd,', 'bad image name "etcd,": label "" has no value'],
    ['etcd,OS=linux', 'bad image name "etcd,OS=linux": label "OS" is not a valid AC identifier'],
    ['etcd,=x', 'label "" is not a valid AC identifier'],
    ['etcd:1,version=2', 'bad image name "etcd:1,version=2": label "version" is given twice'],
    ['etcd,os=a,os=b', 'label "os" is given twice'],
    ['etcd,name=other', 'label "name" is given twice'],
  ])('rejects %p', (s, message) => {
    expect(() => parseAppcName(s)).toThrow(RktError);
    expect(() => parseAppcName(s)).toThrow(message);
  });

  test('labels named like Object.prototype members are ordinary labels', () => {
    expect(parseAppcName('etcd,constructor=x').labels).toEqual({ constructor: 'x' });
  });
});

describe('formatAppcName', () => {
  test('puts the version after a colon and the rest as labels', () => {
    expect(formatAppcName('coreos.com/etcd', { version: 'v2.0.0', os: 'linux' })).toBe('coreos.com/etcd:v2.0.0,os=linux');
    expect(formatAppcName('coreos.com/etcd', { arch: 'amd64' })).toBe('coreos.com/etcd,arch=amd64');
    expect(formatAppcName('coreos.com/etcd', {})).toBe('coreos.com/etcd');
    expect(formatAppcName('coreos.com/etcd')).toBe('coreos.com/etcd');
  });
  test('round-trips with parseAppcName', () => {
    for (const s of ['a.com/b:1.2,os=linux,arch=amd64', 'x', 'x,y=z']) {
      const { name, labels } = parseAppcName(s);
      expect(formatAppcName(name, labels)).toBe(s);
    }
  });
});

describe('classifyImageArg', () => {
  const files = new Set(['etcd', 'dir/image', 'plain']);
  const exists = (p: string) => files.has(p);
  const classify = (arg: string) => classifyImageArg(arg, exists);

  test('image IDs and prefixes', () => {
    const full = `sha512-${'ab'.repeat(64)}`;
    expect(classify(full)).toEqual({ kind: 'hash', id: full });
    expect(classify('sha512-0c45e8c0ab2')).toEqual({ kind: 'hash', id: 'sha512-0c45e8c0ab2' });
    expect(classify('sha512-ABCD')).toEqual({ kind: 'hash', id: 'sha512-abcd' });
  });
  test.each(['sha512-a', 'sha512-', 'sha512-xyz', `sha512-${'a'.repeat(129)}`])('bad image ID %p', (arg) => {
    expect(() => classify(arg)).toThrow(
      `bad image ID ${JSON.stringify(arg)}: use "sha512-" and at least 2 hex digits of the ID (see rkt image list)`,
    );
  });

  test('http and https URLs', () => {
    expect(classify('https://example.com/app-1.0.aci')).toEqual({ kind: 'url', url: 'https://example.com/app-1.0.aci' });
    expect(classify('http://127.0.0.1:8080/x.aci')).toEqual({ kind: 'url', url: 'http://127.0.0.1:8080/x.aci' });
    expect(classify('HTTPS://example.com/a.aci')).toEqual({ kind: 'url', url: 'HTTPS://example.com/a.aci' });
  });

  test('file URLs become paths', () => {
    expect(classify('file:///tmp/my%20app.aci')).toEqual({ kind: 'path', path: '/tmp/my app.aci' });
    expect(() => classify('file://otherhost/tmp/a.aci')).toThrow(
      'bad file URL "file://otherhost/tmp/a.aci": use file:///absolute/path/to/image.aci',
    );
  });

  test('docker references are parsed (test/unit/image/docker/reference.test.ts)', () => {
    expect(classify('docker://busybox')).toMatchObject({ kind: 'docker', ref: { repository: 'library/busybox' } });
    expect(() => classify('docker://Bad')).toThrow(RktError);
  });

  test('absolute paths', () => {
    expect(classify('/images/app.aci')).toEqual({ kind: 'path', path: '/images/app.aci' });
    expect(classify('/images/etcd:v2')).toEqual({ kind: 'path', path: '/images/etcd:v2' });
  });

  test('existing files win over names', () => {
    expect(classify('etcd')).toEqual({ kind: 'path', path: path.resolve('etcd') });
    expect(classify('dir/image')).toEqual({ kind: 'path', path: path.resolve('dir/image') });
    expect(classify('dir/other')).toEqual({ kind: 'name', name: 'dir/other', labels: {} });
  });

  test('a colon makes a name', () => {
    expect(classify('coreos.com/etcd:v2.0.0')).toEqual({ kind: 'name', name: 'coreos.com/etcd', labels: { version: 'v2.0.0' } });
    expect(classify('etcd:v2.0.0')).toEqual({ kind: 'name', name: 'etcd', labels: { version: 'v2.0.0' } });
    expect(classify('coreos.com/etcd:v2.0.0,os=linux')).toEqual({
      kind: 'name', name: 'coreos.com/etcd', labels: { version: 'v2.0.0', os: 'linux' },
    });
  });

  test('./ or a .aci suffix makes a path', () => {
    expect(classify('./app.aci')).toEqual({ kind: 'path', path: path.resolve('app.aci') });
    expect(classify('../images/app')).toEqual({ kind: 'path', path: path.resolve('../images/app') });
    expect(classify('images/stage1-coreos.aci')).toEqual({ kind: 'path', path: path.resolve('images/stage1-coreos.aci') });
  });

  test('anything else is an appc name', () => {
    expect(classify('coreos.com/etcd')).toEqual({ kind: 'name', name: 'coreos.com/etcd', labels: {} });
    expect(classify('coreos.com/rkt/stage1-coreos')).toEqual({ kind: 'name', name: 'coreos.com/rkt/stage1-coreos', labels: {} });
    expect(classify('example.com/app,version=1')).toEqual({ kind: 'name', name: 'example.com/app', labels: { version: '1' } });
  });

  test('bad names fail with the name rules', () => {
    expect(() => classify('Example.com/App')).toThrow('bad image name "Example.com/App": "Example.com/App" is not a valid AC identifier');
    expect(() => classify('a.com/b:1:2')).toThrow('":" may appear only once');
  });
});
