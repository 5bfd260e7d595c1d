/**
 * The isolation contract (DESIGN.md), each item checked from inside a real pod with
 * busybox: namespaces, pivot_root (a root app's chroot escape stays in its rootfs),
 * only fds 0-2, the capability sets, read-only and masked kernel paths, a minimal
 * /dev guarded by the device cgroup.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RKT, ROOT, RktEnv, makeEnv, rkt, describeIf, skipReason, waitFor } from '../helpers/rkt.js';
import { descendants, podProcess, processTable, sections, shArgs, podPid, teardown } from '../helpers/pods.js';

const suite = describeIf(skipReason());

const hostNs = (ns: string) => fs.readlinkSync(`/proc/self/ns/${ns}`);

/** Prints the app's view of its namespaces, processes, mounts and network. */
const NS_REPORT = [
  'echo ==self==; echo $$',
  'echo ==pids==; ls /proc | grep -E "^[0-9]+$"',
  'echo ==init==; tr "\\0" " " < /proc/1/cmdline; echo',
  'echo ==ns==; for n in pid mnt uts ipc net; do echo "$n $(readlink /proc/$$/ns/$n)"; done',
  'echo ==hostname==; hostname',
  'echo ==links==; ip -o link',
  'echo ==root-fs==; awk \'$5 == "/" { for (i = 7; $i != "-"; i++); print $(i + 1) }\' /proc/self/mountinfo',
  'echo ==mountpoints==; awk \'{ print $5 }\' /proc/self/mountinfo',
].join('; ');

