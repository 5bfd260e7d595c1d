/**
 * Behaviours scripts written for rkt 1.30 depend on, checked with real pods (issue 12):
 * pod manifests naming images by short ID, rkt's diagnostic for a missing program, and
 * the rest of rkt's observable details that follow in this file.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RktEnv, makeEnv, rkt, describeIf, skipReason } from '../helpers/rkt.js';
import { INSECURE, teardown } from '../helpers/pods.js';

const suite = describeIf(skipReason());

suite('rkt compatibility', () => {
  let env: RktEnv;
  let shortId: string;
  beforeAll(() => {
    env = makeEnv();
    const f = rkt(env, [INSECURE, 'fetch', BUSYBOX_ACI]);
    if (f.status !== 0) throw new Error(`fetch failed: ${f.stderr}`);
    shortId = f.stdout.trim();
  });
  afterAll(async () => { await teardown(env); });

  test('--pod-manifest may name the image by the short ID rkt fetch prints; the pod records the full ID', () => {
    expect(shortId).toMatch(/^sha512-[0-9a-f]{32}$/);
    const manifest = path.join(env.base, 'pod.json');
    fs.writeFileSync(manifest, JSON.stringify({
      acKind: 'PodManifest', acVersion: '0.8.11',
      apps: [{ name: 'hello', image: { id: shortId }, app: { exec: ['/bin/echo', 'from the manifest'], user: '0', group: '0' } }],
    }));
    const uuidFile = path.join(env.base, 'pm-uuid');
    const r = rkt(env, ['run', '--net=host', `--uuid-file-save=${uuidFile}`, `--pod-manifest=${manifest}`]);
    expect(r.stderr).not.toMatch(/error|bad/i);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('from the manifest\n');
    const cat = rkt(env, ['cat-manifest', '--pretty-print=false', fs.readFileSync(uuidFile, 'utf8')]);
    expect(JSON.parse(cat.stdout).apps[0].image.id).toMatch(new RegExp(`^${shortId}[0-9a-f]{96}$`));
  });

  test('a program that is not in the image: rkt\'s diagnostic line, exit 127 (as a shell)', () => {
    for (const exec of ['/foo-not-there', '/foo-not-there X']) {
      const r = rkt(env, [INSECURE, 'run', '--net=host', BUSYBOX_ACI, `--exec=${exec}`]);
      expect(r.status).toBe(127);
      expect(r.stderr.trim().split('\n').pop()).toBe(`Error: Unable to open "${exec}": No such file or directory`);
    }
    // A script whose interpreter is missing names the interpreter.
    const dir = fs.mkdtempSync(path.join(env.base, 'scripts-'));
    fs.writeFileSync(path.join(dir, 'run.sh'), '#!/no/interp\necho ran\n', { mode: 0o755 });
    const r = rkt(env, [INSECURE, 'run', '--net=host', `--volume=s,kind=host,source=${dir}`, BUSYBOX_ACI, '--mount=volume=s,target=/s', '--exec=/s/run.sh']);
    expect(r.status).toBe(127);
    expect(r.stderr.trim().split('\n').pop()).toBe('Error: Unable to open "/no/interp": No such file or directory');
  });

  test('a relative --mount target is taken from the app\'s root, and ../ cannot leave it', () => {
    const dir = fs.mkdtempSync(path.join(env.base, 'vol-'));
    fs.writeFileSync(path.join(dir, 'marker'), 'in the volume\n');
    const escape = `fid-escape-${path.basename(dir)}`;
    const r = rkt(env, [INSECURE, 'run', '--net=host', `--volume=v,kind=host,source=${dir}`, BUSYBOX_ACI,
      '--mount=volume=v,target=dir1', `--mount=volume=v,target=../../../${escape}`,
      '--exec=/bin/sh', '--', '-c', `cat /dir1/marker /${escape}/marker`]);
    expect(r.stderr).not.toMatch(/stage1:|invalid/);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('in the volume\nin the volume\n');
    // Nothing was made outside the pod: not at the host's root, nor above the pod's rootfs.
    expect(fs.existsSync(`/${escape}`)).toBe(false);
    expect(fs.existsSync(path.join(env.dir, escape))).toBe(false);
    expect(fs.existsSync(path.join(env.dir, 'pods', escape))).toBe(false);
  });

  test('an empty volume on /sys hides sysfs; /etc/mtab is a link to ../proc/self/mounts', () => {
    const r = rkt(env, [INSECURE, 'run', '--net=host', '--volume=s,kind=empty', BUSYBOX_ACI, '--mount=volume=s,target=/sys',
      '--exec=/bin/sh', '--', '-c', 'ls -A /sys; echo ==; readlink /etc/mtab; grep -c " /proc proc " /etc/mtab']);
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('==\n../proc/self/mounts\n1\n');
  });
});
