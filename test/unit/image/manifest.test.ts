import { describe, expect, test } from '@jest/globals';
import {
  VALID_OS_ARCH, checkOsArch, hostOsArch, isFullImageId, parseImageManifest, parsePodManifest, validateImageId,
  validateImageManifest, validatePodManifest,
} from '../../../src/image/manifest.js';
import type { ImageManifest } from '../../../src/image/types.js';
import { RktError } from '../../../src/util/errors.js';

const ID128 = `sha512-${'ab'.repeat(64)}`;
const ID64 = `sha512-${'0f'.repeat(32)}`;

/** A manifest using every field, in the shape Go's appc writes. */
function fullImage(): Record<string, any> {
  return {
    acKind: 'ImageManifest',
    acVersion: '0.8.11',
    name: 'example.com/app',
    labels: [
      { name: 'version', value: '1.0.0' },
      { name: 'os', value: 'linux' },
      { name: 'arch', value: 'amd64' },
    ],
    app: {
      exec: ['/bin/app', '--serve'],
      user: '0',
      group: '0',
      supplementaryGIDs: [10, 20],
      eventHandlers: [
        { name: 'pre-start', exec: ['/bin/prep'] },
        { name: 'post-stop', exec: ['/bin/clean', 'up'] },
      ],
      workingDirectory: '/srv',
      environment: [{ name: 'PATH', value: '/bin' }, { name: 'my.var-1', value: 'x' }],
      isolators: [{ name: 'resource/memory', value: { limit: '1G' } }],
      mountPoints: [{ name: 'data', path: '/var/data', readOnly: true }],
      ports: [{ name: 'http', protocol: 'tcp', port: 8080, count: 1, socketActivated: false }],
      userAnnotations: { owner: 'me' },
      userLabels: { tier: 'web' },
    },
    annotations: [
      { name: 'created', value: '2016-05-12T10:20:30Z' },
      { name: 'homepage', value: 'https://example.com' },
      { name: 'authors', value: 'me' },
    ],
    dependencies: [{ imageName: 'example.com/base', imageID: ID128, labels: [{ name: 'version', value: '1' }], size: 100 }],
    pathWhitelist: ['/bin/app', '/srv'],
  };
}

/** Sets (or deletes, with undefined) the field at a dotted path like "app.ports.0.port". */
function withField(obj: Record<string, any>, path: string, value: unknown): Record<string, any> {
  const parts = path.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) o = o[p];
  const last = parts[parts.length - 1]!;
  if (value === undefined) delete o[last];
  else o[last] = value;
  return obj;
}

const badImage = (path: string, value: unknown) => () => validateImageManifest(withField(fullImage(), path, value));

