import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { appMounts, checkHostSources, parseMount, parseVolume } from '../../../src/stage0/volumes.js';
import type { MountPoint, PodVolume } from '../../../src/image/types.js';
import { RktError } from '../../../src/util/errors.js';

describe('parseVolume', () => {
  test('kind=host: source, readOnly and recursive (default true)', () => {
    expect(parseVolume('data,kind=host,source=/srv/x')).toEqual({ name: 'data', kind: 'host', source: '/srv/x', readOnly: undefined, recursive: true });
    expect(parseVolume('data,kind=host,source=/srv/x,readOnly=true,recursive=false'))
      .toEqual({ name: 'data', kind: 'host', source: '/srv/x', readOnly: true, recursive: false });
    expect(parseVolume('data,kind=host,source=/srv/x,readOnly=false').readOnly).toBe(false);
  });

  test('the name may also be given as name=', () => {
    expect(parseVolume('name=my-vol,kind=empty').name).toBe('my-vol');
  });

  test('kind=empty: mode, uid, gid and their defaults', () => {
    expect(parseVolume('scratch,kind=empty')).toEqual({ name: 'scratch', kind: 'empty', mode: '0755', uid: 0, gid: 0, readOnly: undefined });
    expect(parseVolume('scratch,kind=empty,mode=0700,uid=1000,gid=100,readOnly=true'))
      .toEqual({ name: 'scratch', kind: 'empty', mode: '0700', uid: 1000, gid: 100, readOnly: true });
    expect(parseVolume('scratch,kind=empty,mode=1777').mode).toBe('1777');
  });

  test.each([
    ['Data,kind=host,source=/x', 'volume name "Data" must be lower case alphanumerics and dashes'],
    ['kind=host,source=/x', 'volume name "" must be lower case'],
    ['data,kind=host', 'kind=host needs source=ABSOLUTE_PATH'],
    ['data,kind=host,source=relative/x', 'kind=host needs source=ABSOLUTE_PATH'],
    ['data,kind=nfs,source=/x', 'kind must be host or empty'],
    ['data,source=/x', 'kind must be host or empty'],
    ['data,kind=host,source=/x,readOnly=yes', 'invalid readOnly "yes": use true or false'],
    ['data,kind=host,source=/x,recursive=1', 'invalid recursive "1": use true or false'],
    ['data,kind=empty,mode=rwx', 'mode must be octal like 0755'],
    ['data,kind=empty,mode=0789', 'mode must be octal like 0755'],
    ['data,kind=empty,uid=-1', 'uid must be a number'],
    ['data,kind=empty,gid=root', 'gid must be a number'],
    ['data,kind=host,source=/x,junk', '"junk" is not KEY=VALUE'],
  ])('rejects %j', (spec, msg) => {
    expect(() => parseVolume(spec)).toThrow(RktError);
    expect(() => parseVolume(spec)).toThrow(msg);
    expect(() => parseVolume(spec)).toThrow(`invalid`);
  });
});

describe('parseMount', () => {
  test('volume= and target= in any order', () => {
    expect(parseMount('volume=data,target=/data')).toEqual({ volume: 'data', target: '/data' });
    expect(parseMount('target=/a/b,volume=v')).toEqual({ volume: 'v', target: '/a/b' });
  });

  test('a relative target is taken from the app\'s root, as rkt does (resolved inside the rootfs later)', () => {
    expect(parseMount('volume=dir1,target=dir1')).toEqual({ volume: 'dir1', target: '/dir1' });
    expect(parseMount('volume=v,target=../../../foo')).toEqual({ volume: 'v', target: '/../../../foo' });
  });

  test.each([
    ['volume=data', 'expected volume=NAME,target=PATH'],
    ['target=/data', 'expected volume=NAME,target=PATH'],
    ['volume=data,target=/x,oops', '"oops" is not KEY=VALUE'],
  ])('rejects %j', (spec, msg) => {
    expect(() => parseMount(spec)).toThrow(`invalid --mount "${spec}": ${msg}`);
  });
});

