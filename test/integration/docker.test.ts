/**
 * docker:// images against real registries: Debian's docker-registry on 127.0.0.1 (one
 * plain-HTTP instance, one with TLS and htpasswd), images built here as OCI layouts and
 * pushed with skopeo. The app's config is checked from inside the pod; hostile cases a real
 * registry cannot serve (a layer that does not match its digest, schema 1) come from a small
 * Node server. Every failure must be one line naming the image and the cause, exit 254,
 * and leave nothing in the store or cas/tmp.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ROOT, describeIf, isRoot, makeEnv, rkt, rktBackground, cleanup, type RktEnv } from '../helpers/rkt.js';
import { closeServer, listenLocal, selfSignedCert } from '../helpers/servers.js';
import { busyboxEntries, layer, ociLayout, push, sha256, startRegistry, type Registry, type TarEntry } from '../helpers/registry.js';

const have = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const built = fs.existsSync(path.join(ROOT, 'dist', 'cli.js'));
const missing = !isRoot ? 'needs root'
  : !built ? 'needs `npm run build`'
    : !have('docker-registry') ? 'needs docker-registry (apt-get install docker-registry)'
      : !have('skopeo') ? 'needs skopeo (apt-get install skopeo)'
        : !have('zstd') ? 'needs zstd (apt-get install zstd)'
        : undefined;

/** bcrypt (cost 4) of "s3cret-pw", for user "tester". */
const HTPASSWD = 'tester:$2b$04$s24EFwHeDIZseN/qHXFGiupcKtqpp4MlTBO3.iVXpGjdbW/vdsZd6\n';

const CHECK = [
  '#!/bin/sh',
  'echo "user=$(id -u):$(id -g) cwd=$(pwd) greeting=$GREETING args=$*"',
  'for f in /etc/deleted /etc/olddir/a /etc/opaque/old; do [ -e $f ] && echo "present $f"; done',
  'echo "replaced=$(cat /etc/replaced) opaque=$(ls /etc/opaque) olddir-new=$(cat /etc/olddir/new 2>/dev/null)"',
].join('\n');