describe('validateImageManifest', () => {
  test('accepts a full manifest and returns it unchanged', () => {
    expect(validateImageManifest(fullImage())).toEqual(fullImage());
  });

  test('accepts a minimal manifest', () => {
    const m = { acKind: 'ImageManifest', acVersion: '0.8.11', name: 'busybox' };
    expect(validateImageManifest(m)).toEqual(m);
  });

  test('drops nulls and unknown fields, fills port counts', () => {
    const m = fullImage();
    m.dependencies = null;
    m.extra = 'x';
    m.app.exec = null;
    m.app.ports = [{ name: 'dns', protocol: 'udp', port: 53 }, { name: 'x', protocol: 'tcp', port: 9, count: 0 }];
    m.app.environment[0].value = undefined;
    m.app.workingDirectory = '';
    const out = validateImageManifest(m);
    expect(out).not.toHaveProperty('dependencies');
    expect(out).not.toHaveProperty('extra');
    expect(out.app).not.toHaveProperty('exec');
    expect(out.app).not.toHaveProperty('workingDirectory');
    expect(out.app!.ports).toEqual([{ name: 'dns', protocol: 'udp', port: 53, count: 1 }, { name: 'x', protocol: 'tcp', port: 9, count: 1 }]);
    expect(out.app!.environment![0]).toEqual({ name: 'PATH', value: '' });
  });

  test('errors are RktErrors with one line', () => {
    let err: unknown;
    try {
      validateImageManifest(withField(fullImage(), 'app.user', undefined));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RktError);
    expect((err as RktError).message).toBe('bad image manifest: app.user: is required');
    expect((err as RktError).message).not.toContain('\n');
  });

  describe('top level', () => {
    test.each<[string, unknown, string]>([
      ['acKind', undefined, 'bad image manifest: acKind: is required'],
      ['acKind', 'PodManifest', 'bad image manifest: acKind: must be "ImageManifest", got "PodManifest"'],
      ['acKind', 3, 'bad image manifest: acKind: must be a string, got number 3'],
      ['acVersion', undefined, 'bad image manifest: acVersion: is required'],
      ['acVersion', '0.8', 'bad image manifest: acVersion: "0.8" is not a semantic version (e.g. 0.8.11)'],
      ['acVersion', 'v0.8.11', 'bad image manifest: acVersion: "v0.8.11" is not a semantic version'],
      ['acVersion', '0.0.0', 'bad image manifest: acVersion: "0.0.0" is not a semantic version'],
      ['acVersion', '01.2.3', 'is not a semantic version'],
      ['name', undefined, 'bad image manifest: name: is required'],
      ['name', 'Example.com/App', 'bad image manifest: name: "Example.com/App" is not a valid AC identifier (lower case alphanumerics and -._~/, starting and ending with an alphanumeric)'],
      ['labels', {}, 'bad image manifest: labels: must be a list, got an object'],
      ['app', [], 'bad image manifest: app: must be an object, got a list'],
      ['pathWhitelist', ['/ok', 'rel'], 'bad image manifest: pathWhitelist[1]: must be an absolute path, got "rel"'],
    ])('%s = %p', (path, value, message) => expect(badImage(path, value)).toThrow(message));

    test.each(['0.8.11', '1.0.0-rc.1', '1.0.0+build.5', '0.0.1', '0.0.0-alpha'])('acVersion %p is fine', (v) => {
      expect(badImage('acVersion', v)).not.toThrow();
    });

    test('the manifest itself must be an object', () => {
      expect(() => validateImageManifest([])).toThrow('bad image manifest: must be an object, got a list');
      expect(() => validateImageManifest(null)).toThrow('bad image manifest: must be an object, got null');
    });
  });

  describe('labels', () => {
    const withLabels = (labels: unknown) => () => validateImageManifest(withField(fullImage(), 'labels', labels));
    test('names must be AC identifiers', () => {
      expect(withLabels([{ name: 'a', value: '1' }, { name: 'b', value: '2' }, { name: 'Bad_Name', value: '3' }])).toThrow(
        'bad image manifest: labels[2].name: "Bad_Name" is not a valid AC identifier (lower case alphanumerics and -._~/, starting and ending with an alphanumeric)',
      );
      expect(withLabels([{ value: '1' }])).toThrow('bad image manifest: labels[0].name: is required');
    });
    test('names are unique', () => {
      expect(withLabels([{ name: 'version', value: '1' }, { name: 'version', value: '2' }])).toThrow(
        'bad image manifest: labels[1].name: duplicate label "version"',
      );
    });
    test('"name" is reserved', () => {
      expect(withLabels([{ name: 'name', value: 'x' }])).toThrow(
        'bad image manifest: labels[0].name: "name" cannot be a label: the image name is the top-level "name" field',
      );
    });
    test('values are strings', () => {
      expect(withLabels([{ name: 'version', value: 1 }])).toThrow('bad image manifest: labels[0].value: must be a string, got number 1');
    });
    test('os and arch follow appc\'s table', () => {
      expect(withLabels([{ name: 'os', value: 'plan9' }])).toThrow(
        'bad image manifest: labels[0].value: bad os "plan9": must be one of darwin, freebsd, linux',
      );
      expect(withLabels([{ name: 'arch', value: 'sparc' }, { name: 'os', value: 'linux' }])).toThrow(
        'bad image manifest: labels[0].value: bad arch "sparc" for os linux: must be one of amd64, i386, aarch64',
      );
      expect(withLabels([{ name: 'os', value: 'darwin' }, { name: 'arch', value: 'amd64' }])).toThrow(
        'labels[1].value: bad arch "amd64" for os darwin: must be one of x86_64, i386',
      );
      expect(withLabels([{ name: 'os', value: 'freebsd' }, { name: 'arch', value: 'arm' }])).not.toThrow();
      // An arch without an os is not checked (appc's rule).
      expect(withLabels([{ name: 'arch', value: 'sparc' }])).not.toThrow();
      // Prototype names are not oses.
      expect(withLabels([{ name: 'os', value: 'constructor' }, { name: 'arch', value: 'x' }])).toThrow('bad os "constructor"');
    });
  });

  describe('app', () => {
    test.each<[string, unknown, string]>([
      ['app.user', undefined, 'bad image manifest: app.user: is required'],
      ['app.user', '', 'bad image manifest: app.user: is required'],
      ['app.user', 0, 'bad image manifest: app.user: must be a string, got number 0'],
      ['app.group', undefined, 'bad image manifest: app.group: is required'],
      ['app.group', '', 'bad image manifest: app.group: is required'],
      ['app.exec', [], 'bad image manifest: app.exec: must not be empty: give the program and its arguments'],
      ['app.exec', '/bin/sh', 'bad image manifest: app.exec: must be a list, got string "/bin/sh"'],
      ['app.exec', ['/bin/sh', 1], 'bad image manifest: app.exec[1]: must be a string, got number 1'],
      ['app.supplementaryGIDs', [1, -1], 'bad image manifest: app.supplementaryGIDs[1]: must be an integer in 0..4294967295, got number -1'],
      ['app.supplementaryGIDs', ['1'], 'bad image manifest: app.supplementaryGIDs[0]: must be an integer'],
      ['app.workingDirectory', 'srv', 'bad image manifest: app.workingDirectory: must be an absolute path, got "srv"'],
      ['app.eventHandlers', [{ name: 'post-start', exec: ['/x'] }], 'bad image manifest: app.eventHandlers[0].name: must be "pre-start" or "post-stop", got "post-start"'],
      ['app.eventHandlers', [{ name: 'pre-start' }], 'bad image manifest: app.eventHandlers[0].exec: is required'],
      ['app.eventHandlers', [{ name: 'pre-start', exec: [] }], 'bad image manifest: app.eventHandlers[0].exec: must not be empty'],
      ['app.eventHandlers', [{ name: 'pre-start', exec: ['/a'] }, { name: 'pre-start', exec: ['/b'] }], 'bad image manifest: app.eventHandlers[1].name: duplicate event handler "pre-start"'],
      ['app.environment', [{ name: '1X', value: '' }], 'bad image manifest: app.environment[0].name: "1X" is not a valid environment variable name (letters, digits, _ . -, not starting with a digit)'],
      ['app.environment', [{ name: 'A B', value: '' }], 'app.environment[0].name: "A B" is not a valid environment variable name'],
      ['app.environment', [{ name: 'A', value: '1' }, { name: 'A', value: '2' }], 'bad image manifest: app.environment[1].name: duplicate environment variable "A"'],
      ['app.environment', [{ name: 'A', value: 1 }], 'bad image manifest: app.environment[0].value: must be a string, got number 1'],
      ['app.isolators', [{ name: 'os/linux/cpu-shares', value: 1 }], 'bad image manifest: app.isolators[0].value: must be an integer in 2..262144, got number 1'],
      ['app.isolators', [{ name: 'Bad', value: 1 }], 'bad image manifest: app.isolators[0].name: "Bad" is not a valid AC identifier'],
      ['app.mountPoints', [{ name: 'Data', path: '/d' }], 'bad image manifest: app.mountPoints[0].name: "Data" is not a valid AC name (lower case alphanumerics and -, starting and ending with an alphanumeric)'],
      ['app.mountPoints', [{ name: 'data', path: 'd' }], 'bad image manifest: app.mountPoints[0].path: must be an absolute path, got "d"'],
      ['app.mountPoints', [{ name: 'data' }], 'bad image manifest: app.mountPoints[0].path: is required'],
      ['app.mountPoints', [{ name: 'd', path: '/a' }, { name: 'd', path: '/b' }], 'bad image manifest: app.mountPoints[1].name: duplicate mount point "d"'],
      ['app.mountPoints', [{ name: 'd', path: '/a', readOnly: 'yes' }], 'bad image manifest: app.mountPoints[0].readOnly: must be true or false, got string "yes"'],
      ['app.ports', [{ name: 'web.1', protocol: 'tcp', port: 80 }], 'bad image manifest: app.ports[0].name: "web.1" is not a valid AC name'],
      ['app.ports', [{ name: 'web', protocol: 'sctp', port: 80 }], 'bad image manifest: app.ports[0].protocol: must be "tcp" or "udp", got "sctp"'],
      ['app.ports', [{ name: 'web', protocol: 'tcp', port: 0 }], 'bad image manifest: app.ports[0].port: must be an integer in 1..65535, got number 0'],
      ['app.ports', [{ name: 'web', protocol: 'tcp', port: 65536 }], 'bad image manifest: app.ports[0].port: must be an integer in 1..65535'],
      ['app.ports', [{ name: 'web', protocol: 'tcp' }], 'bad image manifest: app.ports[0].port: is required'],
      ['app.ports', [{ name: 'web', protocol: 'tcp', port: 80, count: -1 }], 'bad image manifest: app.ports[0].count: must be an integer in 0..65535, got number -1'],
      ['app.ports', [{ name: 'web', protocol: 'tcp', port: 65535, count: 2 }], 'bad image manifest: app.ports[0].count: the range 65535..65536 goes past port 65535'],
      ['app.ports', [{ name: 'a', protocol: 'tcp', port: 1 }, { name: 'a', protocol: 'udp', port: 1 }], 'bad image manifest: app.ports[1].name: duplicate port "a"'],
      ['app.userAnnotations', { a: 1 }, 'bad image manifest: app.userAnnotations.a: must be a string, got number 1'],
      ['app.userLabels', ['x'], 'bad image manifest: app.userLabels: must be an object, got a list'],
    ])('%s = %j', (path, value, message) => expect(badImage(path, value)).toThrow(message));

    test('a port range that ends at 65535 is fine', () => {
      expect(badImage('app.ports', [{ name: 'web', protocol: 'tcp', port: 65530, count: 6 }])).not.toThrow();
    });
  });

  describe('annotations', () => {
    test.each<[unknown, string]>([
      [[{ name: 'Bad', value: '' }], 'bad image manifest: annotations[0].name: "Bad" is not a valid AC identifier'],
      [[{ name: 'a', value: '' }, { name: 'a', value: '' }], 'bad image manifest: annotations[1].name: duplicate annotation "a"'],
      [[{ name: 'created', value: 'yesterday' }], 'bad image manifest: annotations[0].value: "yesterday" is not an RFC 3339 date (e.g. 2016-05-12T10:20:30Z)'],
      [[{ name: 'created', value: '2016-13-45T10:20:30Z' }], 'is not an RFC 3339 date'],
      [[{ name: 'homepage', value: 'example.com' }], 'bad image manifest: annotations[0].value: "example.com" is not an http or https URL'],
      [[{ name: 'documentation', value: 'ftp://example.com/doc' }], 'annotations[0].value: "ftp://example.com/doc" is not an http or https URL'],
    ])('%j', (value, message) => expect(badImage('annotations', value)).toThrow(message));

    test('well-known values in the right form pass', () => {
      expect(badImage('annotations', [
        { name: 'created', value: '2016-05-12T10:20:30.5+02:00' },
        { name: 'documentation', value: 'http://example.com/doc' },
        { name: 'appc.io/executor/supports-systemd-notify', value: 'true' },
      ])).not.toThrow();
    });
  });

  describe('dependencies', () => {
    test.each<[unknown, string]>([
      [[{}], 'bad image manifest: dependencies[0].imageName: is required'],
      [[{ imageName: 'Base' }], 'bad image manifest: dependencies[0].imageName: "Base" is not a valid AC identifier'],
      [[{ imageName: 'base', imageID: 'sha256-abc' }], 'bad image manifest: dependencies[0].imageID: "sha256-abc" is not an image ID ("sha512-" and 128 (or 64) lower-case hex digits)'],
      [[{ imageName: 'base', labels: [{ name: 'name', value: 'x' }] }], 'bad image manifest: dependencies[0].labels[0].name: "name" cannot be a label'],
      [[{ imageName: 'base', size: -1 }], 'bad image manifest: dependencies[0].size: must be an integer >= 0, got number -1'],
    ])('%j', (value, message) => expect(badImage('dependencies', value)).toThrow(message));

    test('accepts both image ID forms and no ID', () => {
      expect(badImage('dependencies', [{ imageName: 'a', imageID: ID64 }, { imageName: 'b' }])).not.toThrow();
    });
  });
});

