/**
 * The data dir as a local attacker sees it. A hostile image ships a setuid-root copy of
 * `id` and a 0666 block device node for the host's root disk; after fetch, render and a
 * running pod, user nobody (no groups) can list, read or execute nothing under the data
 * dir, and a member of group `rkt` can list pods and images and read status, but still
 * reaches no rendered tree or pod filesystem. Then the host's faults: a full 64 MB tmpfs
 * data dir, the same read-only, and non-root users each get one clear line, and the store
 * keeps working.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RKT, RktEnv, describeIf, makeEnv, rkt, rktBackground, skipReason, waitFor } from '../helpers/rkt.js';
import { groupId } from '../../src/store/datadir.js';

const TOOLS = ['/usr/bin/setpriv', '/usr/bin/id', '/usr/bin/mknod', '/bin/busybox', '/usr/sbin/groupadd'];
const missingTool = TOOLS.find((t) => !fs.existsSync(t));
const suite = describeIf(skipReason() ?? (missingTool ? `needs ${missingTool}` : undefined));

const NOBODY = 65534;

/**
 * Runs argv as uid/gid nobody with exactly the given supplementary groups, from a shell
 * (as `su nobody -c` would): setpriv's own exec of argv[0] still passes root's path checks.
 */
function as(groups: number[], argv: string[]) {
  const g = groups.length > 0 ? [`--groups=${groups.join(',')}`] : ['--clear-groups'];
  return spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, ...g, '--', '/bin/sh', '-c', 'exec "$@"', 'sh', ...argv], { encoding: 'utf8', timeout: 60_000 });
}
const rktAs = (groups: number[], env: RktEnv, args: string[]) => as(groups, [RKT, ...env.globals, ...args]);

/** stderr without rkt's progress lines: what is left must be the one error line. */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !/: (using image from|warning: )/.test(l));
}

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
}

/** An ACI from a layout dir, owners kept (we are root). */
function tarAci(layout: string, out: string): string {
  sh(`tar --numeric-owner -C '${layout}' -cf '${out}' manifest rootfs`);
  return out;
}

function manifest(name: string, exec: string[]): string {
  return JSON.stringify({
    acKind: 'ImageManifest', acVersion: '0.8.11', name,
    labels: [{ name: 'version', value: '1' }, { name: 'os', value: 'linux' }, { name: 'arch', value: 'amd64' }],
    app: { exec, user: '0', group: '0' },
  });
}

/** The hostile image: setuid-root `id`, a block device for the host's root disk, busybox to run. */
function hostileAci(base: string): string {
  const layout = path.join(base, 'hostile');
  fs.mkdirSync(path.join(layout, 'rootfs', 'bin'), { recursive: true });
  fs.mkdirSync(path.join(layout, 'rootfs', 'dev'));
  fs.writeFileSync(path.join(layout, 'manifest'), manifest('example.com/hostile', ['/bin/busybox', 'sleep', '300']));
  fs.copyFileSync('/bin/busybox', path.join(layout, 'rootfs', 'bin', 'busybox'));
  fs.chmodSync(path.join(layout, 'rootfs', 'bin', 'busybox'), 0o755);
  fs.copyFileSync('/usr/bin/id', path.join(layout, 'rootfs', 'bin', 'id'));
  fs.chownSync(path.join(layout, 'rootfs', 'bin', 'id'), 0, 0);
  fs.chmodSync(path.join(layout, 'rootfs', 'bin', 'id'), 0o4755);
  const dev = fs.statSync('/').dev;
  const major = (dev >> 8) & 0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  sh(`mknod -m 0666 '${path.join(layout, 'rootfs', 'dev', 'hostdisk')}' b ${major} ${minor}`);
  return tarAci(layout, path.join(base, 'hostile.aci'));
}

