/**
 * rkt under a real systemd. PID 1 here is not systemd, so the test boots one: the host's own
 * systemd (Debian 12 is /usr-merged, so the host's /usr is a whole OS) in systemd-nspawn,
 * over an overlay of the host root (read-only bind of / below, a fresh upper) in which /etc,
 * /var, /tmp, /root and /home are opaque: the machine starts with an empty /etc but for
 * passwd/group, a machine-id (so no first-boot presets) and the units under test. No
 * debootstrap, no download: it boots in a few seconds.
 *
 * What it takes, measured on Debian 12 (systemd 252, hybrid cgroups):
 * - nspawn mounts the v1 controllers read-only: the test mounts each hierarchy afresh
 *   inside (with all capabilities the container may), rooted at the container's cgroup
 *   namespace, so the pods' cgroups land under the test's own cgroup on the host;
 * - nspawn's seccomp filter refuses the keyring calls stage1 makes (a session keyring per
 *   pod): --system-call-filter=@keyring allows them;
 * - --private-network, so the machine's own services cannot touch the host's interfaces;
 * - --register=no --keep-unit (no machined here) and nspawn in a cgroup of its own (it
 *   makes payload/ and supervisor/ beside itself in the name=systemd and cgroup2 trees);
 * - /var/lib/rkt is a tmpfs in the machine: overlayfs cannot use the overlay root as upper.
 * Inside, /usr/bin/rkt is this checkout's bin/rkt (bound read-only), as in an npm install.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChildProcess, execFileSync, spawn, spawnSync, SpawnSyncReturns } from 'node:child_process';
import { BUSYBOX_ACI, ETCD_ACI, IMAGES_KEY, ROOT, describeIf, skipReason, waitFor } from '../helpers/rkt.js';
import { buildBusyboxAci } from '../helpers/pods.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const suite = describeIf(skipReason()
  ?? (have('systemd-nspawn') ? undefined : 'needs systemd-nspawn (package systemd-container, scripts/setup.sh)')
  ?? (fs.existsSync('/usr/lib/systemd/systemd') ? undefined : 'needs systemd (package systemd, scripts/setup.sh)')
  ?? (have('python3') && have('etcdctl') ? undefined : 'needs python3 and etcdctl (scripts/setup.sh)')
  ?? (have('gcc') && fs.existsSync('/usr/lib/x86_64-linux-gnu/libc.a') ? undefined : 'needs gcc and libc6-dev (scripts/setup.sh)'));

const UNITS = path.join(ROOT, 'dist', 'systemd');

/** The cgroup trees nspawn itself uses: name=systemd (v1) and cgroup2, with this process's place in each. */
function nspawnCgroupParents(): string[] {
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' '));
  const own = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean).map((l) => l.split(':'));
  const out: string[] = [];
  for (const m of mounts) {
    const sep = m.indexOf('-');
    if (sep < 0) continue;
    const [fstype, , superOpts] = m.slice(sep + 1);
    const at = m[4];
    if (fstype === 'cgroup2') out.push(path.join(at, own.find((o) => o[0] === '0')?.[2] ?? '/'));
    else if (fstype === 'cgroup' && superOpts.split(',').includes('name=systemd')) out.push(path.join(at, own.find((o) => o[1] === 'name=systemd')?.[2] ?? '/'));
  }
  return out;
}

/** Removes a cgroup tree (children first); each must be empty of processes by now. */
function removeCgroupTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(path.join(dir, e.name));
  try { fs.rmdirSync(dir); } catch { /* reported by the footprint check */ }
}

const isMountPoint = (p: string) => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);

/** Mounts the cgroup v1 controller hierarchies that nspawn made read-only afresh, read-write (run inside). */
const REMOUNT_CGROUPS = `
import subprocess
for line in open('/proc/self/mountinfo'):
    f = line.split()
    sep = f.index('-')
    fstype, opts, where = f[sep + 1], f[sep + 3].split(','), f[4]
    if fstype != 'cgroup' or 'ro' not in f[5].split(',') or not where.startswith('/sys/fs/cgroup/'):
        continue
    ctrl = ','.join(o for o in opts if o not in ('ro', 'rw') and not o.startswith('name='))
    if not ctrl:
        continue
    subprocess.run(['umount', where], check=True)
    subprocess.run(['mount', '-t', 'cgroup', '-o', ctrl, 'cgroup', where], check=True)
`;