describe('parseImageManifest', () => {
  test('parses and validates JSON text', () => {
    expect(parseImageManifest(JSON.stringify(fullImage()))).toEqual(fullImage());
  });
  test('reports bad JSON on one line', () => {
    expect(() => parseImageManifest('{"acKind":')).toThrow(/^bad image manifest: not valid JSON \(.+\)$/);
    expect(() => parseImageManifest('')).toThrow(RktError);
  });
  test('reports schema errors', () => {
    expect(() => parseImageManifest('{"acKind":"ImageManifest","acVersion":"0.8.11"}')).toThrow('bad image manifest: name: is required');
  });
});

describe('image IDs', () => {
  test('isFullImageId accepts the 128- and 64-digit forms only', () => {
    expect(isFullImageId(ID128)).toBe(true);
    expect(isFullImageId(ID64)).toBe(true);
    expect(isFullImageId(`sha512-${'a'.repeat(127)}`)).toBe(false);
    expect(isFullImageId(`sha512-${'a'.repeat(100)}`)).toBe(false);
    expect(isFullImageId(`sha512-${'A'.repeat(128)}`)).toBe(false);
    expect(isFullImageId(`sha256-${'a'.repeat(64)}`)).toBe(false);
    expect(isFullImageId('sha512-abc')).toBe(false);
    expect(isFullImageId(undefined)).toBe(false);
  });
  test('validateImageId returns the ID or says what is expected', () => {
    expect(validateImageId(ID128)).toBe(ID128);
    expect(() => validateImageId('sha512-12')).toThrow(
      'bad image ID "sha512-12": use "sha512-" and 128 (or 64) lower-case hex digits',
    );
  });
});