suite('pod isolation', () => {
  let env: RktEnv;
  beforeAll(() => { env = makeEnv(); });
  afterAll(async () => { await teardown(env); });

  describe('namespaces (--net=none)', () => {
    let s: Record<string, string>;
    let uuid: string;
    const hostHostname = os.hostname();
    beforeAll(() => {
      const uuidFile = path.join(env.base, 'ns-uuid');
      const r = rkt(env, shArgs(['--net=none', `--uuid-file-save=${uuidFile}`], [], NS_REPORT));
      expect(r.stderr).not.toMatch(/stage1:/);
      expect(r.status).toBe(0);
      s = sections(r.stdout);
      uuid = fs.readFileSync(uuidFile, 'utf8');
    });
    const ns = (n: string) => s.ns.split('\n').find((l) => l.startsWith(`${n} `))!.split(' ')[1];

    test('pid: the app is a low PID under the pod\'s init and sees no host process', () => {
      expect(Number(s.self)).toBeLessThan(10);
      expect(s.init).toMatch(/rkt-helper --pod .* --init \S+\/stage1\/init\.table /);
      const pids = s.pids.split('\n').map(Number);
      expect(pids).toContain(1);
      expect(pids).toContain(Number(s.self));
      expect(pids.length).toBeLessThan(8); // init, the app, its ls and grep
      expect(processTable().size).toBeGreaterThan(pids.length + 20);
      expect(ns('pid')).not.toBe(hostNs('pid'));
    });

    test('mount: own namespace whose root is the overlay, no host mount in sight', () => {
      expect(ns('mnt')).not.toBe(hostNs('mnt'));
      expect(s['root-fs']).toBe('overlay');
      const points = s.mountpoints.split('\n');
      expect(points.filter((p) => p === '/')).toHaveLength(1);
      for (const p of points) expect(p).toMatch(/^\/(proc|sys|dev|data|etc)?(\/|$)/);
      expect(points.some((p) => p.includes(env.base) || p.startsWith('/work') || p.startsWith('/boot'))).toBe(false);
    });

    test('uts: the hostname is rkt-<uuid>, and the host keeps its own', () => {
      expect(ns('uts')).not.toBe(hostNs('uts'));
      expect(s.hostname).toBe(`rkt-${uuid}`);
      expect(os.hostname()).toBe(hostHostname);
    });

    test('ipc: a private IPC namespace', () => {
      expect(ns('ipc')).not.toBe(hostNs('ipc'));
    });

    test('net: --net=none has only lo, and it is up', () => {
      expect(ns('net')).not.toBe(hostNs('net'));
      const links = s.links.split('\n');
      expect(links).toHaveLength(1);
      expect(links[0]).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
    });
  });

  test('--net=host, --ipc=parent and --hostname share what they say', () => {
    const r = rkt(env, shArgs(['--net=host', '--ipc=parent', '--hostname=custom-name'], [], NS_REPORT));
    expect(r.status).toBe(0);
    const s = sections(r.stdout);
    const ns = (n: string) => s.ns.split('\n').find((l) => l.startsWith(`${n} `))!.split(' ')[1];
    expect(ns('net')).toBe(hostNs('net'));
    expect(ns('ipc')).toBe(hostNs('ipc'));
    expect(ns('uts')).not.toBe(hostNs('uts'));
    expect(ns('pid')).not.toBe(hostNs('pid'));
    expect(s.hostname).toBe('custom-name');
  });

  describe('no way out of the rootfs for a root app', () => {
    let marker: string;
    // The classic escape: chroot into a subdir while the cwd stays outside it (busybox
    // nsenter --root keeps the old cwd), climb with .., then chroot to where we got.
    const escape = (markerPath: string) => [
      'mkdir -p /x/bin && cp /bin/busybox /x/bin/sh && cd /',
      `nsenter --root=/x /bin/sh -c 'cd ../../../../../../../../../../..; chroot . /bin/sh -c "cat ${markerPath}; ls ${ROOT}/package.json; grep -c ^user:x:1000: /etc/passwd"' 2>&1`,
    ].join('; ');

    beforeAll(() => {
      marker = path.join(env.base, 'escape-marker');
      fs.writeFileSync(marker, 'host side\n');
    });

    test('control: under a plain chroot (unshare --root) the same script reaches the host', () => {
      const jail = path.join(env.base, 'jail');
      fs.mkdirSync(path.join(jail, 'bin'), { recursive: true });
      fs.copyFileSync('/bin/busybox', path.join(jail, 'bin', 'busybox'));
      fs.chmodSync(path.join(jail, 'bin', 'busybox'), 0o755);
      for (const a of ['sh', 'mkdir', 'cp', 'nsenter', 'chroot', 'cat', 'ls', 'grep']) fs.symlinkSync('busybox', path.join(jail, 'bin', a));
      const r = spawnSync('unshare', ['--mount', `--root=${jail}`, '/bin/sh', '-c', escape(marker)], { encoding: 'utf8', env: { PATH: '/bin' }, timeout: 10_000 });
      expect(r.stdout).toContain('host side');
      expect(r.stdout).toContain(`${ROOT}/package.json`);
    });

    test('in a pod the escape ends in the app\'s own rootfs', () => {
      const r = rkt(env, shArgs(['--net=host'], [], escape(marker)));
      expect(r.stderr).not.toMatch(/stage1:/);
      expect(r.stdout).not.toContain('host side');
      expect(r.stdout).toMatch(/escape-marker.*: No such file or directory/);
      expect(r.stdout).toMatch(/package\.json.*: No such file or directory/);
      expect(r.stdout.trim().split('\n').pop()).toBe('1'); // the image's /etc/passwd
    });

    test('/proc/1/root (the pod init\'s root) is not readable', () => {
      const r = rkt(env, shArgs(['--net=host'], [], 'ls /proc/1/root/ 2>&1; cat /proc/1/root/etc/hostname 2>&1'));
      expect(r.stdout).toMatch(/\/proc\/1\/root\/: Permission denied/);
      expect(r.stdout).toMatch(/\/proc\/1\/root\/etc\/hostname.*: Permission denied/);
    });

    test('an app allowed to ptrace (--caps-retain=CAP_SYS_PTRACE) still cannot reach the host through the pod\'s init', () => {
      const r = rkt(env, shArgs(['--net=host'], ['--caps-retain=CAP_SYS_PTRACE,CAP_DAC_OVERRIDE'],
        `cat /proc/1/root${marker} 2>&1; ls /proc/1/root${ROOT}/package.json 2>&1; ls /proc/1/cwd/ 2>&1 | head -3`));
      expect(r.stdout).not.toContain('host side');
      expect(r.stdout).not.toMatch(new RegExp(`^/proc/1/root${ROOT}/package\\.json$`, 'm'));
    });
  });

  test('only fds 0, 1 and 2 reach the app, whatever rkt inherited', async () => {
    const args = [...env.globals, ...shArgs(['--net=host'], [], 'echo ==fds==; ls /proc/$$/fd; echo ==end==; exec sleep 30')];
    // fd 3 and 4 are pipes from the caller, fd 7 a file a shell opened: all inherited by rkt.
    const child = spawn('sh', ['-c', 'exec 7</etc/passwd; exec "$0" "$@"', RKT, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    const exited = new Promise((r) => child.on('close', r));
    try {
      await waitFor(() => stdout.includes('==end=='), 15_000, 'the app\'s fd list');
      expect(sections(stdout).fds.split('\n')).toEqual(['0', '1', '2']);
      // The same seen from the host, on the app process itself.
      const pods = JSON.parse(rkt(env, ['list', '--format=json']).stdout) as Array<{ name: string; state: string }>;
      const uuid = pods.find((p) => p.state === 'running')!.name;
      let app: number | undefined;
      await waitFor(() => (app = podProcess(env, uuid, /^sleep 30$/)) !== undefined, 5_000, 'the app process');
      expect(fs.readdirSync(`/proc/${app}/fd`).sort()).toEqual(['0', '1', '2']);
      expect(podPid(env, uuid)).toBe(child.pid);
      // Nothing in the pod, not even its init, keeps the caller's file.
      const table = processTable();
      const holders = descendants(child.pid!, table).filter((p) => {
        try { return fs.readdirSync(`/proc/${p}/fd`).some((fd) => fs.readlinkSync(`/proc/${p}/fd/${fd}`) === '/etc/passwd'); } catch { return false; }
      });
      expect(holders.map((p) => table.get(p)!.cmdline)).toEqual([]);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  describe('capabilities', () => {
    const DEFAULT = '00000000a80425fb'; // the 14 appc defaults
    const hostBounding = fs.readFileSync('/proc/self/status', 'utf8').match(/^CapBnd:\s+(\w+)$/m)![1];
    const caps = (insecure: string, appFlags: string[]) => {
      const args = shArgs(['--net=host'], appFlags, 'grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):" /proc/self/status');
      const r = rkt(env, [`--insecure-options=${insecure}`, ...args.slice(1)]);
      expect(r.status).toBe(0);
      return Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/:\s+/)));
    };

    test('root gets the 14 appc defaults as bounding, permitted and effective set; no_new_privs comes with the seccomp filter', () => {
      const c = caps('image', []);
      expect(c).toEqual({ CapInh: '0000000000000000', CapPrm: DEFAULT, CapEff: DEFAULT, CapBnd: DEFAULT, CapAmb: '0000000000000000', NoNewPrivs: '1' });
      // Without a filter, no_new_privs stays off unless the image asks for it.
      expect(caps('image,seccomp', [])).toEqual({ ...c, NoNewPrivs: '0' });
    });

    test('--user=1000 keeps the bounding set but has no effective capability', () => {
      const c = caps('image', ['--user=1000']);
      expect(c.CapBnd).toBe(DEFAULT);
      expect(c.CapEff).toBe('0000000000000000');
      expect(c.CapPrm).toBe('0000000000000000');
      expect(c.CapAmb).toBe('0000000000000000');
    });

    test('--caps-retain keeps exactly the named capabilities', () => {
      const c = caps('image', ['--caps-retain=CAP_NET_ADMIN,CAP_CHOWN']);
      expect(c.CapBnd).toBe('0000000000001001');
      expect(c.CapEff).toBe('0000000000001001');
    });

    test('--caps-remove drops from the defaults', () => {
      const c = caps('image', ['--caps-remove=CAP_KILL']);
      expect(c.CapBnd).toBe('00000000a80425db');
      expect(c.CapEff).toBe('00000000a80425db');
    });

    test('--insecure-options=capabilities gives every capability the host has', () => {
      const c = caps('image,capabilities', []);
      expect(c.CapBnd).toBe(hostBounding);
      expect(c.CapEff).toBe(hostBounding);
    });
  });

  describe('kernel paths and /dev', () => {
    let s: Record<string, string>;
    const rootDev = fs.statSync('/').dev;
    const [major, minor] = [Math.floor(rootDev / 256) & 0xfff, (rootDev & 0xff) | ((rootDev >> 12) & 0xfff00)];
    // /sys/fs is not masked: it holds only the app's own cgroups, read-only (rkt-compat.test.ts).
    const masked = ['/sys/firmware', '/sys/module', '/proc/kallsyms', '/proc/keys', '/proc/timer_list'].filter((p) => fs.existsSync(p));
    beforeAll(() => {
      const r = rkt(env, shArgs(['--net=host'], [], [
        'echo ==proc-write==; (echo x > /proc/sys/kernel/domainname) 2>&1',
        'echo ==sys-write==; (echo x > /sys/kernel/uevent_helper) 2>&1',
        'echo ==proc-mount==; awk \'$5 == "/proc" || $5 == "/sys" { print $5, $6 }\' /proc/self/mountinfo',
        'echo ==masked==; ls -ld ' + masked.join(' '),
        'echo ==kallsyms-size==; wc -c < /proc/kallsyms',
        'echo ==dev==; ls /dev',
        `echo ==mknod==; mknod /dev/sda b 8 0 2>&1 && echo made; mknod /tmp/rootdisk b ${major} ${minor} 2>&1 && echo made`,
        'echo ==read-disk==; head -c 512 /tmp/rootdisk > /dev/null 2>/tmp/err; cat /tmp/err; head -c 512 /dev/sda > /dev/null 2>/tmp/err; cat /tmp/err',
        'echo ==null==; echo ok > /dev/null && head -c 4 /dev/zero | od -An -tx1 && head -c 8 /dev/urandom | wc -c',
      ].join('; ')));
      expect(r.status).toBe(0);
      s = sections(r.stdout);
    });

    test('/proc and /sys are read-only', () => {
      expect(s['proc-write']).toMatch(/Read-only file system/);
      expect(s['sys-write']).toMatch(/Read-only file system/);
      for (const line of s['proc-mount'].split('\n')) expect(line).toMatch(/^\/(proc|sys) ro,/);
    });

    test('masked paths are empty and mode 000', () => {
      expect(masked.length).toBeGreaterThan(0);
      for (const line of s.masked.split('\n')) expect(line).toMatch(/^d?-{9,10}\s/);
      expect(s.masked.split('\n')).toHaveLength(masked.length);
      if (masked.includes('/proc/kallsyms')) expect(s['kallsyms-size']).toBe('0');
    });

    test('/dev is minimal', () => {
      expect(s.dev.split('\n').sort()).toEqual(['fd', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero']);
      expect(s.null.split('\n')).toEqual(['00 00 00 00', '8']);
    });

    test('a block device node cannot even be made in the pod: the device cgroup denies mknod, as rkt\'s did', () => {
      expect(s.mknod.split('\n')).toEqual(['mknod: /dev/sda: Operation not permitted', 'mknod: /tmp/rootdisk: Operation not permitted']);
      expect(s['read-disk']).toMatch(/rootdisk: No such file or directory/);
      expect(s['read-disk']).toMatch(/sda: No such file or directory/);
    });
  });
});
