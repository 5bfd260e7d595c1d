/**
 * Socket activation with real pods: a parent (Python, standing in for systemd's .socket
 * unit) binds a listening TCP socket to fd 3 and execs rkt with LISTEN_FDS/LISTEN_PID; the
 * app whose image port is socketActivated gets it as fd 3 with LISTEN_PID its own PID and
 * accepts a real client connection; other apps and mismatched LISTEN_PIDs get nothing.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { BUSYBOX_ACI, RKT, ROOT, RktEnv, background, makeEnv, describeIf, skipReason, waitFor } from '../helpers/rkt.js';
import { INSECURE, buildBusyboxAci, sections, teardown } from '../helpers/pods.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const suite = describeIf(skipReason()
  ?? (have('python3') ? undefined : 'needs python3 (scripts/setup.sh)')
  ?? (have('gcc') && fs.existsSync('/usr/lib/x86_64-linux-gnu/libc.a') ? undefined : 'needs gcc and libc6-dev (scripts/setup.sh)'));

/**
 * Binds SOCKETS (default 1) listening sockets on 127.0.0.1 at fds 3.., prints the first one's
 * port, then execs argv[2:] with LISTEN_FDS=SOCKETS, LISTEN_FDNAMES web[:s1...] and LISTEN_PID
 * (its own PID, or argv[1]).
 */
const PARENT = `
import os, socket, sys
n = int(os.environ.get("SOCKETS", "1"))
socks = [socket.socket() for _ in range(n)]
for s in socks:
    s.bind(("127.0.0.1", 0))
    s.listen(4)
print(socks[0].getsockname()[1], flush=True)
# Out of the way first: the sockets themselves may hold fds 3..
for i, s in enumerate(socks):
    os.dup2(s.fileno(), 500 + i)
    s.close()
for i in range(n):
    os.dup2(500 + i, 3 + i)
    os.close(500 + i)
pid = str(os.getpid()) if sys.argv[1] == "self" else sys.argv[1]
names = ":".join(["web"] + ["s%d" % i for i in range(1, n)])
os.execve(sys.argv[2], sys.argv[2:], dict(os.environ, LISTEN_FDS=str(n), LISTEN_PID=pid, LISTEN_FDNAMES=names))
`;

/** What an app reports: its LISTEN_* variables and its open fds (listed by a child process, through a file: a pipe, or ls run inside the shell, would add the shell's own). */
const REPORT = 'echo "==env=="; echo "$LISTEN_FDS|$LISTEN_FDNAMES|$([ "$LISTEN_PID" = "$$" ] && echo own-pid || echo "$LISTEN_PID")"; echo "==fds=="; ( exec /bin/busybox ls /proc/$$/fd ) > /fds.txt; /bin/busybox sort -n /fds.txt';

function activatedRun(env: RktEnv, listenPid: string, args: string[], sockets = 1) {
  return background('python3', ['-c', PARENT, listenPid, RKT, ...env.globals, ...args], { ...process.env, SOCKETS: String(sockets) });
}

function fetchLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    c.on('data', (d) => { got += d; });
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
}

suite('socket activation', () => {
  let env: RktEnv;
  let aci: string;
  beforeAll(async () => {
    env = makeEnv('rkt-it-sa-');
    const bin = path.join(env.base, 'accept1');
    execFileSync('gcc', ['-static', '-O1', '-o', bin, path.join(ROOT, 'test', 'helpers', 'accept1.c')]);
    aci = path.join(env.base, 'activated.aci');
    await buildBusyboxAci(aci, 'rkt.local/activated', ['sh', 'echo'], [{ path: 'bin/accept1', content: fs.readFileSync(bin), mode: 0o755 }],
      { ports: [{ name: 'web', protocol: 'tcp', port: 8080, socketActivated: true }] });
  });
  afterAll(async () => { await teardown(env); });

  test('the socket-activated app gets the listening socket as fd 3 (only it), LISTEN_PID is its own PID, and it serves a client', async () => {
    const run = activatedRun(env, 'self', [INSECURE, 'run', '--net=host',
      aci, '--name=server', '--exec=/bin/sh', '--', '-c', `${REPORT}; echo "==served=="; exec accept1`, '---',
      // On stderr: the two apps' lines would interleave on one stream.
      BUSYBOX_ACI, '--name=other', '--exec=/bin/sh', '--', '-c', `exec >&2; ${REPORT}`]);
    await waitFor(() => run.output().stdout.includes('==served==') || run.child.exitCode !== null, 30_000, 'the server app');
    const port = Number(run.output().stdout.split('\n')[0]);
    expect(await fetchLine(port)).toBe('hello from the pod\n');
    const done = await run.done;
    expect(done.code).toBe(0);
    const s = sections(done.stdout);
    expect(s.env).toBe('1|web|own-pid');
    expect(s.fds.split('\n')).toEqual(['0', '1', '2', '3']);
    const other = sections(done.stderr);
    expect(other.env).toBe('||');
    expect(other.fds.split('\n')).toEqual(['0', '1', '2']);
  });

  test('more sockets than a shell keeps fds for (10): all reach the app, in order, at 3..12', async () => {
    const run = activatedRun(env, 'self', [INSECURE, 'run', '--net=host', aci, '--exec=/bin/sh', '--',
      '-c', `${REPORT}; echo "==kinds=="; for f in 3 12; do /bin/busybox readlink /proc/$$/fd/$f | /bin/busybox cut -d: -f1; done`], 10);
    const done = await run.done;
    expect(done.code).toBe(0);
    const s = sections(done.stdout);
    expect(s.env).toBe('10|web:s1:s2:s3:s4:s5:s6:s7:s8:s9|own-pid');
    expect(s.fds.split('\n')).toEqual(Array.from({ length: 13 }, (_, i) => String(i)));
    expect(s.kinds.split('\n')).toEqual(['socket', 'socket']);
  });

  test('LISTEN_PID that is not rkt\'s: the fds are not for rkt and never reach an app', async () => {
    const run = activatedRun(env, '1', [INSECURE, 'run', '--net=host', aci, '--exec=/bin/sh', '--', '-c', REPORT]);
    const done = await run.done;
    expect(done.code).toBe(0);
    const s = sections(done.stdout);
    expect(s.env).toBe('||'); // no LISTEN_* at all
    expect(s.fds.split('\n')).toEqual(['0', '1', '2']);
  });

  test('LISTEN_FDS from --set-env is not taken for socket activation', async () => {
    const run = activatedRun(env, '1', [INSECURE, 'run', '--net=host', '--set-env=LISTEN_FDS=1', aci, '--exec=/bin/sh', '--', '-c', REPORT]);
    const done = await run.done;
    expect(done.code).toBe(0);
    expect(sections(done.stdout).fds.split('\n')).toEqual(['0', '1', '2']);
    expect(sections(done.stdout).env).toBe('||');
  });
});
