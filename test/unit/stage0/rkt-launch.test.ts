/**
 * dist/rkt-launch (src/stage0/rkt-launch.c), the `rkt` command bin/rkt links to: it runs
 * stage0 (`node --require DIST/preload.cjs DIST/rkt.cjs ARG...`) with a pipe on fd 3 and
 * either passes on stage0's exit status or execs the command line stage0 handed back, in its
 * own process. Stage0 is played here by a shell script named node, first on PATH.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { describeIf, ROOT } from '../../helpers/rkt.js';

const DIST = path.join(ROOT, 'dist');
const LAUNCH = path.join(DIST, 'rkt-launch');
let dir: string;

beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-launch-test.')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * rkt-launch (as `rkt run arg 1`, a command that may start a pod) running a stage0 that is
 * `script` (sh: `$1` is then "arg 1", the node options and "run" shifted off), with `fd3`
 * (a file) open at its own fd 3. `command` other than run: as `rkt COMMAND arg 1`.
 */
function launch(script: string, fd3?: string, env: NodeJS.ProcessEnv = process.env, command = 'run') {
  const bin = fs.mkdtempSync(path.join(dir, 'bin-'));
  fs.writeFileSync(path.join(bin, 'node'), `#!/bin/sh\n[ "$1 $2 $3 $4" = "--require ${DIST}/preload.cjs ${DIST}/rkt.cjs ${command}" ] || exit 99\nshift 4\n${script}\n`, { mode: 0o755 });
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
  if (fd3) stdio.push(fs.openSync(fd3, 'r'));
  const r = spawnSync(LAUNCH, [command, 'arg 1'], { stdio, encoding: 'utf8', timeout: 20_000, env: { ...env, PATH: `${bin}:${env.PATH ?? ''}` } });
  if (typeof stdio[3] === 'number') fs.closeSync(stdio[3]);
  return r;
}

/** A hand-off record: the mode, then the command line, each NUL-terminated, then an empty field (printf format). */
const record = (mode: string, ...argv: string[]) => `printf '${[mode, ...argv].map((a) => `${a.replace(/'/g, `'\\''`)}\\0`).join('')}\\0' >&3`;