/** An image bigger than the 64 MB tmpfs: 80 MB of random bytes, or of zeros (gzipped: a small blob, a big tree). */
function bigAci(base: string, source: 'urandom' | 'zero'): string {
  const layout = path.join(base, `big-${source}`);
  fs.mkdirSync(path.join(layout, 'rootfs'), { recursive: true });
  fs.writeFileSync(path.join(layout, 'manifest'), manifest(`example.com/big-${source}`, ['/data']));
  sh(`head -c 80M /dev/${source} > '${path.join(layout, 'rootfs', 'data')}'`);
  const aci = tarAci(layout, path.join(base, `big-${source}.aci`));
  if (source === 'urandom') return aci;
  sh(`gzip -1 < '${aci}' > '${aci}.gz' && mv '${aci}.gz' '${aci}'`);
  return aci;
}

suite('store permissions and the host\'s faults', () => {
  let env: RktEnv;
  let hostile: string;
  let id: string;
  let rktGid: number;
  let uuid: string;
  let pod: ReturnType<typeof rktBackground> | undefined;
  const mounts: string[] = [];
  const paths = {
    treeId: () => path.join(env.dir, 'cas', 'tree', id, 'rootfs', 'bin', 'id'),
    treeDev: () => path.join(env.dir, 'cas', 'tree', id, 'rootfs', 'dev', 'hostdisk'),
    podDir: () => path.join(env.dir, 'pods', 'run', uuid),
    podId: () => path.join(env.dir, 'pods', 'run', uuid, 'stage1', 'rootfs', 'opt', 'stage2', 'hostile', 'rootfs', 'bin', 'id'),
  };

  beforeAll(async () => {
    env = makeEnv('rkt-it-perms-');
    fs.chmodSync(env.base, 0o755); // mkdtemp's 0700 would hide the data dir by accident
    // As on a user's machine: groups, data dir and config dir set up by `rkt install`.
    const install = rkt(env, ['install']);
    expect(install.stderr).toBe('');
    expect(install.status).toBe(0);
    rktGid = groupId('rkt')!;
    expect(rktGid).toBeGreaterThan(0);
    hostile = hostileAci(env.base);
    const fetched = rkt(env, ['--insecure-options=image', 'fetch', '--full', hostile]);
    expect(fetched.status).toBe(0);
    id = fetched.stdout.trim();
    // --no-overlay: the pod's private copy of the image sits on the host's filesystem.
    pod = rktBackground(env, ['--insecure-options=image', 'run', '--no-overlay', `--uuid-file-save=${path.join(env.base, 'uuid')}`, hostile]);
    await waitFor(() => fs.existsSync(path.join(env.base, 'uuid')) && fs.readFileSync(path.join(env.base, 'uuid'), 'utf8').length > 0, 60_000, 'the pod uuid');
    uuid = fs.readFileSync(path.join(env.base, 'uuid'), 'utf8').trim();
    await waitFor(() => /state=running/.test(rkt(env, ['status', uuid]).stdout), 60_000, 'the pod running');
  }, 240_000);

  afterAll(async () => {
    if (pod) {
      rkt(env, ['stop', uuid]);
      await pod.done;
    }
    for (const m of mounts.reverse()) {
      // The pods that ran there hold networks and cgroups until gc.
      spawnSync('mount', ['-o', 'remount,rw', m]);
      spawnSync(RKT, [`--dir=${path.join(m, 'data')}`, 'gc', '--grace-period=0s'], { timeout: 60_000 });
      spawnSync('umount', [m]);
    }
    rkt(env, ['gc', '--grace-period=0s']);
    fs.rmSync(env.base, { recursive: true, force: true });
  }, 120_000);

  test('the image is hostile: where nobody can reach it, its id runs with euid 0 (extract warns about it)', () => {
    const out = path.join(env.base, 'extracted');
    const r = rkt(env, ['image', 'extract', id, out]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: .*extracted holds setuid\/setgid files or device nodes from the image \(rootfs\/.*(bin\/id|dev\/hostdisk).*keep it private/);
    expect(fs.statSync(path.join(out, 'rootfs', 'bin', 'id')).mode & 0o4000).toBe(0o4000); // modes kept, as rkt does
    expect(fs.lstatSync(path.join(out, 'rootfs', 'dev', 'hostdisk')).isBlockDevice()).toBe(true);
    const ran = as([], [path.join(out, 'rootfs', 'bin', 'id')]);
    expect(ran.stdout).toMatch(/uid=65534.* euid=0\(/);
    const rendered = rkt(env, ['image', 'render', id, path.join(env.base, 'rendered')]);
    expect(rendered.status).toBe(0);
    expect(rendered.stderr).toMatch(/warning: .*rendered holds setuid\/setgid files or device nodes/);
    fs.rmSync(out, { recursive: true });
    fs.rmSync(path.join(env.base, 'rendered'), { recursive: true });
  });

  test('the store holds that image\'s setuid binary and device node, in the tree and in the pod', () => {
    expect(fs.statSync(paths.treeId()).mode & 0o4000).toBe(0o4000);
    expect(fs.statSync(paths.treeId()).uid).toBe(0);
    expect(fs.lstatSync(paths.treeDev()).isBlockDevice()).toBe(true);
    expect(fs.statSync(paths.podId()).mode & 0o4000).toBe(0o4000);
  });

  test('nobody can list, read or execute anything under the data dir', () => {
    const find = as([], ['find', env.dir]);
    expect(find.stdout).toBe(`${env.dir}\n`);
    expect(find.stderr).toMatch(/Permission denied/);
    for (const p of [paths.treeId(), paths.podId()]) {
      const r = as([], [p]);
      expect([p, r.status, r.stdout]).toEqual([p, 126, '']);
    }
    for (const p of [paths.treeDev(), path.join(env.dir, 'cas', 'blob', id), path.join(paths.podDir(), 'pod')]) {
      const r = as([], ['head', '-c1', p]);
      expect([p, r.status]).toEqual([p, 1]);
      expect(r.stderr).toMatch(/Permission denied/);
    }
  });

  test('nobody\'s rkt list, image list and fetch: one line saying to run as root, exit 254', () => {
    for (const args of [['list'], ['image', 'list'], ['status', uuid], ['--insecure-options=image', 'fetch', BUSYBOX_ACI]]) {
      const r = rktAs([], env, args);
      expect([args, r.status]).toEqual([args, 254]);
      expect(r.stdout).toBe('');
      const lines = errorLines(r.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`permission denied in the data directory ${env.dir} \\(needed to .+\\): run as root`));
    }
  });

  test('group rkt lists pods and images and reads status, but reaches no tree or pod filesystem', () => {
    const list = rktAs([rktGid], env, ['list', '--no-legend', '--full']);
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${uuid}\\s+hostile\\s+example.com/hostile\\s.*running`, 'm'));
    const images = rktAs([rktGid], env, ['image', 'list', '--no-legend']);
    expect(images.status).toBe(0);
    expect(images.stdout).toContain('example.com/hostile:1');
    const status = rktAs([rktGid], env, ['status', uuid]);
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/^state=running$/m);
    expect(rktAs([rktGid], env, ['cat-manifest', uuid]).stdout).toContain('example.com/hostile');

    // A --no-overlay pod has no overlay/ (made only for a pod that uses it); each dir that is there is closed.
    const privateDirs = ['stage1', 'overlay', 'volumes'].map((d) => path.join(paths.podDir(), d)).filter((d) => fs.existsSync(d));
    expect(privateDirs.map((d) => path.relative(paths.podDir(), d))).toEqual(expect.arrayContaining(['stage1']));
    for (const dir of [path.join(env.dir, 'cas', 'tree'), ...privateDirs]) {
      const r = as([rktGid], ['ls', dir]);
      expect([dir, r.status]).toEqual([dir, 2]);
      expect(r.stderr).toMatch(/Permission denied/);
    }
    for (const p of [paths.treeId(), paths.podId()]) expect(as([rktGid], [p]).status).toBe(126);
    expect(as([rktGid], ['head', '-c1', paths.treeDev()]).status).toBe(1);
    expect(as([rktGid], ['cat', path.join(paths.podDir(), 'runtime.json')]).status).toBe(1);
    // The whole data dir as the group sees it: no setuid file, no device node anywhere.
    const found = as([rktGid], ['find', env.dir, '(', '-perm', '-4000', '-o', '-perm', '-2000', '-type', 'f', '-o', '-type', 'b', '-o', '-type', 'c', ')', '-print']);
    expect(found.stdout).toBe('');
  });

  test('group rkt fetches: blob and manifest stored, no tree rendered, nothing left in cas/tmp; root renders it at run', () => {
    const r = rktAs([rktGid], env, ['--insecure-options=image', 'fetch', '--full', BUSYBOX_ACI]);
    expect(r.stderr).not.toMatch(/denied/);
    expect(r.status).toBe(0);
    const bid = r.stdout.trim();
    expect(fs.existsSync(path.join(env.dir, 'cas', 'blob', bid))).toBe(true);
    expect(fs.existsSync(path.join(env.dir, 'cas', 'tree', bid))).toBe(false);
    expect(fs.readdirSync(path.join(env.dir, 'cas', 'tmp'))).toEqual([]);
    const run = rkt(env, ['run', bid, '--exec=/bin/echo', '--', 'rendered by root']);
    expect(run.stdout).toContain('rendered by root');
    expect(run.status).toBe(0);
  }, 120_000);

  test('a caller\'s umask of 000 or 002: the pod\'s files are not the group\'s to write (root\'s stop and gc act on them), and the app\'s umask is 022', () => {
    for (const umask of ['000', '002']) {
      const rktUnder = (args: string[]) => spawnSync('sh', ['-c', `umask ${umask}; exec "$@"`, 'sh', RKT, ...env.globals, '--insecure-options=image', ...args], { encoding: 'utf8', timeout: 60_000 });
      const r = rktUnder(['run', '--net=default', BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', 'umask; touch /data/x; ls -ln /data/x']);
      expect([umask, r.status, r.stdout]).toEqual([umask, 0, expect.stringMatching(/^0022\n-rw-r--r-- /)]);
      expect(rktUnder(['prepare', BUSYBOX_ACI]).status).toBe(0);
    }
    // Everything of the pods' own (not the app's files in its rootfs or upper layer) as the group sees it.
    const writable = as([rktGid], ['find', path.join(env.dir, 'pods'), '(', '-path', '*/rootfs/*', '-o', '-path', '*/upper/*', ')', '-prune', '-o', '-perm', '/022', '!', '-type', 'l', '-print']);
    expect(writable.stdout).toBe('');
    for (const dir of fs.readdirSync(path.join(env.dir, 'pods', 'run')).map((u) => path.join(env.dir, 'pods', 'run', u, 'rkt', 'pid'))) {
      const planted = as([rktGid], ['sh', '-c', `echo 1 > ${dir}/planted`]);
      expect([dir, planted.status]).toEqual([dir, 2]);
      expect(planted.stderr).toMatch(/Permission denied/);
    }
  }, 120_000);

  test('rkt-admin may add trust keys, others may not', () => {
    const adminGid = groupId('rkt-admin')!;
    const key = path.join(env.base, 'key.asc');
    fs.copyFileSync(path.join(path.dirname(BUSYBOX_ACI), '..', 'keys', 'images.pub.asc'), key);
    fs.chmodSync(key, 0o644);
    const denied = rktAs([], env, ['trust', '--prefix=example.com/a', '--skip-fingerprint-review', key]);
    expect(denied.status).toBe(254);
    expect(denied.stderr).toMatch(/permission denied: run as root/);
    for (const prefix of ['example.com/a', 'example.com/b']) {
      const ok = rktAs([adminGid], env, ['trust', `--prefix=${prefix}`, '--skip-fingerprint-review', key]);
      expect([prefix, ok.status, ok.stdout + ok.stderr]).toEqual([prefix, 0, expect.stringContaining('Added key for prefix')]);
    }
  });

  test('an existing data dir left open is tightened on first use', () => {
    for (const d of ['', 'cas', 'cas/tree', 'pods', 'pods/run']) fs.chmodSync(path.join(env.dir, d), 0o755);
    expect(as([], ['ls', path.join(env.dir, 'cas', 'tree')]).status).toBe(0); // open now
    expect(rkt(env, ['image', 'list']).status).toBe(0);
    expect(fs.statSync(env.dir).mode & 0o7777).toBe(0o2750);
    expect(fs.statSync(path.join(env.dir, 'cas', 'tree')).mode & 0o7777).toBe(0o700);
    expect(fs.statSync(path.join(env.dir, 'pods', 'run')).mode & 0o7777).toBe(0o2750);
    expect(as([], ['ls', env.dir]).status).toBe(2);
    expect(as([rktGid], ['ls', path.join(env.dir, 'cas', 'tree')]).status).toBe(2);
  });

  test('a full 64 MB tmpfs data dir: one ENOSPC line, nothing left in cas/tmp, and the store still lists and runs what it had', () => {
    const small = path.join(env.base, 'small');
    fs.mkdirSync(small);
    sh(`mount -t tmpfs -o size=64M rkt-it-perms '${small}'`);
    mounts.push(small);
    const s: RktEnv = { ...env, dir: path.join(small, 'data'), globals: [`--dir=${path.join(small, 'data')}`, `--local-config=${env.localConfig}`, `--system-config=${env.systemConfig}`] };
    const had = rkt(s, ['--insecure-options=image', 'fetch', '--full', BUSYBOX_ACI]);
    expect(had.status).toBe(0);

    // The blob does not fit; then a small blob whose tree does not. Their limits (by default
    // the free space less a margin, which would refuse them first) raised so that the disk
    // itself runs out.
    const zero = bigAci(env.base, 'zero');
    const limited = rkt(s, ['--insecure-options=image', 'fetch', zero]);
    expect(limited.status).toBe(254);
    expect(errorLines(limited.stderr)).toEqual([expect.stringMatching(/expands to more than .* the free space in .* less a margin \(--max-expanded-size\)/)]);
    expect(fs.readdirSync(path.join(s.dir, 'cas', 'tmp'))).toEqual([]);
    for (const [source, where, flags] of [['urandom', 'blob', ['--max-download-size=1G']], ['zero', 'tree/rootfs/data', ['--max-expanded-size=1G']]] as const) {
      const big = rkt(s, ['--insecure-options=image', ...flags, 'fetch', source === 'zero' ? zero : bigAci(env.base, source)]);
      expect(big.status).toBe(254);
      expect(errorLines(big.stderr)).toEqual([expect.stringMatching(new RegExp(`^fetch: no space left in the data directory ${s.dir} \\(needed to write cas/tmp/[^/]+/${where}\\): free space in ${s.dir} or use --dir to choose another data directory$`))]);
      expect(fs.readdirSync(path.join(s.dir, 'cas', 'tmp'))).toEqual([]);
    }
    const images = rkt(s, ['image', 'list', '--no-legend', '--full']);
    expect(images.stdout.trim().split('\n')).toEqual([expect.stringContaining(had.stdout.trim())]);
    const run = rkt(s, ['run', had.stdout.trim(), '--exec=/bin/echo', '--', 'still runs']);
    expect(run.stdout).toContain('still runs');
    expect(run.status).toBe(0);

    // Full to the last block: run itself reports it the same way.
    spawnSync('sh', ['-c', `head -c 100M /dev/zero > '${path.join(small, 'filler')}'`]);
    const full = rkt(s, ['run', had.stdout.trim(), '--exec=/bin/true']);
    expect(full.status).toBe(254);
    expect(errorLines(full.stderr)).toEqual([expect.stringMatching(new RegExp(`^run: no space left in the data directory ${s.dir} \\(needed to .+\\): free space in ${s.dir} or use --dir`))]);
    expect(fs.readdirSync(path.join(s.dir, 'cas', 'tmp'))).toEqual([]);
    fs.rmSync(path.join(small, 'filler'));
    expect(rkt(s, ['list']).status).toBe(0);

    // Read-only: writes get their line, reads still work.
    sh(`mount -o remount,ro '${small}'`);
    for (const [args, verb] of [[['--insecure-options=image', 'fetch', hostile], 'fetch'], [['run', had.stdout.trim(), '--exec=/bin/true'], 'run']] as Array<[string[], string]>) {
      const r = rkt(s, args);
      expect([args, r.status]).toEqual([args, 254]);
      expect(errorLines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^${verb}: the data directory ${s.dir} is on a read-only filesystem \\(needed to .+\\): remount it read-write or use --dir to choose a writable data directory$`))]);
    }
    expect(rkt(s, ['image', 'list']).status).toBe(0);
    expect(rkt(s, ['list']).status).toBe(0);
  }, 180_000);
});
