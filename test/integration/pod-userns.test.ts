/**
 * `--private-users`: each pod in a user namespace whose root is an unprivileged range of
 * host uids, with the image's owners shown inside through idmapped mounts. Checked from
 * inside real pods, from the host's view of their processes and files, and with a
 * hostile app that is root in the pod.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RktEnv, hostFootprint, makeEnv, rkt, skipReason, describeIf } from '../helpers/rkt.js';
import { INSECURE, podProcess, podTraces, podUuids, sections, shArgs, startPod, teardown } from '../helpers/pods.js';
import { RANGE_COUNT, RANGE_FIRST } from '../../src/stage0/userns.js';

const HELPER = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'dist', 'stage1', 'rkt-idmap');
const suite = describeIf(skipReason() ?? (fs.existsSync(HELPER) ? undefined : `needs ${HELPER} (scripts/setup.sh builds it)`));

/** The range a pod's dir records, as "BASE:COUNT". */
function podRange(env: RktEnv, uuid: string): { base: number; count: number } {
  for (const state of ['run', 'prepared', 'exited-garbage']) {
    const f = path.join(env.dir, 'pods', state, uuid, 'private-users-prepared');
    if (fs.existsSync(f)) {
      const [base, count] = fs.readFileSync(f, 'utf8').trim().split(':').map(Number);
      return { base, count };
    }
  }
  throw new Error(`pod ${uuid} records no range`);
}

/** Host mounts under the env, and cgroups and netns named after the given pods. */
function ownFootprint(env: RktEnv, uuids: string[]): ReturnType<typeof hostFootprint> {
  const fp = hostFootprint();
  const ours = (x: string) => uuids.some((u) => x.includes(u));
  return { mounts: fp.mounts.filter((m) => m.includes(env.base) || ours(m)), cgroups: fp.cgroups.filter(ours), netns: fp.netns.filter(ours) };
}

/** The Uid:/Gid: lines of /proc/PID/status as [real, effective, saved, fs]. */
function hostIds(pid: number): { uid: number[]; gid: number[] } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const ids = (k: string) => status.split('\n').find((l) => l.startsWith(`${k}:`))!.split(/\s+/).slice(1, 5).map(Number);
  return { uid: ids('Uid'), gid: ids('Gid') };
}

/** An ACI of static busybox whose rootfs has files owned by a non-root user, as a real image would. */
async function buildOwnedAci(file: string): Promise<void> {
  const { pack } = await import('tar-stream');
  const p = pack();
  const out = fs.createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => { out.on('finish', resolve); out.on('error', reject); });
  p.pipe(out);
  const manifest = {
    acKind: 'ImageManifest', acVersion: '0.8.11', name: 'rkt.local/owned',
    labels: [{ name: 'version', value: '1.0.0' }, { name: 'os', value: 'linux' }, { name: 'arch', value: 'amd64' }],
    app: { exec: ['/bin/sh'], user: '0', group: '0' },
  };
  p.entry({ name: 'manifest', mode: 0o644 }, JSON.stringify(manifest));
  p.entry({ name: 'rootfs', type: 'directory', mode: 0o755 });
  p.entry({ name: 'rootfs/bin', type: 'directory', mode: 0o755 });
  p.entry({ name: 'rootfs/bin/busybox', mode: 0o755 }, fs.readFileSync('/bin/busybox'));
  p.entry({ name: 'rootfs/bin/sh', type: 'symlink', linkname: 'busybox' });
  for (const d of ['etc', 'proc', 'sys', 'dev', 'tmp']) p.entry({ name: `rootfs/${d}`, type: 'directory', mode: d === 'tmp' ? 0o1777 : 0o755 });
  p.entry({ name: 'rootfs/etc/rootfile', mode: 0o644 }, 'root\n');
  p.entry({ name: 'rootfs/home', type: 'directory', mode: 0o755 });
  p.entry({ name: 'rootfs/home/user', type: 'directory', mode: 0o700, uid: 1000, gid: 1000 });
  p.entry({ name: 'rootfs/home/user/owned', mode: 0o600, uid: 1000, gid: 1000 }, 'mine\n');
  p.entry({ name: 'rootfs/etc/shadowish', mode: 0o640, uid: 0, gid: 42 }, 'secret\n');
  p.finalize();
  await done;
}

