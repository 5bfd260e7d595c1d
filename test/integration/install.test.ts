/**
 * rkt as an installed command: `npm pack` of a clean checkout (no dist/: prepare builds it),
 * that tarball installed with `npm install -g --prefix`, and the installed `rkt` run from
 * elsewhere, down to a real pod. The command's start-up in a bare PATH: no node, an old
 * node, nothing but node.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { BUSYBOX_ACI, ROOT, RktEnv, describeIf, makeEnv, skipReason } from '../helpers/rkt.js';
import { INSECURE, podTraces, teardown } from '../helpers/pods.js';
import { BUILD_AND_INSTALL_MS } from '../helpers/timeouts.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const suite = describeIf(skipReason() ?? (have('npm') && have('git') ? undefined : 'needs npm and git'));

suite('npm pack and npm install -g', () => {
  let tmp: string;
  let prefix: string;
  let rktBin: string;
  let elsewhere: string;
  let env: RktEnv;
  const pkgVersion = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

  /** A PATH dir holding links to just these host commands. */
  const bareBin = (name: string, cmds: string[]) => {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    for (const c of cmds) fs.symlinkSync(execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim(), path.join(dir, c));
    return dir;
  };
  const installed = (args: string[], pathVar: string) => spawnSync(rktBin, args, { cwd: elsewhere, encoding: 'utf8', env: { ...process.env, PATH: pathVar } });

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-it-install-'));
    env = makeEnv('rkt-it-installed-');
    // The checkout as a fresh clone has it (tracked and new files, nothing ignored: no dist/),
    // with this checkout's node_modules for the build tools.
    const src = path.join(tmp, 'src');
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const f of files) {
      const from = path.join(ROOT, f);
      if (!fs.existsSync(from)) continue; // deleted in the work tree
      fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      fs.cpSync(from, path.join(src, f), { verbatimSymlinks: true });
    }
    fs.symlinkSync(fs.realpathSync(path.join(ROOT, 'node_modules')), path.join(src, 'node_modules'));
    expect(fs.existsSync(path.join(src, 'dist', 'rkt.cjs'))).toBe(false);
    execFileSync('npm', ['pack', '--pack-destination', tmp, '--no-audit', '--no-fund'], { cwd: src, stdio: ['ignore', 'ignore', 'pipe'] });
    const tarball = path.join(tmp, `rkt-${pkgVersion}.tgz`);
    prefix = path.join(tmp, 'prefix');
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] });
    // Nothing of the build may be needed at run time: the source copy goes.
    fs.rmSync(src, { recursive: true, force: true });
    rktBin = path.join(prefix, 'bin', 'rkt');
    elsewhere = fs.mkdtempSync(path.join(tmp, 'cwd-'));
  }, BUILD_AND_INSTALL_MS);
  afterAll(async () => {
    await teardown(env);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('the tarball holds the bundle, the stage1 helpers, the man page and the units; not the sources or tests', () => {
    const pkg = path.join(prefix, 'lib', 'node_modules', 'rkt');
    for (const f of ['dist/rkt-launch', 'dist/rkt.cjs', 'dist/preload.cjs', 'dist/rkt.1', 'dist/store/digest-worker.js',
      'dist/stage1/rkt-helper', 'dist/stage1/rkt-idmap', 'dist/stage1/rkt-notify', 'dist/systemd/rkt-gc.timer', 'dist/systemd/etcd.service', 'docs/systemd.md']) {
      expect(fs.existsSync(path.join(pkg, f))).toBe(true);
    }
    for (const f of ['src', 'test', 'scripts', 'build', 'tsconfig.json']) expect(fs.existsSync(path.join(pkg, f))).toBe(false);
    // npm links the command and the man page into the prefix.
    expect(fs.readlinkSync(rktBin)).toBe('../lib/node_modules/rkt/dist/rkt-launch');
    expect(fs.readFileSync(path.join(prefix, 'share', 'man', 'man1', 'rkt.1'), 'utf8')).toMatch(/^\.TH "?RKT"? "?1"?/m);
  });

  test('the installed rkt runs from another directory: version, then a real pod', () => {
    const v = installed(['version'], process.env.PATH!);
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    expect(v.stdout).toContain(`rkt Version: ${pkgVersion}\n`);
    const r = installed([...env.globals, INSECURE, 'run', '--net=host', BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', 'echo "hello from $AC_APP_NAME"; exit 7'], process.env.PATH!);
    expect(r.stdout).toBe('hello from busybox\n');
    expect(r.status).toBe(7);
    // The pod ran on the installed copy's stage1: its hand-off script names the installed helpers.
    const [uuid] = fs.readdirSync(path.join(env.dir, 'pods', 'run'));
    const stage1 = fs.readdirSync(path.join(env.dir, 'pods', 'run', uuid, 'stage1')).map((f) => path.join(env.dir, 'pods', 'run', uuid, 'stage1', f));
    const scripts = stage1.filter((f) => f.endsWith('.sh')).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    expect(scripts).toContain(path.join(fs.realpathSync(prefix), 'lib', 'node_modules', 'rkt', 'dist', 'stage1', 'rkt-helper'));
    expect(scripts).not.toContain(ROOT);
    expect(podTraces(env, uuid).procs).toEqual([]);
  });

  test('no node on PATH: one line saying so, 254', () => {
    const r = installed(['version'], bareBin('no-node', []));
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('rkt: node not found on PATH: install Node.js 20.19 or later (rkt runs on it)\n');
    expect(r.status).toBe(254);
  });

  test('a node older than package.json engines: one line naming both versions, 254', () => {
    const dir = bareBin('old-node', []);
    // A real node that reports itself as Node 18, as Debian 12's own package is.
    fs.writeFileSync(path.join(dir, 'as-18.cjs'), "Object.defineProperty(process, 'version', { value: 'v18.20.4' });\nObject.defineProperty(process.versions, 'node', { value: '18.20.4' });\n");
    fs.writeFileSync(path.join(dir, 'node'), `#!/bin/sh\nexec ${process.execPath} --require ${path.join(dir, 'as-18.cjs')} "$@"\n`, { mode: 0o755 });
    const r = installed(['version'], dir);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`rkt: Node.js 18.20.4 (${process.execPath}) is too old: rkt needs Node.js 20.19 or later\n`);
    expect(r.status).toBe(254);
  });

  test('a PATH with nothing but node: no shell or tool runs before it', () => {
    const dir = bareBin('only-node', []);
    fs.symlinkSync(process.execPath, path.join(dir, 'node'));
    const r = installed(['version'], dir);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`rkt Version: ${pkgVersion}\n`);
  });

  test('reached through a chain of relative links, from a directory with spaces', () => {
    const dir = path.join(tmp, 'with space');
    fs.mkdirSync(dir);
    fs.symlinkSync(path.relative(dir, rktBin), path.join(dir, 'first'));
    fs.symlinkSync('first', path.join(dir, 'second'));
    const r = spawnSync('./second', ['version'], { cwd: dir, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`rkt Version: ${pkgVersion}\n`);
  });
});
