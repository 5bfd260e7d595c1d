/**
 * sd_notify with real pods, against a datagram listener (Python) that stands in for
 * systemd and records each message with its sender's PID (SCM_CREDENTIALS): systemd's
 * NotifyAccess=main takes only what comes from the service's main process, rkt's PID.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { BUSYBOX_ACI, RKT, ROOT, RktEnv, makeEnv, describeIf, skipReason, waitFor, rkt, rktBackground } from '../helpers/rkt.js';
import { INSECURE, buildBusyboxAci, podTraces, statusText, teardown } from '../helpers/pods.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const suite = describeIf(skipReason()
  ?? (have('python3') ? undefined : 'needs python3 (scripts/setup.sh)')
  ?? (have('gcc') && fs.existsSync('/usr/lib/x86_64-linux-gnu/libc.a') ? undefined : 'needs gcc and libc6-dev (scripts/setup.sh)'));

/** A NOTIFY_SOCKET listener: prints one JSON line per datagram, with the sender's PID. */
const LISTENER = `
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print("listening", flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', data[:12])[0]
    print(json.dumps({"pid": pid, "msg": msg.decode()}), flush=True)
`;

interface Note { pid: number; msg: string }

class Listener {
  readonly notes: Note[] = [];
  private child: ChildProcess;
  private out = '';
  constructor(readonly socket: string) {
    this.child = spawn('python3', ['-c', LISTENER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.out += d.toString();
      const lines = this.out.split('\n');
      this.out = lines.pop()!;
      for (const l of lines) if (l.startsWith('{')) this.notes.push(JSON.parse(l) as Note);
    });
  }
  async ready(): Promise<void> { await waitFor(() => fs.existsSync(this.socket), 30_000, 'the listener'); }
  stop(): void { this.child.kill('SIGKILL'); }
}

/** rkt run in the background with NOTIFY_SOCKET set, as systemd starts a Type=notify service. */
function runWithNotify(env: RktEnv, notifySocket: string, args: string[]) {
  return rktBackground(env, args, { ...process.env, NOTIFY_SOCKET: notifySocket });
}