describeIf(missing)('docker:// images', () => {
  let env: RktEnv;
  let work: string;
  let plain: Registry;
  let secure: Registry | undefined;
  let base: Buffer;
  const images: Record<string, { digest: string }> = {};
  let hostile: Hostile | undefined;

  beforeAll(async () => {
    work = fs.mkdtempSync('/tmp/rkt-docker-');
    env = makeEnv();
    const bb = await busyboxEntries();
    base = await layer([
      ...bb.filter((e) => !e.name.startsWith('etc/passwd') && !e.name.startsWith('etc/group')),
      { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n' },
      { name: 'etc/group', body: 'root:x:0:\napp:x:2345:\n' },
      { name: 'etc/deleted', body: 'gone\n' },
      { name: 'etc/replaced', body: 'old\n' },
      { name: 'etc/olddir/', type: 'directory' },
      { name: 'etc/olddir/a', body: 'a\n' },
      { name: 'etc/opaque/', type: 'directory' },
      { name: 'etc/opaque/old', body: 'old\n' },
      { name: 'srv/', type: 'directory', uid: 1234, gid: 2345 },
    ]);
    const top = await layer([
      { name: 'etc/.wh.deleted' },
      { name: 'etc/replaced', body: 'new\n' },
      { name: 'etc/.wh.olddir' },
      { name: 'etc/olddir/', type: 'directory' },
      { name: 'etc/olddir/new', body: 'fresh\n' },
      { name: 'etc/opaque/', type: 'directory' },
      { name: 'etc/opaque/.wh..wh..opq' },
      { name: 'etc/opaque/new', body: 'n\n' },
      { name: 'check', body: CHECK, mode: 0o755 },
    ]);
    const config = {
      Entrypoint: ['/check'], Cmd: ['one', 'two'], Env: ['PATH=/bin:/usr/bin', 'GREETING=hello docker'],
      User: 'app', WorkingDir: '/srv', ExposedPorts: { '80/tcp': {}, '53/udp': {} }, Volumes: { '/data': {} },
      Labels: { 'org.example.team': 'rkt' },
    };
    images.app = { digest: ociLayout(path.join(work, 'app'), '1.0', [{ layers: [base, top], config }]) };
    const other = await layer([{ name: 'other-arch', body: 'x' }]);
    const here = await layer([{ name: 'this-arch', body: 'x' }]);
    images.multi = { digest: ociLayout(path.join(work, 'multi'), 'v1', [
      { layers: [base, other], config: { Cmd: ['/bin/true'] }, architecture: 'arm64' },
      { layers: [base, here], config: { Entrypoint: ['/bin/ls', '/'] }, architecture: 'amd64' },
    ]) };
    images.armonly = { digest: ociLayout(path.join(work, 'armonly'), 'v1', [{ layers: [other], config: {}, architecture: 'arm64' }]) };

    plain = await startRegistry(path.join(work, 'plain'));
    push(path.join(work, 'app'), '1.0', `${plain.host}/test/app:1.0`);
    push(path.join(work, 'multi'), 'v1', `${plain.host}/test/multi:v1`);
    push(path.join(work, 'armonly'), 'v1', `${plain.host}/test/armonly:v1`);

    const certDir = path.join(work, 'cert');
    fs.mkdirSync(certDir);
    selfSignedCert(certDir);
    secure = await startRegistry(path.join(work, 'secure'), {
      tls: { cert: path.join(certDir, 'cert.pem'), key: path.join(certDir, 'key.pem') }, htpasswd: HTPASSWD,
    });
    push(path.join(work, 'armonly'), 'v1', `${secure.host}/private/app:v1`, { creds: 'tester:s3cret-pw' });
    hostile = await startHostile({
      'tok/app': await layer([{ name: 'token-flow', body: 'ok' }]),
      'bad/digest': await layer([{ name: 'digest', body: 'ok' }]),
      'bad/truncated': await layer([{ name: 'truncated', body: crypto.randomBytes(256 * 1024) }]),
    });
  });

  afterAll(async () => {
    await plain?.stop();
    await secure?.stop();
    if (hostile) await closeServer(hostile.server);
    if (env) cleanup(env);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const fetch = (ref: string, flags = 'image,http', extra: string[] = []): ReturnType<typeof rkt> => rkt(env, [`--insecure-options=${flags}`, 'fetch', ...extra, ref]);
  const cas = (sub: string): string[] => { try { return fs.readdirSync(path.join(env.dir, 'cas', sub)); } catch { return []; } };
  const manifestOf = (id: string): Record<string, any> => JSON.parse(rkt(env, ['image', 'cat-manifest', id]).stdout);
  const annotation = (m: Record<string, any>, name: string): string | undefined => m.annotations?.find((a: { name: string }) => a.name === name)?.value;

  /** fetch, without blocking this process (the hostile registry runs in it). */
  async function fetchAsync(ref: string, flags = 'image,http', extra: string[] = []): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const r = await rktBackground(env, [`--insecure-options=${flags}`, 'fetch', ...extra, ref]).done;
    return { status: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  /** A failed fetch: one line naming the image and the cause, 254, and no trace in the store. */
  async function expectRefused(ref: string, cause: RegExp, flags = 'image,http', extra: string[] = []): Promise<void> {
    const before = { info: cas('info'), layer: cas('layer') };
    const r = await fetchAsync(ref, flags, extra);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 254, stderr: expect.stringMatching(cause) });
    const errors = r.stderr.split('\n').filter((l) => l && !/remote fetching|signature verification has been disabled|layers from the local layer cache/.test(l));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`cannot fetch image ${ref}: `);
    expect(errors[0]).toMatch(cause);
    expect(cas('info')).toEqual(before.info);
    expect(cas('layer')).toEqual(before.layer);
    expect(cas('tmp')).toEqual([]);
  }

  test('fetch by tag stores the squashed image under docker2aci\'s name, labels and annotations', async () => {
    const r = fetch(`docker://${plain.host}/test/app:1.0`);
    expect(r.status).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^sha512-[0-9a-f]{32}$/);
    const m = manifestOf(id);
    expect(m.name).toBe(`127.0.0.1_${plain.host.split(':')[1]}/test/app`);
    expect(m.labels).toEqual([{ name: 'version', value: '1.0' }, { name: 'os', value: 'linux' }, { name: 'arch', value: 'amd64' }]);
    expect(m.app).toMatchObject({
      exec: ['/check', 'one', 'two'], user: 'app', group: '2345', workingDirectory: '/srv',
      environment: [{ name: 'PATH', value: '/bin:/usr/bin' }, { name: 'GREETING', value: 'hello docker' }],
      ports: [{ name: '53-udp', protocol: 'udp', port: 53 }, { name: '80-tcp', protocol: 'tcp', port: 80 }],
      mountPoints: [{ name: 'volume-data', path: '/data' }],
    });
    expect(annotation(m, 'org.example.team')).toBe('rkt');
    expect(annotation(m, 'appc.io/docker/repository')).toBe('test/app');
    expect(annotation(m, 'appc.io/docker/manifesthash')).toBe(images.app.digest);
    expect(cas('layer')).toHaveLength(2); // both layers, cached by digest
    expect(cas('tmp')).toEqual([]);
  });

  test('run applies Entrypoint+Cmd, Env, User, WorkingDir and the whiteouts (checked inside the pod)', async () => {
    const r = rkt(env, ['--insecure-options=image', 'run', '--net=host', `docker://${plain.host}/test/app:1.0`]);
    expect(r.stderr).not.toMatch(/remote fetching/); // run's policy is new: the store has it
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('user=1234:2345 cwd=/srv greeting=hello docker args=one two');
    expect(r.stdout).not.toContain('present');
    expect(r.stdout).toContain('replaced=new opaque=new olddir-new=fresh');
  });

  test('a second fetch downloads no layer; by digest the store answers without the registry', async () => {
    await plain.settledLog();
    const gets = plain.blobGets('test/app');
    const again = fetch(`docker://${plain.host}/test/app:1.0`);
    expect(again.status).toBe(0);
    expect(again.stderr).toContain(`using image from local store for docker://${plain.host}/test/app:1.0`);
    await plain.settledLog();
    expect(plain.blobGets('test/app')).toBe(gets);
    const requests = plain.log().split('\n').filter((l) => l.includes('/v2/test/')).length;
    const byDigest = fetch(`docker://${plain.host}/test/app@${images.app.digest}`);
    expect(byDigest.status).toBe(0);
    expect(byDigest.stdout).toBe(again.stdout);
    expect((await plain.settledLog()).split('\n').filter((l) => l.includes('/v2/test/')).length).toBe(requests);
  });

  test('a manifest list gives this host\'s image; the layer it shares with a stored image is not downloaded', async () => {
    const r = fetch(`docker://${plain.host}/test/multi:v1`);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('1 of 2 layers from the local layer cache');
    expect(plain.log()).not.toContain(`GET /v2/test/multi/blobs/${sha256(base)}`);
    const m = manifestOf(r.stdout.trim());
    expect(m.app.exec).toEqual(['/bin/ls', '/']);
    expect(labelsOf(m)).toMatchObject({ version: 'v1', arch: 'amd64' });
    expect(cas('layer')).toHaveLength(3); // base, app's top, multi's amd64 top
  });

  test('--pull-policy=update: an unchanged tag costs one manifest HEAD and no GET; a moved tag fetches the new image', async () => {
    const ref = `docker://${plain.host}/test/moving:cur`;
    /** The registry's requests for test/moving after log offset `from`, as "METHOD path". */
    const requests = (log: string, from: number): string[] => log.slice(from).split('\n')
      .map((l) => /"(GET|HEAD) (\/v2\/test\/moving\/\S+)/.exec(l)).filter((m): m is RegExpExecArray => m !== null).map((m) => `${m[1]} ${m[2]}`);
    push(path.join(work, 'app'), '1.0', `${plain.host}/test/moving:cur`);
    const first = fetch(ref);
    expect(first.status).toBe(0);

    let mark = (await plain.settledLog()).length;
    const same = fetch(ref, 'image,http', ['--pull-policy=update']);
    expect(same.status).toBe(0);
    expect(same.stdout).toBe(first.stdout);
    expect(same.stderr).toContain(`using image from local store for ${ref}`);
    expect(requests(await plain.settledLog(), mark)).toEqual(['HEAD /v2/test/moving/manifests/cur']);

    // The tag moves to another image sharing the base layer: only what the store lacks is downloaded.
    const moved = await layer([{ name: 'moved', body: 'v2\n' }]);
    ociLayout(path.join(work, 'moving2'), 'v2', [{ layers: [base, moved], config: { Entrypoint: ['/bin/cat', '/moved'] } }]);
    push(path.join(work, 'moving2'), 'v2', `${plain.host}/test/moving:cur`);
    mark = (await plain.settledLog()).length;
    const changed = fetch(ref, 'image,http', ['--pull-policy=update']);
    expect(changed.status).toBe(0);
    expect(changed.stderr).toContain('1 of 2 layers from the local layer cache');
    const id = changed.stdout.trim();
    expect(id).not.toBe(first.stdout.trim());
    expect(manifestOf(id).app.exec).toEqual(['/bin/cat', '/moved']);
    expect(manifestOf(ref).app.exec).toEqual(['/bin/cat', '/moved']); // the reference now names the new image
    const seen = requests(await plain.settledLog(), mark);
    expect(seen[0]).toBe('HEAD /v2/test/moving/manifests/cur');
    expect(seen).toContain('GET /v2/test/moving/manifests/cur');
    expect(seen).toContain(`GET /v2/test/moving/blobs/${sha256(moved)}`);
    expect(seen).not.toContain(`GET /v2/test/moving/blobs/${sha256(base)}`);
    const run = rkt(env, ['--insecure-options=image', 'run', '--net=host', ref]);
    expect(run.stdout).toContain('v2');
    expect(run.status).toBe(0);
  });

  test('an image whose ACI is over 32 MiB imports (the digest worker keeps the buffers it still needs)', async () => {
    const big = await layer([{ name: 'zeros', body: Buffer.alloc(36 * 1024 * 1024) }]);
    ociLayout(path.join(work, 'big'), 'v1', [{ layers: [big], config: { Cmd: ['/zeros'] } }]);
    push(path.join(work, 'big'), 'v1', `${plain.host}/test/big:v1`);
    const r = await fetchAsync(`docker://${plain.host}/test/big:v1`);
    expect(r.stderr).not.toContain('cannot fetch');
    expect(r.status).toBe(0);
    expect(rkt(env, ['image', 'rm', r.stdout.trim()]).status).toBe(0);
  });

  test('zstd layers (tar+zstd) are decompressed with the zstd tool and run', async () => {
    const zst = await layer([{ name: 'zst-file', body: 'zstd works\n' }], 'zstd');
    expect(zst.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    ociLayout(path.join(work, 'zstd'), 'v1', [{ layers: [base, zst], config: { Entrypoint: ['/bin/cat', '/zst-file'] } }]);
    push(path.join(work, 'zstd'), 'v1', `${plain.host}/test/zstd:v1`);
    const ref = `docker://${plain.host}/test/zstd:v1`;
    expect(fetch(ref).status).toBe(0);
    const run = rkt(env, ['--insecure-options=image', 'run', '--net=host', ref]);
    expect(run.stdout).toContain('zstd works');
    expect(run.status).toBe(0);
  });

  test('a zstd bomb is stopped by --max-expanded-size even where an upper layer deletes it', async () => {
    // 256 MiB of zeros in a few KiB; the top layer whites it out, so the ACI itself would be small.
    const bomb = execFileSync('sh', ['-c', 'cd "$1" && truncate -s 256M bomb && tar --numeric-owner -cf - bomb | zstd -q -c -1 && rm bomb', 'sh', work], { maxBuffer: 16 * 1024 * 1024 });
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const hide = await layer([{ name: '.wh.bomb' }]);
    ociLayout(path.join(work, 'bomb'), 'v1', [{ layers: [base, bomb, hide], config: {} }]);
    push(path.join(work, 'bomb'), 'v1', `${plain.host}/evil/bomb:v1`);
    await expectRefused(`docker://${plain.host}/evil/bomb:v1`, /expands to more than 64 MiB \(--max-expanded-size=67108864\)/, 'image,http', ['--max-expanded-size=64Mi']);
  });

  test('image export gives an ACI that actool validates', async () => {
    const id = fetch(`docker://${plain.host}/test/app:1.0`).stdout.trim();
    // image commands take the docker:// reference too
    expect(manifestOf(`docker://${plain.host}/test/app:1.0`).name).toBe(manifestOf(id).name);
    const out = path.join(work, 'app.aci');
    expect(rkt(env, ['image', 'export', `docker://${plain.host}/test/app@${images.app.digest}`, out]).status).toBe(0);
    const v = spawnSync('actool', ['validate', out], { encoding: 'utf8' });
    expect(v.stderr + v.stdout).toBe('');
    expect(v.status).toBe(0);
  });

  test('bad references and registries: other arch only, unknown host, 404 tag, plain HTTP not allowed', async () => {
    await expectRefused(`docker://${plain.host}/test/armonly:v1`, /built for linux\/arm64 only and this host is linux\/amd64/);
    await expectRefused('docker://registry.invalid/test/app:1.0', /host not found|name lookup failed/);
    await expectRefused(`docker://${plain.host}/test/app:nope`, /test\/app:nope is not on .* \(manifest unknown, HTTP 404\)/);
    await expectRefused(`docker://${plain.host}/test/app:1.0`, /TLS handshake .* failed/, 'image', ['--pull-policy=update', '--no-store']);
    const unsigned = fetch(`docker://${plain.host}/test/app:1.0`, 'http');
    expect(unsigned.status).toBe(254);
    expect(unsigned.stderr).toMatch(/Docker images carry no signature rkt can check.*--insecure-options=image/);
  });

  test('hostile layers: ../ names and writes through an absolute symlink are refused', async () => {
    const dotdot = await layer([{ name: '../escape', body: 'x' }]);
    ociLayout(path.join(work, 'dotdot'), 'v1', [{ layers: [base, dotdot], config: {} }]);
    push(path.join(work, 'dotdot'), 'v1', `${plain.host}/evil/dotdot:v1`);
    await expectRefused(`docker://${plain.host}/evil/dotdot:v1`, /layer 2 of 2 .*"\.\.\/escape" has a "\.\." component/);

    const link = await layer([{ name: 'hole', type: 'symlink', linkname: '/tmp' }]);
    const through = await layer([{ name: 'hole/owned', body: 'x' }]);
    ociLayout(path.join(work, 'symlink'), 'v1', [{ layers: [link, through], config: {} }]);
    push(path.join(work, 'symlink'), 'v1', `${plain.host}/evil/symlink:v1`);
    await expectRefused(`docker://${plain.host}/evil/symlink:v1`, /layer 1 of 2 .*"hole" is a symlink in this layer, but a layer above writes inside it/);

    const same = await layer([{ name: 'hole', type: 'symlink', linkname: '/etc' }, { name: 'hole/passwd', body: 'x' }]);
    ociLayout(path.join(work, 'same'), 'v1', [{ layers: [same], config: {} }]);
    push(path.join(work, 'same'), 'v1', `${plain.host}/evil/same:v1`);
    await expectRefused(`docker://${plain.host}/evil/same:v1`, /"hole\/passwd" is inside "hole", which the same layer made a symlink/);
    expect(fs.existsSync('/tmp/owned')).toBe(false);
  });

  test('TLS with htpasswd: 401 without credentials, the cert needs tls, docker.d credentials work', async () => {
    const ref = `docker://${secure!.host}/private/app:v1`;
    await expectRefused(ref, /TLS certificate of .* is not trusted .*--insecure-options=tls/, 'image');
    await expectRefused(ref, /requires authentication for private\/app \(HTTP 401\): add credentials in docker\.d/, 'image,tls');
    const dockerD = path.join(env.localConfig, 'docker.d');
    fs.mkdirSync(dockerD, { recursive: true });
    const conf = (password: string) => JSON.stringify({ rktKind: 'dockerAuth', rktVersion: 'v1', registries: [secure!.host], credentials: { user: 'tester', password } });
    fs.writeFileSync(path.join(dockerD, 'test.json'), conf('wrong'));
    await expectRefused(ref, /refused the configured credentials for private\/app/, 'image,tls');
    fs.writeFileSync(path.join(dockerD, 'test.json'), conf('s3cret-pw'));
    // The arm64-only image: the credentials get it as far as the platform check.
    await expectRefused(ref, /built for linux\/arm64 only/, 'image,tls');
    fs.rmSync(dockerD, { recursive: true });
  });

  test('bearer token flow; a layer that does not match its digest, a truncated layer and schema 1 are refused', async () => {
    const h = hostile!;
    const ok = await fetchAsync(`docker://127.0.0.1:${h.port}/tok/app:1`);
    expect(ok.stderr).not.toContain('cannot fetch');
    expect(ok.status).toBe(0);
    expect(h.tokens()).toBeGreaterThan(0);
    await expectRefused(`docker://127.0.0.1:${h.port}/bad/digest:1`, /layer sha256:[0-9a-f]{64} does not match its digest/);
    await expectRefused(`docker://127.0.0.1:${h.port}/bad/truncated:1`, /layer sha256:[0-9a-f]{64} is truncated: \d+ of \d+ bytes arrived/);
    await expectRefused(`docker://127.0.0.1:${h.port}/bad/schema1:1`, /is a Docker schema 1 manifest, which rkt does not accept/);
    await expectRefused(`docker://127.0.0.1:${h.port}/bad/huge:1`, /larger than 4 MiB: refusing it/);
  });

  test('image gc removes the cached layers no stored image lists', async () => {
    expect(cas('layer').length).toBeGreaterThan(0);
    for (const info of cas('info')) rkt(env, ['image', 'rm', info.replace(/\.json$/, '')]);
    const gc = rkt(env, ['image', 'gc', '--grace-period=0s']);
    expect(gc.status).toBe(0);
    expect(gc.stderr).toContain('removed docker layer "sha256:');
    expect(cas('layer')).toEqual([]);
  });
});

interface Hostile { server: http.Server; port: number; tokens(): number }

/**
 * A registry a real one cannot imitate: a bearer-token realm, and images whose layer does
 * not match its digest, is cut short, whose manifest is schema 1 or is 5 MiB.
 */
async function startHostile(layers: Record<string, Buffer>): Promise<Hostile> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: [] } }));
  const evil = Buffer.from('not the layer the manifest names');
  const manifest = (layerDigest: string, size: number) => JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: layerDigest, size }],
  });
  const token = 'tok-123';
  let tokens = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      tokens++;
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ token }));
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', `Bearer realm="http://${req.headers.host}/token",service="hostile"`);
      return res.end();
    }
    const send = (type: string, body: Buffer | string) => { res.setHeader('content-type', type); res.end(body); };
    const m = /^\/v2\/([a-z]+\/[a-z0-9]+)\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    if (url.pathname === '/v2/') return res.end('{}');
    if (!m) { res.statusCode = 404; return res.end(); }
    const [, repo, kind, ref] = m;
    const goodLayer = layers[repo] ?? Buffer.alloc(0);
    if (kind === 'manifests') {
      if (repo === 'bad/schema1') return send('application/vnd.docker.distribution.manifest.v1+prettyjws', JSON.stringify({ schemaVersion: 1, name: repo, tag: '1', fsLayers: [] }));
      if (repo === 'bad/huge') return send('application/vnd.docker.distribution.manifest.v2+json', Buffer.alloc(5 * 1024 * 1024, 0x20));
      if (repo === 'bad/digest') return send('application/vnd.docker.distribution.manifest.v2+json', manifest(sha256(goodLayer), evil.length));
      return send('application/vnd.docker.distribution.manifest.v2+json', manifest(sha256(goodLayer), goodLayer.length));
    }
    if (ref === sha256(config)) return send('application/octet-stream', config);
    if (repo === 'bad/digest') return send('application/octet-stream', evil);
    if (repo === 'bad/truncated') {
      res.setHeader('content-length', String(goodLayer.length));
      res.write(goodLayer.subarray(0, goodLayer.length >> 1));
      return setTimeout(() => res.destroy(), 20);
    }
    return send('application/octet-stream', goodLayer);
  });
  const port = await listenLocal(server);
  return { server, port, tokens: () => tokens };
}

function labelsOf(m: Record<string, any>): Record<string, string> {
  return Object.fromEntries((m.labels ?? []).map((l: { name: string; value: string }) => [l.name, l.value]));
}
