/**
 * rkt-notify (src/stage1/helper/notify.c), the pod's holder under a Type=notify unit, run
 * without root: a shell stands in for the pod's init and its apps, a Python datagram
 * listener for systemd. And the TypeScript that decides when it is used.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { describeIf, ROOT } from '../../helpers/rkt.js';
import { notifySocket } from '../../../src/stage0/start.js';
import { NOTIFY_READY_FD, runArgv } from '../../../src/stage1/scripts.js';
import type { PodPlan } from '../../../src/stage1/plan.js';

const HELPER = path.join(ROOT, 'dist', 'stage1', 'rkt-notify');
const PYTHON = spawnSync('sh', ['-c', 'command -v python3']).status === 0;
const runnable = describeIf(!fs.existsSync(HELPER) ? 'dist/stage1/rkt-notify: npm run build' : !PYTHON ? 'python3 (scripts/setup.sh)' : undefined);

const LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    print(repr(s.recv(8192).decode()), flush=True)
`;

runnable('rkt-notify', () => {
  let tmp: string;
  let listener: ChildProcess;
  let heard: string[];
  beforeEach(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-notify-'));
    heard = [];
    listener = spawn('python3', ['-c', LISTENER, path.join(tmp, 'systemd')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    listener.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l !== 'listening') heard.push(l.slice(1, -1).replace(/\\n/g, '\n'));
    });
    for (let i = 0; i < 250 && !fs.existsSync(path.join(tmp, 'systemd')); i++) await new Promise((r) => setTimeout(r, 20));
  });
  afterEach(() => { listener.kill('SIGKILL'); fs.rmSync(tmp, { recursive: true, force: true }); });

  /** rkt-notify FD READY [SOCKETS] -- sh -c SCRIPT, with NOTIFY_SOCKET set; resolves with its status and stderr. */
  function holder(sockets: string[], script: string, notify = path.join(tmp, 'systemd')) {
    const child = spawn(HELPER, [String(NOTIFY_READY_FD), path.join(tmp, 'ready'), ...sockets.map((s) => path.join(tmp, s)), '--', 'sh', '-c', script, 'init'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: notify }, cwd: tmp });
    let stderr = '';
    let stdout = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    const done = new Promise<{ code: number | null; signal: string | null; stderr: string; stdout: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr, stdout })));
    /** Resolves once the init printed `text` (the holder is set up by then). */
    const printed = async (text: string) => { for (let i = 0; i < 500 && !stdout.includes(text); i++) await new Promise((r) => setTimeout(r, 20)); };
    return { child, done, printed };
  }
  /** A shell line that sends MSG as one datagram to socket NAME in tmp (python: sh cannot). */
  const send = (name: string, msg: string) => sends([[name, msg]]);
  /** One Python run that sends each [socket, message] in turn, pausing 0.3 s for each number. */
  const sends = (steps: Array<[string, string] | number>) => `python3 -c '
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for step in json.loads(sys.argv[1]):
    if isinstance(step, list): s.sendto(step[1].encode(), step[0])
    else: time.sleep(0.3)
' '${JSON.stringify(steps)}'`;
  const settle = () => new Promise((r) => setTimeout(r, 300));

  test('no app speaks sd_notify: READY=1 and MAINPID once the init says every app started, then its exit status', async () => {
    const h = holder([], `sleep 0.2; echo started >&${NOTIFY_READY_FD}; exec ${NOTIFY_READY_FD}>&-; sleep 0.3; exit 7`);
    const r = await h.done;
    await settle();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(7);
    expect(heard).toEqual([`READY=1\nMAINPID=${h.child.pid}\n`]);
    // The marker rkt status --wait-ready waits for.
    expect(fs.existsSync(path.join(tmp, 'ready'))).toBe(true);
  });

  test('the init never says so (it failed while starting): no READY=1', async () => {
    const r = await holder([], `exec ${NOTIFY_READY_FD}>&-; exit 254`).done;
    await settle();
    expect(r.code).toBe(254);
    expect(heard).toEqual([]);
    expect(fs.existsSync(path.join(tmp, 'ready'))).toBe(false);
  });

  test('apps that speak sd_notify: READY=1 only once each said READY=1; STATUS, WATCHDOG, STOPPING relayed; the rest dropped', async () => {
    const script = [
      `echo started >&${NOTIFY_READY_FD}`,
      sends([
        ['a', 'STATUS=a starting'], ['a', 'READY=1'], 1,
        // b lies about the main PID and asks for things only systemd's own services may.
        ['b', 'MAINPID=1\nFDSTORE=1\nNOTIFYACCESS=all\nSTATUS=b almost'], 1,
      ]),
      // Only a said READY=1: the pod is not ready yet.
      'ls ready 2>&1',
      sends([
        ['b', 'READY=1\nWATCHDOG=1'], 1,
        ['a', 'STOPPING=1'], 1,
      ]),
      'ls ready',
    ].join('\n');
    const h = holder(['a', 'b'], script);
    const r = await h.done;
    await settle();
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe("ls: cannot access 'ready': No such file or directory\nready\n");
    expect(r.code).toBe(0);
    expect(heard).toEqual(['STATUS=a starting\n', 'STATUS=b almost\n', 'WATCHDOG=1\n', `READY=1\nMAINPID=${h.child.pid}\n`, 'STOPPING=1\n']);
    // The sockets go with the pod.
    expect(fs.existsSync(path.join(tmp, 'a'))).toBe(false);
    expect(fs.existsSync(path.join(tmp, 'b'))).toBe(false);
  });

  test('what an app sent just before the pod ended still goes up', async () => {
    const r = await holder(['a'], `echo started >&${NOTIFY_READY_FD}; ${send('a', 'STOPPING=1')}; exit 0`).done;
    await settle();
    expect(r.code).toBe(0);
    expect(heard).toEqual(['STOPPING=1\n']);
  });

  test('the sockets are there, writable by any uid, before the init runs; the init gets the pipe on its fd, and no NOTIFY_SOCKET', async () => {
    const r = await holder(['a'], `stat -c %A a; readlink /proc/$$/fd/${NOTIFY_READY_FD}; echo "[$NOTIFY_SOCKET]"`).done;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^srw-rw-rw-\npipe:\[\d+\]\n\[\]\n$/);
  });

  test('signals go to the init; a signal that ends it gives 128+N', async () => {
    const h = holder([], `trap 'echo got HUP; exit 3' HUP; echo up; while :; do sleep 0.05; done`);
    await h.printed('up');
    h.child.kill('SIGHUP');
    const r = await h.done;
    expect(r.stdout).toBe('up\ngot HUP\n');
    expect(r.code).toBe(3);
    const k = holder([], 'echo up; exec sleep 30');
    await k.printed('up');
    k.child.kill('SIGTERM');
    expect((await k.done).code).toBe(143);
  });

  test('a NOTIFY_SOCKET nobody listens on: one warning, the pod runs and its status comes back', async () => {
    const r = await holder([], `echo started >&${NOTIFY_READY_FD}; exit 0`, path.join(tmp, 'nobody')).done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`stage1: warning: cannot notify NOTIFY_SOCKET=${path.join(tmp, 'nobody')}: No such file or directory\n`);
  });
});

