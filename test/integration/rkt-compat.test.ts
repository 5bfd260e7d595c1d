/**
 * Behaviours scripts written for rkt 1.30 depend on, checked with real pods (issue 12):
 * pod manifests naming images by short ID, rkt's diagnostic for a missing program, and
 * the rest of rkt's observable details that follow in this file.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RktEnv, makeEnv, rkt, describeIf, skipReason } from '../helpers/rkt.js';
import { INSECURE, buildBusyboxAci, sections, startPod, statusText, teardown } from '../helpers/pods.js';

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

  test('image list --full: SIZE is the ACI plus its rendered tree once a pod used it', () => {
    const sizeOf = () => {
      const r = rkt(env, ['image', 'list', '--full', '--no-legend', '--fields=id,size']);
      const row = r.stdout.split('\n').find((l) => l.startsWith(shortId))!;
      return Number(row.split(/\t+/)[1]);
    };
    const full = rkt(env, ['image', 'list', '--full', '--no-legend', '--fields=id']).stdout.split('\n').find((l) => l.startsWith(shortId))!.trim();
    const blob = fs.statSync(path.join(env.dir, 'cas', 'blob', full)).size;
    const tree = path.join(env.dir, 'cas', 'tree', full);
    expect(fs.existsSync(tree)).toBe(true); // the pods above rendered it
    const seen = new Set<string>();
    const walk = (p: string): number => {
      const st = fs.lstatSync(p);
      if (st.isDirectory()) return st.size + fs.readdirSync(p).reduce((n, e) => n + walk(path.join(p, e)), 0);
      if (st.nlink > 1) { if (seen.has(`${st.ino}`)) return 0; seen.add(`${st.ino}`); }
      return st.size;
    };
    // The import counts the tree as it extracts it (its tar bytes) instead of walking it
    // again as rkt did; the two differ by the tar headers' and directories' bytes only.
    const treePart = sizeOf() - blob;
    expect(treePart).toBeGreaterThan(walk(tree) * 0.9);
    expect(treePart).toBeLessThan(walk(tree) * 1.1);
  });

  test('appc event handlers: pre-start as root before the app, post-stop as root after it, in the app\'s rootfs', async () => {
    const aci = path.join(env.base, 'events.aci');
    const log = '/out/log';
    await buildBusyboxAci(aci, 'rkt.local/events', ['sh', 'id', 'cat', 'sleep', 'ls', 'chmod'], [{ path: 'etc', type: 'directory' }, { path: 'marker', content: 'image file\n' }], {
      user: '1000', group: '1000',
      exec: ['/bin/sh', '-c', `echo "app $(id -u) $(cat /marker)" >> ${log}; [ -e /pre-made ] && echo "app sees pre-start's file" >> ${log}; exit 3`],
      eventHandlers: [
        { name: 'pre-start', exec: ['/bin/sh', '-c', `echo "pre $(id -u) $(cat /marker)" >> ${log}; chmod 666 ${log}; : > /pre-made`] },
        { name: 'post-stop', exec: ['/bin/sh', '-c', `echo "post $(id -u)" >> ${log}`] },
      ],
    });
    const out = fs.mkdtempSync(path.join(env.base, 'out-'));
    fs.chmodSync(out, 0o777);
    const r = rkt(env, [INSECURE, 'run', '--net=host', `--volume=out,kind=host,source=${out}`, aci, '--mount=volume=out,target=/out']);
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(3); // the app's status, not post-stop's
    expect(fs.readFileSync(path.join(out, 'log'), 'utf8')).toBe("pre 0 image file\napp 1000 image file\napp sees pre-start's file\npost 0\n");

    // A failing pre-start keeps the app from running; the pod fails with its status.
    const bad = path.join(env.base, 'events-bad.aci');
    await buildBusyboxAci(bad, 'rkt.local/events-bad', ['sh'], [], {
      exec: ['/bin/sh', '-c', `echo app >> ${log}`],
      eventHandlers: [{ name: 'pre-start', exec: ['/bin/sh', '-c', 'exit 4'] }],
    });
    fs.rmSync(path.join(out, 'log'));
    const failed = rkt(env, [INSECURE, 'run', '--net=host', `--volume=out,kind=host,source=${out}`, bad, '--mount=volume=out,target=/out']);
    expect(failed.status).toBe(4);
    expect(fs.existsSync(path.join(out, 'log'))).toBe(false);
  });

  test('with a post-stop handler, rkt stop still stops the app (and post-stop runs); rkt enter reaches the app', async () => {
    const aci = path.join(env.base, 'events-long.aci');
    await buildBusyboxAci(aci, 'rkt.local/events-long', ['sh', 'sleep', 'cat', 'readlink'], [], {
      exec: ['/bin/sleep', '1000'],
      eventHandlers: [{ name: 'post-stop', exec: ['/bin/sh', '-c', 'echo stopped > /out/post'] }],
    });
    const out = fs.mkdtempSync(path.join(env.base, 'out-'));
    const pod = await startPod(env, [INSECURE, 'run', '--net=host', `--volume=out,kind=host,source=${out}`, aci, '--mount=volume=out,target=/out'], /sleep 1000$/);
    const entered = rkt(env, ['enter', pod.uuid, '/bin/cat', '/proc/1/cmdline']);
    expect(entered.stderr).toBe('');
    expect(entered.status).toBe(0);
    const inApp = rkt(env, ['enter', pod.uuid, '/bin/sh', '-c', 'readlink /proc/self/root; cat /proc/$PPID/cmdline 2>/dev/null | head -c 0; echo ok']);
    expect(inApp.stdout).toBe('/\nok\n');
    expect(rkt(env, ['stop', pod.uuid]).status).toBe(0);
    const done = await pod.done;
    expect(done.code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'post'), 'utf8')).toBe('stopped\n');
    expect(statusText(env, pod.uuid)['app-events-long']).toBe('143');
  });

  test('the app reads its own cgroup limits, read-only, and sees nothing of the host\'s cgroup tree', () => {
    const r = rkt(env, [INSECURE, 'run', '--net=host', BUSYBOX_ACI, '--memory=64M', '--cpu=250m', '--exec=/bin/sh', '--', '-c', [
      'echo ==cgroup==; cut -d: -f3 /proc/self/cgroup | sort -u',
      'echo ==limits==; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us',
      'echo ==write==; (echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes) 2>&1; (mkdir /sys/fs/cgroup/memory/x) 2>&1',
      'echo ==dirs==; find /sys/fs -mindepth 1 -type d | sort',
      'echo ==sysfs==; ls /sys/fs',
    ].join('; ')]);
    expect(r.stderr).not.toMatch(/stage1:/);
    expect(r.status).toBe(0);
    const s = sections(r.stdout);
    expect(s.cgroup).toBe('/'); // a cgroup namespace rooted at the app's own cgroups
    expect(s.limits).toBe('64000000\n25000\n100000');
    expect(s.write).toMatch(/^.*Read-only file system\n.*Read-only file system$/);
    // Only the hierarchy mounts themselves: no sub-cgroups, nothing of the pod's or the host's tree.
    for (const d of s.dirs.split('\n')) expect(d).toMatch(/^\/sys\/fs\/cgroup(\/[a-z,_]+)?$/);
    expect(s.dirs).toContain('/sys/fs/cgroup/memory');
    expect(s.sysfs).toBe('cgroup');
  });

  test('a Docker image\'s mount point without a volume starts with the image\'s files there; an appc image\'s stays empty (as rkt)', async () => {
    const entries = [{ path: 'data', type: 'directory' as const, mode: 0o750 }, { path: 'data/seed', content: 'from the image\n' }];
    const app = { exec: ['/bin/sh', '-c', 'ls -A /data; stat -c %a /data; echo written > /data/new'], mountPoints: [{ name: 'data', path: '/data' }] };
    const docker = path.join(env.base, 'docker-vol.aci');
    await buildBusyboxAci(docker, 'rkt.local/docker-vol', ['sh', 'ls', 'stat'], entries, app,
      { annotations: [{ name: 'appc.io/docker/repository', value: 'library/example' }] });
    const d = rkt(env, [INSECURE, 'run', '--net=host', docker]);
    expect(d.status).toBe(0);
    expect(d.stdout).toBe('seed\n750\n');
    expect(d.stderr).toContain("that starts with the image's files there (a Docker image)");
    // The image's tree is untouched: the volume is a copy.
    const full = rkt(env, ['image', 'list', '--full', '--no-legend', '--fields=id,name']).stdout.split('\n').find((l) => l.includes('docker-vol'))!.split(/\t+/)[0];
    expect(fs.readdirSync(path.join(env.dir, 'cas', 'tree', full, 'rootfs', 'data'))).toEqual(['seed']);

    const appc = path.join(env.base, 'appc-vol.aci');
    await buildBusyboxAci(appc, 'rkt.local/appc-vol', ['sh', 'ls', 'stat'], entries, app);
    const a = rkt(env, [INSECURE, 'run', '--net=host', appc]);
    expect(a.status).toBe(0);
    expect(a.stdout).toBe('755\n');
  });
});
