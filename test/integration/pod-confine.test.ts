/**
 * Confinement against hostile images (issue 7), each from inside real pods with an image
 * built here that ships test/helpers/hostile.c (static): `rkt enter` confined like the app
 * (a "shocker" open_by_handle_at, mknod, caps, cgroups, no_new_privs), a fork loop
 * against pids.max, raw packets to the host's 127.0.0.1 from a --port pod, /proc, /sys
 * and /dev as symlinks out of the rootfs, a nested mount below a read-only volume, and
 * the pod's PID 1 capabilities.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { RktEnv, describeIf, makeEnv, rkt, rktBackground, skipReason, waitFor } from '../helpers/rkt.js';
import { INSECURE, buildBusyboxAci, podCgroupDirs, podPid, podProcess, podUuids, processTable, sections, startPod, statusJson, teardown } from '../helpers/pods.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const suite = describeIf(skipReason() ?? (have('gcc') && fs.existsSync('/usr/lib/x86_64-linux-gnu/libc.a') ? undefined : 'needs gcc and libc6-dev (scripts/setup.sh)'));
const cniSuite = describeIf(skipReason() ?? (fs.existsSync('/usr/lib/cni/ptp') && have('iptables') ? undefined : 'needs containernetworking-plugins and iptables'));

const APPLETS = ['sh', 'sleep', 'cat', 'grep', 'echo', 'id', 'touch', 'ls', 'readlink', 'httpd', 'mknod', 'unshare'];
const CAP_SYS_ADMIN = 21n;

/** Builds hostile.c static into dir and an ACI around it (and busybox); returns the ACI path. */
async function hostileAci(dir: string, name: string, extra: Parameters<typeof buildBusyboxAci>[3] = []): Promise<string> {
  const bin = path.join(dir, 'hostile');
  if (!fs.existsSync(bin)) execFileSync('gcc', ['-static', '-O1', '-o', bin, path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'helpers', 'hostile.c')]);
  const aci = path.join(dir, `${name}.aci`);
  await buildBusyboxAci(aci, `rkt.local/${name}`, APPLETS, [
    { path: 'hostile', content: fs.readFileSync(bin), mode: 0o755 },
    { path: 'www', type: 'directory' }, { path: 'www/index.html', content: 'forwarded\n' },
    { path: 'tmp', type: 'directory', mode: 0o1777 },
    ...extra,
  ], { ports: [{ name: 'http', protocol: 'tcp', port: 80 }] });
  return aci;
}

/** stderr without the notes every run of an unsigned local image prints. */
function errorLines(stderr: string): string[] {
  return stderr.trim().split('\n').filter((l) => !/using image from file|signature verification has been disabled/.test(l));
}

function run(env: RktEnv, podFlags: string[], aci: string, appFlags: string[], script: string) {
  return rkt(env, [INSECURE, 'run', ...podFlags, aci, ...appFlags, '--exec=/bin/sh', '--', '-c', script]);
}