/** A client inside the machine: connects to 127.0.0.1:PORT and prints what it reads. */
const CLIENT = `
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
out = b""
while True:
    b = s.recv(4096)
    if not b: break
    out += b
sys.stdout.write(out.decode())
`;

class Machine {
  readonly name = `rkt-it-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  readonly base = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-it-nspawn-'));
  readonly lower = path.join(this.base, 'lower');
  readonly root = path.join(this.base, 'root');
  readonly upper = path.join(this.base, 'upper');
  readonly cgroups = nspawnCgroupParents().map((p) => path.join(p, this.name));
  nspawn?: ChildProcess;
  console = '';
  pid1 = 0;

  /** The upper layer: what the machine has on top of the host's /usr. */
  prepare(files: Record<string, string>): void {
    for (const d of [this.lower, this.root, this.upper, path.join(this.base, 'work')]) fs.mkdirSync(d);
    const opaque = ['etc', 'var', 'tmp', 'root', 'home'].map((d) => path.join(this.upper, d));
    for (const d of opaque) fs.mkdirSync(d);
    execFileSync('python3', ['-c', 'import os, sys\nfor p in sys.argv[1:]: os.setxattr(p, "trusted.overlay.opaque", b"y")', ...opaque]);
    for (const f of ['passwd', 'group', 'shadow', 'gshadow']) if (fs.existsSync(`/etc/${f}`)) fs.copyFileSync(`/etc/${f}`, path.join(this.upper, 'etc', f));
    fs.writeFileSync(path.join(this.upper, 'etc', 'machine-id'), `${[...Array(32)].map(() => Math.floor(Math.random() * 16).toString(16)).join('')}\n`);
    fs.mkdirSync(path.join(this.upper, 'usr', 'bin'), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'bin', 'rkt'), path.join(this.upper, 'usr', 'bin', 'rkt'));
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(this.upper, rel)), { recursive: true });
      fs.writeFileSync(path.join(this.upper, rel), text);
    }
    execFileSync('mount', ['--bind', '/', this.lower]);
    execFileSync('mount', ['-o', 'remount,bind,ro', this.lower]);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${this.lower},upperdir=${this.upper},workdir=${path.join(this.base, 'work')}`, this.root]);
  }

  async boot(binds: string[]): Promise<void> {
    for (const c of this.cgroups) fs.mkdirSync(c);
    const joins = this.cgroups.map((c) => `echo $$ > '${c}/cgroup.procs'`).join('; ');
    const args = ['-D', this.root, `--machine=${this.name}`, '--register=no', '--keep-unit', '--capability=all',
      '--system-call-filter=@keyring', '--private-network', '--tmpfs=/var/lib/rkt', ...binds.map((b) => `--bind-ro=${b}`),
      '--console=pipe', '-b', 'systemd.unit=multi-user.target'];
    this.nspawn = spawn('sh', ['-c', `${joins}; exec systemd-nspawn "$@"`, 'nspawn', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.nspawn.stdout!.on('data', (d) => { this.console += d; });
    this.nspawn.stderr!.on('data', (d) => { this.console += d; });
    const nspawnPid = this.nspawn.pid!;
    await waitFor(() => {
      if (this.nspawn!.exitCode !== null) throw new Error(`systemd-nspawn exited: ${this.console}`);
      try { this.pid1 = Number(fs.readFileSync(`/proc/${nspawnPid}/task/${nspawnPid}/children`, 'utf8').trim().split(' ')[0]) || 0; } catch { /* not yet */ }
      return this.pid1 > 0 && fs.readFileSync(`/proc/${this.pid1}/comm`, 'utf8').trim() === 'systemd';
    }, 30_000, 'the machine\'s systemd');
    // Until its systemd answers at all, systemctl fails at once (even with --wait).
    let state = '';
    await waitFor(() => {
      state = this.run(['systemctl', 'is-system-running']).stdout.trim();
      return !['', 'offline', 'initializing', 'starting'].includes(state);
    }, 60_000, 'the machine to boot');
    if (state !== 'running') {
      throw new Error(`the machine is ${state}: ${this.run(['systemctl', '--failed', '--no-legend']).stdout}\n${this.console}`);
    }
    const remount = this.run(['python3', '-c', REMOUNT_CGROUPS]);
    if (remount.status !== 0) throw new Error(`cannot remount the cgroup controllers inside: ${remount.stderr}`);
  }

  /** A command in the machine (all its namespaces, its root), as its root user. */
  run(cmd: string[], opts: { timeout?: number } = {}): SpawnSyncReturns<string> {
    return spawnSync('nsenter', ['-t', String(this.pid1), '-a', '--', ...cmd], { encoding: 'utf8', timeout: opts.timeout ?? 60_000 });
  }

  /** `systemctl show UNIT -p ...` as an object. */
  show(unit: string, props: string[]): Record<string, string> {
    const out = this.run(['systemctl', 'show', unit, ...props.map((p) => `--property=${p}`)]).stdout;
    return Object.fromEntries(out.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  journal(unit: string): string {
    return this.run(['journalctl', '--no-pager', '-o', 'cat', '-u', unit]).stdout;
  }

  /** Halts the machine (SIGTERM to nspawn), SIGKILL if it does not go; then unmounts and removes everything. */
  async destroy(): Promise<string[]> {
    const left: string[] = [];
    if (this.nspawn && this.nspawn.exitCode === null && this.nspawn.signalCode === null) {
      const exited = new Promise((r) => this.nspawn!.once('exit', r));
      this.nspawn.kill('SIGTERM');
      const timer = setTimeout(() => this.nspawn!.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    for (const m of [this.root, this.lower]) {
      if (isMountPoint(m)) spawnSync('umount', [m]);
      if (isMountPoint(m)) { spawnSync('umount', ['-l', m]); left.push(`mount ${m}`); }
    }
    for (const c of this.cgroups) removeCgroupTree(c);
    left.push(...this.cgroups.filter((c) => fs.existsSync(c)).map((c) => `cgroup ${c}`));
    // nspawn leaves its propagation dir where /run is not a tmpfs.
    fs.rmSync(path.join('/run/systemd/nspawn/propagate', this.name), { recursive: true, force: true });
    // Never recurse into a mount: the read-only bind of / is below lower/.
    if (!isMountPoint(this.lower) && !isMountPoint(this.root)) fs.rmSync(this.base, { recursive: true, force: true });
    return left;
  }
}

suite('rkt under systemd (systemd-nspawn -b)', () => {
  let m: Machine;
  let work: string;
  const podCgroupsSeen = new Set<string>();
  /** rkt inside the machine, with its default data dir (a tmpfs there). */
  const rktIn = (args: string[]) => m.run(['/usr/bin/rkt', ...args]);
  const podUuids = () => rktIn(['list', '--no-legend', '--full']).stdout.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0]);

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-it-systemd-'));
    const bin = path.join(work, 'accept1');
    execFileSync('gcc', ['-static', '-O1', '-o', bin, path.join(ROOT, 'test', 'helpers', 'accept1.c')]);
    await buildBusyboxAci(path.join(work, 'hello-socket.aci'), 'rkt.local/hello-socket', ['sh'], [{ path: 'bin/accept1', content: fs.readFileSync(bin), mode: 0o755 }],
      { exec: ['/bin/accept1'], ports: [{ name: 'web', protocol: 'tcp', port: 8080, socketActivated: true }] });
    const units = Object.fromEntries(fs.readdirSync(UNITS).map((u) => [`etc/systemd/system/${u}`, fs.readFileSync(path.join(UNITS, u), 'utf8')]));
    m = new Machine();
    m.prepare({
      ...units,
      // The test's images in place of the examples' (the units themselves are as shipped).
      'etc/systemd/system/etcd.service.d/test.conf': `[Service]\nEnvironment=ETCD_IMAGE=${ETCD_ACI}\n`,
      'etc/systemd/system/hello-socket.service.d/test.conf': `[Service]\nEnvironment=IMAGE=${path.join(work, 'hello-socket.aci')}\nEnvironment="RKT_RUN_FLAGS=--net=host --insecure-options=image"\n`,
    });
    const binds = [ROOT, work];
    const modules = fs.realpathSync(path.join(ROOT, 'node_modules'));
    if (!modules.startsWith(`${ROOT}/`)) binds.push(modules);
    await m.boot(binds);
    // The etcd image is signed by the test images' key.
    const trust = rktIn(['trust', '--skip-fingerprint-review', '--prefix=coreos.com/etcd', IMAGES_KEY]);
    if (trust.status !== 0) throw new Error(`rkt trust in the machine: ${trust.stderr}`);
  }, 180_000);

  afterAll(async () => {
    if (!m) return;
    if (m.pid1) {
      // Whatever a failed test left running goes first, so that gc can remove every pod.
      m.run(['systemctl', 'stop', 'rkt-notify-test.service', 'etcd.service', 'hello-socket.socket', 'hello-socket.service', 'rkt-gc.timer']);
      for (const u of podUuids()) {
        podCgroupsSeen.add(u);
        rktIn(['stop', '--force', u]);
      }
      rktIn(['gc', '--grace-period=0s']);
    }
    const left = await m.destroy();
    fs.rmSync(work, { recursive: true, force: true });
    // The pods' cgroups, wherever the machine's hierarchies put them on the host: none may
    // be left (and any that is goes, so that a failure leaves the machine clean).
    const leftovers = execFileSync('sh', ['-c', 'find /sys/fs/cgroup -maxdepth 6 -type d -name "rkt-*" 2>/dev/null || true'], { encoding: 'utf8' })
      .split('\n').filter((d) => [...podCgroupsSeen].some((u) => d.endsWith(`/rkt-${u}`)));
    for (const d of leftovers) removeCgroupTree(d);
    expect([...left, ...leftovers]).toEqual([]);
  }, 120_000);

  test('systemd-run --service-type=notify rkt run: started once the pod runs, main PID = the pod, systemctl stop ends it cleanly', () => {
    const start = m.run(['systemd-run', '--service-type=notify', '--unit=rkt-notify-test', '--property=KillMode=mixed',
      '/usr/bin/rkt', 'run', '--net=host', '--insecure-options=image', '--uuid-file-save=/run/notify-test.uuid',
      BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', 'echo app up; exec sleep 1000']);
    expect(start.stderr).toMatch(/^Running as unit: rkt-notify-test\.service/);
    expect(start.status).toBe(0);
    // systemd-run returns once the start job is done: for Type=notify, after READY=1.
    const s = m.show('rkt-notify-test.service', ['ActiveState', 'SubState', 'MainPID', 'StatusErrno']);
    expect(s).toMatchObject({ ActiveState: 'active', SubState: 'running' });
    const uuid = m.run(['cat', '/run/notify-test.uuid']).stdout;
    const status = rktIn(['status', uuid]).stdout;
    expect(status).toMatch(/^state=running$/m);
    expect(status).toContain(`\npid=${s.MainPID}\n`);
    podCgroupsSeen.add(uuid);
    expect(m.run(['systemctl', 'stop', 'rkt-notify-test.service']).status).toBe(0);
    expect(rktIn(['status', uuid]).stdout).toMatch(/^state=exited\n[\s\S]*^app-busybox=143$/m);
    const journal = m.journal('rkt-notify-test.service');
    expect(journal).toContain('app up\n');
    // No shell job-control noise, and a clean stop is not a failure.
    expect(journal).not.toMatch(/Terminated|Killed|Failed with result/);
  });

  test('etcd.service as shipped: Type=notify, serves, rkt status by --uuid-file-save, systemctl stop, gc --mark-only', async () => {
    const start = m.run(['systemctl', 'start', 'etcd.service'], { timeout: 90_000 });
    expect(start.stderr).toBe('');
    expect(start.status).toBe(0);
    expect(m.show('etcd.service', ['ActiveState', 'SubState'])).toEqual({ ActiveState: 'active', SubState: 'running' });
    const uuid = m.run(['cat', '/run/etcd/pod-uuid']).stdout;
    podCgroupsSeen.add(uuid);
    expect(rktIn(['status', '--uuid-file=/run/etcd/pod-uuid']).stdout).toMatch(/^state=running$/m);
    // Ready means every app started; etcd itself takes a moment more to serve.
    await waitFor(() => m.run(['etcdctl', '--endpoints=http://127.0.0.1:2379', 'put', 'unit', 'ok']).status === 0, 30_000, 'etcd to serve');
    expect(m.run(['etcdctl', '--endpoints=http://127.0.0.1:2379', 'get', '--print-value-only', 'unit']).stdout).toBe('ok\n');
    expect(m.run(['systemctl', 'stop', 'etcd.service']).status).toBe(0);
    expect(m.show('etcd.service', ['ActiveState', 'Result'])).toEqual({ ActiveState: 'inactive', Result: 'success' });
    // ExecStopPost marked it: garbage for the next gc.
    expect(rktIn(['status', '--uuid-file=/run/etcd/pod-uuid']).status).not.toBe(0); // the runtime dir went with the unit
    expect(rktIn(['status', uuid]).stdout).toMatch(/^state=exited garbage$/m);
    expect(m.journal('etcd.service')).not.toMatch(/Terminated|Killed/);
    // Its data stayed on the host side of the pod: StateDirectory=etcd.
    expect(m.run(['test', '-d', '/var/lib/etcd/default.etcd']).status).toBe(0);
  });

  test('hello-socket.socket + .service: the first connection starts the pod, whose app serves it on the inherited socket', () => {
    expect(m.run(['systemctl', 'start', 'hello-socket.socket']).status).toBe(0);
    expect(m.show('hello-socket.service', ['ActiveState']).ActiveState).toBe('inactive');
    const client = m.run(['python3', '-c', CLIENT, '8080'], { timeout: 60_000 });
    expect(client.stderr).toBe('');
    expect(client.stdout).toBe('hello from the pod\n');
    const uuids = podUuids();
    uuids.forEach((u) => podCgroupsSeen.add(u));
    // accept1 served one client and exited 0: the service is done, the socket listens on.
    expect(m.show('hello-socket.socket', ['ActiveState']).ActiveState).toBe('active');
    expect(m.run(['systemctl', 'stop', 'hello-socket.socket', 'hello-socket.service']).status).toBe(0);
  });

  test('rkt-gc.timer: runs rkt-gc.service at once (GRACE_PERIOD from a drop-in) and again in 12h', async () => {
    // An exited pod of its own (the other tests' pods may be there too).
    expect(rktIn(['run', '--net=host', '--insecure-options=image', BUSYBOX_ACI, '--exec=/bin/true']).status).toBe(0);
    podUuids().forEach((u) => podCgroupsSeen.add(u));
    expect(podUuids().length).toBeGreaterThan(0);
    m.run(['mkdir', '-p', '/etc/systemd/system/rkt-gc.service.d']);
    m.run(['sh', '-c', 'printf "[Service]\\nEnvironment=GRACE_PERIOD=0s\\n" > /etc/systemd/system/rkt-gc.service.d/now.conf']);
    expect(m.run(['systemctl', 'daemon-reload']).status).toBe(0);
    // Exited pods become garbage first (the notify test's pod was not marked).
    rktIn(['gc', '--mark-only']);
    expect(m.run(['systemctl', 'start', 'rkt-gc.timer']).status).toBe(0);
    expect(m.show('rkt-gc.timer', ['ActiveState']).ActiveState).toBe('active');
    await waitFor(() => m.show('rkt-gc.service', ['ExecMainExitTimestampMonotonic']).ExecMainExitTimestampMonotonic !== '0', 60_000, 'rkt-gc.service to run');
    expect(m.show('rkt-gc.service', ['Result', 'ExecMainStatus'])).toEqual({ Result: 'success', ExecMainStatus: '0' });
    expect(podUuids()).toEqual([]);
    expect(m.journal('rkt-gc.service')).toMatch(/^Garbage collecting pod "/m);
    // The next run: 12h after this one.
    // Monotonic times as systemd prints them: "19h 22min 54.809944s".
    const shown = m.show('rkt-gc.timer', ['NextElapseUSecMonotonic', 'LastTriggerUSecMonotonic']);
    const seconds = (span: string) => [...span.matchAll(/([\d.]+)(d|h|min|s|ms|us)\b/g)]
      .reduce((sum, [, n, u]) => sum + Number(n) * { d: 86400, h: 3600, min: 60, s: 1, ms: 1e-3, us: 1e-6 }[u]!, 0);
    expect(Math.round(seconds(shown.NextElapseUSecMonotonic) - seconds(shown.LastTriggerUSecMonotonic))).toBe(12 * 3600);
  });
});