describe('NOTIFY_SOCKET from the caller (stage0)', () => {
  let tmp: string;
  let stderr: jest.SpiedFunction<typeof process.stderr.write>;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-notify-env-'));
    stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => { stderr.mockRestore(); fs.rmSync(tmp, { recursive: true, force: true }); });
  const said = () => stderr.mock.calls.map((c) => String(c[0])).join('');

  test('unset or empty: no notification, nothing said', () => {
    expect(notifySocket(undefined)).toBeUndefined();
    expect(notifySocket('')).toBeUndefined();
    expect(said()).toBe('');
  });

  test('an abstract @name is taken as it is', () => {
    expect(notifySocket('@/org/freedesktop/systemd1/notify/1')).toBe('@/org/freedesktop/systemd1/notify/1');
    expect(said()).toBe('');
  });

  test('a missing path, a regular file, a relative path or a lone @: one warning each, and no notification', () => {
    fs.writeFileSync(path.join(tmp, 'file'), '');
    for (const v of [path.join(tmp, 'missing'), path.join(tmp, 'file'), 'rel.sock', '@']) expect(notifySocket(v)).toBeUndefined();
    expect(said().trim().split('\n')).toEqual([
      `: warning: NOTIFY_SOCKET=${path.join(tmp, 'missing')} does not exist: the pod runs, but its readiness is not reported`,
      `: warning: NOTIFY_SOCKET=${path.join(tmp, 'file')} is not a socket: the pod runs, but its readiness is not reported`,
      ': warning: NOTIFY_SOCKET=rel.sock is not an absolute path or @name: the pod runs, but its readiness is not reported',
      ': warning: NOTIFY_SOCKET=@ is not an absolute path or @name: the pod runs, but its readiness is not reported',
    ].map((l) => expect.stringContaining(l) as unknown as string));
  });
});

describe('stage1 scripts with rkt-notify', () => {
  const plan = (notify?: PodPlan['notify']): PodPlan => ({
    uuid: 'u', podDir: '/pods/run/u', hostname: 'h', apps: [], net: { kind: 'host' }, sharedIpc: false, interactive: false, openPaths: false,
    podCgroupProcs: [], stopGraceSeconds: 10,
    tools: { nsenter: '/n', busybox: '/bb', helper: '/h' },
    ...(notify ? { notify } : {}),
  });

  test('rkt-notify holds the pod in rkt-helper --pod\'s place, with the readiness fd and the apps\' sockets, and execs rkt-helper --init', () => {
    const run = runArgv(plan({ helper: '/dist/rkt-notify', sockets: ['/pods/run/u/stage1/notify/web'] }));
    expect(run.slice(5, 12)).toEqual(['/dist/rkt-notify', String(NOTIFY_READY_FD), '/pods/run/u/rkt/ready', '/pods/run/u/stage1/notify/web', '--', '/h', '--init']);
    // Without it, rkt-helper --pod holds the pod itself, and PID 1 is its fork.
    expect(runArgv(plan()).slice(5, 7)).toEqual(['--init', '/pods/run/u/stage1/init.table']);
  });

  test('rkt-helper --init is told to say "started" on the fd (NOTIFY=1) only with rkt-notify', () => {
    // What PID 1 then does (after every launcher runs, and launchers do not get the fd) is
    // tested against the real rkt-helper --init in scripts.test.ts.
    const p = plan({ helper: '/dist/rkt-notify', sockets: [] });
    p.apps = [{ name: 'web', capabilities: [] } as unknown as PodPlan['apps'][number]];
    const notifyArg = (q: PodPlan) => { const argv = runArgv(q); return argv[argv.indexOf('--init') + 5]; };
    expect(notifyArg(p)).toBe('1');
    expect(notifyArg({ ...p, notify: undefined })).toBe('0');
  });
});