/** Capability sets and no_new_privs of a process, from the host. */
function procStatus(pid: number): Record<string, string> {
  return Object.fromEntries(fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
}

/** A process started by `rkt enter` (not a descendant of the pod's holder), by command line. */
function podEntered(re: RegExp): number | undefined {
  for (const [pid, info] of processTable()) if (re.test(info.cmdline)) return pid;
  return undefined;
}

function statusOf(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
}

suite('confinement: rkt enter, pids.max, mount targets, read-only trees, mknod, PID 1', () => {
  let env: RktEnv;
  let aci: string;
  beforeAll(async () => {
    env = makeEnv();
    aci = await hostileAci(env.base, 'hostile');
  }, 60_000);
  afterAll(async () => { await teardown(env); });

  /**
   * A host file and a volume (with an anchor file) on the same filesystem: the volume gives
   * open_by_handle_at a mount fd, the handle names the host file (the "shocker" attack).
   */
  function shockerSetup(name: string): { bin: string; vol: string; type: string; hex: string } {
    const secret = path.join(env.base, `${name}-secret`);
    fs.writeFileSync(secret, 'host secret\n', { mode: 0o600 });
    const vol = path.join(env.base, `${name}-vol`);
    fs.mkdirSync(vol);
    fs.writeFileSync(path.join(vol, 'anchor'), '');
    const bin = path.join(env.base, 'hostile');
    const [type, hex] = execFileSync(bin, ['handle', secret], { encoding: 'utf8' }).trim().split(' ');
    return { bin, vol, type, hex };
  }

  test('rkt enter is confined like the app it enters: shocker, caps, uid/groups, cgroups, no_new_privs, mknod', async () => {
    const { bin, vol, type, hex } = shockerSetup('enter');
    // Control: the program does read the file when it may (root on the host).
    expect(execFileSync(bin, ['open', path.join(vol, 'anchor'), type, hex], { encoding: 'utf8' })).toBe('read: host secret\n\n');

    const pod = await startPod(env, [INSECURE, 'run', '--net=host', `--volume=v,kind=host,source=${vol}`,
      aci, '--name=one', '--mount=volume=v,target=/v', '--exec=/bin/sh', '--', '-c', 'sleep 1001', '---',
      aci, '--name=two', '--user=1000', '--group=1000', '--supplementary-gids=5,6', '--caps-retain=CAP_NET_BIND_SERVICE,CAP_MKNOD',
      '--mount=volume=v,target=/v', '--pids-limit=77', '--exec=/bin/sh', '--', '-c', 'sleep 1002'], /sleep 1002$/);
    try {
      await waitFor(() => podProcess(env, pod.uuid, /sleep 1001$/) !== undefined, 10_000, 'app one');
      const script = [
        'echo ==status==; grep -E "^(Uid|Gid|Groups|CapBnd|CapEff|CapPrm|CapAmb|NoNewPrivs)" /proc/self/status',
        'echo ==cgroup==; cat /proc/self/cgroup',
        'echo ==app==; echo "$AC_APP_NAME"',
        `echo ==shocker==; /hostile open /v/anchor ${type} ${hex}`,
        'echo ==mknod==; /hostile mknod /tmp/sda 8 0',
        'echo ==root==; ls /',
        'exit 7',
      ].join('; ');
      for (const [app, sleeper] of [['one', /sleep 1001$/], ['two', /sleep 1002$/]] as const) {
        const appPid = podProcess(env, pod.uuid, sleeper)!;
        const r = rkt(env, ['enter', `--app=${app}`, pod.uuid, '/bin/sh', '-c', script]);
        expect(r.status).toBe(7);
        const s = sections(r.stdout);
        const mine = statusOf(s.status);
        const theirs = procStatus(appPid);
        for (const k of ['Uid', 'Gid', 'Groups', 'CapBnd', 'CapEff', 'CapPrm', 'CapAmb']) expect(`${k} ${mine[k]}`).toBe(`${k} ${theirs[k]}`);
        expect(mine.NoNewPrivs).toBe('1');
        expect(BigInt(`0x${mine.CapBnd}`) & (1n << 2n)).toBe(0n); // no CAP_DAC_READ_SEARCH
        expect(s.cgroup).toBe(fs.readFileSync(`/proc/${appPid}/cgroup`, 'utf8').trim());
        expect(s.app).toBe(app);
        expect(s.shocker).toMatch(/^open_by_handle_at: (EPERM|EACCES)$/);
        expect(r.stdout).not.toContain('host secret');
        expect(s.mknod).toBe('mknod: EPERM');
        expect(s.root.split('\n')).toContain('hostile'); // the image's root, not the host's
        expect(r.stderr).toBe('');
      }
      // The app "two" is uid 1000 with two capabilities in its bounding set.
      expect(procStatus(podProcess(env, pod.uuid, /sleep 1002$/)!).Uid.split(/\s+/)[0]).toBe('1000');
      expect(procStatus(podProcess(env, pod.uuid, /sleep 1002$/)!).CapBnd).toBe((1n << 10n | 1n << 27n).toString(16).padStart(16, '0'));
      // Default command and exit status; a multi-app pod needs --app.
      const sh = rkt(env, ['enter', '--app=one', pod.uuid], { input: 'echo "in $AC_APP_NAME"; exit 3\n' });
      expect(sh.stdout).toBe('in one\n');
      expect(sh.stderr).toContain('assuming "/bin/sh"');
      expect(sh.status).toBe(3);
      const noApp = rkt(env, ['enter', pod.uuid, '/bin/true']);
      expect(noApp.status).toBe(254);
      expect(noApp.stderr).toMatch(/several apps .*--app/);
    } finally {
      rkt(env, ['stop', pod.uuid]);
      await pod.done;
    }
  }, 60_000);

  test('rkt enter into a --private-users pod joins its user namespace: uid 0 inside, the pod\'s range on the host, confined like the app', async () => {
    const { vol, type, hex } = shockerSetup('userns');
    const pod = await startPod(env, [INSECURE, 'run', '--private-users', '--net=host', `--volume=v,kind=host,source=${vol}`,
      aci, '--name=one', '--mount=volume=v,target=/v', '--exec=/bin/sh', '--', '-c', 'sleep 1008', '---',
      aci, '--name=two', '--user=1000', '--group=1000', '--caps-retain=CAP_NET_BIND_SERVICE', '--mount=volume=v,target=/v', '--exec=/bin/sh', '--', '-c', 'sleep 1009'], /sleep 1009$/, 60_000);
    try {
      await waitFor(() => podProcess(env, pod.uuid, /sleep 1008$/) !== undefined, 10_000, 'app one');
      const [base] = fs.readFileSync(path.join(env.dir, 'pods', 'run', pod.uuid, 'private-users-prepared'), 'utf8').trim().split(':').map(Number);
      const script = [
        'echo ==status==; grep -E "^(Uid|Gid|Groups|CapBnd|CapEff|CapPrm|CapAmb|NoNewPrivs|Seccomp)" /proc/self/status',
        'echo ==map==; cat /proc/self/uid_map',
        'echo ==userns==; readlink /proc/self/ns/user',
        'echo ==cgroup==; cat /proc/self/cgroup',
        `echo ==shocker==; /hostile open /v/anchor ${type} ${hex}`,
        'echo ==mknod==; /hostile mknod /tmp/sda 8 0',
        'echo ==root==; ls /',
        'echo ==end==',
        'exec sleep 1010',
      ].join('; ');
      for (const [app, sleeper, uid] of [['one', /sleep 1008$/, 0], ['two', /sleep 1009$/, 1000]] as const) {
        const appPid = podProcess(env, pod.uuid, sleeper)!;
        const entered = rktBackground(env, ['enter', `--app=${app}`, pod.uuid, '/bin/sh', '-c', script]);
        try {
          await waitFor(() => entered.output().stdout.includes('==end=='), 20_000, `rkt enter --app=${app}`);
          const s = sections(entered.output().stdout);
          const mine = statusOf(s.status);
          const theirs = procStatus(appPid);
          // Inside: the app's uid in the pod, its capabilities, groups, filter and no_new_privs.
          expect(mine.Uid).toBe(`${uid}\t${uid}\t${uid}\t${uid}`);
          for (const k of ['Groups', 'CapBnd', 'CapEff', 'CapPrm', 'CapAmb', 'Seccomp']) expect(`${k} ${mine[k]}`).toBe(`${k} ${theirs[k]}`);
          expect(mine.Seccomp).toBe('2');
          expect(mine.NoNewPrivs).toBe('1');
          expect(s.map.split(/\s+/).map(Number)).toEqual([0, base, 65536]);
          expect(s.userns).toBe(fs.readlinkSync(`/proc/${appPid}/ns/user`));
          expect(s.userns).not.toBe(fs.readlinkSync('/proc/self/ns/user'));
          expect(s.cgroup).toBe(fs.readFileSync(`/proc/${appPid}/cgroup`, 'utf8').trim());
          expect(s.shocker).toMatch(/^open_by_handle_at: (EPERM|EACCES)$/);
          expect(entered.output().stdout).not.toContain('host secret');
          expect(s.mknod).toBe('mknod: EPERM');
          expect(s.root.split('\n')).toContain('hostile');
          // The host's view of the entered process: the pod's range, as the app's.
          await waitFor(() => podEntered(/^sleep 1010$/) !== undefined, 10_000, 'the entered command');
          const hostUid = procStatus(podEntered(/^sleep 1010$/)!).Uid;
          expect(hostUid).toBe(`${base + uid}\t${base + uid}\t${base + uid}\t${base + uid}`);
          expect(hostUid).toBe(theirs.Uid);
        } finally {
          entered.child.kill('SIGTERM');
          const pid = podEntered(/^sleep 1010$/);
          if (pid !== undefined) process.kill(pid, 'SIGKILL');
          await entered.done;
        }
      }
    } finally {
      rkt(env, ['stop', pod.uuid]);
      await pod.done;
    }
  }, 120_000);

  // The default seccomp filter refuses new user namespaces; without it an app can make one
  // (where it could mount over /proc). Compared with the pod's user namespace, or the host's.
  test.each([
    ['an app of a --private-users pod', ['--private-users'], 1011],
    ['an app', [], 1004],
  ])('%s that moved into a user namespace of its own is not entered', async (_what, flags, tag) => {
    const sleeper = new RegExp(`sleep ${tag}$`);
    const pod = await startPod(env, ['--insecure-options=image,seccomp', 'run', ...flags, '--net=host', aci, '--exec=/bin/sh', '--', '-c', `exec unshare -U -m sleep ${tag}`], sleeper, 60_000);
    try {
      const app = podProcess(env, pod.uuid, sleeper)!;
      const podUserns = flags.length ? fs.readFileSync(path.join(env.dir, 'pods', 'run', pod.uuid, 'rkt', 'userns'), 'utf8').trim() : fs.readlinkSync('/proc/self/ns/user');
      expect(fs.readlinkSync(`/proc/${app}/ns/user`)).not.toBe(podUserns);
      const r = rkt(env, ['enter', pod.uuid, '/bin/true']);
      expect(r.status).toBe(254);
      expect(r.stderr).toBe(`enter: app hostile of pod ${pod.uuid} has left the pod's user namespace: refusing to enter it\n`);
    } finally {
      rkt(env, ['stop', pod.uuid]);
      await pod.done;
    }
  }, 60_000);

  test('a fork loop stops at the pids limit with EAGAIN; pods get 4096 by default or the config\'s limit', async () => {
    const uuidFile = path.join(env.base, 'forks-uuid');
    const r = run(env, ['--net=host', `--uuid-file-save=${uuidFile}`], aci, ['--pids-limit=40'], '/hostile forks 500');
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(0);
    const m = /^forked (\d+) errno (\w+)$/m.exec(r.stdout);
    expect(m?.[2]).toBe('EAGAIN');
    expect(Number(m?.[1])).toBeGreaterThan(20);
    expect(Number(m?.[1])).toBeLessThan(40);
    const uuid = fs.readFileSync(uuidFile, 'utf8');
    const pidsDir = podCgroupDirs(uuid).find((d) => fs.existsSync(path.join(d, 'pids.max')))!;
    expect(fs.readFileSync(path.join(pidsDir, 'pids.max'), 'utf8').trim()).toBe('4096');
    expect(fs.readFileSync(path.join(pidsDir, 'hostile', 'pids.max'), 'utf8').trim()).toBe('40');
    // The host is fine.
    expect(spawnSync('true').status).toBe(0);

    // The pod-wide default from limits.d (local config over system config).
    fs.mkdirSync(path.join(env.systemConfig, 'limits.d'), { recursive: true });
    fs.mkdirSync(path.join(env.localConfig, 'limits.d'), { recursive: true });
    fs.writeFileSync(path.join(env.systemConfig, 'limits.d', 'pids.json'), JSON.stringify({ rktKind: 'limits', rktVersion: 'v1', pidsLimit: 1000 }));
    fs.writeFileSync(path.join(env.localConfig, 'limits.d', 'pids.json'), JSON.stringify({ rktKind: 'limits', rktVersion: 'v1', pidsLimit: 30 }));
    try {
      const c = run(env, ['--net=host', `--uuid-file-save=${uuidFile}`], aci, [], '/hostile forks 500');
      expect(c.status).toBe(0);
      const n = /^forked (\d+) errno (\w+)$/m.exec(c.stdout);
      expect(n?.[2]).toBe('EAGAIN');
      expect(Number(n?.[1])).toBeLessThan(30);
      const dir = podCgroupDirs(fs.readFileSync(uuidFile, 'utf8')).find((d) => fs.existsSync(path.join(d, 'pids.max')))!;
      expect(fs.readFileSync(path.join(dir, 'pids.max'), 'utf8').trim()).toBe('30');
    } finally {
      fs.rmSync(path.join(env.localConfig, 'limits.d'), { recursive: true });
      fs.rmSync(path.join(env.systemConfig, 'limits.d'), { recursive: true });
    }
  }, 60_000);

  test('--pids-limit=0, abc and a bad limits.d file: one line, exit 254, nothing left behind', () => {
    const pods = podUuids(env).length;
    for (const bad of ['--pids-limit=0', '--pids-limit=abc', '--pids-limit=-5']) {
      const r = run(env, ['--net=host'], aci, [bad], 'true');
      expect(r.status).toBe(254);
      expect(errorLines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toContain(`invalid ${bad.split('=')[0]} "${bad.split('=')[1]}"`);
    }
    fs.mkdirSync(path.join(env.localConfig, 'limits.d'));
    fs.writeFileSync(path.join(env.localConfig, 'limits.d', 'x.json'), JSON.stringify({ rktKind: 'limits', rktVersion: 'v1', pidsLimit: 'lots' }));
    try {
      const r = run(env, ['--net=host'], aci, [], 'true');
      expect(r.status).toBe(254);
      expect(errorLines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toContain('x.json: invalid pidsLimit "lots"');
    } finally {
      fs.rmSync(path.join(env.localConfig, 'limits.d'), { recursive: true });
    }
    // Refused before a pod (and so any cgroup, netns or mount) exists.
    expect(podUuids(env)).toHaveLength(pods);
  });

  test('an image whose /proc, /sys and /dev are links out of the rootfs gets them inside its rootfs; the host paths stay untouched', async () => {
    const hostProc = fs.mkdtempSync('/tmp/rkt-it-procx-');
    const hostDev = fs.mkdtempSync('/tmp/rkt-it-devx-');
    for (const d of [hostProc, hostDev]) fs.writeFileSync(path.join(d, 'marker'), 'host');
    try {
      const linked = await hostileAci(env.base, 'linked', [
        { path: 'proc', type: 'symlink', linkname: hostProc },
        { path: 'dev', type: 'symlink', linkname: `../../..${hostDev}` },
        { path: 'sys', type: 'symlink', linkname: 'tmp/sys' },
      ]);
      const r = run(env, ['--net=host'], linked, [],
        'echo ==self==; grep ^Name: /proc/self/status; echo ==null==; echo hi > /dev/null && echo ok; echo ==sys==; ls /sys/kernel >/dev/null && echo ok; echo ==marker==; ls /proc/ | grep -c marker; echo ==mounts==; cat /proc/self/mountinfo');
      expect(r.stderr).not.toMatch(/stage1:/);
      expect(r.status).toBe(0);
      const s = sections(r.stdout);
      expect(s.self).toMatch(/^Name:\s+grep$/);
      expect(s.null).toBe('ok');
      expect(s.sys).toBe('ok');
      expect(s.marker).toBe('0');
      const points = s.mounts.split('\n').map((l) => l.split(' ')[4]);
      expect(points).toContain(hostProc); // inside the app's rootfs
      expect(points).toContain(`${hostDev}/null`);
      expect(points).toContain('/tmp/sys');
      for (const d of [hostProc, hostDev]) expect(fs.readdirSync(d)).toEqual(['marker']);
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(/rkt-it-(proc|dev)x-/);

      // /sys leading to /proc would hide one with the other: refused before any pod exists.
      const pods = podUuids(env).length;
      const clash = await hostileAci(env.base, 'clash', [{ path: 'proc', type: 'directory' }, { path: 'sys', type: 'symlink', linkname: 'proc' }]);
      const c = run(env, ['--net=host'], clash, [], 'true');
      expect(c.status).toBe(254);
      expect(errorLines(c.stderr)).toHaveLength(1);
      expect(c.stderr).toContain("the image's /sys leads to /proc");
      expect(podUuids(env)).toHaveLength(pods);
    } finally {
      fs.rmSync(hostProc, { recursive: true, force: true });
      fs.rmSync(hostDev, { recursive: true, force: true });
    }
  }, 60_000);

  test('a readOnly=true,recursive=true volume is read-only below its nested mounts too (EROFS)', () => {
    const vol = path.join(env.base, 'ro-tree');
    const sub = path.join(vol, 'sub');
    fs.mkdirSync(sub, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'rkt-it-nested', sub]);
    try {
      const script = 'touch /v/top 2>&1; echo "top $?"; touch /v/sub/below 2>&1; echo "below $?"';
      const ro = run(env, ['--net=host', `--volume=v,kind=host,source=${vol},readOnly=true,recursive=true`], aci, ['--mount=volume=v,target=/v'], script);
      expect(ro.status).toBe(0);
      expect(ro.stdout).toMatch(/touch: \/v\/top: Read-only file system\ntop 1\n/);
      expect(ro.stdout).toMatch(/touch: \/v\/sub\/below: Read-only file system\nbelow 1\n/);
      expect(fs.readdirSync(sub)).toEqual([]);
      // Control: without readOnly the nested mount is there and writable.
      const rw = run(env, ['--net=host', `--volume=v,kind=host,source=${vol},recursive=true`], aci, ['--mount=volume=v,target=/v'], script);
      expect(rw.stdout).toBe('top 0\nbelow 0\n');
      expect(fs.readdirSync(sub)).toEqual(['below']);
    } finally {
      execFileSync('umount', [sub]);
    }
  }, 60_000);

  test('mknod of devices outside the minimal /dev fails in a pod (device cgroup), even with CAP_MKNOD', () => {
    const r = run(env, ['--net=host'], aci, [], 'for d in "8 0" "8 16" "259 0"; do /hostile mknod /tmp/blk $d; done; grep CapBnd /proc/self/status');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^(mknod: EPERM\n){3}/);
    // CAP_MKNOD (27) is in the default set: the cgroup is what refuses.
    expect(BigInt(`0x${/CapBnd:\s+(\w+)/.exec(r.stdout)![1]}`) & (1n << 27n)).not.toBe(0n);
  });

  /**
   * Run in an app: waits until PID 1's bounding set is within the app's own (PID 1 drops its
   * capabilities once every app's launcher has a mount namespace, usually before the app
   * runs; at most 5 s), then prints both statuses and what the app gets from PID 1's /proc.
   */
  const PROBE_INIT = [
    'bnd() { grep "^CapBnd" "$1" | { read -r _ v; echo "$v"; }; }',
    'i=0; while [ $(( 0x$(bnd /proc/1/status) & ~0x$(bnd /proc/self/status) )) -ne 0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done',
    'echo ==init==; grep -E "^(Uid|Cap)" /proc/1/status',
    'echo ==self==; grep -E "^(Uid|Cap)" /proc/self/status',
    'echo ==peek==',
    'for f in environ mem; do e=$(cat /proc/1/$f 2>&1 >/dev/null) && echo "$f READ" || echo "$f denied: $e"; done',
    'e=$(ls /proc/1/root 2>&1 >/dev/null) && echo "root READ" || echo "root denied: $e"',
    'x=$(readlink /proc/1/exe) && echo "exe READ $x" || echo "exe denied"',
    'echo ==end==',
  ].join('\n');
  const KILL = 1n << 5n;
  const caps = (st: Record<string, string>, k: string) => BigInt(`0x${st[k]}`);

  test('the pod\'s PID 1 keeps no capability beyond the app\'s (CAP_KILL of the default set) and cannot be inspected by it', () => {
    const r = run(env, ['--net=host'], aci, [], PROBE_INIT);
    expect(errorLines(r.stderr).filter(Boolean)).toEqual([]);
    expect(r.status).toBe(0);
    const s = sections(r.stdout);
    const init = statusOf(s.init);
    const self = statusOf(s.self);
    // The default app (root, rkt's 14 default capabilities) against PID 1, in every set.
    for (const k of ['CapBnd', 'CapEff', 'CapPrm']) {
      expect(caps(self, k)).toBe(0xa80425fbn);
      expect(`${k} ${caps(init, k) & ~caps(self, k)}`).toBe(`${k} 0`);
      expect(`${k} ${caps(init, k)}`).toBe(`${k} ${KILL}`); // all it needs: stopping apps of other uids
    }
    for (const k of ['CapInh', 'CapAmb']) expect(caps(init, k)).toBe(0n);
    expect(init.Uid.split(/\s+/)[0]).toBe('0');
    // PID 1 runs as root with no more than the app, so the kernel would let the app read and
    // write its memory: PID 1 is not dumpable, and all of these are refused.
    expect(s.peek.split('\n')).toEqual([
      "environ denied: cat: can't open '/proc/1/environ': Permission denied",
      "mem denied: cat: can't open '/proc/1/mem': Permission denied",
      'root denied: ls: /proc/1/root: Permission denied',
      'exe denied',
    ]);
  }, 60_000);

  test('PID 1 follows the union of the apps\' sets: without CAP_KILL in any (--caps-retain, --caps-remove) it keeps nothing, and the pod still stops', async () => {
    const pod = await startPod(env, [INSECURE, 'run', '--net=host',
      aci, '--name=retain', '--caps-retain=CAP_NET_BIND_SERVICE,CAP_CHOWN', '--exec=/bin/sh', '--', '-c', `${PROBE_INIT}\nexec sleep 1005`, '---',
      aci, '--name=remove', '--caps-remove=CAP_KILL', '--exec=/bin/sh', '--', '-c', 'exec sleep 1006', '---',
      aci, '--name=user', '--user=1000', '--group=1000', '--caps-remove=CAP_KILL', '--exec=/bin/sh', '--', '-c', 'exec sleep 1007'], '==end==');
    try {
      const s = sections(pod.output().stdout);
      const init = statusOf(s.init);
      for (const k of ['CapBnd', 'CapEff', 'CapPrm', 'CapInh', 'CapAmb']) expect(`${k} ${caps(init, k)}`).toBe(`${k} 0`);
      expect(s.peek).not.toContain('READ');
      // Seen from the host too, against each app's own sets.
      const holder = podPid(env, pod.uuid);
      const initPid = Number(fs.readFileSync(`/proc/${holder}/task/${holder}/children`, 'utf8').trim().split(/\s+/)[0]);
      expect(fs.readFileSync(`/proc/${initPid}/cmdline`, 'utf8')).toContain('/stage1/init.table');
      for (const sleeper of [/sleep 1005$/, /sleep 1006$/, /sleep 1007$/]) {
        await waitFor(() => podProcess(env, pod.uuid, sleeper) !== undefined, 10_000, `${sleeper}`);
        const app = procStatus(podProcess(env, pod.uuid, sleeper)!);
        for (const k of ['CapBnd', 'CapEff', 'CapPrm']) expect(caps(procStatus(initPid), k) & ~caps(app, k)).toBe(0n);
      }
    } finally {
      // PID 1 may not signal app "user" (uid 1000, and no CAP_KILL anywhere in the pod): after
      // the grace period it exits, and the kernel kills what is left of the pod with it.
      rkt(env, ['stop', pod.uuid]);
      await pod.done;
    }
    const status = statusJson(env, pod.uuid);
    expect(status.state).toBe('exited');
    const code = (name: string) => status.apps.find((a) => a.name === name)?.exit_code;
    expect([code('retain'), code('remove'), code('user')]).toEqual([143, 143, 137]);
  }, 60_000);
});

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 2000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

cniSuite('--port without exposing the host\'s 127.0.0.1 (CVE-2020-8558)', () => {
  let env: RktEnv;
  let aci: string;
  beforeAll(async () => {
    env = makeEnv();
    aci = await hostileAci(env.base, 'prober');
  }, 60_000);
  afterAll(async () => { await teardown(env); });

  test('raw packets from a --port pod get no answer from host TCP and UDP listeners on 127.0.0.1, while forwarding works', async () => {
    const tcpSeen: string[] = [];
    const tcp = net.createServer((c) => { tcpSeen.push('connection'); c.end('host only\n'); });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    const udpSeen: string[] = [];
    const udp = dgram.createSocket('udp4');
    udp.on('message', (m) => udpSeen.push(m.toString()));
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    const tcpPort = (tcp.address() as net.AddressInfo).port;
    const udpPort = udp.address().port;
    const hostPort = await freePort();
    const pod = await startPod(env, [INSECURE, 'run', `--port=http:${hostPort}`, aci, '--exec=/bin/sh', '--', '-c', 'httpd -f -p 80 -h /www'], /httpd -f/);
    try {
      await waitFor(() => { try { return fs.existsSync(path.join(env.dir, 'pods', 'run', pod.uuid, 'net-info.json')); } catch { return false; } }, 5_000, 'net-info');
      const info = JSON.parse(fs.readFileSync(path.join(env.dir, 'pods', 'run', pod.uuid, 'net-info.json'), 'utf8')) as Array<{ ip: string; hostIfs: string[] }>;
      const veth = info[0].hostIfs[0];
      const mac = fs.readFileSync(`/sys/class/net/${veth}/address`, 'utf8').trim();
      expect(fs.readFileSync(`/proc/sys/net/ipv4/conf/${veth}/route_localnet`, 'utf8').trim()).toBe('1');
      const probe = (proto: string, port: number) => rkt(env, ['enter', pod.uuid, '/hostile', 'probe', 'eth0', mac, info[0].ip, proto, String(port)]);

      expect(await httpGet(`http://127.0.0.1:${hostPort}/`)).toBe('forwarded\n');
      const t = probe('tcp', tcpPort);
      expect(t.stderr).toBe('');
      expect(t.stdout).toBe('no answer\n');
      expect(probe('udp', udpPort).stdout).toBe('sent\n');
      await new Promise((r) => setTimeout(r, 500));
      expect(udpSeen).toEqual([]);
      expect(tcpSeen).toEqual([]);
      expect(await httpGet(`http://127.0.0.1:${hostPort}/`)).toBe('forwarded\n');

      // Control: without the drop rule the same probes reach both listeners.
      const chain = `RKT-PFWD-LOCAL-${pod.uuid.slice(0, 8)}`;
      execFileSync('iptables', ['-w', '-D', 'INPUT', '-i', veth, '-j', chain]);
      expect(probe('tcp', tcpPort).stdout).toBe('answer syn-ack\n');
      probe('udp', udpPort);
      await waitFor(() => udpSeen.length > 0, 3_000, 'the UDP probe without the rule');
      expect(udpSeen[0]).toBe('probe\n');
    } finally {
      rkt(env, ['stop', pod.uuid]);
      await pod.done;
      tcp.close();
      udp.close();
    }
    // gc removes the chain with the pod's other rules.
    rkt(env, ['gc', '--grace-period=0s']);
    expect(execFileSync('iptables-save', ['-t', 'filter'], { encoding: 'utf8' })).not.toContain(`RKT-PFWD-LOCAL-${pod.uuid.slice(0, 8)}`);
  }, 90_000);
});