describe('appMounts', () => {
  let stderr: string[];
  beforeEach(() => {
    stderr = [];
    jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { stderr.push(String(s)); return true; });
  });
  afterEach(() => { jest.restoreAllMocks(); });

  const host = (name: string, readOnly?: boolean): PodVolume => ({ name, kind: 'host', source: `/srv/${name}`, readOnly, recursive: true });

  test('explicit --mount flags resolve to their volumes', () => {
    const vols = [host('data'), host('logs', true)];
    const out = appMounts('web', undefined, [{ volume: 'data', target: '/data' }, { volume: 'logs', target: '/var/log' }], vols);
    expect(out).toEqual([
      { volume: vols[0], target: '/data', readOnly: false },
      { volume: vols[1], target: '/var/log', readOnly: true },
    ]);
    expect(stderr).toEqual([]);
  });

  test('a --mount naming no volume is an error with the fix', () => {
    expect(() => appMounts('web', undefined, [{ volume: 'nope', target: '/x' }], [host('data')]))
      .toThrow('--mount refers to volume "nope", which no --volume defines: add --volume=nope,kind=host,source=PATH');
  });

  test('image mountPoints are matched to volumes by name', () => {
    const vols = [host('data')];
    const mps: MountPoint[] = [{ name: 'data', path: '/var/data' }];
    expect(appMounts('web', mps, [], vols)).toEqual([{ volume: vols[0], target: '/var/data', readOnly: false }]);
    expect(vols).toHaveLength(1);
    expect(stderr).toEqual([]);
  });

  test('an unmatched mountPoint gets an implicit empty volume <app>-<mp>, added to the pod, with a warning', () => {
    const vols: PodVolume[] = [];
    const out = appMounts('web', [{ name: 'cache', path: '/cache', readOnly: true }], [], vols);
    const implicit = { name: 'web-cache', kind: 'empty', mode: '0755', uid: 0, gid: 0 };
    expect(vols).toEqual([implicit]);
    expect(out).toEqual([{ volume: implicit, target: '/cache', readOnly: true }]);
    expect(out[0].volume).toBe(vols[0]);
    expect(stderr.join('')).toContain('warning: no volume specified for mount point "cache" of app "web": using an empty volume');
  });

  test('a Docker image\'s implicit volume is marked to start with the image\'s files (as rkt did for those images only)', () => {
    const vols: PodVolume[] = [host('given')];
    const mps: MountPoint[] = [{ name: 'cache', path: '/cache' }, { name: 'given', path: '/given' }];
    const docker = appMounts('web', mps, [], vols, true);
    expect(docker.map((m) => [m.target, m.seed])).toEqual([['/cache', true], ['/given', undefined]]);
    expect(stderr.join('')).toContain('using an empty volume that starts with the image\'s files there (a Docker image)');
    expect(appMounts('web', [{ name: 'cache', path: '/cache' }], [], [], false)[0].seed).toBeUndefined();
  });

  test("the volume's readOnly overrides the mountPoint's; unset falls back to the mountPoint's", () => {
    const vols = [host('a', false), host('b', true), host('c')];
    const mps: MountPoint[] = [{ name: 'a', path: '/a', readOnly: true }, { name: 'b', path: '/b', readOnly: false }, { name: 'c', path: '/c', readOnly: true }, { name: 'd', path: '/d' }];
    const out = appMounts('web', mps, [], vols);
    expect(out.map((m) => [m.target, m.readOnly])).toEqual([['/a', false], ['/b', true], ['/c', true], ['/d', false]]);
  });

  test('a --mount on a mountPoint path takes its place', () => {
    const vols = [host('data'), host('other')];
    const out = appMounts('web', [{ name: 'data', path: '/var/data/' }], [{ volume: 'other', target: '/var/data' }], vols);
    expect(out).toEqual([{ volume: vols[1], target: '/var/data', readOnly: false }]);
    expect(stderr).toEqual([]);
  });

  test('two mounts on one target are an error, trailing slashes included', () => {
    const vols = [host('a'), host('b')];
    expect(() => appMounts('web', undefined, [{ volume: 'a', target: '/t' }, { volume: 'b', target: '/t' }], vols))
      .toThrow('app "web": two mounts target /t: give each target once');
    expect(() => appMounts('web', undefined, [{ volume: 'a', target: '/t/' }, { volume: 'b', target: '/t' }], vols))
      .toThrow('app "web": two mounts target /t: give each target once');
    expect(() => appMounts('web', undefined, [{ volume: 'a', target: '/t//' }, { volume: 'b', target: '/t/' }], vols)).toThrow(RktError);
  });

  test('targets are normalised: `..` and doubled or trailing slashes do not make a second target', () => {
    const vols = [host('a'), host('b')];
    expect(() => appMounts('web', undefined, [{ volume: 'a', target: '/../../t' }, { volume: 'b', target: '/x/../t/' }], vols))
      .toThrow('app "web": two mounts target /t: give each target once');
  });

  test('targets are normalised without the trailing slash; / stays /', () => {
    const vols = [host('a'), host('b')];
    const out = appMounts('web', undefined, [{ volume: 'a', target: '/data/' }, { volume: 'b', target: '/' }], vols);
    expect(out.map((m) => m.target)).toEqual(['/data', '/']);
  });

  test('unused volumes are ignored', () => {
    const vols = [host('a'), host('unused')];
    expect(appMounts('web', [{ name: 'a', path: '/a' }], [], vols).map((m) => m.volume.name)).toEqual(['a']);
  });
});

describe('checkHostSources', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-vol-')); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  test('existing sources (dirs and files) and empty volumes pass', () => {
    fs.writeFileSync(path.join(dir, 'f'), '');
    expect(() => checkHostSources([
      { name: 'd', kind: 'host', source: dir },
      { name: 'f', kind: 'host', source: path.join(dir, 'f') },
      { name: 'e', kind: 'empty' },
    ])).not.toThrow();
  });

  test('a missing source fails with rkt\'s message', () => {
    const missing = path.join(dir, 'nope');
    expect(() => checkHostSources([{ name: 'd', kind: 'host', source: dir }, { name: 'gone', kind: 'host', source: missing }]))
      .toThrow(new RktError(`volume "gone": Failed to stat ${missing}: No such file or directory`));
  });
});
