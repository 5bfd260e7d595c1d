/**
 * seccomp and the per-app session keyring, checked from inside real pods by a hostile
 * app: a static program (seccomp-probe.c, built here) that tries every call Docker's
 * default profile blocks, and reads, searches and plants kernel keys.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { RktEnv, describeIf, makeEnv, rkt, skipReason } from '../helpers/rkt.js';
import { buildBusyboxAci, podUuids, shArgs, teardown } from '../helpers/pods.js';

const haveGcc = spawnSync('gcc', ['--version']).status === 0;
const suite = describeIf(skipReason() ?? (haveGcc ? undefined : 'needs gcc and libc6-dev (scripts/setup.sh)'));

const EPERM = 1;
const ENOSYS = 38;
const EXFULL = 54;
const ENOKEY = 126;
const EACCES = 13;
const ENOENT = 2;

/** Every call the default filter must block with EPERM. */
const BLOCKED = [
  'keyctl', 'add_key', 'request_key', 'kexec_load', 'kexec_file_load', 'open_by_handle_at', 'init_module',
  'finit_module', 'delete_module', 'bpf', 'perf_event_open', 'userfaultfd', 'mount', 'umount2', 'pivot_root',
  'swapon', 'swapoff', 'reboot', 'ptrace', 'setns', 'unshare', 'clone_newuser', 'socket_vsock',
];

/** `NAME ERRNO` lines as a map. */
function calls(out: string): Record<string, number> {
  return Object.fromEntries(out.trim().split('\n').filter((l) => /^\w+ -?\d+$/.test(l)).map((l) => {
    const [k, v] = l.split(' ');
    return [k, Number(v)];
  }));
}