const STAT = 'busybox stat -c "%u:%g %n" / /etc/rootfile /etc/shadowish /home/user /home/user/owned';

suite('--private-users', () => {
  let env: RktEnv;
  let ownedAci: string;
  beforeAll(async () => {
    env = makeEnv('rkt-it-userns-');
    ownedAci = path.join(env.base, 'owned.aci');
    await buildOwnedAci(ownedAci);
  });
  afterAll(async () => {
    const uuids = podUuids(env);
    await teardown(env);
    // Only this suite's pods: other suites may run pods on the machine meanwhile.
    expect(ownFootprint(env, uuids)).toEqual({ mounts: [], cgroups: [], netns: [] });
  });

  describe('a running pod (--net=host)', () => {
    let uuid: string;
    let s: Record<string, string>;
    let range: { base: number; count: number };
    let appPid: number;
    beforeAll(async () => {
      const script = [
        'echo ==uid==; id -u; echo ==gid==; id -g',
        'echo ==uidmap==; cat /proc/self/uid_map; echo ==gidmap==; cat /proc/self/gid_map',
        `echo ==stat==; ${STAT}`,
        'echo ==owned==; cat /home/user/owned',
        'echo ==done==; exec sleep 600',
      ].join('; ');
      const pod = await startPod(env, [INSECURE, 'run', '--private-users', '--net=host', ownedAci, '--exec=/bin/sh', '--', '-c', script], '==done==', 60_000);
      uuid = pod.uuid;
      s = sections(pod.output().stdout);
      range = podRange(env, uuid);
      appPid = podProcess(env, uuid, /^sleep 600/)!;
    }, 90_000);
    afterAll(() => { rkt(env, ['stop', '--force', uuid]); });

    test('the pod records a range of 65536 ids from the container range, for gc, enter and status', () => {
      expect(range.count).toBe(RANGE_COUNT);
      expect(range.base).toBeGreaterThanOrEqual(RANGE_FIRST);
      expect(range.base % RANGE_COUNT).toBe(0);
    });

    test('inside, the app is root, and its uid and gid maps are the pod range', () => {
      expect(s.uid).toBe('0');
      expect(s.gid).toBe('0');
      expect(s.uidmap.split(/\s+/).map(Number)).toEqual([0, range.base, RANGE_COUNT]);
      expect(s.gidmap.split(/\s+/).map(Number)).toEqual([0, range.base, RANGE_COUNT]);
    });

    test("the host sees the app's process as the unprivileged base uid and gid of the range", () => {
      expect(appPid).toBeGreaterThan(0);
      const ids = hostIds(appPid);
      expect(ids.uid).toEqual([range.base, range.base, range.base, range.base]);
      expect(ids.gid).toEqual([range.base, range.base, range.base, range.base]);
      expect(fs.readFileSync(`/proc/${appPid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number)).toEqual([0, range.base, RANGE_COUNT]);
      // The host's own view is the identity map: the pod really is another user namespace.
      expect(fs.readlinkSync(`/proc/${appPid}/ns/user`)).not.toBe(fs.readlinkSync('/proc/self/ns/user'));
    });

    test("files of the rootfs show the image's owners inside, root-owned ones as 0", () => {
      expect(s.stat.split('\n')).toEqual(['0:0 /', '0:0 /etc/rootfile', '0:42 /etc/shadowish', '1000:1000 /home/user', '1000:1000 /home/user/owned']);
      // Root of the pod reads a 0600 file of user 1000 (CAP_DAC_OVERRIDE over its own ids).
      expect(s.owned).toBe('mine');
    });

    test('the shared rendered tree is never chowned: the host still sees the image owners there', () => {
      const trees = path.join(env.dir, 'cas', 'tree');
      const tree = fs.readdirSync(trees).map((t) => path.join(trees, t, 'rootfs')).find((r) => fs.existsSync(path.join(r, 'home/user/owned')))!;
      const st = fs.statSync(path.join(tree, 'home/user/owned'));
      expect([st.uid, st.gid]).toEqual([1000, 1000]);
      expect(fs.statSync(path.join(tree, 'etc/rootfile')).uid).toBe(0);
    });
  });

  test('files the pod writes land in its range on the host; a non-root app user maps to base+uid', () => {
    const r = rkt(env, [INSECURE, 'run', '--private-users', '--net=host', `--uuid-file-save=${env.base}/w-uuid`, ownedAci, '--user=1000', '--group=1000', '--exec=/bin/sh', '--',
      '-c', 'id -u; echo x > /tmp/by-user; echo y > /home/user/new; grep Uid /proc/self/status']);
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(0);
    const uuid = fs.readFileSync(`${env.base}/w-uuid`, 'utf8');
    const { base } = podRange(env, uuid);
    expect(r.stdout.split('\n')[0]).toBe('1000');
    const upper = path.join(env.dir, 'pods', 'run', uuid, 'overlay', 'owned', 'upper');
    expect(fs.statSync(path.join(upper, 'tmp/by-user')).uid).toBe(base + 1000);
    expect(fs.statSync(path.join(upper, 'home/user/new')).gid).toBe(base + 1000);
  });

  test('--no-overlay: the private copy is idmapped too, owners show as in the image', () => {
    const r = rkt(env, [INSECURE, 'run', '--private-users', '--no-overlay', '--net=host', ownedAci, '--exec=/bin/sh', '--', '-c', `id -u; ${STAT}; echo z > /etc/new && busybox stat -c %u /etc/new`]);
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['0', '0:0 /', '0:0 /etc/rootfile', '0:42 /etc/shadowish', '1000:1000 /home/user', '1000:1000 /home/user/owned', '0']);
  });

  describe('host volumes', () => {
    let mapped: string;
    let unmapped: string;
    beforeAll(() => {
      mapped = fs.mkdtempSync(path.join(env.base, 'mapped-'));
      unmapped = fs.mkdtempSync(path.join(env.base, 'unmapped-'));
      for (const d of [mapped, unmapped]) {
        fs.chmodSync(d, 0o755);
        fs.writeFileSync(path.join(d, 'host-file'), 'host\n', { mode: 0o644 });
        fs.writeFileSync(path.join(d, 'host-secret'), 'secret\n', { mode: 0o600 });
      }
    });

    test('a host volume is idmapped: host owners show inside, and what the pod root writes is root-owned on the host', () => {
      const r = rkt(env, shArgs(['--private-users', '--net=host', `--volume=v,kind=host,source=${mapped}`], ['--mount=volume=v,target=/v'],
        'busybox stat -c "%u:%g %n" /v/host-file; cat /v/host-secret; echo pod >> /v/host-file; echo new > /v/from-pod'));
      expect(r.stderr).not.toMatch(/stage1:/);
      expect(r.status).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual(['0:0 /v/host-file', 'secret']);
      expect(fs.readFileSync(path.join(mapped, 'host-file'), 'utf8')).toBe('host\npod\n');
      const st = fs.statSync(path.join(mapped, 'from-pod'));
      expect([st.uid, st.gid]).toEqual([0, 0]);
    });

    test('hostile: root of the pod, with every capability, cannot read, write, chown or replace host root files of an unmapped volume', () => {
      const attack = [
        'busybox stat -c "%u:%g" /v/host-file',
        'cat /v/host-secret && echo READ-SECRET',
        'echo pwned >> /v/host-file && echo WROTE',
        'echo pwned > /v/planted && echo PLANTED',
        'busybox chown 0:0 /v/host-file && echo CHOWNED',
        'busybox chmod 666 /v/host-file && echo CHMODDED',
        'busybox rm -f /v/host-secret && echo REMOVED',
        'busybox mount -o remount,rw /v 2>/dev/null; echo pwned >> /v/host-file && echo WROTE-AFTER-REMOUNT',
        'echo done',
      ].join('; ');
      const r = rkt(env, ['--insecure-options=image,capabilities', 'run', '--private-users', '--net=host', `--volume=v,kind=host,source=${unmapped},idmap=false`,
        BUSYBOX_ACI, '--mount=volume=v,target=/v', '--exec=/bin/sh', '--', '-c', attack]);
      expect(r.stderr).not.toMatch(/stage1:/);
      expect(r.status).toBe(0);
      // Unmapped host root shows as the overflow id, and nothing of the attack worked.
      expect(r.stdout.trim().split('\n')).toEqual(['65534:65534', 'done']);
      expect(fs.readFileSync(path.join(unmapped, 'host-file'), 'utf8')).toBe('host\n');
      expect(fs.existsSync(path.join(unmapped, 'planted'))).toBe(false);
      expect(fs.existsSync(path.join(unmapped, 'host-secret'))).toBe(true);
      const st = fs.statSync(path.join(unmapped, 'host-file'));
      expect([st.uid, st.mode & 0o777]).toEqual([0, 0o644]);
    });
  });

  test('hostile: with every capability of its namespace, pod root cannot undo what stage1 mounted (locked mounts)', () => {
    const ro = fs.mkdtempSync(path.join(env.base, 'ro-'));
    fs.writeFileSync(path.join(ro, 'f'), 'host\n');
    const attack = [
      'grep -q CapEff:.000001ffffffffff /proc/self/status && echo all-caps',
      'mount -o remount,rw /v 2>/dev/null && echo REMOUNTED-VOLUME',
      'umount /v 2>/dev/null && echo UNMOUNTED-VOLUME',
      'echo pwned >> /v/f 2>/dev/null && echo WROTE',
      'mount -o remount,rw /proc 2>/dev/null && echo REMOUNTED-PROC',
      'umount /sys/firmware 2>/dev/null && echo UNMASKED',
      'echo done',
    ].join('; ');
    const r = rkt(env, ['--insecure-options=image,capabilities', 'run', '--private-users', '--net=host', `--volume=v,kind=host,source=${ro},readOnly=true`,
      BUSYBOX_ACI, '--mount=volume=v,target=/v', '--exec=/bin/sh', '--', '-c', attack]);
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['all-caps', 'done']);
    expect(fs.readFileSync(path.join(ro, 'f'), 'utf8')).toBe('host\n');
  });

  test('two running pods get disjoint ranges, and each app runs in its own', async () => {
    const args = (tag: string) => [INSECURE, 'run', '--private-users', '--net=host', BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', `echo ${tag}; exec sleep 601`];
    const [a, b] = await Promise.all([startPod(env, args('ready-a'), 'ready-a', 60_000), startPod(env, args('ready-b'), 'ready-b', 60_000)]);
    try {
      const ra = podRange(env, a.uuid);
      const rb = podRange(env, b.uuid);
      expect(ra.base + ra.count <= rb.base || rb.base + rb.count <= ra.base).toBe(true);
      expect(hostIds(podProcess(env, a.uuid, /^sleep 601/)!).uid[0]).toBe(ra.base);
      expect(hostIds(podProcess(env, b.uuid, /^sleep 601/)!).uid[0]).toBe(rb.base);
      // rkt enter joins each pod's own user namespace (pod-confine.test.ts checks the rest of it).
      for (const pod of [a, b]) {
        const enter = rkt(env, ['enter', pod.uuid, '/bin/sh', '-c', 'id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user']);
        expect(enter.stderr).toBe('');
        expect(enter.status).toBe(0);
        const [uid, ...rest] = enter.stdout.trim().split(/\s+/);
        expect(uid).toBe('0');
        expect(rest.slice(0, 3).map(Number)).toEqual([0, podRange(env, pod.uuid).base, 65536]);
        expect(rest[3]).toBe(fs.readlinkSync(`/proc/${podProcess(env, pod.uuid, /^sleep 601/)!}/ns/user`));
      }
    } finally {
      rkt(env, ['stop', '--force', a.uuid, b.uuid]);
      await Promise.all([a.done, b.done]);
    }
  }, 120_000);

  test('--net=default: CNI sets up the pod network, and the pod root may bind a port below 1024', () => {
    const r = rkt(env, shArgs(['--private-users', '--net=default'], [], 'ip -4 -o addr show eth0 | grep -q "inet 172\\." && echo has-ip; busybox httpd -p 80 -h /tmp && echo bound-80; id -u'));
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['has-ip', 'bound-80', '0']);
  }, 90_000);

  test('a pod of two apps: both in the one user namespace of the pod', () => {
    const report = (n: string) => ['--exec=/bin/sh', '--', '-c', `echo ${n} $(readlink /proc/self/ns/user) $(cat /proc/self/uid_map)`];
    const r = rkt(env, [INSECURE, 'run', '--private-users', '--net=host', BUSYBOX_ACI, '--name=a', ...report('a'), '---', BUSYBOX_ACI, '--name=b', ...report('b')]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').sort().map((l) => l.split(/\s+/));
    expect(lines.map((l) => l[0])).toEqual(['a', 'b']);
    expect(lines[0].slice(1)).toEqual(lines[1].slice(1));
    expect(lines[0][1]).not.toBe(fs.readlinkSync('/proc/self/ns/user'));
    expect(Number(lines[0][3])).toBeGreaterThanOrEqual(RANGE_FIRST);
  });

  test('prepare + run-prepared keep the recorded range', () => {
    const p = rkt(env, [INSECURE, 'prepare', '--private-users', '--quiet', BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', 'cat /proc/self/uid_map']);
    expect(p.status).toBe(0);
    const uuid = p.stdout.trim();
    const { base } = podRange(env, uuid);
    const r = rkt(env, ['run-prepared', '--net=host', uuid]);
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split(/\s+/).map(Number)).toEqual([0, base, RANGE_COUNT]);
  });

  test('without --private-users nothing changes: host ids, no range recorded', () => {
    const r = rkt(env, shArgs(['--net=host', `--uuid-file-save=${env.base}/plain-uuid`], [], 'cat /proc/self/uid_map'));
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split(/\s+/)).toEqual(['0', '0', '4294967295']);
    const uuid = fs.readFileSync(`${env.base}/plain-uuid`, 'utf8');
    expect(fs.existsSync(path.join(env.dir, 'pods', 'run', uuid, 'private-users-prepared'))).toBe(false);
  });

  describe('refusals: one line, exit 254, nothing left behind', () => {
    const podsLeft = () => ['embryo', 'prepare', 'prepared', 'run'].flatMap((s) => {
      try { return fs.readdirSync(path.join(env.dir, 'pods', s)); } catch { return []; }
    });
    test.each([
      ['a volume on a filesystem that cannot be idmapped (procfs)', ['--volume=p,kind=host,source=/proc/sys/kernel'], ['--mount=volume=p,target=/p'],
        /^run: --private-users: this kernel or filesystem cannot make the idmapped mounts it needs \(cannot idmap \/proc\/sys\/kernel: .*\): run without --private-users/],
      ['an app uid outside the pod range', [], ['--user=70000'], /^run: --private-users: app "busybox" uses uid 70000, outside the pod's 65536 ids/],
    ])('%s', (_what, podFlags, appFlags, msg) => {
      const pods = podsLeft();
      const r = rkt(env, shArgs(['--private-users', '--net=host', ...podFlags], appFlags, 'echo SHOULD-NOT-RUN'));
      expect(r.status).toBe(254);
      expect(r.stdout).not.toContain('SHOULD-NOT-RUN');
      expect(r.stderr.trim().split('\n').filter((l) => !/warning:|using image/.test(l))).toHaveLength(1);
      expect(r.stderr.trim().split('\n').pop()).toMatch(msg);
      // Refused before the pod exists: no new pod dir, so no UUID a cgroup or netns could carry.
      expect(podsLeft()).toEqual(pods);
      expect(ownFootprint(env, []).mounts).toEqual([]);
    });
  });

  test('gc removes everything of exited userns pods: dirs, mounts, cgroups, the namespace holder', async () => {
    const r = rkt(env, shArgs(['--private-users', '--net=default', `--uuid-file-save=${env.base}/gc-uuid`], [], 'true'));
    expect(r.status).toBe(0);
    const uuid = fs.readFileSync(`${env.base}/gc-uuid`, 'utf8');
    expect(rkt(env, ['gc', '--grace-period=0s']).status).toBe(0);
    const traces = podTraces(env, uuid);
    expect(traces).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
  }, 90_000);
});
