/**
 * `rkt run` as people type it, with real pods: exit statuses (the app's, the first
 * failure of several apps, 254 for rkt's own errors), and what the app gets from the
 * command line: environment, user and group, working dir and volumes. Everything is
 * checked from inside the pod with busybox.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, IMAGES, RKT, RktEnv, makeEnv, rkt, describeIf, skipReason } from '../helpers/rkt.js';
import { INSECURE, buildBusyboxAci, listJson, podTraces, sections, shArgs, statusText, teardown } from '../helpers/pods.js';

const suite = describeIf(skipReason());

/** The error line of a failed rkt command: its last stderr line. */
function errorLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  return lines[lines.length - 1];
}

function expectOneLineFailure(r: { status: number | null; stdout: string; stderr: string }, problem: RegExp): void {
  expect(r.status).toBe(254);
  expect(r.stdout).toBe('');
  expect(errorLine(r.stderr)).toMatch(/^run: /);
  expect(errorLine(r.stderr)).toMatch(problem);
  expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
}

suite('rkt run: exit status', () => {
  let env: RktEnv;
  beforeAll(() => { env = makeEnv(); });
  afterAll(async () => { await teardown(env); });

  test('the command from the issue, exactly as written, prints hi and exits 3', () => {
    const r = spawnSync(RKT, [...env.globals, 'run', '--insecure-options=image', './busybox.aci', '--exec=/bin/sh', '--', '-c', 'echo hi; exit 3'],
      { cwd: IMAGES, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).not.toMatch(/signed by key|trust store/);
    expect(r.stdout).toBe('hi\n');
    expect(r.status).toBe(3);
  });

  test('an app that succeeds makes rkt exit 0', () => {
    const r = rkt(env, shArgs(['--net=host'], [], 'exit 0'));
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(0);
  });

  test('four apps, one exits 5: rkt exits 5 and rkt status shows each app\'s code', () => {
    const uuidFile = path.join(env.base, 'three-apps');
    const r = rkt(env, [INSECURE, 'run', '--net=host', `--uuid-file-save=${uuidFile}`,
      BUSYBOX_ACI, '--name=first', '--exec=/bin/sh', '--', '-c', 'exit 0', '---',
      BUSYBOX_ACI, '--name=second', '--exec=/bin/sh', '--', '-c', 'sleep 0.5; exit 5', '---',
      // Stopped because "second" failed: its TERM trap exits 7, which must not replace the 5.
      BUSYBOX_ACI, '--name=third', '--exec=/bin/sh', '--', '-c', "trap 'exit 7' TERM; echo up; while :; do sleep 0.1; done", '---',
      // Killed by the SIGTERM rkt sent: recorded 0, as rkt records apps it stopped itself.
      BUSYBOX_ACI, '--name=fourth', '--exec=/bin/sleep', '--', '1000']);
    expect(r.stdout).toBe('up\n');
    expect(r.status).toBe(5);
    const st = statusText(env, fs.readFileSync(uuidFile, 'utf8'));
    expect(st.state).toBe('exited');
    expect(st['app-first']).toBe('0');
    expect(st['app-second']).toBe('5');
    expect(st['app-third']).toBe('7');
    expect(st['app-fourth']).toBe('0');
  });

  test('a bad flag is a one-line error and exit 254', () => {
    expectOneLineFailure(rkt(env, [INSECURE, 'run', '--no-such-flag', BUSYBOX_ACI]), /--no-such-flag/);
  });

  test('an image that does not exist is a one-line error and exit 254', () => {
    expectOneLineFailure(rkt(env, [INSECURE, 'run', path.join(env.base, 'missing.aci')]), /missing\.aci.*(no such file|not found)/i);
  });

  test('--memory before any image is a one-line error and exit 254', () => {
    expectOneLineFailure(rkt(env, [INSECURE, 'run', '--memory=128M', BUSYBOX_ACI]), /--memory.*image/);
  });

  test('an unknown user is a one-line error and exit 254, and leaves no pod', () => {
    const before = listJson(env).length;
    expectOneLineFailure(rkt(env, shArgs(['--net=host'], ['--user=ghost'], 'true')), /"?ghost"?.*(user|passwd)/);
    expect(listJson(env).length).toBe(before);
  });
});

suite('rkt run: what the app gets', () => {
  let env: RktEnv;
  let linksAci: string;
  beforeAll(async () => {
    env = makeEnv();
    linksAci = path.join(env.base, 'links.aci');
    await buildBusyboxAci(linksAci, 'rkt.local/links', ['sh', 'cat', 'ls', 'echo', 'env', 'mount', 'grep'], [
      { path: 'etc', type: 'directory' },
      { path: 'etc/image-file', content: 'from the image\n' },
      { path: 'tmp', type: 'directory', mode: 0o1777 },
      // Mount targets that are links: one absolute, one climbing far above the rootfs.
      { path: 'abs-link', type: 'symlink', linkname: '/etc' },
      { path: 'rel-link', type: 'symlink', linkname: `${'../'.repeat(20)}${path.join(env.base, 'outside').slice(1)}` },
    ]);
  });
  afterAll(async () => { await teardown(env); });

  test('environment: image env, --set-env over --set-env-file over the image, --environment, AC_APP_NAME', () => {
    const envFile = path.join(env.base, 'env-file');
    fs.writeFileSync(envFile, '# comment\nFROM_FILE=file\nBOTH=file\nPATH=/from/file\n');
    const r = rkt(env, shArgs(['--net=host', `--set-env-file=${envFile}`, '--set-env=BOTH=set', '--set-env=ONLY_SET=yes'],
      ['--name=envy', '--environment=PER_APP=app'], 'env'));
    expect(r.status).toBe(0);
    const vars = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(vars.FROM_FILE).toBe('file');
    expect(vars.BOTH).toBe('set');
    expect(vars.ONLY_SET).toBe('yes');
    expect(vars.PER_APP).toBe('app');
    expect(vars.PATH).toBe('/from/file'); // --set-env-file overrides the image's PATH=/bin:/sbin
    expect(vars.AC_APP_NAME).toBe('envy');
    expect(vars.HOME).toBe('/root');
  });

  test('the image environment reaches the app, and nothing of the caller\'s without --inherit-env', () => {
    const r = spawnSync(RKT, [...env.globals, ...shArgs(['--net=host'], [], 'env')], { encoding: 'utf8', env: { ...process.env, CALLER_VAR: 'leak' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^PATH=\/bin:\/sbin$/m);
    expect(r.stdout).not.toMatch(/CALLER_VAR/);
    expect(r.stdout).not.toMatch(/RKT_HANDOFF_FD/);
  });

  test('--inherit-env passes the caller\'s environment (but not rkt\'s own plumbing)', () => {
    const r = spawnSync(RKT, [...env.globals, ...shArgs(['--net=host', '--inherit-env'], [], 'env')], { encoding: 'utf8', env: { ...process.env, CALLER_VAR: 'inherited' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^CALLER_VAR=inherited$/m);
    expect(r.stdout).not.toMatch(/RKT_HANDOFF_FD/);
  });

  test('an image without environment gets the default PATH', () => {
    const r = rkt(env, [INSECURE, 'run', '--net=host', linksAci, '--exec=/bin/sh', '--', '-c', 'echo "$PATH"']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  });

  test('--user and --group by name from the image, --supplementary-gids, --working-dir', () => {
    const r = rkt(env, shArgs(['--net=host'], ['--user=user', '--group=user', '--supplementary-gids=100', '--working-dir=/tmp'],
      'id -u; id -g; id -G; pwd; echo "$USER $HOME"; grep -E "^(Uid|Gid|Groups):" /proc/self/status'));
    expect(r.status).toBe(0);
    const [uid, gid, groups, cwd, userHome] = r.stdout.split('\n');
    expect(uid).toBe('1000');
    expect(gid).toBe('1000');
    expect(groups.split(' ').sort()).toEqual(['100', '1000']);
    expect(cwd).toBe('/tmp');
    expect(userHome).toBe('user /home/user');
    expect(r.stdout).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(r.stdout).toMatch(/^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
  });

  test('volumes: host rw and readOnly, kind=empty with mode and owner, --mount targets created', () => {
    const hostDir = path.join(env.base, 'host-vol');
    fs.mkdirSync(hostDir);
    fs.writeFileSync(path.join(hostDir, 'from-host'), 'host data\n');
    const r = rkt(env, shArgs(
      ['--net=host', `--volume=rw,kind=host,source=${hostDir}`, `--volume=ro,kind=host,source=${hostDir},readOnly=true`,
        '--volume=scratch,kind=empty,mode=0700,uid=1000,gid=100'],
      ['--mount=volume=rw,target=/mnt/rw', '--mount=volume=ro,target=/mnt/ro', '--mount=volume=scratch,target=/new/deep/scratch'],
      [
        'echo ==read==; cat /mnt/rw/from-host',
        'echo ==write-rw==; echo from-pod > /mnt/rw/from-pod && echo ok',
        'echo ==write-ro==; (echo x > /mnt/ro/nope) 2>&1',
        'echo ==ro-still-readable==; cat /mnt/ro/from-host',
        'echo ==scratch==; stat -c "%a %u %g" /new/deep/scratch',
      ].join('; ')));
    expect(r.status).toBe(0);
    const s = sections(r.stdout);
    expect(s.read).toBe('host data');
    expect(s['write-rw']).toBe('ok');
    expect(fs.readFileSync(path.join(hostDir, 'from-pod'), 'utf8')).toBe('from-pod\n');
    expect(s['write-ro']).toMatch(/\/mnt\/ro\/nope: Read-only file system/);
    expect(fs.existsSync(path.join(hostDir, 'nope'))).toBe(false);
    expect(s['ro-still-readable']).toBe('host data');
    expect(s.scratch).toBe('700 1000 100');
  });

  test('an image mountPoint without a volume gets an empty volume, with a warning', () => {
    const r = rkt(env, shArgs(['--net=host'], [], 'grep -c " /data " /proc/self/mountinfo; echo hello > /data/f && ls /data'));
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: .*mount point "data"/);
    expect(r.stdout).toBe('1\nf\n');
  });

  test('mount targets that are links in the image stay inside the rootfs', () => {
    const vol = path.join(env.base, 'link-vol');
    fs.mkdirSync(vol);
    fs.writeFileSync(path.join(vol, 'marker'), 'volume\n');
    const outside = path.join(env.base, 'outside');
    const hostEtcBefore = fs.readdirSync('/etc').sort();
    const r = rkt(env, [INSECURE, 'run', '--net=host', `--volume=v,kind=host,source=${vol}`, `--volume=w,kind=host,source=${vol}`, linksAci,
      '--mount=volume=v,target=/abs-link', '--mount=volume=w,target=/rel-link',
      '--exec=/bin/sh', '--', '-c', `cat /etc/marker; cat /etc/image-file 2>/dev/null || echo shadowed; cat ${outside}/marker`]);
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(0);
    // /abs-link -> /etc is the image's /etc; /rel-link climbs no higher than the rootfs.
    expect(r.stdout).toBe('volume\nshadowed\nvolume\n');
    expect(fs.existsSync(outside)).toBe(false);
    expect(fs.readdirSync('/etc').sort()).toEqual(hostEtcBefore);
  });

  test('nothing of these pods is left on the host after gc', () => {
    const uuids = listJson(env).map((p) => p.name);
    expect(uuids.length).toBeGreaterThan(0);
    const gc = rkt(env, ['gc', '--grace-period=0s']);
    expect(gc.status).toBe(0);
    for (const u of uuids) expect(podTraces(env, u)).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
  });
});
