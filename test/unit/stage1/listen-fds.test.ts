/**
 * Socket activation's fd renumbering: stage1's first step (rkt-helper --pod) keeps the listen fds
 * at LISTEN_FD_BASE.. and closes the rest; rkt-helper puts an app's back at 3.. with
 * LISTEN_PID its own PID; stage0 takes LISTEN_FDS only when LISTEN_PID is rkt's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, StdioOptions } from 'node:child_process';
import { describe, expect, test } from '@jest/globals';
import { describeIf, isRoot, ROOT } from '../../helpers/rkt.js';
import { LISTEN_FD_BASE } from '../../../src/stage1/scripts.js';
import { listenFds } from '../../../src/stage0/start.js';

const HELPER = path.join(ROOT, 'dist', 'stage1', 'rkt-helper');

/** stdio with `files` opened at the given fds (and nothing else above 2). */
function stdioWith(files: Record<number, string>): StdioOptions {
  const max = Math.max(...Object.keys(files).map(Number));
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
  for (let fd = 3; fd <= max; fd++) stdio.push(files[fd] ? fs.openSync(files[fd], 'r') : 'ignore');
  return stdio;
}


/** `rkt-helper --pod LISTEN NETNS NAMESPACES` running `sh -c script`, with `files` open at their fds. */
function pod(listen: number, netns: string, namespaces: string, script: string, files: Record<number, string>) {
  return spawnSync(HELPER, ['--pod', String(listen), netns, namespaces, '/bin/sh', '-c', script], { stdio: stdioWith(files), encoding: 'utf8' });
}
/** The fds of `ls` itself, run by the shell; 3 is its own handle on the directory. */
const ownFds = 'ls /proc/self/fd | tr "\\n" " "; echo';
const fdsOf = (out: string) => out.trim().split(/\s+/).map(Number).sort((a, b) => a - b);

