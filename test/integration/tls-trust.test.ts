/**
 * NODE_EXTRA_CA_CERTS through the real bin/rkt. Node reads and parses that file on every
 * start; bin/rkt keeps it from Node's start and rkt reads it only when a fetch opens a TLS
 * connection (src/stage0/rkt-launch.c, dist/preload.cjs, src/image/http.ts). An https server
 * whose certificate only that file trusts must still be trusted, and a command that fetches
 * nothing must not read the file at all.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { describeIf, isRoot, makeEnv, rktBackground, ROOT, type RktEnv } from '../helpers/rkt.js';
import { closeServer, listenLocal, selfSignedCert } from '../helpers/servers.js';
import { buildTar, compress, idOf, makeKey, manifestFor, sign, trustKey } from '../unit/store/aci-fixtures.js';

const built = fs.existsSync(path.join(ROOT, 'dist', 'rkt-launch'));
const suite = describeIf(!isRoot ? 'needs root' : !built ? 'needs `npm run build`' : undefined);

suite('NODE_EXTRA_CA_CERTS (read when a fetch opens TLS, not at start)', () => {
  let env: RktEnv;
  let server: https.Server;
  let url: string;
  let tar: Buffer;

  beforeAll(async () => {
    env = makeEnv('rkt-it-tls-');
    const key = await makeKey('TLS Signer');
    trustKey(env.localConfig, 'example.com', key);
    tar = await buildTar(manifestFor('example.com/tls'), [{ path: 'hello', content: Buffer.from('hi') }]);
    const aci = compress(tar, 'gzip');
    const asc = await sign(key, aci);
    server = https.createServer(selfSignedCert(env.base), (req, res) => {
      if (req.url === '/tls.aci') res.writeHead(200).end(aci);
      else if (req.url === '/tls.aci.asc') res.writeHead(200).end(asc);
      else res.writeHead(404).end();
    });
    url = `https://127.0.0.1:${await listenLocal(server)}/tls.aci`;
  }, 60_000);

  afterAll(async () => {
    await closeServer(server);
    fs.rmSync(env.base, { recursive: true, force: true });
  });

  const withCa = (file: string | undefined) => {
    const e = { ...process.env };
    if (file === undefined) delete e.NODE_EXTRA_CA_CERTS;
    else e.NODE_EXTRA_CA_CERTS = file;
    return e;
  };

  test('a server that only the file trusts: refused without it, fetched with it', async () => {
    const untrusted = await rktBackground(env, ['fetch', '--full', url], withCa(undefined)).done;
    expect(untrusted.code).toBe(254);
    expect(untrusted.stderr.trimEnd().split('\n').pop()).toMatch(/TLS certificate of 127\.0\.0\.1:\d+ is not trusted .*: use --insecure-options=tls to accept it$/);
    const trusted = await rktBackground(env, ['fetch', '--full', url], withCa(path.join(env.base, 'cert.pem'))).done;
    expect(trusted.stderr).toContain('signature verified');
    expect([trusted.code, trusted.stdout]).toEqual([0, `${idOf(tar)}\n`]);
  }, 60_000);

  test('a command that fetches nothing never opens the file (a FIFO nobody writes would block it)', async () => {
    const fifo = path.join(env.base, 'ca.fifo');
    execFileSync('mkfifo', [fifo]);
    const { child, done } = rktBackground(env, ['version'], withCa(fifo));
    const stuck = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const r = await done;
    clearTimeout(stuck);
    expect([r.code, r.signal, r.stderr]).toEqual([0, null, '']);
    expect(r.stdout).toMatch(/^rkt Version: /);
  }, 20_000);
});
