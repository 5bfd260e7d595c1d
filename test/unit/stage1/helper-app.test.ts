/**
 * rkt-helper --app, the last step of every app and of every command `rkt enter` runs, run for
 * real: the helper built from its source, on the host (PIVOT=0) or in a mount namespace of
 * its own (the pivot). It changes ids, so it needs root.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from '@jest/globals';
import { compileSeccomp, defaultSeccomp, encodeBpf } from '../../../src/stage1/seccomp/filter.js';
import { capabilityMask } from '../../../src/stage1/scripts.js';
import { describeIf, isRoot } from '../../helpers/rkt.js';

const HAVE_GCC = spawnSync('gcc', ['--version']).status === 0;
const UNSHARE = ['/usr/bin/unshare', '/bin/unshare'].find((p) => fs.existsSync(p));
const missing = !isRoot ? 'root (the step changes uid, gid and groups)'
  : !HAVE_GCC ? 'gcc (the helper is built from source): apt-get install gcc libc6-dev'
    : !UNSHARE ? 'util-linux unshare' : undefined;

describeIf(missing)('rkt-helper --app', () => {
  let helperDir: string;
  let helper: string;
  let tmp: string;
  beforeAll(() => {
    helperDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-helper-'));
    helper = path.join(helperDir, 'rkt-helper');
    const r = spawnSync('gcc', ['-O', '-Wall', '-Werror', '-o', helper, path.resolve('src/stage1/helper/rkt-helper.c')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
  });
  afterAll(() => { fs.rmSync(helperDir, { recursive: true, force: true }); });
  beforeEach(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-step-')); });
  afterEach(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

  interface Step { pivot?: '0' | '1'; uid?: number; gid?: number; groups?: string; caps?: string; nnp?: '0' | '1'; workdir?: string; filter?: string }

  /** Runs `--app` with pipes open on fds 3..5; `prefix` runs it under another command (unshare). */
  function step(o: Step, rest: string[], prefix: string[] = []) {
    const argv = [...prefix, helper, '--app', o.pivot ?? '0', String(o.uid ?? 0), String(o.gid ?? 0), o.groups ?? '-', o.caps ?? 'all',
      o.nnp ?? '0', o.workdir ?? '/', o.filter ?? '-', ...rest];
    const r = spawnSync(argv[0], argv.slice(1), { cwd: tmp, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'] });
    return { out: r.stdout, err: r.stderr, status: r.status };
  }
  const status = (o: Step, fields: string) => {
    const r = step(o, ['/bin/grep', '-E', `^(${fields}):`, '/proc/self/status']);
    expect(r.err).toBe('');
    return r.out.replace(/\s+/g, ' ').trim();
  };

  test('argv reaches the app exactly, in the working dir', () => {
    const wd = path.join(tmp, "work dir's");
    fs.mkdirSync(wd);
    const r = step({ workdir: wd }, ['K=v 1', '/usr/bin/printf', '%s\\0', "it's", '', '$(x)', 'a\nb']);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toBe(["it's", '', '$(x)', 'a\nb', ''].join('\0'));
    expect(step({ workdir: wd }, ['/bin/pwd']).out).toBe(`${wd}\n`);
  });

  test('the app gets exactly the given environment', () => {
    const r = step({}, ['A=1', 'B=two words', 'EMPTY=', '/usr/bin/env']);
    expect(r.err).toBe('');
    expect(r.out).toBe('A=1\nB=two words\nEMPTY=\n');
  });

  test('no fd above 2 reaches the app', () => {
    const r = step({}, ['/bin/ls', '/proc/self/fd']);
    expect(r.err).toBe('');
    // 0-2, plus the one ls opens to read the directory; the pipes on 3..5 are gone.
    expect(r.out.split('\n').filter(Boolean).map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
  });

  test('the app\'s uid, gid and groups; its bounding set; a uid other than 0 holds no capability', () => {
    const mask = capabilityMask(['CAP_CHOWN', 'CAP_NET_BIND_SERVICE', 'CAP_KILL']);
    expect(status({ uid: 1000, gid: 2000, groups: '10,20', caps: mask }, 'Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb'))
      .toBe('Uid: 1000 1000 1000 1000 Gid: 2000 2000 2000 2000 Groups: 10 20 CapInh: 0000000000000000 CapPrm: 0000000000000000 '
        + 'CapEff: 0000000000000000 CapBnd: 0000000000000421 CapAmb: 0000000000000000');
    // Root keeps exactly its bounding set; no groups at all with "-".
    expect(status({ caps: mask }, 'Uid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb'))
      .toBe('Uid: 0 0 0 0 Groups: CapInh: 0000000000000000 CapPrm: 0000000000000421 CapEff: 0000000000000421 '
        + 'CapBnd: 0000000000000421 CapAmb: 0000000000000000');
    expect(status({ caps: '0' }, 'CapPrm|CapBnd')).toBe('CapPrm: 0000000000000000 CapBnd: 0000000000000000');
    // "all": the bounding set the caller had.
    const own = fs.readFileSync('/proc/self/status', 'utf8').match(/^CapBnd:\s+(\S+)/m)![1];
    expect(status({}, 'CapBnd')).toBe(`CapBnd: ${own}`);
  });

  test('no_new_privs only with NNP=1 or a filter; a filter confines the app', () => {
    expect(status({}, 'NoNewPrivs|Seccomp')).toBe('NoNewPrivs: 0 Seccomp: 0');
    expect(status({ nnp: '1' }, 'NoNewPrivs|Seccomp')).toBe('NoNewPrivs: 1 Seccomp: 0');
    const filter = encodeBpf(compileSeccomp(defaultSeccomp()));
    expect(status({ filter }, 'NoNewPrivs|Seccomp')).toBe('NoNewPrivs: 1 Seccomp: 2');
    // A blocked call fails with EPERM in the app.
    const r = step({ filter }, ['/usr/bin/unshare', '--user', '/bin/true']);
    expect(r.status).not.toBe(0);
    expect(r.err).toMatch(/Operation not permitted/);
  });

  test('a program that is not there: 127, with rkt\'s diagnostic line', () => {
    let r = step({}, ['PATH=/bin', 'no-such-program-rkt']);
    expect(r.status).toBe(127);
    expect(r.err).toBe('Error: Unable to open "no-such-program-rkt": No such file or directory\n');
    r = step({}, ['/no such/program']);
    expect(r.status).toBe(127);
    expect(r.err).toBe('Error: Unable to open "/no such/program": No such file or directory\n');
  });

  test('a program whose interpreter is missing names the interpreter; a file without x bits says so', () => {
    const script = path.join(tmp, 'script.sh');
    fs.writeFileSync(script, '#!/no/such/interp -x\necho hi\n', { mode: 0o755 });
    let r = step({}, [script]);
    expect(r.status).toBe(127);
    expect(r.err).toBe('Error: Unable to open "/no/such/interp": No such file or directory\n');
    // An ELF binary whose PT_INTERP (the dynamic loader) is not there: same length, other name.
    const elf = fs.readFileSync('/usr/bin/true');
    const loader = Buffer.from('/lib64/ld-linux-x86-64.so.2');
    const at = elf.indexOf(loader);
    expect(at).toBeGreaterThan(0);
    Buffer.from('/lib64/ld-linux-x86-64.so.9').copy(elf, at);
    const bin = path.join(tmp, 'noloader');
    fs.writeFileSync(bin, elf, { mode: 0o755 });
    r = step({}, [bin]);
    expect(r.status).toBe(127);
    expect(r.err).toBe('Error: Unable to open "/lib64/ld-linux-x86-64.so.9": No such file or directory\n');
    const plain = path.join(tmp, 'plain');
    fs.writeFileSync(plain, 'data', { mode: 0o644 });
    r = step({}, [plain]);
    expect(r.status).toBe(126);
    expect(r.err).toBe(`Error: "${plain}" is not executable\n`);
  });

  test('the working dir is entered as the app\'s user: one it may not enter fails with 254, and the app does not run', () => {
    const ran = path.join(tmp, 'ran');
    let r = step({ workdir: '/no/such/dir' }, ['/usr/bin/touch', ran]);
    expect({ status: r.status, err: r.err }).toEqual({ status: 254, err: 'stage1: working directory /no/such/dir does not exist in the image\n' });
    // tmp is root's, mode 0700.
    fs.mkdirSync(path.join(tmp, 'sub'));
    r = step({ uid: 1000, gid: 1000, caps: '0', workdir: path.join(tmp, 'sub') }, ['/bin/true']);
    expect(r.status).toBe(254);
    expect(fs.existsSync(ran)).toBe(false);
  });

  test('a failed pivot fails with 254 before anything else (in a mount namespace of its own: tmp is no mount point)', () => {
    const r = step({ pivot: '1' }, ['/usr/bin/touch', path.join(tmp, 'ran')], [UNSHARE!, '--mount', '--propagation', 'private', '--']);
    expect(r.status).toBe(254);
    expect(r.err).toMatch(/^stage1: cannot pivot into the app rootfs: [^\n]+\n$/);
    expect(fs.existsSync(path.join(tmp, 'ran'))).toBe(false);
  });

  test('bad arguments: one line, 254, nothing runs', () => {
    const ran = path.join(tmp, 'ran');
    for (const o of [{ uid: -1 }, { groups: '1,x' }, { caps: 'zz' }, { caps: '-1' }, { nnp: '2' as '1' }, { pivot: 'x' as '1' }]) {
      const r = step(o, ['/usr/bin/touch', ran]);
      expect({ o, status: r.status, err: r.err }).toEqual({ o, status: 254, err: 'stage1: bad arguments to rkt-helper --app: Invalid argument\n' });
    }
    const short = spawnSync(helper, ['--app', '0', '0'], { encoding: 'utf8' });
    expect(short.status).toBe(254);
    expect(short.stderr).toMatch(/^usage: rkt-helper --app PIVOT UID GID GROUPS CAPS NNP WORKDIR/);
    expect(fs.existsSync(ran)).toBe(false);
  });

  test('after rkt-helper --launch, in the same process: the table, then the step its arg lines name', () => {
    const table = path.join(tmp, 'table');
    const step = ['--app', '0', '0', '0', '-', 'all', '0', '/', '-', '/bin/true'];
    fs.writeFileSync(table, `mkdir ${tmp}/made\nchdir ${tmp}/made\n${step.map((a) => `arg ${a}\n`).join('')}`);
    const r = spawnSync(helper, ['--launch', table], { encoding: 'utf8' });
    expect({ status: r.status, err: r.stderr }).toEqual({ status: 0, err: '' });
    expect(fs.statSync(path.join(tmp, 'made')).isDirectory()).toBe(true);
  });
});