describeIf(!fs.existsSync(HELPER) ? 'dist/stage1/rkt-helper: npm run build' : !isRoot ? 'root (rkt-helper --pod makes namespaces)' : undefined)('rkt-helper --pod (stage1\'s first step, before tini)', () => {
  test('fds 3..3+N-1 move to the base, in order; every other fd above 2 is closed, even far above 9', () => {
    const r = pod(2, '-', '-', `${ownFds}; readlink /proc/$$/fd/${LISTEN_FD_BASE} /proc/$$/fd/${LISTEN_FD_BASE + 1}`,
      { 3: '/etc/hostname', 4: '/etc/passwd', 5: '/etc/group', 12: '/etc/shells', [LISTEN_FD_BASE + 7]: '/etc/hosts' });
    expect(r.stderr).toBe('');
    const [fds, ...links] = r.stdout.trim().split('\n');
    expect(fdsOf(fds).filter((n) => n > 3)).toEqual([LISTEN_FD_BASE, LISTEN_FD_BASE + 1]);
    expect(links).toEqual(['/etc/hostname', '/etc/passwd']);
  });

  test('no socket activation: everything above 2 is closed', () => {
    const r = pod(0, '-', '-', ownFds, { 3: '/etc/hostname', [LISTEN_FD_BASE]: '/etc/passwd' });
    expect(r.stderr).toBe('');
    expect(fdsOf(r.stdout)).toEqual([0, 1, 2, 3]);
  });

  test('the namespaces named, and a mount namespace always, whose mounts are private', () => {
    // (In a new PID namespace the first child is its init, and once that exits no process can
    // start there: one child shell does it all, on the namespaces of this one, $$.)
    const ns = (names: string) => {
      const r = pod(0, '-', names, 'sh -c "for n in mnt uts ipc net; do readlink /proc/$$/ns/\\$n; done; readlink /proc/$$/ns/pid_for_children; grep -c shared: /proc/$$/mountinfo"', {});
      expect(r.stderr).toBe('');
      return r.stdout.trim().split('\n');
    };
    const own = ['mnt', 'uts', 'ipc', 'net', 'pid_for_children'].map((n) => fs.readlinkSync(`/proc/self/ns/${n}`));
    const none = ns('-');
    expect(none[0]).not.toBe(own[0]);
    expect(none.slice(1, 5)).toEqual(own.slice(1));
    expect(none[5]).toBe('0');
    const all = ns('uts,pid,ipc,net');
    all.slice(0, 5).forEach((id, i) => expect([i, id === own[i]]).toEqual([i, false]));
  });

  test('SIGTERM and SIGINT reach what it runs blocked (PID 1 takes one that came meanwhile as a stop), nothing else', () => {
    // grep itself: a shell would clear its signal mask.
    const r = spawnSync(HELPER, ['--pod', '0', '-', '-', '/bin/grep', 'SigBlk', '/proc/self/status'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`SigBlk:\t${((1 << 14) | (1 << 1)).toString(16).padStart(16, '0')}\n`);
  });

  test('a CNI netns is joined: the one a file names', async () => {
    const other = spawn('unshare', ['--net', 'sleep', '30'], { stdio: 'ignore' });
    try {
      const file = `/proc/${other.pid}/ns/net`;
      const own = fs.readlinkSync('/proc/self/ns/net');
      for (let i = 0; i < 200 && fs.readlinkSync(file) === own; i++) await new Promise((r) => setTimeout(r, 10));
      expect(fs.readlinkSync(file)).not.toBe(own);
      const r = pod(0, file, '-', 'readlink /proc/$$/ns/net', {});
      expect(r.stdout.trim()).toBe(fs.readlinkSync(file));
    } finally {
      other.kill('SIGKILL');
    }
  });

  test('bad arguments, a missing netns or listen fd: one line, 254, nothing runs', () => {
    const cases: Array<[number, string, string, RegExp]> = [
      [0, '-', 'mount', /^stage1: bad arguments to rkt-helper --pod: Invalid argument\n$/],
      [0, '-', 'uts,cgroup', /^stage1: bad arguments to rkt-helper --pod: Invalid argument\n$/],
      [0, '/no/such/netns', '-', /^stage1: cannot join the network namespace \/no\/such\/netns: No such file or directory\n$/],
      [1, '-', '-', /^stage1: socket-activation fd missing: Bad file descriptor\n$/],
    ];
    for (const [listen, netns, names, err] of cases) {
      const r = pod(listen, netns, names, 'echo ran', {});
      expect({ names, status: r.status, stdout: r.stdout }).toEqual({ names, status: 254, stdout: '' });
      expect(r.stderr).toMatch(err);
    }
  });
});

/** rkt-helper's last step as rkt enter runs it (no pivot), as root with every capability: the app's argv follows. */
const APP_STEP = ['--app', '0', '0', '0', '-', 'all', '0', '/', '-'];

describeIf(!fs.existsSync(HELPER) ? 'dist/stage1/rkt-helper: npm run build' : !isRoot ? 'root (rkt-helper --app sets ids)' : undefined)('rkt-helper renumbering', () => {
  const at = (fd: number) => fd;
  test('LISTEN_FDS=2: the fds at the base become 3 and 4 (same files), LISTEN_PID is the app\'s PID, nothing else stays open', () => {
    const files: Record<number, string> = { 7: '/etc/group', [at(LISTEN_FD_BASE)]: '/etc/hostname', [at(LISTEN_FD_BASE + 1)]: '/etc/passwd', [at(LISTEN_FD_BASE + 2)]: '/etc/shells' };
    const r = spawnSync(HELPER, [...APP_STEP, 'LISTEN_FDS=2', 'PATH=/usr/bin:/bin', 'sh', '-c', `echo "$LISTEN_FDS $([ "$LISTEN_PID" = "$$" ] && echo own)"; readlink /proc/$$/fd/3 /proc/$$/fd/4; for n in 5 7 ${LISTEN_FD_BASE} ${LISTEN_FD_BASE + 1} ${LISTEN_FD_BASE + 2}; do [ -e /proc/$$/fd/$n ] && echo "open $n"; done; true`],
      { stdio: stdioWith(files), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('2 own\n/etc/hostname\n/etc/passwd\n');
  });

  test('a missing listen fd: one line, 254, the app does not run', () => {
    const r = spawnSync(HELPER, [...APP_STEP, 'LISTEN_FDS=1', 'PATH=/usr/bin:/bin', 'sh', '-c', 'echo ran'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('stage1: socket-activation fd missing: Bad file descriptor\n');
    expect(r.status).toBe(254);
  });

  test('without LISTEN_FDS: fds at the base are closed too, and no LISTEN_PID', () => {
    const r = spawnSync(HELPER, [...APP_STEP, 'PATH=/usr/bin:/bin', 'sh', '-c', `echo "[$LISTEN_PID]"; ls /proc/$$/fd/${LISTEN_FD_BASE} 2>/dev/null | wc -l`], { stdio: stdioWith({ [LISTEN_FD_BASE]: '/etc/hostname' }), encoding: 'utf8' });
    expect(r.stdout).toBe('[]\n0\n');
  });
});

describe('listenFds (stage0)', () => {
  test('taken only when LISTEN_PID is rkt\'s PID', () => {
    expect(listenFds({ LISTEN_FDS: '2', LISTEN_PID: '42' }, 42)).toEqual({ count: 2 });
    expect(listenFds({ LISTEN_FDS: '2', LISTEN_PID: '43' }, 42)).toBeUndefined();
    expect(listenFds({ LISTEN_FDS: '2' }, 42)).toBeUndefined();
    expect(listenFds({}, 42)).toBeUndefined();
  });
  test('LISTEN_FDNAMES kept when it names each fd; nonsense counts ignored; too many refused in one line', () => {
    expect(listenFds({ LISTEN_FDS: '2', LISTEN_PID: '1', LISTEN_FDNAMES: 'web:admin' }, 1)).toEqual({ count: 2, names: 'web:admin' });
    expect(listenFds({ LISTEN_FDS: '2', LISTEN_PID: '1', LISTEN_FDNAMES: 'web' }, 1)).toEqual({ count: 2 });
    for (const bad of ['0', '-1', 'x', '1.5']) expect(listenFds({ LISTEN_FDS: bad, LISTEN_PID: '1' }, 1)).toBeUndefined();
    expect(listenFds({ LISTEN_FDS: '64', LISTEN_PID: '1' }, 1)).toEqual({ count: 64 });
    expect(() => listenFds({ LISTEN_FDS: '65', LISTEN_PID: '1' }, 1)).toThrow(/^LISTEN_FDS=65: rkt passes at most 64 socket-activation fds to a pod/);
  });
});
