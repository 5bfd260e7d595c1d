import { afterEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registryCredentials } from '../../../../src/image/docker/auth.js';
import { userAndGroup } from '../../../../src/image/docker/appmanifest.js';
import { appcArch, checkDigest, digestOf, parseDocument, pickPlatform, type Descriptor } from '../../../../src/image/docker/manifest.js';
import { parseChallenge } from '../../../../src/image/docker/registry.js';
import { RktError } from '../../../../src/util/errors.js';

const D = (c: string): string => `sha256:${c.repeat(64)}`;

describe('registry challenges', () => {
  test('bearer with quoted parameters, basic', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"')).toEqual({
      scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
    });
    expect(parseChallenge('Basic realm="x"')).toEqual({ scheme: 'basic', params: { realm: 'x' } });
  });
});

describe('documents', () => {
  const manifest = (extra: object) => Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: D('a'), size: 10 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D('b'), size: 5 }], ...extra }));

  test('schema 2 and OCI manifests, indexes', () => {
    expect(parseDocument(manifest({ mediaType: 'application/vnd.oci.image.manifest.v1+json' }), '', 'm')).toMatchObject({ kind: 'manifest', layers: [{ digest: D('b') }] });
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ digest: D('c'), size: 3, platform: { os: 'linux', architecture: 'arm64' } }] }));
    expect(parseDocument(index, '', 'i')).toMatchObject({ kind: 'index', manifests: [{ digest: D('c') }] });
  });

  test('zstd layers are accepted (the zstd tool decompresses them)', () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: D('a'), size: 1 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: D('b'), size: 1 }] }));
    expect(parseDocument(body, '', 'm')).toMatchObject({ kind: 'manifest', layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }] });
  });

  test.each<[string, Buffer, string, RegExp]>([
    ['schema 1 by version', Buffer.from('{"schemaVersion":1,"fsLayers":[]}'), '', /is a Docker schema 1 manifest/],
    ['schema 1 by type', Buffer.from('{"schemaVersion":2}'), 'application/vnd.docker.distribution.manifest.v1+prettyjws', /schema 1/],
    ['not JSON', Buffer.from('<html>'), '', /is not valid JSON/],
    ['lz4 layers', Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: D('a'), size: 1 }, layers: [{ mediaType: 'application/vnd.example.layer.v1.tar+lz4', digest: D('b'), size: 1 }] })), '', /cannot unpack \(tar, tar\+gzip and tar\+zstd only\)/],
    ['bad digest', Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: 'md5:00', size: 1 }, layers: [] })), '', /no valid digest/],
  ])('%s is refused', (_name, body, type, message) => {
    expect(() => parseDocument(body, type, 'the manifest')).toThrow(RktError);
    expect(() => parseDocument(body, type, 'the manifest')).toThrow(message);
  });

  test('digests are checked', () => {
    const body = Buffer.from('x');
    expect(() => checkDigest(body, digestOf(body), 'it')).not.toThrow();
    expect(() => checkDigest(body, D('0'), 'it')).toThrow(`it does not match its digest: expected ${D('0')}`);
  });

  test('the host platform is picked from an index; none is an error listing what there is', () => {
    const m = (architecture: string, variant?: string): Descriptor => ({ mediaType: '', digest: D(architecture === 'amd64' ? 'a' : 'b'), size: 1, platform: { os: 'linux', architecture, variant } });
    expect(pickPlatform([m('arm64'), m('amd64')], 'list', { os: 'linux', architecture: 'amd64' }).digest).toBe(D('a'));
    expect(() => pickPlatform([m('arm64'), m('s390x')], 'the list', { os: 'linux', architecture: 'amd64' }))
      .toThrow('the list has no image for this host\'s platform linux/amd64 (it has: linux/arm64, linux/s390x)');
    expect(appcArch('arm64')).toBe('aarch64');
    expect(appcArch('arm', 'v6')).toBe('armv6l');
  });
});

describe('User', () => {
  const captured = { passwd: Buffer.from('root:x:0:0::/:/bin/sh\napp:x:1234:2345::/:/bin/sh\n') };
  test.each<[string | undefined, string, string]>([
    [undefined, '0', '0'],
    ['app', 'app', '2345'],
    ['1234', '1234', '2345'],
    ['999', '999', '0'],
    ['app:wheel', 'app', 'wheel'],
    ['5:6', '5', '6'],
  ])('%p', (user, u, g) => expect(userAndGroup(user, captured, 'img')).toEqual({ user: u, group: g }));

  test('a name the image does not have is an error', () => {
    expect(() => userAndGroup('nobody', captured, 'img')).toThrow('the config of img runs as user "nobody", which the image\'s /etc/passwd does not have');
  });
});

describe('credentials', () => {
  const made: string[] = [];
  afterEach(() => { for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });
  const dirs = (): { systemConfig: string; localConfig: string; home: string } => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-auth-'));
    made.push(base);
    for (const d of ['lib/docker.d', 'etc/docker.d', 'etc/auth.d', 'home/.docker']) fs.mkdirSync(path.join(base, d), { recursive: true });
    return { systemConfig: path.join(base, 'lib'), localConfig: path.join(base, 'etc'), home: path.join(base, 'home') };
  };
  const dockerAuth = (registries: string[], user: string) => JSON.stringify({ rktKind: 'dockerAuth', rktVersion: 'v1', registries, credentials: { user, password: 'p' } });

  test('docker.d: local wins over system; Docker Hub by any of its names', () => {
    const d = dirs();
    fs.writeFileSync(path.join(d.systemConfig, 'docker.d', 'a.json'), dockerAuth(['quay.io', 'docker.io'], 'system'));
    fs.writeFileSync(path.join(d.localConfig, 'docker.d', 'a.json'), dockerAuth(['quay.io'], 'local'));
    expect(registryCredentials(d, 'quay.io', d.home)?.user).toBe('local');
    expect(registryCredentials(d, 'registry-1.docker.io', d.home)?.user).toBe('system');
    expect(registryCredentials(d, 'other.io', d.home)).toBeUndefined();
  });

  test('auth.d basic entries, then ~/.docker/config.json', () => {
    const d = dirs();
    fs.writeFileSync(path.join(d.localConfig, 'auth.d', 'a.json'), JSON.stringify({ rktKind: 'auth', rktVersion: 'v1', domains: ['reg.example:5000'], type: 'basic', credentials: { user: 'basic', password: 'p' } }));
    fs.writeFileSync(path.join(d.home, '.docker', 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw:with:colons').toString('base64') } } }));
    expect(registryCredentials(d, 'reg.example:5000', d.home)).toEqual({ user: 'basic', password: 'p' });
    expect(registryCredentials(d, 'registry-1.docker.io', d.home)).toEqual({ user: 'hub', password: 'pw:with:colons' });
  });

  test('a broken file is an error naming it', () => {
    const d = dirs();
    fs.writeFileSync(path.join(d.localConfig, 'docker.d', 'bad.json'), '{');
    expect(() => registryCredentials(d, 'quay.io', d.home)).toThrow(/cannot read configuration file .*bad\.json/);
  });
});
