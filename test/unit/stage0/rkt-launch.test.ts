/**
 * dist/rkt-launch (src/stage0/rkt-launch.c), which bin/rkt execs: it runs stage0 with a pipe
 * on fd 3 and either passes on stage0's exit status or execs the command line stage0 handed
 * back, in its own process. Stage0 is played here by a shell script.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { describeIf, ROOT } from '../../helpers/rkt.js';

const LAUNCH = path.join(ROOT, 'dist', 'rkt-launch');
let dir: string;

beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-launch-test.')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** rkt-launch running a stage0 that is `script` (sh), with `fd3` (a file) open at its own fd 3. */
function launch(script: string, fd3?: string, env: NodeJS.ProcessEnv = process.env) {
  const stage0 = path.join(dir, `stage0-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(stage0, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
  if (fd3) stdio.push(fs.openSync(fd3, 'r'));
  const r = spawnSync(LAUNCH, [stage0, 'arg 1'], { stdio, encoding: 'utf8', timeout: 20_000, env });
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

  test('stage0 gets NODE_EXTRA_CA_CERTS as RKT_EXTRA_CA_CERTS (Node does not read it at start); the program handed off gets it unchanged', () => {
    const show = 'echo "NODE=${NODE_EXTRA_CA_CERTS-unset} RKT=${RKT_EXTRA_CA_CERTS-unset}"';
    const env = { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: "/my ca's/x.pem" };
    const r = launch(`${show}; ${record('wait', '/bin/sh', '-c', show)}`, undefined, env);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe("NODE=unset RKT=/my ca's/x.pem\nNODE=/my ca's/x.pem RKT=unset\n");
    // Not set: nothing set for stage0 either.
    expect(launch(show, undefined, { PATH: process.env.PATH }).stdout).toBe('NODE=unset RKT=unset\n');
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

  test('stage0 not found on PATH: 254 (as a shell, it says so)', () => {
    const r = spawnSync(LAUNCH, ['rkt-no-such-node'], { encoding: 'utf8', env: { PATH: dir } });
    expect(r.status).toBe(254);
    expect(r.stderr).toBe('rkt: cannot run rkt-no-such-node: No such file or directory\n');
  });
});
