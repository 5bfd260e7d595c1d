/**
 * Socket activation's fd renumbering: run.sh's first step keeps the listen fds
 * at LISTEN_FD_BASE.. and closes the rest; rkt-helper puts an app's back at 3.. with
 * LISTEN_PID its own PID; stage0 takes LISTEN_FDS only when LISTEN_PID is rkt's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, StdioOptions } from 'node:child_process';
import { describe, expect, test } from '@jest/globals';
import { describeIf, isRoot, ROOT } from '../../helpers/rkt.js';
import { closeFds, LISTEN_FD_BASE } from '../../../src/stage1/scripts.js';
import { listenFds } from '../../../src/stage0/start.js';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
const HELPER = path.join(ROOT, 'dist', 'stage1', 'rkt-helper');

/** stdio with `files` opened at the given fds (and nothing else above 2). */
function stdioWith(files: Record<number, string>): StdioOptions {
  const max = Math.max(...Object.keys(files).map(Number));
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
  for (let fd = 3; fd <= max; fd++) stdio.push(files[fd] ? fs.openSync(files[fd], 'r') : 'ignore');
  return stdio;
}


describeIf(BUSYBOX ? undefined : 'busybox-static')('closeFds (run.sh, before unshare)', () => {
  test('fds 3..3+N-1 move to the base, in order; every other fd above 2 is closed', () => {
    const r = spawnSync(BUSYBOX!, ['sh', '-c', closeFds(2), 'close-fds', 'sh', '-c', 'ls /proc/$$/fd'], { stdio: stdioWith({ 3: '/etc/hostname', 4: '/etc/passwd', 5: '/etc/group' }), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const fds = r.stdout.trim().split(/\s+/).map(Number).sort((a, b) => a - b);
    // 3 is ls's own listing of the dir.
    expect(fds.filter((n) => n > 3)).toEqual([LISTEN_FD_BASE, LISTEN_FD_BASE + 1]);
  });

  test('no socket activation: everything above 2 is closed, as before', () => {
    const r = spawnSync(BUSYBOX!, ['sh', '-c', closeFds(0), 'close-fds', 'sh', '-c', 'ls /proc/$$/fd'], { stdio: stdioWith({ 3: '/etc/hostname' }), encoding: 'utf8' });
    expect(r.stdout.trim().split(/\s+/).map(Number).filter((n) => n > 3)).toEqual([]);
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
    expect(() => listenFds({ LISTEN_FDS: '7', LISTEN_PID: '1' }, 1)).toThrow(/^LISTEN_FDS=7: rkt passes at most 6 socket-activation fds to a pod/);
  });
});
