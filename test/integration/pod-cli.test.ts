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

suite('rkt run: the command line as rkt took it', () => {
  let env: RktEnv;
  beforeAll(() => { env = makeEnv(); });
  afterAll(async () => { await teardown(env); });

  test('pod and global flags before the command name: rkt --net=host --insecure-options=image run IMAGE', () => {
    const r = rkt(env, ['--net=host', INSECURE, 'run', BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', 'echo up; exit 4']);
    expect(r.stdout).toBe('up\n');
    expect(r.status).toBe(4);
  });

  test('-h after run prints run\'s help; after `--` it is the app\'s argument', () => {
    const help = rkt(env, ['run', '-h']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Run image\(s\) in a pod in rkt\n\nUsage:\n {2}rkt run /);
    expect(help.stdout).toContain('--user-annotation=VALUE');
    const r = rkt(env, shArgs(['--net=host'], [], 'echo "got $0"').concat(['-h']));
    expect(r.stdout).toBe('got -h\n');
    expect(r.status).toBe(0);
  });

  test('--user-annotation and --user-label reach the pod manifest and status --format=json', () => {
    const uuidFile = path.join(env.base, 'annotated');
    const r = rkt(env, shArgs(['--net=host', `--uuid-file-save=${uuidFile}`], ['--user-annotation=team=web', '--user-annotation=note=a=b', '--user-label=tier=front'], 'exit 0'));
    expect(r.status).toBe(0);
    const uuid = fs.readFileSync(uuidFile, 'utf8');
    const manifest = JSON.parse(rkt(env, ['cat-manifest', uuid]).stdout) as { apps: Array<{ app: { userAnnotations?: unknown; userLabels?: unknown } }> };
    expect(manifest.apps[0].app.userAnnotations).toEqual({ team: 'web', note: 'a=b' });
    expect(manifest.apps[0].app.userLabels).toEqual({ tier: 'front' });
    const st = JSON.parse(rkt(env, ['status', '--format=json', uuid]).stdout) as { apps: Array<Record<string, unknown>> };
    expect(st.apps[0]).toMatchObject({ state: 'exited', exit_code: 0, user_annotations: { team: 'web', note: 'a=b' }, user_labels: { tier: 'front' } });
  });

  test('a bad --user-annotation or --hostname is one line, exit 254, and no pod', () => {
    const before = listJson(env).length;
    expectOneLineFailure(rkt(env, shArgs(['--net=host'], ['--user-annotation=novalue'], 'true')), /invalid --user-annotation "novalue": use KEY=VALUE/);
    expectOneLineFailure(rkt(env, shArgs(['--net=host', '--hostname=bad_host-'], [], 'true')), /invalid --hostname "bad_host-"/);
    expectOneLineFailure(rkt(env, shArgs(['--net=host', `--hostname=${'a'.repeat(65)}`], [], 'true')), /invalid --hostname/);
    expect(listJson(env).length).toBe(before);
  });

  test('--hostname is the pod\'s host name', () => {
    const r = rkt(env, shArgs(['--net=host', '--hostname=web-1.example'], [], 'hostname; cat /etc/hostname'));
    expect(r.stdout).toBe('web-1.example\nweb-1.example\n');
    expect(r.status).toBe(0);
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

suite('rkt export, image verify, config and the commands this rkt lacks', () => {
  let env: RktEnv;
  beforeAll(() => { env = makeEnv(); });
  afterAll(async () => { await teardown(env); });

  /** Runs a pod that leaves /made-here and removes /etc/image-gone, then exports it. */
  function runAndExport(podFlags: string[], out: string): string {
    const uuidFile = path.join(env.base, `${path.basename(out)}.uuid`);
    const r = rkt(env, shArgs(['--net=host', `--uuid-file-save=${uuidFile}`, ...podFlags], ['--name=maker'], 'echo made > /made-here; rm -f /bin/true; exit 0'));
    expect(r.status).toBe(0);
    const uuid = fs.readFileSync(uuidFile, 'utf8');
    const e = rkt(env, ['export', uuid, out]);
    expect(e.stderr).toBe('');
    expect(e.status).toBe(0);
    return uuid;
  }

  test.each([['with overlay', []], ['with --no-overlay', ['--no-overlay']]])('export %s: the app\'s files, changes included, run again from the ACI', (_n, flags) => {
    const out = path.join(env.base, `exported${flags.length}.aci`);
    runAndExport(flags as string[], out);
    expect(fs.readdirSync(env.base).filter((n) => n.startsWith('.rkt-export-'))).toEqual([]);
    const r = rkt(env, [INSECURE, 'run', '--net=host', out, '--exec=/bin/sh', '--', '-c', 'cat /made-here; ls /bin/true 2>&1; ls /bin/sh']);
    expect(r.stdout).toMatch(/^made\n.*No such file or directory\n\/bin\/sh\n$/);
    expect(r.status).toBe(0);
  });

  test('export refuses a running pod, an existing file without --overwrite, a name without .aci', () => {
    const out = path.join(env.base, 'twice.aci');
    const uuid = runAndExport([], out);
    const again = rkt(env, ['export', uuid, out]);
    expect(again.status).toBe(254);
    expect(again.stderr).toMatch(/twice\.aci exists: choose another file or pass --overwrite\n$/);
    expect(rkt(env, ['export', '--overwrite', uuid, out]).status).toBe(0);
    const bad = rkt(env, ['export', uuid, path.join(env.base, 'x.tar')]);
    expect(bad.status).toBe(254);
    expect(bad.stderr).toMatch(/ending in \.aci/);
  });

  test('image verify: a sound image verifies; a changed tree is rebuilt; a damaged blob is one line, 254', () => {
    const id = listJson(env)[0].apps[0].image_id;
    const ok = rkt(env, ['image', 'verify', id]);
    expect(ok.stdout).toBe(`successfully verified checksum for image: "${id}" ("${id}")\n`);
    expect(ok.status).toBe(0);
    const tree = path.join(env.dir, 'cas', 'tree', id, 'rootfs');
    fs.appendFileSync(path.join(tree, 'etc', 'passwd'), 'intruder:x:0:0::/:/bin/sh\n');
    const fixed = rkt(env, ['image', 'verify', id]);
    expect(fixed.stdout).toContain(`tree cache verification failed for image ${id}: /etc/passwd has changed content; rebuilding...\n`);
    expect(fixed.status).toBe(0);
    expect(fs.readFileSync(path.join(tree, 'etc', 'passwd'), 'utf8')).not.toContain('intruder');
    expect(rkt(env, ['image', 'verify', id]).stdout).not.toContain('failed');
  });

  test('config prints the merged configuration as rkt did', () => {
    fs.mkdirSync(path.join(env.localConfig, 'limits.d'), { recursive: true });
    fs.writeFileSync(path.join(env.localConfig, 'limits.d', 'pids.json'), '{"rktKind": "limits", "rktVersion": "v1", "pidsLimit": 321}');
    const r = rkt(env, ['config']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\{\n\t"stage0": \[/);
    expect(JSON.parse(r.stdout)).toEqual({ stage0: [
      { rktVersion: 'v1', rktKind: 'paths', data: fs.realpathSync(env.dir), 'stage1-images': fs.realpathSync(env.systemConfig) },
      { rktVersion: 'v1', rktKind: 'limits', pidsLimit: 321 },
    ] });
    fs.rmSync(path.join(env.localConfig, 'limits.d'), { recursive: true });
  });

  test.each(['metadata-service', 'api-service', 'attach'])('rkt %s says it is not implemented, in one line', (name) => {
    const r = rkt(env, [...name.split(' '), 'x', '--some-flag']);
    expect(r.status).toBe(254);
    const prefix = name.split(' ').pop()!;
    expect(r.stderr).toMatch(new RegExp(`^${prefix}: "rkt ${name}" is not implemented in this rkt: [^\\n]+\\n$`));
  });
});