describe('checkOsArch', () => {
  const image = (labels: [string, string][]): ImageManifest => ({
    acKind: 'ImageManifest', acVersion: '0.8.11', name: 'example.com/app', labels: labels.map(([name, value]) => ({ name, value })),
  });

  test('passes for the host os/arch', () => {
    expect(() => checkOsArch(image([['os', 'linux'], ['arch', 'amd64']]))).not.toThrow();
    expect(() => checkOsArch(image([['os', 'linux'], ['arch', 'aarch64']]), { os: 'linux', arch: 'aarch64' })).not.toThrow();
  });
  test('a missing os label', () => {
    expect(() => checkOsArch(image([['arch', 'amd64']]))).toThrow(
      'missing os label in the image manifest of example.com/app: add {"name":"os","value":"linux"}',
    );
    expect(() => checkOsArch({ ...image([]), labels: undefined })).toThrow('missing os label in the image manifest');
  });
  test('a missing arch label', () => {
    expect(() => checkOsArch(image([['os', 'linux']]))).toThrow(
      'missing arch label in the image manifest of example.com/app: add {"name":"arch","value":"amd64"}',
    );
    expect(() => checkOsArch(image([['os', 'linux']]), { os: 'linux', arch: 'aarch64' })).toThrow('add {"name":"arch","value":"aarch64"}');
  });
  test('os/arch pairs outside appc\'s table', () => {
    expect(() => checkOsArch(image([['os', 'plan9'], ['arch', 'amd64']]))).toThrow(
      'bad os "plan9": must be one of darwin, freebsd, linux (in the image manifest of example.com/app)',
    );
    expect(() => checkOsArch(image([['os', 'linux'], ['arch', 'x86_64']]))).toThrow(
      'bad arch "x86_64" for os linux: must be one of amd64, i386, aarch64, aarch64_be, armv6l, armv7l, armv7b, ppc64, ppc64le, s390x (in the image manifest of example.com/app)',
    );
  });
  test('an image for another os or arch than the host', () => {
    expect(() => checkOsArch(image([['os', 'freebsd'], ['arch', 'amd64']]))).toThrow(
      'bad os "freebsd": example.com/app is built for freebsd/amd64 and this host is linux/amd64: fetch the linux/amd64 image',
    );
    expect(() => checkOsArch(image([['os', 'linux'], ['arch', 'aarch64']]))).toThrow(
      'bad arch "aarch64": example.com/app is built for linux/aarch64 and this host is linux/amd64',
    );
  });
  test('VALID_OS_ARCH is appc\'s table', () => {
    expect(Object.keys(VALID_OS_ARCH).sort()).toEqual(['darwin', 'freebsd', 'linux']);
    expect(VALID_OS_ARCH.linux).toHaveLength(10);
    expect(VALID_OS_ARCH.freebsd).toEqual(['amd64', 'i386', 'arm']);
    expect(VALID_OS_ARCH.darwin).toEqual(['x86_64', 'i386']);
  });
  test('hostOsArch names this machine in appc terms', () => {
    const host = hostOsArch();
    expect(host.os).toBe(process.platform);
    if (process.arch === 'x64') expect(host.arch).toBe('amd64');
    if (process.arch === 'arm64') expect(host.arch).toBe('aarch64');
    expect(VALID_OS_ARCH[host.os]).toContain(host.arch);
  });
});