suite('sd_notify', () => {
  let env: RktEnv;
  let notifyAci: string;
  const listeners: Listener[] = [];
  const listen = async (name: string) => { const l = new Listener(path.join(env.base, name)); listeners.push(l); await l.ready(); return l; };

  beforeAll(async () => {
    env = makeEnv('rkt-it-notify-');
    const bin = path.join(env.base, 'sdnotify');
    execFileSync('gcc', ['-static', '-O1', '-o', bin, path.join(ROOT, 'test', 'helpers', 'sdnotify.c')]);
    notifyAci = path.join(env.base, 'notify.aci');
    await buildBusyboxAci(notifyAci, 'rkt.local/notify', ['sh', 'sleep', 'echo', 'touch', 'cat'], [{ path: 'bin/sdnotify', content: fs.readFileSync(bin), mode: 0o755 }], {},
      { annotations: [{ name: 'appc.io/executor/supports-systemd-notify', value: 'true' }] });
  });
  afterAll(async () => {
    for (const l of listeners) l.stop();
    await teardown(env);
  });

  test('a plain image: READY=1 with MAINPID comes from rkt\'s own PID once the app started; the relay ends with the pod', async () => {
    const l = await listen('plain.sock');
    const uuidFile = path.join(env.base, 'plain-uuid');
    const pod = runWithNotify(env, l.socket, [INSECURE, 'run', '--net=host', `--uuid-file-save=${uuidFile}`, BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', 'echo started; exec sleep 1000']);
    await waitFor(() => l.notes.length > 0, 20_000, 'READY=1');
    await waitFor(() => pod.output().stdout === 'started\n', 10_000, 'the app');
    expect(l.notes).toEqual([{ pid: pod.child.pid, msg: `READY=1\nMAINPID=${pod.child.pid}\n` }]);
    const uuid = fs.readFileSync(uuidFile, 'utf8');
    expect(statusText(env, uuid).state).toBe('running');
    expect(rkt(env, ['stop', uuid]).status).toBe(0);
    const done = await pod.done;
    expect(done.code).toBe(0);
    // Nothing of the relay is left: no process, no socket file.
    expect(podTraces(env, uuid).procs).toEqual([]);
    expect(l.notes).toHaveLength(1);
  });

  test('an image with supports-systemd-notify: READY=1 waits for the app\'s own; STATUS, WATCHDOG and STOPPING are relayed, nothing else', async () => {
    const l = await listen('app.sock');
    const uuidFile = path.join(env.base, 'app-uuid');
    const script = [
      'echo "$NOTIFY_SOCKET"',
      // Set before WATCHDOG=1, after which the test stops the pod.
      'trap \'sdnotify STOPPING=1; exit 0\' TERM',
      'sdnotify "STATUS=warming up"',
      // Not systemd's business, or a lie: dropped by the relay.
      'sdnotify "MAINPID=1" "FDSTORE=1" "BARRIER=1"',
      'sleep 1',
      'touch /tmp/ready',
      'sdnotify "READY=1',
      'STATUS=serving"',
      'sdnotify WATCHDOG=1',
      'while :; do sleep 0.1; done',
    ].join('\n');
    const pod = runWithNotify(env, l.socket, [INSECURE, 'run', '--net=host', `--uuid-file-save=${uuidFile}`, notifyAci, '--exec=/bin/sh', '--', '-c', script]);
    await waitFor(() => l.notes.some((n) => n.msg.includes('READY=1')), 20_000, 'READY=1');
    expect(pod.output().stdout).toBe('/run/systemd/notify\n');
    const uuid = fs.readFileSync(uuidFile, 'utf8');
    await waitFor(() => l.notes.some((n) => n.msg === 'WATCHDOG=1\n'), 10_000, 'WATCHDOG=1');
    expect(rkt(env, ['stop', uuid]).status).toBe(0);
    const done = await pod.done;
    expect(done.code).toBe(0);
    const rktPid = pod.child.pid;
    expect(l.notes.every((n) => n.pid === rktPid)).toBe(true);
    expect(l.notes.map((n) => n.msg)).toEqual([
      'STATUS=warming up\n',
      'STATUS=serving\n',
      `READY=1\nMAINPID=${rktPid}\n`,
      'WATCHDOG=1\n',
      'STOPPING=1\n',
    ]);
    expect(podTraces(env, uuid).procs).toEqual([]);
  });

  test('one app that speaks sd_notify and one that does not: READY=1 once the notify app said so', async () => {
    const l = await listen('mixed.sock');
    const pod = runWithNotify(env, l.socket, [INSECURE, 'run', '--net=host',
      BUSYBOX_ACI, '--name=plain', '--exec=/bin/sleep', '--', '1000', '---',
      notifyAci, '--name=talker', '--exec=/bin/sh', '--', '-c', 'sleep 1; echo said; sdnotify READY=1; exec sleep 1000']);
    await waitFor(() => l.notes.length > 0, 20_000, 'READY=1');
    expect(pod.output().stdout).toBe('said\n');
    expect(l.notes.map((n) => n.msg)).toEqual([`READY=1\nMAINPID=${pod.child.pid}\n`]);
    pod.child.kill('SIGTERM');
    expect((await pod.done).code).toBe(0);
  });

  test.each([
    ['a file that does not exist', (base: string) => path.join(base, 'nowhere.sock'), 'does not exist'],
    ['a regular file', (base: string) => { const f = path.join(base, 'plain-file'); fs.writeFileSync(f, ''); return f; }, 'is not a socket'],
    ['a relative path', () => 'notify.sock', 'is not an absolute path or @name'],
  ])('NOTIFY_SOCKET naming %s: one warning, the pod still runs', async (_what, make, why) => {
    const socket = make(env.base);
    const pod = runWithNotify(env, socket, [INSECURE, 'run', '--net=host', BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', 'echo ran; exit 3']);
    const done = await pod.done;
    expect(done.stdout).toBe('ran\n');
    expect(done.code).toBe(3);
    const warnings = done.stderr.split('\n').filter((x) => x.includes('NOTIFY_SOCKET'));
    expect(warnings).toEqual([`run: warning: NOTIFY_SOCKET=${socket} ${why}: the pod runs, but its readiness is not reported`]);
  });
  test('status --wait-ready of a plain pod: waits across run-prepared, then returns while it runs', async () => {
    const prep = rkt(env, [INSECURE, 'prepare', BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', 'echo up; exec sleep 1000']);
    expect(prep.status).toBe(0);
    const uuid = prep.stdout.trim();
    const early = rkt(env, ['status', '--wait-ready=300ms', uuid]);
    expect(early.status).toBe(254);
    expect(early.stderr).toBe(`status: pod ${uuid} is prepared but not ready after --wait-ready=300ms\n`);
    const waiter = rktBackground(env, ['status', '--wait-ready', uuid]);
    const pod = rktBackground(env, ['run-prepared', '--net=host', uuid]);
    const waited = await waiter.done;
    expect(waited.stderr).toBe('');
    expect(waited.code).toBe(0);
    expect(waited.stdout).toMatch(/^state=running$/m);
    // A negative duration waits for ever, as rkt; the pod is ready, so it returns at once.
    expect(rkt(env, ['status', '--wait-ready=-1s', uuid]).status).toBe(0);
    await waitFor(() => pod.output().stdout === 'up\n', 10_000, 'the app');
    expect(rkt(env, ['stop', uuid]).status).toBe(0);
    expect((await pod.done).code).toBe(0);
    // Still ready once exited (it was), and --wait with it returns the final status.
    const after = rkt(env, ['status', '--wait-ready=1s', '--wait=1s', uuid]);
    expect(after.status).toBe(0);
    expect(after.stdout).toMatch(/^state=exited$/m);
  });

  test('status --wait-ready under a Type=notify unit: ready when the app said READY=1, not when it started', async () => {
    const l = await listen('wait-ready.sock');
    const uuidFile = path.join(env.base, 'wait-ready-uuid');
    const pod = runWithNotify(env, l.socket, [INSECURE, 'run', '--net=host', `--uuid-file-save=${uuidFile}`, notifyAci, '--exec=/bin/sh', '--', '-c',
      'echo up; while [ ! -e /go ]; do sleep 0.05; done; sdnotify READY=1; exec sleep 1000']);
    await waitFor(() => pod.output().stdout === 'up\n', 20_000, 'the app');
    const uuid = fs.readFileSync(uuidFile, 'utf8');
    const early = rkt(env, ['status', '--wait-ready=500ms', uuid]);
    expect(early.status).toBe(254);
    expect(early.stderr).toBe(`status: pod ${uuid} is running but not ready after --wait-ready=500ms\n`);
    const waiter = rktBackground(env, ['status', '--wait-ready=60s', uuid]);
    const enter = rkt(env, ['enter', uuid, '/bin/touch', '/go']);
    expect(enter.stderr).toBe('');
    expect(enter.status).toBe(0);
    const waited = await waiter.done;
    expect(waited.code).toBe(0);
    expect(waited.stdout).toMatch(/^state=running$/m);
    // The marker comes with READY=1 to systemd: the listener has it by now or very soon.
    await waitFor(() => l.notes.length > 0, 10_000, 'READY=1');
    expect(l.notes.map((n) => n.msg)).toEqual([`READY=1\nMAINPID=${pod.child.pid}\n`]);
    expect(rkt(env, ['stop', uuid]).status).toBe(0);
    expect((await pod.done).code).toBe(0);
  });

  test('status --wait-ready of a pod that ended without saying READY=1: one line, 254, no endless wait', async () => {
    const l = await listen('never.sock');
    const uuidFile = path.join(env.base, 'never-uuid');
    const pod = runWithNotify(env, l.socket, [INSECURE, 'run', '--net=host', `--uuid-file-save=${uuidFile}`, notifyAci, '--exec=/bin/sh', '--', '-c', 'exit 3']);
    expect((await pod.done).code).toBe(3);
    const uuid = fs.readFileSync(uuidFile, 'utf8');
    const r = rkt(env, ['status', '--wait-ready', uuid]);
    expect(r.status).toBe(254);
    expect(r.stderr).toBe(`status: pod ${uuid} is exited and never became ready: see its apps' exit statuses with rkt status\n`);
    expect(l.notes).toEqual([]);
  });

  test.each([['--wait-ready=soon'], ['--wait=10'], ['--wait-ready=-']])('status %s: one line, 254', (flag) => {
    const r = rkt(env, ['status', flag, '00000000-0000-0000-0000-000000000000']);
    expect(r.status).toBe(254);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/^status: invalid (value|duration) ".*" for --wait(-ready)?: use true, false or a duration like 10s/);
  });
});