describeIf(!fs.existsSync(LAUNCH) ? 'dist/rkt-launch: npm run build' : undefined)('rkt-launch', () => {
  test('a command that hands nothing off: its output, its arguments and its exit status', () => {
    const r = launch('echo "out $1"; echo err >&2; exit 7');
    expect([r.status, r.stdout, r.stderr]).toEqual([7, 'out arg 1\n', 'err\n']);
  });

  test('stage0 killed by a signal: 128+N, as a shell says it', () => {
    expect(launch('kill -TERM $$').status).toBe(143);
  });

  test('stage0 sees RKT_HANDOFF_FD=3 and a pipe there; the launcher\'s own fd 3 stays for the program handed off', () => {
    const r = launch(`echo "$RKT_HANDOFF_FD $(readlink /proc/self/fd/3 | cut -d: -f1)"; ${record('wait', '/bin/sh', '-c', 'readlink /proc/self/fd/3')}`, '/etc/hostname');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('3 pipe\n/etc/hostname\n');
  });

  test('a command that cannot start a pod: stage0 is the launcher\'s own process, with no hand-off fd, and its status', () => {
    const r = launch('echo "$$ ${RKT_HANDOFF_FD-none} NODE=${NODE_EXTRA_CA_CERTS-unset} HELD=${RKT_HELD_NODE_EXTRA_CA_CERTS-unset}"; exit 6', undefined,
      { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: '/ca.pem' }, 'list');
    expect([r.status, r.stderr]).toEqual([6, '']);
    expect(r.stdout).toBe(`${r.pid} none NODE=unset HELD=/ca.pem\n`);
    // Any argument naming such a command keeps the hand-off: flags may come first, with values.
    const handOff = 'echo "${RKT_HANDOFF_FD-none}"';
    expect(launch(handOff, undefined, process.env, 'sandbox').stdout).toBe('3\n');
    expect(launch(handOff, undefined, process.env, 'run-prepared').stdout).toBe('3\n');
  });

  test('stage0 gets every NODE_* held as RKT_HELD_NODE_* (Node does not act on them); the program handed off gets the environment unchanged', () => {
    const show = 'env | grep -E "^(RKT_HELD_)?NODE_|^TZ=|^OTHER=" | sort | tr "\\n" " "; echo';
    const env = { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: "/my ca's/x.pem", NODE_OPTIONS: '--inspect --require /tmp/x.cjs', NODE_PATH: '/a=b', TZ: 'Asia/Kolkata', OTHER: 'NODE_X=1' };
    const r = launch(`${show}; ${record('wait', '/bin/sh', '-c', show)}`, undefined, env);
    expect([r.status, r.stderr]).toEqual([0, '']);
    const [stage0, handedOff] = r.stdout.split('\n');
    expect(stage0).toBe("OTHER=NODE_X=1 RKT_HELD_NODE_EXTRA_CA_CERTS=/my ca's/x.pem RKT_HELD_NODE_OPTIONS=--inspect --require /tmp/x.cjs RKT_HELD_NODE_PATH=/a=b TZ=Asia/Kolkata ");
    expect(handedOff).toBe("NODE_EXTRA_CA_CERTS=/my ca's/x.pem NODE_OPTIONS=--inspect --require /tmp/x.cjs NODE_PATH=/a=b OTHER=NODE_X=1 TZ=Asia/Kolkata ");
    // Only the launcher's own RKT_HELD_* reach stage0 (a caller's could pass for them); none set, none made.
    expect(launch(show, undefined, { PATH: process.env.PATH, RKT_HELD_NODE_OPTIONS: '--inspect' }).stdout).toBe('\n');
  });

  test('stage0 gets only PATH\'s absolute directories (it runs host tools by name, as root); the program handed off gets PATH unchanged', () => {
    const show = 'echo "$PATH"';
    const r = launch(`${show}; ${record('wait', '/bin/sh', '-c', show)}`, undefined, { PATH: '::rel:.:/usr/bin:./x:/bin:' });
    expect([r.status, r.stderr]).toEqual([0, '']);
    const [stage0, handedOff] = r.stdout.split('\n');
    // launch() puts its fake node's directory first.
    expect(stage0).toMatch(/^\/[^:]+\/bin-[^:]+:\/usr\/bin:\/bin$/);
    expect(handedOff).toBe(`${stage0.split(':')[0]}:::rel:.:/usr/bin:./x:/bin:`);
  });

  test('the umask gains 022 for stage0 and the program handed off; a caller\'s stricter bits stay', () => {
    const bin = fs.mkdtempSync(path.join(dir, 'bin-'));
    fs.writeFileSync(path.join(bin, 'node'), `#!/bin/sh\numask\nprintf 'wait\\0/bin/sh\\0-c\\0umask\\0\\0' >&3\n`, { mode: 0o755 });
    for (const [caller, want] of [['000', '0022'], ['002', '0022'], ['077', '0077'], ['027', '0027'], ['022', '0022']]) {
      const r = spawnSync('sh', ['-c', `umask ${caller}; exec "$@"`, 'sh', LAUNCH, 'run'], { encoding: 'utf8', env: { PATH: `${bin}:${process.env.PATH}` } });
      expect([caller, r.status, r.stdout]).toEqual([caller, 0, `${want}\n${want}\n`]);
    }
  });

  test('"go": the program runs in the launcher\'s own process, while stage0 is still running', () => {
    // stage0 leaves the pipes of stdout and stderr (spawnSync would wait for them) and stays.
    const r = launch(`echo $$ > ${dir}/stage0.pid; exec >/dev/null 2>&1; ${record('go', '/bin/sh', '-c', `echo "$$"; kill -0 "$(cat ${dir}/stage0.pid)" && echo running; kill "$(cat ${dir}/stage0.pid)"`)}; exec sleep 20`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${r.pid}\nrunning\n`);
  });

  test('"wait": the program runs once stage0 has exited, and only if it exited 0', () => {
    const program = ['/bin/sh', '-c', `kill -0 "$(cat ${dir}/stage0.pid)" 2>/dev/null && echo running || echo gone`];
    const ok = launch(`echo $$ > ${dir}/stage0.pid; ${record('wait', ...program)}; sleep 0.2`);
    expect([ok.status, ok.stdout, ok.stderr]).toEqual([0, 'gone\n', '']);
    const failed = launch(`${record('wait', ...program)}; exit 5`);
    expect([failed.status, failed.stdout]).toEqual([5, '']);
  });

  test('a record cut short, or of an unknown mode: 254, said in one line', () => {
    const cut = launch(`printf 'go\\0/bin/echo\\0x' >&3`);
    expect([cut.status, cut.stdout, cut.stderr]).toEqual([254, '', 'rkt: stage1 hand-off failed: stage0 wrote a malformed record\n']);
    const mode = launch(record('jump', '/bin/echo', 'x'));
    expect([mode.status, mode.stdout, mode.stderr]).toEqual([254, '', 'rkt: stage1 hand-off failed: stage0 wrote a malformed record\n']);
    // A stage0 that failed keeps its own status.
    expect(launch(`printf 'go\\0/bin/echo' >&3; exit 3`).status).toBe(3);
  });

  test('a program that cannot run: 254, naming it', () => {
    const r = launch(record('go', '/nonexistent/stage1'));
    expect([r.status, r.stderr]).toEqual([254, 'rkt: stage1 hand-off failed: cannot run /nonexistent/stage1: No such file or directory\n']);
  });

  test('no node on PATH: one line saying so, 254', () => {
    const r = spawnSync(LAUNCH, ['version'], { encoding: 'utf8', env: { PATH: dir } });
    expect([r.status, r.stdout, r.stderr]).toEqual([254, '', 'rkt: node not found on PATH: install Node.js 20.19 or later (rkt runs on it)\n']);
    // A node in the directory rkt is started from is not run, whatever PATH says of it.
    const cwd = fs.mkdtempSync(path.join(dir, 'cwd-'));
    fs.mkdirSync(path.join(cwd, 'rel'));
    for (const f of ['node', 'rel/node']) fs.writeFileSync(path.join(cwd, f), '#!/bin/sh\necho planted\n', { mode: 0o755 });
    for (const PATH of [':', `${dir}:`, `:${dir}`, `${dir}::${dir}`, '.', 'rel', './rel']) {
      const planted = spawnSync(LAUNCH, ['version'], { encoding: 'utf8', cwd, env: { PATH } });
      expect([PATH, planted.status, planted.stdout]).toEqual([PATH, 254, '']);
    }
  });

  test('reached through links (bin/rkt, npm\'s): its own dist/ all the same; a dist without the bundle: build first, 254', () => {
    const links = fs.mkdtempSync(path.join(dir, 'links-'));
    fs.symlinkSync(path.relative(links, LAUNCH), path.join(links, 'first'));
    fs.symlinkSync('first', path.join(links, 'rkt'));
    const bin = fs.mkdtempSync(path.join(dir, 'bin-'));
    fs.writeFileSync(path.join(bin, 'node'), '#!/bin/sh\necho "$3"\n', { mode: 0o755 });
    const r = spawnSync(path.join(links, 'rkt'), [], { encoding: 'utf8', env: { PATH: bin } });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `${DIST}/rkt.cjs\n`, '']);
    // A copy of the launcher alone, in a dist/ with nothing else.
    const bare = fs.mkdtempSync(path.join(dir, 'dist-'));
    fs.copyFileSync(LAUNCH, path.join(bare, 'rkt-launch'));
    fs.chmodSync(path.join(bare, 'rkt-launch'), 0o755);
    const unbuilt = spawnSync(path.join(bare, 'rkt-launch'), ['version'], { encoding: 'utf8', env: { PATH: bin } });
    expect([unbuilt.status, unbuilt.stdout, unbuilt.stderr]).toEqual([254, '', `rkt: ${bare}/preload.cjs is missing: build rkt first (npm run build)\n`]);
  });
});
