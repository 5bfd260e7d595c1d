/**
 * The environment stage0 runs with, through the real bin/rkt: the Node that runs rkt (as
 * root) acts on none of a caller's NODE_* (src/stage0/rkt-launch.c holds them, and
 * dist/preload.cjs puts them back for rkt's children), while an app run with --inherit-env
 * gets them as the caller set them; stage0's PATH keeps only its absolute directories.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RKT, ROOT, RktEnv, describeIf, makeEnv, rkt, rktBackground, skipReason } from '../helpers/rkt.js';
import { INSECURE, teardown } from '../helpers/pods.js';

const suite = describeIf(skipReason());

suite("Node's environment variables", () => {
  let env: RktEnv;
  beforeAll(() => { env = makeEnv('rkt-it-nodeenv-'); });
  afterAll(async () => { await teardown(env); });

  test('a caller\'s NODE_OPTIONS opens no debugger and loads no code into rkt', async () => {
    const marker = path.join(env.base, 'required');
    const evil = path.join(env.base, 'evil.cjs');
    fs.writeFileSync(evil, `require('fs').writeFileSync(${JSON.stringify(marker)}, 'loaded');`);
    // --inspect-brk would stop rkt until a debugger attached: it would hang here.
    const { child, done } = rktBackground(env, ['version'], { ...process.env, NODE_OPTIONS: `--inspect-brk=127.0.0.1:0 --require ${evil}`, NODE_DEBUG: 'module' });
    const stuck = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const r = await done;
    clearTimeout(stuck);
    expect([r.code, r.signal, r.stderr]).toEqual([0, null, '']);
    expect(r.stdout).toMatch(/^rkt Version: /);
    expect(fs.existsSync(marker)).toBe(false);
  }, 20_000);

  test('a caller\'s V8 flags do not make rkt compile its bundle again (the code cache stays)', () => {
    const cache = path.join(ROOT, 'dist', 'v8-cache', 'version.v8');
    expect(rkt(env, ['version']).status).toBe(0);
    const before = fs.statSync(cache).ino;
    for (const flags of ['--max-old-space-size=4096', '--stack-size=2000', '']) {
      expect(rkt(env, ['version'], { env: { NODE_OPTIONS: flags } }).status).toBe(0);
    }
    // A rejected cache is written anew (renamed into place): another inode.
    expect(fs.statSync(cache).ino).toBe(before);
  });

  test('--inherit-env: the app gets NODE_OPTIONS, NODE_ENV and NODE_EXTRA_CA_CERTS as the caller set them, and nothing of rkt\'s own', () => {
    const r = rkt(env, [INSECURE, 'run', '--net=host', '--inherit-env', BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', 'env | grep -E "^(NODE_|RKT_HELD_)" | sort'],
      { env: { NODE_OPTIONS: '--max-old-space-size=64', NODE_ENV: 'production', NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('NODE_ENV=production\nNODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt\nNODE_OPTIONS=--max-old-space-size=64\n');
  });

  test('PATH\'s relative entries find no tool: an xz planted in the directory rkt runs from is not run (the host\'s is)', () => {
    const cwd = fs.mkdtempSync(path.join(env.base, 'cwd-'));
    const marker = path.join(env.base, 'planted-xz-ran');
    fs.writeFileSync(path.join(cwd, 'xz'), `#!/bin/sh\ntouch ${marker}\nexit 1\n`, { mode: 0o755 });
    const aci = path.join(env.base, 'busybox.aci.xz');
    execSync(`gzip -dc ${BUSYBOX_ACI} | xz -0 -T1 > ${aci}`);
    const r = spawnSync(RKT, [...env.globals, INSECURE, 'fetch', aci], { cwd, encoding: 'utf8', timeout: 60_000, env: { ...process.env, PATH: `.:xz-dir::${process.env.PATH}` } });
    expect(fs.existsSync(marker)).toBe(false);
    expect([r.status, r.stdout]).toEqual([0, expect.stringMatching(/^sha512-[0-9a-f]+\n$/)]);
  });
});
