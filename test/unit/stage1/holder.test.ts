/**
 * rkt-helper --pod ... --init: the process rkt's caller started holds the pod (tini's part,
 * without an exec of tini): its fork is the pod's PID 1, which it gives a process group of
 * its own; it forwards signals to it, reaps every child it has, and exits with PID 1's status.
 * Run as root: the pod's namespaces are real.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { describeIf, isRoot, ROOT } from '../../helpers/rkt.js';
import { renderTable } from '../../../src/stage1/scripts.js';

const HELPER = path.join(ROOT, 'dist', 'stage1', 'rkt-helper');

describeIf(!fs.existsSync(HELPER) ? 'dist/stage1/rkt-helper: npm run build' : !isRoot ? 'root (rkt-helper --pod makes namespaces)' : undefined)('rkt-helper --pod holding the pod', () => {
  let tmp: string;
  let pod: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-holder-'));
    pod = path.join(tmp, 'pod');
    for (const d of ['stage1', 'rkt/pid', 'rkt/status']) fs.mkdirSync(path.join(pod, d), { recursive: true });
    fs.writeFileSync(path.join(pod, 'stage1', 'init.table'), '');
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** The pod, with one app `web` that is `sh -c script`; `wrap` runs before the holder, in its process (sh). */
  function start(script: string, wrap = '') {
    fs.writeFileSync(path.join(pod, 'stage1', 'app-web.launch'), renderTable([
      ['stopping', path.join(pod, 'rkt/stopping')],
      ...['/bin/sh', '-c', script].map((a) => ['arg', a]),
    ]));
    const argv = [HELPER, '--pod', '0', '-', 'uts,pid,ipc', '--init', path.join(pod, 'stage1', 'init.table'), '20', '1000', '0', '0', 'web'];
    const child = spawn('/bin/sh', ['-c', `${wrap} exec "$@"`, 'sh', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
    return { child, done };
  }
  const out = (name: string) => fs.readFileSync(path.join(tmp, name), 'utf8');
  const stat = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  async function until(file: string) {
    for (let i = 0; i < 500 && !fs.existsSync(path.join(tmp, file)); i++) await new Promise((r) => setTimeout(r, 10));
  }

  test("its fork is PID 1 of the pod's PID namespace, in a process group of its own; the holder exits with the pod's status", async () => {
    const { child, done } = start(`echo "$PPID" > ${tmp}/ppid; : > ${tmp}/up; sleep 0.3; exit 3`);
    await until('up');
    const holder = child.pid!;
    const [init, ...more] = fs.readFileSync(`/proc/${holder}/task/${holder}/children`, 'utf8').trim().split(' ').map(Number);
    expect(more).toEqual([]);
    expect(fs.readFileSync(`/proc/${init}/cmdline`, 'utf8').split('\0').slice(1, 7)).toEqual(['--pod', '0', '-', 'uts,pid,ipc', '--init', path.join(pod, 'stage1', 'init.table')]);
    expect(fs.readFileSync(`/proc/${init}/status`, 'utf8')).toMatch(new RegExp(`\\nNSpid:\\t${init}\\t1\\n`));
    // Fields 3 and 4 after the name: ppid, pgrp.
    expect(stat(init).slice(1, 3).map(Number)).toEqual([holder, init]);
    expect(Number(stat(holder)[2])).not.toBe(init);
    const r = await done;
    expect(r).toEqual({ code: 3, stderr: '' });
    expect(out('ppid').trim()).toBe('1');
    expect(fs.readFileSync(path.join(pod, 'rkt/status/web'), 'utf8').trim()).toBe('3');
  });

  test('a SIGTERM to the holder goes to PID 1, which stops the app: 0, a stop asked for', async () => {
    const { child, done } = start(`trap 'echo term > ${tmp}/got; exit 0' TERM; : > ${tmp}/up; while :; do sleep 0.05; done`);
    await until('up');
    child.kill('SIGTERM');
    expect(await done).toEqual({ code: 0, stderr: '' });
    expect(out('got')).toBe('term\n');
  });

  test('it reaps a child it had before (stage0 exiting after the hand-off) and still waits for PID 1', async () => {
    // The sleep is the shell's child, and so the holder's once the shell execs it.
    const { done } = start(`sleep 0.5; : > ${tmp}/app-done; exit 5`, 'sleep 0.1 &');
    expect(await done).toEqual({ code: 5, stderr: '' });
    expect(fs.existsSync(path.join(tmp, 'app-done'))).toBe(true);
  });
});