function fullPod(): Record<string, any> {
  return {
    acKind: 'PodManifest',
    acVersion: '0.8.11',
    apps: [
      {
        name: 'web',
        image: { id: ID128, name: 'example.com/web', labels: [{ name: 'version', value: '1' }] },
        app: { exec: ['/web'], user: '0', group: '0' },
        readOnlyRootFS: true,
        mounts: [
          { volume: 'data', path: '/var/data' },
          { volume: 'scratch', path: '/tmp/x', appVolume: { name: 'scratch', kind: 'empty', mode: '0700', uid: 5, gid: 6 } },
        ],
        annotations: [{ name: 'coreos.com/rkt/stage1/app', value: 'x' }],
      },
      { name: 'db', image: { id: ID64 } },
    ],
    volumes: [
      { name: 'data', kind: 'host', source: '/srv/data', readOnly: false, recursive: true },
      { name: 'cache', kind: 'empty', mode: '0755', uid: 0, gid: 0 },
    ],
    isolators: [{ name: 'resource/memory', value: { limit: '1G' } }],
    annotations: [{ name: 'coreos.com/rkt/stage1/mutable', value: 'false' }],
    ports: [{ name: 'http', hostPort: 8080, hostIP: '127.0.0.1', podPort: { name: 'http', protocol: 'tcp', port: 80, count: 1 } }],
    userAnnotations: { a: 'b' },
    userLabels: { c: 'd' },
  };
}

