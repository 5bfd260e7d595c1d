/**
 * dist/preload.cjs: the Node version check and the bundle's V8 code cache. Each test runs a
 * copy of the built bundle and preload in a directory of its own (the cache lives next to
 * the bundle), with `version`, which needs no package from node_modules.
 */
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const dist = path.resolve('dist');
const built = ['rkt.cjs', 'preload.cjs', 'execa.cjs'].every((f) => fs.existsSync(path.join(dist, f)));

(built || process.env.CI ? describe : describe.skip)('dist/preload.cjs', () => {
  let dir: string;
  let cache: string;
  const run = (...args: string[]) => spawnSync(process.execPath,
    ['--require', path.join(dir, 'preload.cjs'), path.join(dir, 'rkt.cjs'), ...args], { encoding: 'utf8' });
  const inode = (f: string) => fs.statSync(f).ino;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-preload-'));
    for (const f of ['rkt.cjs', 'preload.cjs', 'execa.cjs']) fs.copyFileSync(path.join(dist, f), path.join(dir, f));
    cache = path.join(dir, 'v8-cache', 'version.v8');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the first successful run of a command writes its cache, stamped with the bundle; the next uses it', () => {
    const first = run('version');
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/^rkt Version: /);
    const st = fs.statSync(path.join(dir, 'rkt.cjs'));
    const data = fs.readFileSync(cache);
    expect(data.subarray(0, data.indexOf(10)).toString('latin1'))
      .toBe(`rkt-v8-cache ${process.version} ${st.size} ${st.mtimeMs} ${st.ino}`);
    expect(fs.statSync(cache).mode & 0o777).toBe(0o644);
    const before = inode(cache);
    const second = run('version');
    expect({ status: second.status, stdout: second.stdout, stderr: second.stderr }).toEqual({ status: 0, stdout: first.stdout, stderr: '' });
    // Accepted, so not written again (a write renames a new file into place).
    expect(inode(cache)).toBe(before);
  });

  test('a rebuilt bundle (another mtime) does not use the old cache: it is made again', () => {
    expect(run('version').status).toBe(0);
    const before = inode(cache);
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(path.join(dir, 'rkt.cjs'), later, later);
    expect(run('version').status).toBe(0);
    expect(inode(cache)).not.toBe(before);
  });

  test('bytes V8 rejects are ignored and replaced; the command still works', () => {
    expect(run('version').status).toBe(0);
    const data = fs.readFileSync(cache);
    const header = data.subarray(0, data.indexOf(10) + 1);
    fs.writeFileSync(cache, Buffer.concat([header, Buffer.alloc(4096, 0xab)]), { mode: 0o644 });
    const r = run('version');
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(fs.readFileSync(cache).length).toBeGreaterThan(header.length + 4096);
  });

  test.each([
    ['writable by its group', (f: string) => fs.chmodSync(f, 0o664)],
    ['a symlink', (f: string) => { fs.renameSync(f, `${f}.real`); fs.symlinkSync(`${f}.real`, f); }],
  ])('a cache file that is %s is not trusted: the command runs without it and writes its own', (_what, spoil) => {
    expect(run('version').status).toBe(0);
    spoil(cache);
    const before = fs.lstatSync(cache).ino;
    expect(run('version').status).toBe(0);
    const st = fs.lstatSync(cache);
    expect(st.isFile() && st.ino !== before && (st.mode & 0o777) === 0o644).toBe(true);
  });

  test('dist/execa.cjs, loaded by commands that spawn, has one cache for all of them, stamped with its own file', () => {
    // A stand-in for a command of the bundle: requires execa.cjs next to it and spawns.
    const user = path.join(dir, 'spawns.cjs');
    fs.writeFileSync(user, "require('./execa.cjs').execa('echo', ['spawned']).then((r) => process.stdout.write(r.stdout));");
    const spawns = () => spawnSync(process.execPath, ['--require', path.join(dir, 'preload.cjs'), user], { encoding: 'utf8' });
    const first = spawns();
    expect({ status: first.status, stdout: first.stdout, stderr: first.stderr }).toEqual({ status: 0, stdout: 'spawned', stderr: '' });
    const file = path.join(dir, 'v8-cache', 'execa.v8');
    const st = fs.statSync(path.join(dir, 'execa.cjs'));
    const data = fs.readFileSync(file);
    expect(data.subarray(0, data.indexOf(10)).toString('latin1')).toBe(`rkt-v8-cache ${process.version} ${st.size} ${st.mtimeMs} ${st.ino}`);
    const before = inode(file);
    expect(spawns().stdout).toBe('spawned');
    expect(inode(file)).toBe(before);
  });

  test('the bundle is minified; under RKT_DEBUG_STACK the unminified one runs instead, without a cache', () => {
    const min = fs.readFileSync(path.join(dir, 'rkt.cjs'), 'latin1');
    const debug = fs.readFileSync(path.join(dist, 'rkt.debug.cjs'), 'latin1');
    expect(min.length).toBeLessThan(debug.length * 0.85);
    expect(debug).toContain('function globalOptionsFrom(');
    expect(min).not.toContain('function globalOptionsFrom(');
    // A stand-in debug bundle shows which file ran, and that its names reach the stack.
    fs.writeFileSync(path.join(dir, 'rkt.debug.cjs'), 'function namedInTheDebugBundle() { throw new Error("boom"); }\nnamedInTheDebugBundle();\n');
    const r = spawnSync(process.execPath, ['--require', path.join(dir, 'preload.cjs'), path.join(dir, 'rkt.cjs'), 'version'],
      { encoding: 'utf8', env: { ...process.env, RKT_DEBUG_STACK: '1' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`at namedInTheDebugBundle (${path.join(dir, 'rkt.debug.cjs')}:1:`);
    expect(fs.existsSync(cache)).toBe(false);
    // Without it, the minified bundle.
    expect(run('version').stdout).toMatch(/^rkt Version: /);
  });

  test('Node\'s variables that rkt-launch held are put back before the bundle runs; the CA file is left for a TLS fetch', () => {
    fs.writeFileSync(path.join(dir, 'rkt.cjs'), 'process.stdout.write(JSON.stringify([Object.keys(process.env).filter((k) => /NODE_|HELD/.test(k)).sort(), process.env.NODE_OPTIONS, global[Symbol.for("rkt.deferredExtraCaCerts")] ?? null]));');
    const show = (env: NodeJS.ProcessEnv) => JSON.parse(spawnSync(process.execPath, ['--require', path.join(dir, 'preload.cjs'), path.join(dir, 'rkt.cjs')],
      { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } }).stdout);
    expect(show({ RKT_HELD_NODE_OPTIONS: '--inspect', RKT_HELD_NODE_EXTRA_CA_CERTS: '/ca.pem', RKT_HELD_OTHER: 'x' }))
      .toEqual([['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'RKT_HELD_OTHER'], '--inspect', '/ca.pem']);
    // A NODE_EXTRA_CA_CERTS Node itself read at start (no rkt-launch) is not read again.
    expect(show({ NODE_EXTRA_CA_CERTS: '/dev/null' })).toEqual([['NODE_EXTRA_CA_CERTS'], null, null]);
  });

  test('a failed command writes no cache', () => {
    const r = run('no-such-command');
    expect(r.status).toBe(254);
    expect(fs.existsSync(path.join(dir, 'v8-cache', 'no-such-command.v8'))).toBe(false);
  });

  // Needs root to make files of another owner (CI runs as root).
  const root = process.getuid?.() === 0;
  (root || process.env.CI ? test : test.skip)('a bundle of another owner: its cache is neither used nor written', () => {
    expect(run('version').status).toBe(0);
    fs.chownSync(path.join(dir, 'rkt.cjs'), 65534, 65534);
    const before = inode(cache);
    const r = run('version');
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(inode(cache)).toBe(before);
    expect(fs.readdirSync(path.join(dir, 'v8-cache'))).toEqual(['version.v8']);
  });

  test('an old Node gets one line and 254', () => {
    const preload = fs.readFileSync(path.join(dir, 'preload.cjs'), 'utf8').replace(/var NEED = \[\d+, \d+\];/, 'var NEED = [999, 0];');
    fs.writeFileSync(path.join(dir, 'preload.cjs'), preload);
    const r = run('version');
    expect(r.status).toBe(254);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`rkt: Node.js ${process.versions.node} (${process.execPath}) is too old: rkt needs Node.js 999.0 or later\n`);
  });
});