suite('pod seccomp and keyring', () => {
  let env: RktEnv;
  let probe: string;
  let probeAci: string;
  const hostKey = `rkt-it-host-secret-${process.pid}`;
  let hostKeySerial = '';

  /** rkt run of the probe image with these flags and probe args; returns stdout, stderr and status. */
  const runProbe = (podFlags: string[], appFlags: string[], args: string[], insecure = 'image') =>
    rkt(env, [`--insecure-options=${insecure}`, 'run', '--net=host', ...podFlags, probeAci, ...appFlags, '--exec=/bin/probe', '--', ...args]);

  beforeAll(async () => {
    env = makeEnv();
    probe = path.join(env.base, 'probe');
    const cc = spawnSync('gcc', ['-static', '-O', '-Wall', '-o', probe, path.resolve('test/integration/seccomp-probe.c')], { encoding: 'utf8' });
    expect(cc.stderr).toBe('');
    probeAci = path.join(env.base, 'probe.aci');
    await buildBusyboxAci(probeAci, 'rkt.local/seccomp-probe', ['sh', 'grep', 'mkdir', 'cat', 'ls', 'tr'], [
      { path: 'bin/probe', content: fs.readFileSync(probe), mode: 0o755 },
    ]);
    // The host root's own key, in root's user keyring: what a pod must not reach.
    hostKeySerial = spawnSync(probe, ['add', hostKey, 'u'], { encoding: 'utf8' }).stdout.trim();
    expect(hostKeySerial).toMatch(/^\d+$/);
  }, 120_000);

  afterAll(async () => {
    if (hostKeySerial) spawnSync(probe, ['invalidate', hostKeySerial]);
    await teardown(env);
  });

  test('the default filter: Seccomp 2 and no_new_privs in the app', () => {
    const r = runProbe([], [], []);
    expect(r.status).toBe(0);
    const r2 = rkt(env, shArgs(['--net=host'], [], 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status'));
    expect(r2.stderr).not.toMatch(/stage1:/);
    expect(r2.stdout.replace(/\s+/g, ' ').trim()).toBe('NoNewPrivs: 1 Seccomp: 2');
  });

  test('each call Docker blocks fails with EPERM; fork, getppid work; clone3 says ENOSYS so libc falls back', () => {
    const r = runProbe([], [], ['calls']);
    expect(r.status).toBe(0);
    const got = calls(r.stdout);
    for (const name of BLOCKED) expect([name, got[name]]).toEqual([name, EPERM]);
    expect(got.fork).toBe(0);
    expect(got.getppid).toBe(0);
    expect(got.clone3).toBe(ENOSYS);
  });

  test('it is the filter that says no, even with every capability: the same list with errno=EXFULL', () => {
    const r = runProbe([], ['--seccomp', 'mode=remove,errno=EXFULL,@appc.io/empty'], ['calls'], 'image,capabilities');
    expect(r.status).toBe(0);
    const got = calls(r.stdout);
    for (const name of BLOCKED) expect([name, got[name]]).toEqual([name, EXFULL]);
    // And without a filter the same calls are not refused that way (the pod's own limits still apply).
    const open = calls(runProbe([], [], ['calls'], 'image,seccomp').stdout);
    for (const name of BLOCKED) expect([name, open[name]]).not.toEqual([name, EXFULL]);
    expect(open.keyctl).toBe(0);
    expect(open.clone3).not.toBe(ENOSYS);
  });

  test('--insecure-options=seccomp: Seccomp 0 (and no_new_privs only if asked)', () => {
    const r = rkt(env, ['--insecure-options=image,seccomp', ...shArgs(['--net=host'], [], 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status').slice(1)]);
    expect(r.stdout.replace(/\s+/g, ' ').trim()).toBe('NoNewPrivs: 0 Seccomp: 0');
  });

  test('--seccomp mode=remove: a deny list with its errno; everything else allowed', () => {
    const r = rkt(env, shArgs(['--net=host'], ['--seccomp', 'mode=remove,errno=EXFULL,mkdir,mkdirat'],
      'mkdir /x 2>&1; echo rc=$?; grep "^Seccomp:" /proc/self/status'));
    expect(r.stdout).toMatch(/Exchange full/);
    expect(r.stdout).toMatch(/rc=1/);
    expect(r.stdout).toMatch(/Seccomp:\s+2/);
    // keyctl is allowed by this list, unshare too.
    const got = calls(runProbe([], ['--seccomp', 'mode=remove,errno=EXFULL,reboot'], ['calls']).stdout);
    expect(got.reboot).toBe(EXFULL);
    expect(got.keyctl).toBe(0);
    expect(got.unshare).toBe(0);
  });

  test('--seccomp mode=retain: an allow list; a set without errno kills the app with SIGSYS, as rkt', () => {
    const got = calls(runProbe([], ['--seccomp', 'mode=retain,errno=ENOTSUP,@rkt/default-whitelist,keyctl'], ['calls']).stdout);
    expect(got.keyctl).toBe(0);
    expect(got.reboot).toBe(95);
    expect(got.fork).toBe(0);
    const killed = runProbe([], ['--seccomp', 'mode=remove,reboot'], ['reboot']);
    expect(killed.stdout).not.toMatch(/reboot/);
    expect(killed.status).toBe(128 + 31);
    // @appc.io/all: no filter at all.
    const all = rkt(env, shArgs(['--net=host'], ['--seccomp', 'mode=retain,@appc.io/all'], 'grep "^Seccomp:" /proc/self/status'));
    expect(all.stdout).toMatch(/Seccomp:\s+0/);
  });

  test('image isolators: remove-set with errno applies; --seccomp replaces it; retain @appc.io/all lifts it', async () => {
    const removeAci = path.join(env.base, 'remove.aci');
    await buildBusyboxAci(removeAci, 'rkt.local/seccomp-remove', ['sh', 'mkdir', 'grep'], [], {
      isolators: [{ name: 'os/linux/seccomp-remove-set', value: { set: ['mkdir', 'mkdirat'], errno: 'EXFULL' } }],
    });
    const script = 'mkdir /x 2>&1; echo rc=$?';
    const run = (appFlags: string[]) => rkt(env, ['--insecure-options=image', 'run', '--net=host', removeAci, ...appFlags, '--exec=/bin/sh', '--', '-c', script]);
    const a = run([]);
    expect(a.stdout).toMatch(/Exchange full/);
    const b = run(['--seccomp', 'mode=remove,errno=EXFULL,reboot']);
    expect(b.stdout).toMatch(/rc=0/);
    const allAci = path.join(env.base, 'all.aci');
    await buildBusyboxAci(allAci, 'rkt.local/seccomp-all', ['sh', 'grep'], [], {
      isolators: [{ name: 'os/linux/seccomp-retain-set', value: { set: ['@appc.io/all'] } }],
    });
    const c = rkt(env, ['--insecure-options=image', 'run', '--net=host', allAci, '--exec=/bin/sh', '--', '-c', 'grep "^Seccomp:" /proc/self/status']);
    expect(c.stdout).toMatch(/Seccomp:\s+0/);
  });

  test('bad input: unknown syscall, set or errno in the flag or an isolator: one line, 254, no pod left', async () => {
    const badAci = path.join(env.base, 'bad.aci');
    await buildBusyboxAci(badAci, 'rkt.local/seccomp-bad', ['sh'], [], {
      isolators: [{ name: 'os/linux/seccomp-retain-set', value: { set: ['read', 'no_such_call'] } }],
    });
    const before = podUuids(env).length;
    const cases: Array<[string[], RegExp]> = [
      [[probeAci, '--seccomp', 'mode=remove,rebooot'], /--seccomp "mode=remove,rebooot": unknown syscall "rebooot": use names from syscalls\(2\)/],
      [[probeAci, '--seccomp', 'mode=remove,@docker/nope'], /unknown syscall set "@docker\/nope": use one of/],
      [[probeAci, '--seccomp', 'mode=remove,errno=EWHAT,reboot'], /unknown errno "EWHAT"/],
      [[probeAci, '--seccomp', 'reboot'], /give a mode/],
      [[badAci], /isolator os\/linux\/seccomp-retain-set: unknown syscall "no_such_call"/],
    ];
    for (const [args, msg] of cases) {
      const r = rkt(env, ['--insecure-options=image', 'run', '--net=host', ...args]);
      expect(r.status).toBe(254);
      const lines = r.stderr.trim().split('\n');
      expect(lines[lines.length - 1]).toMatch(msg);
      expect(r.stderr).not.toMatch(/at .*\.js/);
    }
    expect(podUuids(env).length).toBe(before);
  });

  test('keyring: the host root\'s key is out of reach; the pod plants nothing the host sees', () => {
    // On the host, root's session keyring reaches its user keyring, so the key is found.
    expect(spawnSync(probe, ['search', hostKey, 's'], { encoding: 'utf8' }).stdout.trim()).toBe(hostKeySerial);
    const planted = `rkt-it-planted-${process.pid}`;
    // Default filter: no keyring call at all.
    const d = runProbe([], [], ['search', hostKey, 'u']);
    expect(d.stdout.trim()).toBe(`search ${EPERM}`);
    expect(runProbe([], [], ['add', planted, 'u']).stdout.trim()).toBe(`add ${EPERM}`);
    expect(runProbe([], [], ['keyring']).stdout.trim()).toBe(`keyctl ${EPERM}`);
    // With the keyring calls allowed: the session keyring is fresh and empty, the host's key not in it.
    const allow = ['--seccomp', 'mode=remove,errno=EPERM,reboot'];
    expect(runProbe([], allow, ['keyring']).stdout.trim()).toBe('keys=0');
    expect(runProbe([], allow, ['search', hostKey, 's']).stdout.trim()).toBe(`search ${ENOKEY}`);
    const added = runProbe([], allow, ['add', planted, 's']).stdout.trim();
    expect(added).toMatch(/^\d+$/);
    expect(spawnSync(probe, ['search', planted, 's'], { encoding: 'utf8' }).stdout.trim()).toBe(`search ${ENOKEY}`);
    expect(spawnSync(probe, ['search', planted, 'u'], { encoding: 'utf8' }).stdout.trim()).toBe(`search ${ENOKEY}`);
  });

  test('another app cannot reopen the helper for writing through /proc/PID/exe (CVE-2019-5736 class)', async () => {
    const helper = path.resolve('dist/stage1/rkt-helper');
    const before = fs.readFileSync(helper);
    // The victim's pre-start handler holds its app back until the hunter is looking: the
    // hunter catches the helper of the victim's last step (the pre-start's, or the app's)
    // in its short life; tries until it did. The victim keeps fewer capabilities than the
    // hunter: once its helper has dropped to them, only being undumpable keeps the hunter out.
    const victimAci = path.join(env.base, 'victim.aci');
    await buildBusyboxAci(victimAci, 'rkt.local/seccomp-victim', ['sh', 'sleep'], [],
      { eventHandlers: [{ name: 'pre-start', exec: ['/bin/sleep', '0.3'] }] });
    const results: string[] = [];
    const caught = (x: string) => x === `exe-open ${EACCES}`;
    for (let i = 0; i < 12 && !results.some(caught); i++) {
      const r = rkt(env, ['--insecure-options=image', 'run', '--net=host', probeAci, '--name=hunter', '--exec=/bin/probe', '--', 'hunt',
        '---', victimAci, '--name=victim', '--readonly-rootfs', '--caps-retain=CAP_CHOWN', '--exec=/bin/sh', '--', '-c', 'exit 0']);
      results.push(r.stdout.trim());
    }
    // EACCES: the helper holds more capabilities than the hunter, then is not dumpable until
    // it becomes the app; the hunter never holds the file. (Were it to: the file is being
    // executed for the pod's whole life by PID 1, rkt-helper --init, so ETXTBSY.)
    expect(results.filter((x) => /^(reopen-write|exe-open) /.test(x) && !caught(x) && x !== `exe-open ${ENOENT}`)).toEqual([]);
    expect({ results, caught: results.some(caught) }).toEqual({ results, caught: true });
    expect(fs.readFileSync(helper).equals(before)).toBe(true);
  });

  test('nothing of the helper reaches the app: only fds 0-2, and no rkt-helper left in the pod but PID 1', () => {
    const r = rkt(env, shArgs(['--net=host'], [], 'ls /proc/self/fd; echo ==; cat /proc/1/cmdline | tr "\\0" " "; echo; for p in /proc/[0-9]*; do echo "${p#/proc/} $(cat $p/comm)"; done'));
    const [fds, rest] = r.stdout.split('==\n');
    // 0-2, plus the one ls opens to read the directory.
    expect(fds!.trim().split('\n').map(Number)).toEqual([0, 1, 2, 3]);
    const [init, ...procs] = rest!.trim().split('\n');
    // The pod's PID 1 is rkt-helper --init (its holder's fork); no app's helper (nor rkt enter's, run as fd 7) stays.
    expect(init).toMatch(/\/rkt-helper --pod .* --init \S+\/stage1\/init\.table /);
    expect(procs.filter((l) => /rkt-helper|^\d+ 7$/.test(l))).toEqual(['1 rkt-helper']);
  });
});