const badPod = (path: string, value: unknown) => () => validatePodManifest(withField(fullPod(), path, value));

describe('validatePodManifest', () => {
  test('accepts a full pod manifest unchanged', () => {
    expect(validatePodManifest(fullPod())).toEqual(fullPod());
  });

  test('accepts a minimal pod manifest', () => {
    const pm = { acKind: 'PodManifest', acVersion: '0.8.11', apps: [{ name: 'a', image: { id: ID128 } }] };
    expect(validatePodManifest(pm)).toEqual(pm);
    expect(parsePodManifest(JSON.stringify({ ...pm, volumes: null, ports: null }))).toEqual(pm);
  });

  test('an image may be named by the short ID rkt fetch prints, or any longer prefix (rkt resolved it in the store)', () => {
    for (const id of [ID128.slice(0, 7 + 32), ID128.slice(0, 7 + 2), ID64]) {
      const pm = { acKind: 'PodManifest', acVersion: '0.8.11', apps: [{ name: 'a', image: { id } }] };
      expect(validatePodManifest(pm)).toEqual(pm);
    }
  });

  test('an empty pod is refused', () => {
    expect(badPod('apps', [])).toThrow('pod must contain at least one application');
    expect(badPod('apps', [])).toThrow('bad pod manifest: apps: pod must contain at least one application');
  });

  test.each<[string, unknown, string]>([
    ['acKind', 'ImageManifest', 'bad pod manifest: acKind: must be "PodManifest", got "ImageManifest"'],
    ['acVersion', 'latest', 'bad pod manifest: acVersion: "latest" is not a semantic version'],
    ['apps', undefined, 'bad pod manifest: apps: is required'],
    ['apps.0.name', 'Web', 'bad pod manifest: apps[0].name: "Web" is not a valid AC name'],
    ['apps.1.name', 'web', 'bad pod manifest: apps[1].name: duplicate app "web"'],
    ['apps.0.image', undefined, 'bad pod manifest: apps[0].image: is required'],
    ['apps.0.image.id', undefined, 'bad pod manifest: apps[0].image.id: is required'],
    ['apps.0.image.id', 'sha512-a', 'bad pod manifest: apps[0].image.id: "sha512-a" is not an image ID'],
    ['apps.0.image.id', 'sha512-ABCD', 'bad pod manifest: apps[0].image.id: "sha512-ABCD" is not an image ID'],
    ['apps.0.image.id', 'sha256-abcd', 'bad pod manifest: apps[0].image.id: "sha256-abcd" is not an image ID'],
    ['apps.0.image.name', 'Web', 'bad pod manifest: apps[0].image.name: "Web" is not a valid AC identifier'],
    ['apps.0.app.user', undefined, 'bad pod manifest: apps[0].app.user: is required'],
    ['apps.0.readOnlyRootFS', 1, 'bad pod manifest: apps[0].readOnlyRootFS: must be true or false, got number 1'],
    ['apps.0.mounts.0.volume', 'nope', 'bad pod manifest: apps[0].mounts[0].volume: no volume named "nope" in the pod\'s volumes'],
    ['apps.0.mounts.0.path', 'var', 'bad pod manifest: apps[0].mounts[0].path: must be an absolute path, got "var"'],
    ['apps.0.mounts.0.path', undefined, 'bad pod manifest: apps[0].mounts[0].path: is required'],
    ['apps.0.mounts.1.appVolume.kind', 'tmpfs', 'bad pod manifest: apps[0].mounts[1].appVolume.kind: must be "host" or "empty", got "tmpfs"'],
    ['apps.0.annotations', [{ name: 'x', value: '' }, { name: 'x', value: '' }], 'bad pod manifest: apps[0].annotations[1].name: duplicate annotation "x"'],
    ['volumes.0.kind', undefined, 'bad pod manifest: volumes[0].kind: is required'],
    ['volumes.0.source', undefined, 'bad pod manifest: volumes[0].source: is required'],
    ['volumes.0.source', 'srv', 'bad pod manifest: volumes[0].source: must be an absolute path, got "srv"'],
    ['volumes.0.mode', '0755', 'bad pod manifest: volumes[0].mode: is not used by "host" volumes: remove it'],
    ['volumes.1.source', '/x', 'bad pod manifest: volumes[1].source: is not used by "empty" volumes: remove it'],
    ['volumes.1.mode', 'rwx', 'bad pod manifest: volumes[1].mode: "rwx" is not an octal mode (e.g. "0755")'],
    ['volumes.1.uid', -1, 'bad pod manifest: volumes[1].uid: must be an integer in 0..4294967295, got number -1'],
    ['volumes.1.name', 'data', 'bad pod manifest: volumes[1].name: duplicate volume "data"'],
    ['volumes.1.recursive', 'no', 'bad pod manifest: volumes[1].recursive: must be true or false'],
    ['isolators', [{ name: 'os/linux/oom-score-adj', value: 5000 }], 'bad pod manifest: isolators[0].value: must be an integer in -1000..1000'],
    ['annotations', [{ name: 'A', value: '' }], 'bad pod manifest: annotations[0].name: "A" is not a valid AC identifier'],
    ['ports.0.name', 'HTTP', 'bad pod manifest: ports[0].name: "HTTP" is not a valid AC name'],
    ['ports.0.hostPort', 0, 'bad pod manifest: ports[0].hostPort: must be an integer in 1..65535, got number 0'],
    ['ports.0.hostPort', undefined, 'bad pod manifest: ports[0].hostPort: is required'],
    ['ports.0.hostIP', 'localhost', 'bad pod manifest: ports[0].hostIP: "localhost" is not an IP address (e.g. 127.0.0.1)'],
    ['ports.0.podPort.protocol', 'icmp', 'bad pod manifest: ports[0].podPort.protocol: must be "tcp" or "udp", got "icmp"'],
    ['ports', [{ name: 'a', hostPort: 1 }, { name: 'a', hostPort: 2 }], 'bad pod manifest: ports[1].name: duplicate port "a"'],
    ['userLabels', { a: null }, 'bad pod manifest: userLabels.a: must be a string, got null'],
  ])('%s = %j', (path, value, message) => expect(badPod(path, value)).toThrow(message));

  test('a mount with its own appVolume needs no pod volume', () => {
    const pm = fullPod();
    pm.volumes = [{ name: 'data', kind: 'host', source: '/srv/data' }];
    expect(() => validatePodManifest(pm)).not.toThrow();
  });

  test('an IPv6 host IP is accepted', () => {
    expect(badPod('ports.0.hostIP', '::1')).not.toThrow();
  });

  test('parsePodManifest reports bad JSON', () => {
    expect(() => parsePodManifest('nope')).toThrow(/^bad pod manifest: not valid JSON/);
  });
});
