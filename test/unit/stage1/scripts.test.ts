import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import {
  appMountOps, appMounts, appStep, cgroupViewOps, DEVICES, fstabEscape, initBoundingSet, initOps, launchOps, MountEntry, mountOps, renderTable,
  renderApp, renderEnter, runArgv, skeletonOps, sq, DEV_LINKS, initCapabilities, capabilityMask,
  READY_FILE,
} from '../../../src/stage1/scripts.js';
import type { AppPlan, PodPlan, Stage1Tools } from '../../../src/stage1/plan.js';
import { describeIf } from '../../helpers/rkt.js';
import { parseTable } from '../../helpers/tables.js';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
/** Suites that run busybox sh as stage1 does: they fail under CI when it is missing. */
const withBusybox = describeIf(BUSYBOX ? undefined : 'busybox-static (/bin/busybox): apt-get install busybox-static');
/** The shells the scripts must parse in: /bin/sh always, busybox sh (what stage1 runs) when present. */
const SHELLS: Array<[string, string[]]> = [['sh', ['/bin/sh']], ...(BUSYBOX ? [['busybox sh', [BUSYBOX, 'sh']] as [string, string[]]] : [])];

const TOOLS: Stage1Tools = {
  nsenter: '/usr/bin/nsenter', busybox: '/bin/busybox', helper: '/usr/lib/rkt/rkt-helper',
};
const UUID = '6e1c7c0c-3c5a-4c1e-9a4b-3d7a3f0e2b11';
const POD = `/var/lib/rkt/pods/run/${UUID}`;
const ROOTFS = `${POD}/stage1/rootfs/opt/stage2/web/rootfs`;

function makeApp(over: Partial<AppPlan> = {}): AppPlan {
  return {
    name: 'web',
    treeRootfs: '/var/lib/rkt/cas/tree/deps-sha512-abc/rootfs',
    rootfs: ROOTFS,
    overlay: { upper: `${POD}/overlay/web/upper`, work: `${POD}/overlay/web/work` },
    exec: ['/bin/server', '--port', '80'],
    env: [['PATH', '/usr/bin:/bin'], ['AC_APP_NAME', 'web']],
    workingDir: '/srv',
    uid: 1000,
    gid: 2000,
    supplementaryGids: [],
    capabilities: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE', 'CAP_KILL'],
    noNewPrivileges: false,
    readOnlyRootfs: false,
    mounts: [],
    devDir: `${POD}/stage1/dev/web`,
    protect: { maskedDirs: ['/sys/firmware', '/sys/fs'], maskedFiles: ['/proc/kcore', '/proc/keys'] },
    cgroupProcs: [],
    ...over,
  };
}

function makePlan(over: Partial<PodPlan> = {}): PodPlan {
  return {
    uuid: UUID,
    podDir: POD,
    hostname: `rkt-${UUID}`,
    apps: [makeApp()],
    net: { kind: 'host' },
    sharedIpc: false,
    interactive: false,
    openPaths: false,
    podCgroupProcs: [],
    stopGraceSeconds: 10,
    tools: TOOLS,
    ...over,
  };
}

/** Runs a script text through `shell -c` and returns its stdout (fails the test on a non-zero exit). */
function runShell(shell: string[], script: string): string {
  const r = spawnSync(shell[0], [...shell.slice(1), '-c', script], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

/**
 * The exact argument vector of a script's top-level `exec ...` command, as the shell builds it:
 * the command is run with `printf '%s\0'` in place of `exec`.
 */
function execArgv(script: string, shell: string[] = ['/bin/sh']): string[] {
  // The first exec of a command (an app launcher's `exec 7<helper` only opens an fd).
  let at = script.startsWith('exec ') ? 0 : script.indexOf('\nexec ') + 1;
  while (at > 0 && /^exec \d</.test(script.slice(at))) at = script.indexOf('\nexec ', at) + 1;
  expect(at).toBeGreaterThanOrEqual(0);
  expect(script.slice(at, at + 5)).toBe('exec ');
  const out = runShell(shell, `printf '%s\\0' ${script.slice(at + 5)}`);
  expect(out.endsWith('\0')).toBe(true);
  return out.slice(0, -1).split('\0');
}

/** An app's launch table (no event handlers), parsed. */
function launchTable(plan: PodPlan, app: AppPlan): string[][] {
  const { script, files } = renderApp(plan, app);
  expect(script).toBeUndefined();
  expect(Object.keys(files)).toEqual([`app-${app.name}.launch`]);
  return parseTable(files[`app-${app.name}.launch`]);
}

/** What the launcher goes on with once the table is done (its `arg` lines). */
const nextOf = (ops: string[][]) => ops.filter((o) => o[0] === 'arg').map((o) => o[1]);

/** `sh -n` (and `busybox sh -n`): the script parses. */
function expectSyntaxOk(script: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-sh-n-'));
  try {
    const f = path.join(dir, 'script.sh');
    fs.writeFileSync(f, script);
    for (const [name, shell] of SHELLS) {
      const r = spawnSync(shell[0], [...shell.slice(1), '-n', f], { encoding: 'utf8' });
      expect({ shell: name, status: r.status, stderr: r.stderr }).toEqual({ shell: name, status: 0, stderr: '' });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Strings that break naive quoting. */
const NASTY = [
  "it's",
  "'",
  "''",
  'two  spaces\tand a tab',
  '$(touch /tmp/rkt-scripts-test-pwned)',
  '`touch /tmp/rkt-scripts-test-pwned`',
  '$HOME ${PATH} $1 $@ $$',
  'line1\nline2\n',
  '"double" \\backslash\\ \\\'',
  '*',
  '; exit 9; #',
  '',
  '-n',
  'ünïcödé ✓',
];

describe('sq', () => {
  test.each(NASTY.map((s) => [s]))('%j round-trips through sh', (s) => {
    for (const [, shell] of SHELLS) expect(runShell(shell, `printf '%s' ${sq(s)}`)).toBe(s);
    expect(fs.existsSync('/tmp/rkt-scripts-test-pwned')).toBe(false);
  });

  test('plain strings are simply single-quoted', () => {
    expect(sq('abc')).toBe("'abc'");
    expect(sq("a'b")).toBe(`'a'\\''b'`);
  });
});

describe('the syntax check itself', () => {
  test('rejects a broken script (so the checks below mean something)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-sh-n-'));
    try {
      const f = path.join(dir, 'bad.sh');
      fs.writeFileSync(f, 'if then\n');
      for (const [, shell] of SHELLS) expect(spawnSync(shell[0], [...shell.slice(1), '-n', f]).status).not.toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('runArgv (the command line bin/rkt\'s process execs to become the pod)', () => {
  /** rkt-helper --pod: no socket-activation fds, no CNI netns, then the namespaces; the chain proper follows. */
  const pod = (ns: string, netns = '-', listen = '0') => [TOOLS.helper, '--pod', listen, netns, ns];
  /** Its fork, PID 1 (--init): the init table (rkt finds the pod by it), kept caps, grace, stdin, notify, apps. */
  const tail = (caps = '20', apps = ['web']) => [
    '--init', `${POD}/stage1/init.table`, caps, '10000', '0', '0', ...apps,
  ];

  test('--net=host: rkt-helper --pod makes the uts, pid and ipc namespaces (and the mount one), then holds the pod, its fork being rkt-helper --init', () => {
    expect(runArgv(makePlan())).toEqual([...pod('uts,pid,ipc'), ...tail()]);
  });

  test('--net=none adds a new network namespace', () => {
    expect(runArgv(makePlan({ net: { kind: 'none' } }))).toEqual([...pod('uts,pid,ipc,net'), ...tail()]);
  });

  test('a CNI netns is joined before the namespaces are made (and no new netns is made)', () => {
    expect(runArgv(makePlan({ net: { kind: 'netns', path: `${POD}/netns` } }))).toEqual([...pod('uts,pid,ipc', `${POD}/netns`), ...tail()]);
  });

  test('rkt-helper --init: every app by name, the capabilities PID 1 keeps, the grace period in ms, stdin, notify', () => {
    expect(runArgv(makePlan({ apps: [makeApp(), makeApp({ name: 'db' })] })).slice(-8)).toEqual(tail('20', ['web', 'db']));
    const odd = runArgv(makePlan({ podDir: "/x y/it's", interactive: true, stopGraceSeconds: 3, apps: [makeApp({ capabilities: ['CAP_CHOWN'] })] }));
    expect(odd.slice(-7)).toEqual(['--init', "/x y/it's/stage1/init.table", '0', '3000', '1', '0', 'web']);
    // The grace period in ms (rkt run --stop-timeout takes ms), and NOTIFY=1 with rkt-notify.
    const notified = runArgv(makePlan({ stopGraceSeconds: 0.25, notify: { helper: '/n', sockets: [] } }));
    expect(notified.slice(-5)).toEqual(['20', '250', '0', '1', 'web']);
    // A sandbox starts with no app.
    expect(runArgv(makePlan({ apps: [], sandbox: true })).slice(-6)).toEqual(['--init', `${POD}/stage1/init.table`, '20', '10000', '0', '0']);
  });

  test('--ipc=parent keeps the host IPC namespace; socket activation keeps its fds', () => {
    expect(runArgv(makePlan({ sharedIpc: true, net: { kind: 'none' } })).slice(0, 5)).toEqual(pod('uts,pid,net'));
    expect(runArgv(makePlan({ listenFds: 2 })).slice(0, 5)).toEqual(pod('uts,pid,ipc', '-', '2'));
  });

  test('paths with spaces and quotes stay whole fields; no field is empty (rkt-launch\'s record ends at an empty one)', () => {
    const podDir = "/data dir/it's/pods/run/x";
    const tools = { ...TOOLS, helper: '/opt/my tools/rkt-helper' };
    const argv = runArgv(makePlan({ podDir, tools, net: { kind: 'netns', path: `${podDir}/net ns` } }));
    expect(argv[0]).toBe('/opt/my tools/rkt-helper');
    expect(argv[3]).toBe(`${podDir}/net ns`);
    expect(argv).toContain(`${podDir}/stage1/init.table`);
    expect(argv.every((f) => f !== '')).toBe(true);
  });
});

describe('initOps (the init table: what PID 1 does first)', () => {
  test('the bounding set first, then the hostname; lo up only in a new empty netns', () => {
    const plan = makePlan({ hostname: "my 'host'" });
    expect(initOps(plan)).toEqual([['bounding', capabilityMask(initBoundingSet(plan) as string[])], ['hostname', "my 'host'"]]);
    expect(initOps(makePlan({ net: { kind: 'none' } })).slice(2)).toEqual([['up', 'lo']]);
    expect(initOps(makePlan({ net: { kind: 'netns', path: '/n' } })).slice(2)).toEqual([]);
    // An app with every capability: the bounding set stays whole.
    expect(initOps(makePlan({ apps: [makeApp({ capabilities: 'all' })] }))[0]).toEqual(['hostname', `rkt-${UUID}`]);
  });

  test('joins every pod cgroup, in order', () => {
    const files = ['/sys/fs/cgroup/memory/rkt-x/tasks', '/sys/fs/cgroup/unified/rkt-x/stage1.init/cgroup.procs'];
    expect(initOps(makePlan({ podCgroupProcs: files })).slice(2)).toEqual(files.map((f) => ['join', f]));
  });

  test('the table as rkt-helper reads it: one operation a line, fields escaped as in fstab', () => {
    const t = renderTable(initOps(makePlan({ hostname: 'a b', podCgroupProcs: ['/cg/x y/tasks'] })));
    expect(t.split('\n').slice(1)).toEqual(['hostname a\\040b', 'join /cg/x\\040y/tasks', '']);
  });
});

describe('initCapabilities and capabilityMask (what PID 1 keeps once the apps run)', () => {
  test('CAP_KILL only, and only when an app of the pod has it (or all)', () => {
    expect(initCapabilities(makePlan())).toEqual(['CAP_KILL']);
    expect(initCapabilities(makePlan({ apps: [makeApp({ capabilities: ['CAP_CHOWN'] })] }))).toEqual([]);
    expect(initCapabilities(makePlan({ apps: [makeApp({ capabilities: ['CAP_CHOWN'] }), makeApp({ name: 'b', capabilities: ['CAP_KILL'] })] }))).toEqual(['CAP_KILL']);
    expect(initCapabilities(makePlan({ apps: [makeApp({ capabilities: [] }), makeApp({ name: 'b', capabilities: 'all' })] }))).toEqual(['CAP_KILL']);
  });

  test('bit N is capability N, in hex', () => {
    expect(capabilityMask([])).toBe('0');
    expect(capabilityMask(['CAP_KILL'])).toBe('20');
    expect(capabilityMask(['CAP_CHOWN', 'CAP_SYS_ADMIN', 'CAP_CHECKPOINT_RESTORE'])).toBe((1n | (1n << 21n) | (1n << 40n)).toString(16));
    expect(() => capabilityMask(['CAP_NOPE'])).toThrow(/CAP_NOPE/);
  });
});

/**
 * The real rkt-helper --init, with its init table, runs as PID 1 of a new PID namespace, in
 * a user namespace of the test's own (so mount, pivot_root, capabilities, the hostname and lo
 * are real but touch nothing of the host, and the grace period's kill(-1) reaches only the
 * test's apps). `busybox` is a stand-in script (its sh records the launcher's mount
 * namespace); the apps are small scripts.
 */
const HELPER = path.resolve('dist/stage1/rkt-helper');
const UNSHARE = ['/usr/bin/unshare', '/bin/unshare'].find((p) => fs.existsSync(p));
/** A user namespace of the test's own, and in it every namespace a pod has. */
const USERNS = ['--user', '--map-root-user', '--mount', '--uts', '--net', '--pid', '--fork', '--mount-proc'];
const canUserns = !!UNSHARE && spawnSync(UNSHARE, [...USERNS, 'true']).status === 0;
const withInit = describeIf(!fs.existsSync(HELPER) ? `${HELPER}: run npm run build`
  : !canUserns ? 'unshare --user --map-root-user (util-linux, user namespaces enabled)' : undefined);
if (!BUSYBOX) withBusybox('rkt-helper --init (its launchers run under busybox sh)', () => undefined);

withInit('rkt-helper --init (run as PID 1 of a PID and user namespace)', () => {
  describe('the init table, then the apps', () => {
    let tmp: string;
    let pod: string;
    let fakeBusybox: string;
    const started: ChildProcess[] = [];
    beforeEach(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-init-'));
      pod = path.join(tmp, 'pod dir');
      for (const d of ['stage1', 'rkt/pid', 'rkt/status', 'cg', 'fake bin']) fs.mkdirSync(path.join(pod, d), { recursive: true });
      fakeBusybox = path.join(pod, 'fake bin', 'busybox');
      fs.writeFileSync(fakeBusybox, [
        '#!/bin/sh',
        `T=${sq(tmp)}`,
        'case "$1" in',
        // A launcher records its mount namespace and the propagation of its root.
        '  sh) shift; readlink /proc/self/ns/mnt >> "$T/mntns"; awk \'$5 == "/" { print ($7 ~ /shared/) ? "shared" : "private" }\' /proc/self/mountinfo >> "$T/propagation"',
        `      exec ${sq(BUSYBOX ?? '/bin/sh')} sh "$@" ;;`,
        '  *) echo "fake busybox: unexpected $*" >&2; exit 99 ;;',
        'esac',
        '',
      ].join('\n'), { mode: 0o755 });
    });
    afterEach(() => {
      // The apps die with their PID namespace when PID 1 does.
      for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    /** Writes the apps' launch tables and scripts and the init table; returns PID 1's command line. */
    function prepare(plan: PodPlan, apps: Record<string, string>): string[] {
      // A fresh pod's rkt/.
      for (const d of ['rkt/pid', 'rkt/status']) {
        fs.rmSync(path.join(pod, d), { recursive: true, force: true });
        fs.mkdirSync(path.join(pod, d));
      }
      fs.rmSync(path.join(pod, READY_FILE), { force: true });
      // The stand-in of a cgroup's tasks file, which join writes to.
      fs.writeFileSync(path.join(pod, 'cg', 'cgroup procs'), '');
      // Each app's launch table: its first steps as stage0 writes them, then (fake) busybox sh with its body.
      for (const [name, body] of Object.entries(apps)) {
        const script = path.join(pod, 'stage1', `app-${name}.sh`);
        fs.writeFileSync(script, `${body}\n`);
        fs.writeFileSync(path.join(pod, 'stage1', `app-${name}.launch`), renderTable([
          ...launchOps(plan, makeApp({ name }), []).slice(0, 1),
          ...[fakeBusybox, 'sh', script].map((a) => ['arg', a]),
        ]));
      }
      const real = { ...plan, tools: { ...plan.tools, helper: HELPER } };
      fs.writeFileSync(path.join(pod, 'stage1', 'init.table'), renderTable(initOps(real)));
      const argv = runArgv(real);
      return [HELPER, ...argv.slice(argv.indexOf('--init'))];
    }

    /** Whether both launchers (PID 1's children; PID 1 is the child of unshare `pid`) have a mount namespace other than PID 1's, which it pivots. */
    function launchersHaveOwnNs(pid: number): boolean {
      const kids = (p: number) => fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      const mnt = (p: number) => fs.readlinkSync(`/proc/${p}/ns/mnt`);
      const [init] = kids(pid);
      const launchers = kids(init);
      return launchers.length === 2 && launchers.every((l) => mnt(l) !== mnt(init));
    }

    /** `extra`: fds the init is given beyond 0-2 (an fd number to a file or 'pipe'). */
    function run(init: string[], input?: string, extra: Record<number, number | 'pipe'> = {}): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> } {
      const stdio: Array<'pipe' | 'ignore' | number> = ['pipe', 'ignore', 'pipe'];
      for (const [fd, what] of Object.entries(extra)) {
        while (stdio.length <= Number(fd)) stdio.push('ignore');
        stdio[Number(fd)] = what;
      }
      const child = spawn(UNSHARE!, [...USERNS, '--', ...init], { stdio });
      started.push(child);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      if (input !== undefined) child.stdin!.end(input);
      return { child, done: new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr }))) };
    }

    const status = (app: string) => fs.readFileSync(path.join(pod, 'rkt/status', app), 'utf8').trim();
    const plan = (over: Partial<PodPlan> = {}) => makePlan({
      podDir: pod, stopGraceSeconds: 1, hostname: "host 'x'", podCgroupProcs: [path.join(pod, 'cg', 'cgroup procs')], ...over,
    });
    const two = (over: Partial<PodPlan> = {}) => plan({ apps: [makeApp({ name: 'a' }), makeApp({ name: 'b' })], ...over });

    test('all apps succeed: exit 0, each status and pid recorded, hostname and cgroup set', async () => {
      const r = await run(prepare(two(), { a: `cat /proc/sys/kernel/hostname > ${sq(`${tmp}/hostname`)}`, b: 'sleep 0.2; exit 0' })).done;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(status('a')).toBe('0');
      expect(status('b')).toBe('0');
      for (const a of ['a', 'b']) expect(fs.readFileSync(path.join(pod, 'rkt/pid', a), 'utf8')).toMatch(/^\d+\n$/);
      expect(fs.readFileSync(path.join(tmp, 'hostname'), 'utf8')).toBe("host 'x'\n");
      expect(fs.readFileSync(path.join(pod, 'cg', 'cgroup procs'), 'utf8')).toBe('0');
      // Each app got its own mount namespace (not PID 1's: that one is shared, as the host's), with private propagation.
      const ns = fs.readFileSync(path.join(tmp, 'mntns'), 'utf8').trim().split('\n');
      expect(ns).toHaveLength(2);
      expect(new Set(ns).size).toBe(2);
      expect(fs.readFileSync(path.join(tmp, 'propagation'), 'utf8')).toBe('private\nprivate\n');
    });

    test('the launchers (and so the apps) get the bounding set of the init table; PID 1 is killed when its parent dies', async () => {
      const probe = sq(`${tmp}/probe`);
      const p = plan({ apps: [makeApp({ capabilities: ['CAP_CHOWN'] })] });
      const r = await run(prepare(p, { web: `grep CapBnd /proc/$$/status > ${probe}; grep -q '^SigBlk:.*0000000000000000$' /proc/$$/status && echo unblocked >> ${probe}` })).done;
      expect(r.code).toBe(0);
      expect(fs.readFileSync(`${tmp}/probe`, 'utf8')).toBe(`CapBnd:\t${capabilityMask(initBoundingSet(p) as string[]).padStart(16, '0')}\nunblocked\n`);
    });

    test('a bad line in the init table: 254, naming the line and the table', async () => {
      const init = prepare(plan(), { web: 'exit 0' });
      const table = path.join(pod, 'stage1', 'init.table');
      const lines = fs.readFileSync(table, 'utf8').split('\n').length;
      fs.appendFileSync(table, 'reboot now\n');
      const r = await run(init).done;
      expect(r.code).toBe(254);
      expect(r.stderr).toBe(`stage1: bad line ${lines} in the init table ${table}\n`);
      expect(fs.existsSync(path.join(pod, 'rkt/status/web'))).toBe(false);
    });

    test('an app with a launch table: the launcher PID 1 forks runs it itself (no shell), then what its arg lines name, exactly', async () => {
      const nasty = `it's "x" $HOME\ttab \\ \nnl`;
      // A fresh pod (rkt/pid, rkt/status) each time, with this launch table for its app.
      const table = (more: string[][] = []) => {
        const init = prepare(plan(), {});
        fs.writeFileSync(path.join(pod, 'stage1', 'app-web.launch'), renderTable([
          ['stopping', path.join(pod, 'rkt/stopping')],
          ['join', path.join(pod, 'cg', 'cgroup procs')],
          ...more,
          ['arg', '/bin/sh'], ['arg', '-c'], ['arg', `printf '%s|' "$0" "$1" > ${sq(`${tmp}/out`)}`], ['arg', nasty], ['arg', ''],
        ]));
        return init;
      };
      let r = await run(table()).done;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(fs.readFileSync(path.join(tmp, 'out'), 'utf8')).toBe(`${nasty}||`);
      expect(fs.readFileSync(path.join(pod, 'cg', 'cgroup procs'), 'utf8')).toBe('0');
      expect(status('web')).toBe('0');
      // A bad line: 254, naming it; the app does not run.
      fs.rmSync(path.join(tmp, 'out'));
      r = await run(table([['mount', 'only', 'three']])).done;
      expect(r.stderr).toBe(`stage1: bad line 3 in the launch table ${pod}/stage1/app-web.launch\n`);
      expect(status('web')).toBe('254');
      // The pod already stopping: not started, 143.
      const init = table();
      fs.writeFileSync(path.join(pod, 'rkt/stopping'), '');
      r = await run(init).done;
      expect(r.code).toBe(143);
      expect(fs.existsSync(path.join(tmp, 'out'))).toBe(false);
    });

    test('a SIGTERM that comes before PID 1 runs (blocked from rkt-helper --pod on) is taken as a stop', async () => {
      const init = prepare(plan({ stopGraceSeconds: 30 }), { web: 'exec sleep 30' });
      // rkt-helper --pod blocks the signals and execs what comes next, which sends itself the
      // TERM before PID 1's first instruction (perl, which leaves the signal mask alone: dash
      // and busybox sh clear it).
      const r = await run([HELPER, '--pod', '0', '-', '-', '/usr/bin/perl', '-e', 'kill "TERM", $$; exec @ARGV or die', ...init]).done;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(status('web')).toBe('143');
    });

    // The app is in PID 1's PID namespace: once PID 1 has dropped its capabilities (it does
    // so as soon as every launcher has a mount namespace: the app waits for that, at most
    // 5 s), it records PID 1's sets and what it finds behind /proc/1/root.
    function probeInit(probe: string): string {
      return [
        `for i in $(seq 100); do grep -q '^CapPrm:.*1ffffffffff$' /proc/1/status || break; sleep 0.05; done`,
        `grep -E '^Cap(Prm|Eff|Bnd|Inh|Amb)' /proc/1/status > ${sq(probe)}; ls /proc/1/root >> ${sq(probe)} 2>&1; echo ls=$? >> ${sq(probe)}`,
      ].join('\n');
    }

    test('PID 1 keeps only CAP_KILL when an app has it, and has left the host root', async () => {
      const probe = path.join(tmp, 'probe');
      const r = await run(prepare(plan({ apps: [makeApp({ name: 'a', capabilities: ['CAP_KILL', 'CAP_SYS_PTRACE'] })] }), { a: probeInit(probe) })).done;
      expect(r.code).toBe(0);
      const out = fs.readFileSync(probe, 'utf8');
      for (const set of ['Prm', 'Eff', 'Bnd']) expect(out).toContain(`Cap${set}:\t0000000000000020`);
      for (const set of ['Inh', 'Amb']) expect(out).toContain(`Cap${set}:\t0000000000000000`);
      // The app (here with CAP_SYS_PTRACE in its bounding set, and every capability of the
      // test's user namespace in it) finds only the pod's rkt/ dir behind /proc/1/root, not
      // the host's root.
      expect(out).toMatch(/^pid\nready\nstatus\nls=0\n/m);
    });

    test('PID 1 keeps no capability at all when no app has CAP_KILL', async () => {
      const probe = path.join(tmp, 'probe');
      const r = await run(prepare(plan({ apps: [makeApp({ name: 'a', capabilities: ['CAP_CHOWN'] })] }), { a: probeInit(probe) })).done;
      expect(r.code).toBe(0);
      for (const set of ['Prm', 'Eff', 'Bnd', 'Inh', 'Amb']) expect(fs.readFileSync(probe, 'utf8')).toContain(`Cap${set}:\t0000000000000000`);
    });

    test('the first failing app stops the others at once and gives the pod its status; those it stopped are recorded 0 (as rkt)', async () => {
      const r = await run(prepare(plan({ stopGraceSeconds: 30, apps: [makeApp({ name: 'a' }), makeApp({ name: 'b' }), makeApp({ name: 'c' })] }),
        { a: 'sleep 0.3; exit 3', b: 'exec sleep 30', c: "trap 'exit 7' TERM; while :; do sleep 0.1; done" })).done;
      expect(r.code).toBe(3);
      expect(status('a')).toBe('3');
      expect(status('b')).toBe('0');
      expect(status('c')).toBe('7'); // its own answer to the SIGTERM is kept
    });

    test('an app that ignores SIGTERM is killed after the grace period', async () => {
      // b notes the SIGTERM and carries on: it is seen alive after it, then SIGKILLed.
      const log = sq(`${tmp}/b-log`);
      const r = await run(prepare(two(), { a: 'sleep 0.3; exit 4', b: `trap 'echo term >> ${log}' TERM; while :; do sleep 0.1; echo alive >> ${log}; done` })).done;
      expect(r.code).toBe(4);
      expect(status('a')).toBe('4');
      expect(status('b')).toBe('0'); // SIGKILLed by PID 1 after the grace period: stopped by rkt
      expect(fs.readFileSync(`${tmp}/b-log`, 'utf8')).toMatch(/^term\nalive\n/m);
    });

    test('no grace period: an app that ignores SIGTERM is killed at once', async () => {
      const log = sq(`${tmp}/b-log`);
      const r = await run(prepare(two({ stopGraceSeconds: 0 }), { a: 'sleep 0.3; exit 4', b: `trap '' TERM; echo started > ${log}; sleep 30; echo slept >> ${log}` })).done;
      expect(r.code).toBe(4);
      expect(status('b')).toBe('0');
      expect(fs.readFileSync(`${tmp}/b-log`, 'utf8')).toBe('started\n'); // killed in its sleep
    });

    /** Waits until PID 1 recorded the PID of each app (it has forked their launchers). */
    async function launched(apps: string[]): Promise<void> {
      const pidFile = (a: string) => path.join(pod, 'rkt/pid', a);
      const deadline = Date.now() + 5000;
      while (!apps.every((a) => fs.existsSync(pidFile(a)) && fs.readFileSync(pidFile(a), 'utf8').endsWith('\n'))) {
        if (Date.now() > deadline) throw new Error('apps did not start');
        await new Promise((res) => setTimeout(res, 20));
      }
    }
    /** Waits until `file` has content (an app's "I run" note). */
    async function noted(file: string): Promise<void> {
      for (let i = 0; i < 250 && !(fs.existsSync(file) && fs.readFileSync(file, 'utf8')); i++) await new Promise((res) => setTimeout(res, 20));
    }
    /** unshare --fork forwards nothing: signal PID 1 (its only child) directly. */
    function signalInit(child: ChildProcess, sig: NodeJS.Signals): void {
      process.kill(Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim()), sig);
    }
    const stopKilled = () => (fs.existsSync(path.join(pod, 'rkt/stop-killed')) ? fs.readFileSync(path.join(pod, 'rkt/stop-killed'), 'utf8') : undefined);

    test.each(['SIGTERM', 'SIGINT'] as const)('%s to PID 1 stops every app; a requested stop exits 0, with nothing on stderr', async (sig) => {
      const { child, done } = run(prepare(two({ stopGraceSeconds: 30 }), { a: 'exec sleep 30', b: 'exec sleep 30' }));
      await launched(['a', 'b']);
      signalInit(child, sig);
      const r = await done;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(status('a')).toBe('143');
      expect(status('b')).toBe('143');
      expect(stopKilled()).toBeUndefined();
      // Launchers that start from now on do not start their app.
      expect(fs.existsSync(path.join(pod, 'rkt/stopping'))).toBe(true);
    });

    test('a requested stop that had to SIGKILL an app says so on stderr (only that), records it and exits 137', async () => {
      const note = path.join(tmp, 'b-runs');
      const { child, done } = run(prepare(two({ stopGraceSeconds: 0.5 }), { a: 'exec sleep 30', b: `trap '' TERM; echo yes > ${sq(note)}; while :; do sleep 0.1; done` }));
      await launched(['a', 'b']);
      await noted(note);
      signalInit(child, 'SIGTERM');
      const r = await done;
      expect(r.stderr).toBe('stage1: app "b" did not stop within 0.5s of SIGTERM: killed it\n');
      expect(r.code).toBe(137);
      expect(status('a')).toBe('143');
      expect(status('b')).toBe('137');
      expect(stopKilled()).toBe('b\n');
    });

    test("this stop's grace period comes from rkt/stop-timeout (rkt stop --timeout); a malformed one is ignored", async () => {
      const note = path.join(tmp, 'runs');
      const ignoring = `trap '' TERM; echo yes > ${sq(note)}; while :; do sleep 0.1; done`;
      // Without the file the app would be killed only after 60 s, past this test's timeout.
      let f = prepare(plan({ stopGraceSeconds: 60 }), { web: ignoring });
      fs.writeFileSync(path.join(pod, 'rkt/stop-timeout'), '0.2\n');
      let { child, done } = run(f);
      await launched(['web']);
      await noted(note);
      signalInit(child, 'SIGTERM');
      let r = await done;
      expect(r.stderr).toBe('stage1: app "web" did not stop within 0.2s of SIGTERM: killed it\n');
      expect(r.code).toBe(137);

      fs.rmSync(note);
      fs.rmSync(path.join(pod, 'rkt/stopping'));
      f = prepare(plan({ stopGraceSeconds: 0.3 }), { web: ignoring });
      fs.writeFileSync(path.join(pod, 'rkt/stop-timeout'), '1; touch /tmp/x\n');
      ({ child, done } = run(f));
      await launched(['web']);
      await noted(note);
      signalInit(child, 'SIGTERM');
      r = await done;
      expect(r.stderr).toBe('stage1: app "web" did not stop within 0.3s of SIGTERM: killed it\n');
    });

    test('a launcher that finds the pod stopping does not start its app (143, as if SIGTERMed)', async () => {
      const f = prepare(plan(), { web: `echo started > ${sq(`${tmp}/started`)}` });
      fs.writeFileSync(path.join(pod, 'rkt/stopping'), '');
      const r = await run(f).done;
      expect(r.code).toBe(143);
      expect(status('web')).toBe('143');
      expect(fs.existsSync(path.join(tmp, 'started'))).toBe(false);
    });

    test('NOTIFY=1: "started" on fd 4 once every launcher has its mount namespace; launchers get socket-activation fds (100..) but not fd 4', async () => {
      const fds = (a: string) => `ls /proc/$$/fd > ${sq(`${tmp}/fds-${a}`)}; sleep 0.5`;
      const activation = fs.openSync(path.join(tmp, 'listen'), 'w');
      try {
        const { child, done } = run(prepare(two({ notify: { helper: '/n', sockets: [] } }), { a: fds('a'), b: fds('b') }), undefined, { 4: 'pipe', 100: activation });
        const said = new Promise<{ text: string; ownNs: boolean }>((resolve) => {
          (child.stdio[4] as NodeJS.ReadableStream).once('data', (d: Buffer) => resolve({ text: d.toString(), ownNs: launchersHaveOwnNs(child.pid!) }));
        });
        expect(await said).toEqual({ text: 'started\n', ownNs: true });
        expect((await done).code).toBe(0);
        // rkt-notify marks the pod ready when it tells systemd so, not PID 1.
        expect(fs.existsSync(path.join(pod, READY_FILE))).toBe(false);
        for (const a of ['a', 'b']) {
          const open = fs.readFileSync(path.join(tmp, `fds-${a}`), 'utf8').split('\n').filter(Boolean).map(Number);
          expect(open).toContain(100);
          expect(open).not.toContain(4);
        }
      } finally {
        fs.closeSync(activation);
      }
    });

    test('NOTIFY=0: PID 1 marks the pod ready (rkt status --wait-ready) once every launcher has its mount namespace', async () => {
      const { child, done } = run(prepare(two(), { a: 'sleep 0.5', b: 'sleep 0.5' }));
      const ready = path.join(pod, READY_FILE);
      let ownNs: boolean | undefined;
      for (let i = 0; i < 500 && ownNs === undefined; i++) {
        if (fs.existsSync(ready)) ownNs = launchersHaveOwnNs(child.pid!);
        else await new Promise((r) => setTimeout(r, 5));
      }
      expect(ownNs).toBe(true);
      expect((await done).code).toBe(0);
    });

    test('stdin is /dev/null unless --interactive', async () => {
      const app = `read -r line; printf 'got:%s' "$line" > ${sq(`${tmp}/out`)}`;
      let r = await run(prepare(plan(), { web: app }), 'hello\n').done;
      expect(r.code).toBe(0);
      expect(fs.readFileSync(path.join(tmp, 'out'), 'utf8')).toBe('got:');
      r = await run(prepare(plan({ interactive: true }), { web: app }), 'hello\n').done;
      expect(r.code).toBe(0);
      expect(fs.readFileSync(path.join(tmp, 'out'), 'utf8')).toBe('got:hello');
    });

    test('--net=none brings lo up', async () => {
      const show = `${sq(BUSYBOX ?? 'busybox')} ip -o link show lo > ${sq(`${tmp}/lo`)}`;
      let r = await run(prepare(plan({ net: { kind: 'none' } }), { web: show })).done;
      expect(r.code).toBe(0);
      expect(fs.readFileSync(path.join(tmp, 'lo'), 'utf8')).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
      r = await run(prepare(plan({ net: { kind: 'host' } }), { web: show })).done;
      expect(r.code).toBe(0);
      expect(fs.readFileSync(path.join(tmp, 'lo'), 'utf8')).not.toMatch(/[<,]UP[,>]/);
    });
  });
});

describe('appMounts (stage1)', () => {
  const fields = (e: MountEntry) => [e.source, e.target, e.type, e.options];

  test('overlay rootfs first, then proc, sys, dev, devices, devpts, shm; masked paths last', () => {
    const app = makeApp();
    const { mounts, readOnly } = appMounts(makePlan(), app);
    const R = ROOTFS;
    expect(mounts.map(fields)).toEqual([
      ['overlay', R, 'overlay', `lowerdir=${app.treeRootfs},upperdir=${POD}/overlay/web/upper,workdir=${POD}/overlay/web/work`],
      ['proc', `${R}/proc`, 'proc', 'ro,nosuid,nodev,noexec'],
      ['sysfs', `${R}/sys`, 'sysfs', 'ro,nosuid,nodev,noexec'],
      [`${POD}/stage1/dev/web`, `${R}/dev`, 'none', 'bind'],
      ...DEVICES.map(([n]) => [`/dev/${n}`, `${R}/dev/${n}`, 'none', 'bind']),
      ['devpts', `${R}/dev/pts`, 'devpts', 'newinstance,ptmxmode=0666,mode=0620,nosuid,noexec'],
      ['shm', `${R}/dev/shm`, 'tmpfs', 'mode=1777,nosuid,nodev,size=65536k'],
      ['tmpfs', `${R}/sys/firmware`, 'tmpfs', 'ro,mode=000,size=0,nofail'],
      ['tmpfs', `${R}/sys/fs`, 'tmpfs', 'ro,mode=000,size=0,nofail'],
      [`${POD}/stage1/masked`, `${R}/proc/kcore`, 'none', 'bind,nofail'],
      [`${POD}/stage1/masked`, `${R}/proc/keys`, 'none', 'bind,nofail'],
    ]);
    expect(readOnly).toEqual([]);
    expect(DEVICES.map(([n]) => n)).toEqual(['null', 'zero', 'full', 'random', 'urandom', 'tty']);
  });

  test('without overlay the rootfs copy is bound onto itself', () => {
    const { mounts } = appMounts(makePlan(), makeApp({ overlay: undefined }));
    expect(fields(mounts[0])).toEqual([ROOTFS, ROOTFS, 'none', 'bind']);
    expect(mounts.some((m) => m.type === 'overlay')).toBe(false);
  });

  test('--insecure-options=paths: /proc and /sys writable, nothing masked', () => {
    const { mounts } = appMounts(makePlan({ openPaths: true }), makeApp());
    expect(mounts.find((m) => m.type === 'proc')!.options).toBe('rw,nosuid,nodev,noexec');
    expect(mounts.find((m) => m.type === 'sysfs')!.options).toBe('rw,nosuid,nodev,noexec');
    expect(mounts.some((m) => m.target.endsWith('/sys/firmware') || m.target.endsWith('/proc/kcore'))).toBe(false);
  });

  test('volumes: rbind when recursive, bind otherwise, read-only ones remounted; after /dev, before the masks', () => {
    const app = makeApp({
      mounts: [
        { source: '/srv/data', target: '/data', readOnly: false, recursive: true, isFile: false },
        { source: '/srv/conf', target: '/etc/app', readOnly: true, recursive: false, isFile: false },
        { source: `${POD}/etc/web-hostname`, target: '/etc/hostname', readOnly: true, recursive: false, isFile: true },
      ],
    });
    const { mounts, readOnly } = appMounts(makePlan(), app);
    const vol = [
      ['/srv/data', `${ROOTFS}/data`, 'none', 'rbind'],
      ['/srv/conf', `${ROOTFS}/etc/app`, 'none', 'bind'],
      [`${POD}/etc/web-hostname`, `${ROOTFS}/etc/hostname`, 'none', 'bind'],
    ];
    const at = mounts.findIndex((m) => m.source === '/srv/data');
    expect(mounts.slice(at, at + 3).map(fields)).toEqual(vol);
    expect(at).toBeGreaterThan(mounts.findIndex((m) => m.source === 'shm'));
    expect(at).toBeLessThan(mounts.findIndex((m) => m.source === 'tmpfs'));
    expect(readOnly).toEqual([`${ROOTFS}/etc/app`, `${ROOTFS}/etc/hostname`]);
  });

  test('--readonly-rootfs remounts the rootfs read-only, after the volumes; a recursive volume as a whole tree', () => {
    const app = makeApp({ readOnlyRootfs: true, mounts: [{ source: '/s', target: '/v', readOnly: true, recursive: true, isFile: false }, { source: '/t', target: '/w', readOnly: true, recursive: false, isFile: false }] });
    expect(appMounts(makePlan(), app).readOnly).toEqual([`${ROOTFS}/w`, ROOTFS]);
    expect(appMounts(makePlan(), app).readOnlyTrees).toEqual([`${ROOTFS}/v`]);
  });

  test('/proc, /sys, /dev and what goes below them follow the targets stage0 resolved in the rootfs', () => {
    const app = makeApp({ kernelTargets: { proc: '/tmp/x', sys: '/s', dev: '/d/dev' } });
    const { mounts } = appMounts(makePlan(), app);
    const at = (source: string) => mounts.filter((m) => m.source === source).map((m) => m.target);
    expect(at('proc')).toEqual([`${ROOTFS}/tmp/x`]);
    expect(at('sysfs')).toEqual([`${ROOTFS}/s`]);
    expect(at(app.devDir)).toEqual([`${ROOTFS}/d/dev`]);
    expect(at('/dev/null')).toEqual([`${ROOTFS}/d/dev/null`]);
    expect(at('devpts')).toEqual([`${ROOTFS}/d/dev/pts`]);
    expect(at('shm')).toEqual([`${ROOTFS}/d/dev/shm`]);
    expect(at('tmpfs')).toEqual([`${ROOTFS}/s/firmware`, `${ROOTFS}/s/fs`]);
    expect(at(`${POD}/stage1/masked`)).toEqual([`${ROOTFS}/tmp/x/kcore`, `${ROOTFS}/tmp/x/keys`]);
    // Nothing is mounted at the names the image's links would have sent the kernel to.
    expect(mounts.some((m) => m.target === `${ROOTFS}/proc` || m.target.startsWith(`${ROOTFS}/dev/`))).toBe(false);
  });
});

/** An unprivileged user and mount namespace, where tmpfs and bind mounts work without root. */
const USERNS_OK = BUSYBOX !== undefined && spawnSync('unshare', ['-Urm', 'true']).status === 0;

const MOUNTS_HELPER = path.resolve('dist/stage1/rkt-helper');
const withMountsHelper = describeIf(!fs.existsSync(MOUNTS_HELPER) ? `${MOUNTS_HELPER}: run npm run build`
  : !USERNS_OK ? 'busybox-static and unprivileged user namespaces (unshare -Urm)' : undefined);

/** Runs `rkt-helper --launch` on `ops`, then `next`, in a user and mount namespace of the test's own. */
function runLaunch(dir: string, ops: string[][], next: string[], shell = 'sh') {
  const table = path.join(dir, 'table');
  fs.writeFileSync(table, renderTable([...ops, ...next.map((a) => ['arg', a])]));
  return spawnSync(shell, ['-c', 'umask 077; exec "$@"', shell, 'unshare', '-Urm', MOUNTS_HELPER, '--launch', table], { encoding: 'utf8' });
}

/** runLaunch, then `script` (busybox sh) in what the table made. */
const runMounts = (dir: string, ops: string[][], script: string) => runLaunch(dir, ops, [BUSYBOX!, 'sh', '-c', script]);

withMountsHelper('masked paths the pod does not have (the launch table\'s mounts)', () => {
  let tmp: string;
  beforeEach(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-mask-')); });
  afterEach(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

  /** Mounts an app's masked paths (as its launcher does) in a rootfs that has only `present`. */
  function maskIn(present: { dirs: string[]; files: string[] }) {
    const rootfs = path.join(tmp, 'rootfs');
    fs.mkdirSync(rootfs);
    for (const d of present.dirs) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
    for (const f of present.files) { fs.mkdirSync(path.dirname(path.join(rootfs, f)), { recursive: true }); fs.writeFileSync(path.join(rootfs, f), 'secret'); }
    fs.mkdirSync(path.join(tmp, 'stage1'));
    fs.writeFileSync(path.join(tmp, 'stage1', 'masked'), '');
    const app = makeApp({ rootfs, protect: { maskedDirs: ['/sys/firmware', '/sys/module'], maskedFiles: ['/proc/kallsyms', '/proc/keys'] } });
    const masks = appMounts(makePlan({ podDir: tmp }), app).mounts.filter((m) => m.source === 'tmpfs' || m.source.endsWith('/stage1/masked'));
    return runMounts(tmp, [['root', rootfs], ...mountOps(masks)],
      `for p in sys/firmware sys/module proc/kallsyms proc/keys; do [ -e ${sq(rootfs)}/$p ] && echo "$p $(stat -c %a ${sq(rootfs)}/$p) $(cat ${sq(rootfs)}/$p 2>/dev/null)"; done; true`);
  }

  test('an absent one is skipped (nspawn shows no /proc/kallsyms or /sys/module); the present ones are masked', () => {
    const r = maskIn({ dirs: ['sys/firmware'], files: ['proc/keys'] });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // Mode 000 and empty: the masks are there; the absent paths were not created.
    expect(r.stdout).toBe('sys/firmware 0 \nproc/keys 644 \n');
  });

  test('none of them present: nothing to mask, no failure', () => {
    const r = maskIn({ dirs: [], files: [] });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
  });
});

withMountsHelper('the launch table\'s mounts (rkt-helper --launch, run in a user namespace of the test)', () => {
  let tmp: string;
  let rootfs: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-mounts-'));
    rootfs = path.join(tmp, 'rootfs');
    fs.mkdirSync(rootfs);
  });
  afterEach(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

  test("a hostile image's links cannot lead a mount, a directory, a link or a file out of the rootfs", () => {
    // The host's directory, and the image's links to it (absolute, and climbing with ..).
    const host = path.join(tmp, 'host');
    fs.mkdirSync(host);
    fs.writeFileSync(path.join(host, 'secret'), 'host');
    fs.symlinkSync(host, path.join(rootfs, 'abs'));
    fs.symlinkSync(`${'../'.repeat(20)}${host.slice(1)}`, path.join(rootfs, 'rel'));
    // The same path inside the rootfs is where they lead, as if the rootfs were /.
    fs.mkdirSync(path.join(rootfs, host.slice(1)), { recursive: true });
    fs.writeFileSync(path.join(rootfs, host.slice(1), 'secret'), 'image');
    const r = runMounts(tmp, [
      ['root', rootfs],
      ['mount', 'tmpfs', `${rootfs}/abs`, 'tmpfs', 'size=1m'],
      ['write', `${rootfs}/abs/written`, 'x'],
      ['mkdir', `${rootfs}/rel/made`],
      ['symlink', '/etc', `${rootfs}/rel/linked`],
      ['touch', `${rootfs}/rel/touched`],
    ], `ls ${sq(host)}; cat ${sq(host)}/secret; echo; ls ${sq(path.join(rootfs, host.slice(1)))}`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The host's directory is untouched and not mounted over; all of it landed inside.
    expect(r.stdout).toBe('secret\nhost\nlinked\nmade\ntouched\nwritten\n');
    expect(fs.readdirSync(host)).toEqual(['secret']);
  });

  test('a nofail mask behind a link to a host path the rootfs lacks is skipped, not followed out; a failed mount stops with 254', () => {
    const hostProc = path.join(tmp, 'hostproc');
    fs.mkdirSync(hostProc);
    fs.writeFileSync(path.join(hostProc, 'kcore'), 'host');
    fs.symlinkSync(hostProc, path.join(rootfs, 'proc'));
    fs.writeFileSync(path.join(tmp, 'empty'), '');
    const r = runMounts(tmp, [['root', rootfs], ['mount', `${tmp}/empty`, `${rootfs}/proc/kcore`, 'none', 'bind,nofail']], `cat ${sq(hostProc)}/kcore`);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: 'host', stderr: '' });
    const bad = runMounts(tmp, [['root', rootfs], ['mount', 'tmpfs', `${rootfs}/missing`, 'tmpfs', 'size=1m']], 'echo ran');
    expect(bad.status).toBe(254);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toBe(`stage1: cannot find the mount point ${rootfs}/missing: No such file or directory\n`);
  });

  test('an unknown operation, a wrong field count or a bad escape: refused before anything runs', () => {
    for (const text of ['mount tmpfs /x tmpfs\n', 'frobnicate /x\n', 'mkdir /a\\9b\n', 'mkdir /a /b\n']) {
      fs.writeFileSync(path.join(tmp, 'table'), `mkdir ${fstabEscape(path.join(tmp, 'first'))}\n${text}arg /bin/true\n`);
      const r = spawnSync('unshare', ['-Urm', MOUNTS_HELPER, '--launch', path.join(tmp, 'table')], { encoding: 'utf8' });
      expect({ text, status: r.status, stderr: r.stderr }).toEqual({ text, status: 254, stderr: `stage1: bad line 2 in the launch table ${path.join(tmp, 'table')}\n` });
    }
  });

  test('rotree: the volume and every mount below it read-only, nothing beside it; flags such as nosuid kept', () => {
    for (const d of ['v/sub', 'v/a b', 'v2']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
    const r = runMounts(tmp, [
      ['root', rootfs],
      ['mount', 'tmpfs', `${rootfs}/v`, 'tmpfs', 'nosuid,size=1m'],
      ['mkdir', `${rootfs}/v/sub`], ['mkdir', `${rootfs}/v/a b`],
      ['mount', 'tmpfs', `${rootfs}/v/sub`, 'tmpfs', 'size=1m'],
      ['mount', 'tmpfs', `${rootfs}/v/a b`, 'tmpfs', 'size=1m'],
      ['mount', 'tmpfs', `${rootfs}/v2`, 'tmpfs', 'size=1m'],
      ['rotree', `${rootfs}/v`],
    ], `cd ${sq(rootfs)}; for d in v v/sub 'v/a b' v2; do touch "$d/f" 2>/dev/null && echo "$d rw" || echo "$d ro"; done; grep -c ' ${mountinfoPath(rootfs)}/v ro,nosuid' /proc/self/mountinfo`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('v ro\nv/sub ro\nv/a b ro\nv2 rw\n1\n');
  });

  test('the skeleton: mount points, /dev files and links, file contents exactly, whatever the caller umask', () => {
    const devDir = `${tmp}/dev/db app`;
    const hosts = "127.0.0.1 it's\n# 100% \\n $HOME `id`\n";
    const app = makeApp({ name: 'db', devDir, skeleton: { dirs: [`${tmp}/opt/stage2/db/rootfs`], files: [{ path: `${tmp}/db-hosts`, content: hosts }] } });
    const run = runLaunch(tmp, skeletonOps(app), ['/bin/true']);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(fs.readFileSync(`${tmp}/db-hosts`, 'utf8')).toBe(hosts);
    expect(fs.statSync(`${tmp}/db-hosts`).mode & 0o777).toBe(0o644);
    expect(fs.statSync(`${tmp}/opt/stage2/db/rootfs`).isDirectory()).toBe(true);
    expect(fs.statSync(devDir).mode & 0o777).toBe(0o755);
    for (const sub of ['pts', 'shm']) expect(fs.statSync(path.join(devDir, sub)).mode & 0o777).toBe(0o755);
    for (const [name] of DEVICES) expect(fs.statSync(path.join(devDir, name)).isFile()).toBe(true);
    for (const [name, to] of DEV_LINKS) expect(fs.readlinkSync(path.join(devDir, name))).toBe(to);
  });

  test('a failed step ends the launcher with 254 and says what', () => {
    fs.writeFileSync(`${tmp}/file`, '');
    const r = runMounts(tmp, skeletonOps(makeApp({ devDir: `${tmp}/dev`, skeleton: { dirs: [`${tmp}/file/x`] } })), 'echo reached');
    expect(r.status).toBe(254);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`stage1: cannot make the directory ${tmp}/file/x: Not a directory\n`);
  });

  test('chdir: the program runs in the rootfs', () => {
    const r = runMounts(tmp, [['chdir', rootfs]], 'pwd');
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: `${rootfs}\n`, stderr: '' });
  });

  test('operations it does not know (the helper\'s fd and inheritable capability of older tables) are refused', () => {
    for (const op of [['open', '7', '/etc/hostname'], ['inheritable', '21']]) {
      const r = runMounts(tmp, [op], 'echo reached');
      expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 254, stdout: '' });
      expect(r.stderr).toMatch(/^stage1: bad line 1 in the launch table /);
    }
  });
});

/** How /proc/self/mountinfo shows a path (space, tab, newline and backslash as \ooo). */
function mountinfoPath(p: string): string {
  return fstabEscape(p);
}

describe('the mount operations of a table', () => {
  const entry = (source: string, target: string, type = 'none', options = 'bind'): MountEntry => ({ source, target, type, options });

  test('one operation a line, fields escaped, in order, whatever their length', () => {
    const long = `/srv/${'x'.repeat(600)}`;
    const ops = mountOps([entry('/srv/my data', `${ROOTFS}/my data`), entry(long, `${ROOTFS}/long`, 'none', 'rbind'), entry('sysfs', `${ROOTFS}/sys`, 'sysfs', 'ro')]);
    expect(renderTable(ops)).toBe([
      `mount /srv/my\\040data ${ROOTFS}/my\\040data none bind`,
      `mount ${long} ${ROOTFS}/long none rbind`,
      `mount sysfs ${ROOTFS}/sys sysfs ro`,
      '',
    ].join('\n'));
  });

  test('a second mount on a target already mounted (a volume on /sys) is kept', () => {
    const ops = mountOps([entry('sysfs', `${ROOTFS}/sys`, 'sysfs', 'ro'), entry('/pod/volumes/s', `${ROOTFS}/sys`)]);
    expect(ops).toEqual([['mount', 'sysfs', `${ROOTFS}/sys`, 'sysfs', 'ro'], ['mount', '/pod/volumes/s', `${ROOTFS}/sys`, 'none', 'bind']]);
  });

  test("an app's table: its root first; skeleton, mounts, read-only remounts; then chdir into the rootfs", () => {
    const app = makeApp({ readOnlyRootfs: true, skeleton: { tmpfs: `${POD}/stage1/rootfs`, dirs: [ROOTFS] },
      mounts: [{ source: '/srv/conf', target: '/etc/app', readOnly: true, recursive: false, isFile: false }, { source: '/srv/t', target: '/t', readOnly: true, recursive: true, isFile: false }] });
    const ops = appMountOps(makePlan(), app);
    expect(ops[0]).toEqual(['root', ROOTFS]);
    expect(ops[1]).toEqual(['mount', 'rkt-skeleton', `${POD}/stage1/rootfs`, 'tmpfs', 'mode=0755,size=65536k,nosuid']);
    expect(ops.slice(2, 2 + skeletonOps(app).length - 1)).toEqual(skeletonOps(app).slice(1));
    const mounts = ops.filter((o) => o[0] === 'mount').slice(1);
    expect(mounts).toEqual(mountOps(appMounts(makePlan(), app).mounts));
    expect(ops.slice(-4)).toEqual([['rotree', `${ROOTFS}/t`], ['ro', `${ROOTFS}/etc/app`], ['ro', ROOTFS], ['chdir', ROOTFS]]);
    expect(ops.some((o) => o[0] === 'cgroupns')).toBe(false);
  });

  test('white space and backslashes are octal-escaped', () => {
    expect(fstabEscape('/a b\tc\nd\\e')).toBe('/a\\040b\\011c\\012d\\134e');
    expect(fstabEscape('/plain/path')).toBe('/plain/path');
  });
});

describe('cgroupViewOps', () => {
  const view = [
    { dir: 'cpu,cpuacct', type: 'cgroup' as const, options: 'cpu,cpuacct', links: ['cpu', 'cpuacct'] },
    { dir: 'memory', type: 'cgroup' as const, options: 'memory', links: [] },
  ];
  const FS = `${ROOTFS}/sys/fs`;

  test('none without a view (the /sys/fs mask stays)', () => {
    expect(cgroupViewOps(makeApp())).toEqual([]);
  });

  test('v1: a tmpfs /sys/fs holding a tmpfs /sys/fs/cgroup, each hierarchy read-only, links, then both read-only', () => {
    expect(cgroupViewOps(makeApp({ cgroupView: view }))).toEqual([
      ['mount', 'tmpfs', FS, 'tmpfs', 'mode=755,nosuid,nodev,noexec,size=64k'],
      ['mkdir', `${FS}/cgroup`],
      ['mount', 'tmpfs', `${FS}/cgroup`, 'tmpfs', 'mode=755,nosuid,nodev,noexec,size=64k'],
      ['mkdir', `${FS}/cgroup/cpu,cpuacct`],
      ['mount', 'cgroup', `${FS}/cgroup/cpu,cpuacct`, 'cgroup', 'ro,nosuid,nodev,noexec,cpu,cpuacct'],
      ['symlink', 'cpu,cpuacct', `${FS}/cgroup/cpu`],
      ['symlink', 'cpu,cpuacct', `${FS}/cgroup/cpuacct`],
      ['mkdir', `${FS}/cgroup/memory`],
      ['mount', 'cgroup', `${FS}/cgroup/memory`, 'cgroup', 'ro,nosuid,nodev,noexec,memory'],
      ['ro', `${FS}/cgroup`],
      ['ro', FS],
    ]);
  });

  test('pure v2: cgroup2 read-only at /sys/fs/cgroup itself; an image /sys link is followed inside the rootfs', () => {
    const ops = cgroupViewOps(makeApp({ cgroupView: [{ dir: '', type: 'cgroup2', options: '', links: [] }], kernelTargets: { proc: '/proc', sys: '/k/sys', dev: '/dev' } }));
    expect(ops[2]).toEqual(['mount', 'cgroup2', `${ROOTFS}/k/sys/fs/cgroup`, 'cgroup2', 'ro,nosuid,nodev,noexec']);
    expect(ops).toHaveLength(4);
  });

  test('the launcher joins the app cgroups before it makes the cgroup namespace, before any mount', () => {
    const ops = launchTable(makePlan(), makeApp({ cgroupProcs: ['/cg/a/cgroup.procs'], cgroupView: view }));
    const at = (op: string) => ops.findIndex((o) => o[0] === op);
    expect(ops[at('join')]).toEqual(['join', '/cg/a/cgroup.procs']);
    expect(at('join')).toBeLessThan(at('cgroupns'));
    expect(at('cgroupns')).toBe(at('root') + 1);
    expect(at('cgroupns')).toBeLessThan(at('mount'));
    expect(launchTable(makePlan(), makeApp()).some((o) => o[0] === 'cgroupns')).toBe(false);
  });
});

describe('renderApp', () => {
  /** makeApp's capabilities as rkt-helper --app takes them. */
  const MASK = capabilityMask(['CAP_CHOWN', 'CAP_NET_BIND_SERVICE', 'CAP_KILL']);
  const withHandlers = (over: Partial<AppPlan> = {}) => makeApp({ eventHandlers: { preStart: ['/bin/pre'] }, ...over });

  test('with event handlers the launcher is a script that parses in sh and busybox sh', () => {
    const app = withHandlers({ cgroupProcs: ['/cg/a/cgroup.procs'], oomScoreAdj: -500, noNewPrivileges: true, readOnlyRootfs: true });
    expectSyntaxOk(renderApp(makePlan(), app).script!);
    expectSyntaxOk(renderApp(makePlan(), withHandlers({ eventHandlers: { postStop: ['/bin/post'] } })).script!);
  });

  test('event handlers: pre-start and post-stop run as root around the app, each in a copy of the mount namespace', () => {
    const app = makeApp({ uid: 1000, gid: 1000, eventHandlers: { preStart: ['/bin/pre', 'a b'], postStop: ['/bin/post'] } });
    const script = renderApp(makePlan(), app).script!;
    expectSyntaxOk(script);
    // The three commands, as the script has them .
    const cmds = script.split(/(?=^'[^'\n]*busybox' 'unshare' '-m' )/m).slice(1);
    expect(cmds).toHaveLength(3);
    const [pre, run, post] = cmds;
    expect(pre).toContain("'/bin/pre' 'a b' </dev/null || exit $?");
    expect(pre).toContain(`'--app' '1' '0' '0' '-' '${MASK}'`);
    expect(run).toContain("'/bin/server' '--port' '80' <&4 4<&- &");
    expect(run).toContain(`'--app' '1' '1000' '1000' '-' '${MASK}'`);
    expect(post).toContain("'/bin/post' </dev/null");
    expect(post).toContain(`'--app' '1' '0' '0' '-' '${MASK}'`);
    expect(script).toMatch(/\nexit "\$rc"\n$/);
    // Only pre-start: the launcher still ends in the app itself.
    const onlyPre = renderApp(makePlan(), withHandlers()).script;
    expect(onlyPre).toMatch(/\nexec '\/usr\/lib\/rkt\/rkt-helper' '--app' [^\n]*'\/bin\/server' '--port' '80'\n$/);
    // None: no script, a launch table.
    expect(renderApp(makePlan(), makeApp()).script).toBeUndefined();
  });

  test('returns the launch table PID 1 runs; with event handlers it goes on with busybox sh and the script', () => {
    const app = makeApp();
    expect(renderApp(makePlan(), app).files).toEqual({ 'app-web.launch': renderTable(launchOps(makePlan(), app, appStep(app).concat(app.exec))) });
    const { files } = renderApp(makePlan(), withHandlers());
    expect(files).toEqual({ 'app-web.launch': renderTable(launchOps(makePlan(), withHandlers(), [TOOLS.busybox, 'sh', `${POD}/stage1/app-web.sh`])) });
  });

  test('the launch table: unless the pod is stopping, the app cgroups and oom_score_adj, the mounts, then the last step', () => {
    const app = makeApp({
      cgroupProcs: ['/sys/fs/cgroup/memory/rkt-x/web/tasks', '/sys/fs/cgroup/cpu/rkt-x/web/tasks'],
      oomScoreAdj: 250,
    });
    const ops = launchTable(makePlan(), app);
    expect(ops.slice(0, 5)).toEqual([
      ['stopping', `${POD}/rkt/stopping`],
      ['join', '/sys/fs/cgroup/memory/rkt-x/web/tasks'],
      ['join', '/sys/fs/cgroup/cpu/rkt-x/web/tasks'],
      ['oom', '250'],
      ['root', ROOTFS],
    ]);
    const args = ops.findIndex((o) => o[0] === 'arg');
    expect(ops.slice(4, args)).toEqual(appMountOps(makePlan(), app));
    expect(ops.slice(args).every((o) => o[0] === 'arg')).toBe(true);
    expect(launchTable(makePlan(), makeApp()).some((o) => o[0] === 'oom' || o[0] === 'join')).toBe(false);
  });

  test('with event handlers the launch table does the same first steps (stopping, cgroups, oom, mounts); the script none of them', () => {
    const app = withHandlers({ cgroupProcs: ['/sys/fs/cgroup/memory/rkt-x/web/tasks'], oomScoreAdj: 250 });
    const ops = parseTable(renderApp(makePlan(), app).files['app-web.launch']);
    const plain = launchTable(makePlan(), { ...app, eventHandlers: undefined });
    expect(ops.filter((o) => o[0] !== 'arg')).toEqual(plain.filter((o) => o[0] !== 'arg'));
    const s = renderApp(makePlan(), app).script!;
    expect(s).not.toMatch(/cgroup|oom_score_adj|stopping|--mounts|^\s*mount /m);
  });

  test('the last step: --app in the same process: pivot, ids, groups, bounding set, working dir, filter, env, argv', () => {
    expect(MASK).toBe('421');
    const app = makeApp({ supplementaryGids: [10, 20] });
    expect(nextOf(launchTable(makePlan(), app))).toEqual([
      '--app', '1', '1000', '2000', '10,20', MASK, '0', '/srv', '-',
      'PATH=/usr/bin:/bin', 'AC_APP_NAME=web', '/bin/server', '--port', '80',
    ]);
    expect(nextOf(launchTable(makePlan(), makeApp({ seccompFilter: 'abcd', noNewPrivileges: true }))).slice(6, 9)).toEqual(['1', '/srv', 'abcd']);
    expect(appStep(app)).toEqual(nextOf(launchTable(makePlan(), app)).slice(0, -3));
  });

  test('no supplementary gids: "-"; --insecure-options=capabilities keeps the whole bounding set ("all"); an empty list is mask 0', () => {
    expect(appStep(makeApp({ capabilities: 'all', uid: 0, gid: 0 })).slice(2, 6)).toEqual(['0', '0', '-', 'all']);
    expect(appStep(makeApp({ capabilities: [] }))[5]).toBe('0');
  });

  test('the mount table ends in the app rootfs (where --app pivots); it binds no helper and opens no fd', () => {
    const ops = appMountOps(makePlan(), makeApp());
    expect(ops[ops.length - 1]).toEqual(['chdir', ROOTFS]);
    expect(ops.filter((o) => o[0] === 'open' || o[0] === 'inheritable')).toEqual([]);
    expect(ops.flat()).not.toContain(TOOLS.helper);
  });

  test('env values, exec arguments and paths round-trip exactly through the launch table', () => {
    const nasty = `it's a "test" with $(touch x) and \`touch x\` and $HOME\nnew line\ttab \\ end`;
    const app = makeApp({
      env: [['WEIRD', nasty], ['EMPTY', ''], ['EQ', 'a=b']],
      exec: ['/bin/echo', nasty, '', ' ', "'", '*', '--'],
      workingDir: "/work dir/it's",
      cgroupProcs: ["/cg/it's here/tasks"],
    });
    const ops = launchTable(makePlan({ podDir: "/pods/it's here" }), app);
    expect(nextOf(ops).slice(7)).toEqual([
      "/work dir/it's", '-', `WEIRD=${nasty}`, 'EMPTY=', 'EQ=a=b', '/bin/echo', nasty, '', ' ', "'", '*', '--',
    ]);
    expect(ops).toContainEqual(['join', "/cg/it's here/tasks"]);
    expect(ops[0]).toEqual(['stopping', "/pods/it's here/rkt/stopping"]);
  });

  test.each(SHELLS)('with event handlers, env values and exec arguments round-trip exactly through %s', (_name, shell) => {
    const marker = path.join(os.tmpdir(), `rkt-quoting-${process.pid}`);
    const nasty = `it's a "test" with $(touch ${marker}) and \`touch ${marker}\` and $HOME\nnew line\ttab \\ end`;
    const app = withHandlers({
      env: [['WEIRD', nasty], ['EMPTY', ''], ['EQ', 'a=b']],
      exec: ['/bin/echo', nasty, '', ' ', "'", '*', '--'],
      workingDir: "/work dir/it's",
    });
    const argv = execArgv(renderApp(makePlan(), app).script!, shell).slice(1);
    expect(argv.slice(7)).toEqual([
      "/work dir/it's", '-', `WEIRD=${nasty}`, 'EMPTY=', 'EQ=a=b', '/bin/echo', nasty, '', ' ', "'", '*', '--',
    ]);
    expect(fs.existsSync(marker)).toBe(false);
  });
});

describe('renderEnter (rkt enter confined like the app)', () => {
  const app = makeApp({
    supplementaryGids: [10, 20], oomScoreAdj: -100, cgroupProcs: ['/cg/pids/rkt-x/web/cgroup.procs', '/cg/memory/rkt-x/web/cgroup.procs'],
  });
  const plan = makePlan({ apps: [app], podCgroupProcs: ['/cg/pids/rkt-x/cgroup.procs', '/cg/devices/rkt-x/cgroup.procs'] });
  const script = renderEnter(plan, app);
  /** The script's last line: the exec of the privilege chain (the step inside it has execs of its own). */
  const lastExec = (s: string) => s.slice(s.indexOf(`\nexec ${sq(TOOLS.busybox)}`) + 1);

  test('parses in every shell', () => { expectSyntaxOk(script); });

  test('joins the pod\'s cgroups, then the app\'s, sets its OOM score and opens the app\'s namespaces as root, in that order', () => {
    const l = script.split('\n');
    const idx = (prefix: string) => l.findIndex((x) => x.startsWith(prefix));
    const order = [
      idx("echo 0 > '/cg/pids/rkt-x/cgroup.procs' || die"),
      idx("echo 0 > '/cg/devices/rkt-x/cgroup.procs' || die"),
      idx("echo 0 > '/cg/pids/rkt-x/web/cgroup.procs' || die"),
      idx("echo 0 > '/cg/memory/rkt-x/web/cgroup.procs' || die"),
      idx('echo -100 > /proc/self/oom_score_adj || die'),
      idx('[ -e "/proc/$pid/ns/mnt" ] && command exec 3<"/proc/$pid/ns/mnt" 4<"/proc/$pid/ns/uts" 5<"/proc/$pid/ns/ipc" 6<"/proc/$pid/ns/net" 8<"/proc/$pid/ns/pid" || die'),
      idx('[ "$(readlink /proc/self/fd/3)" = "$mntns" ] || die'),
      // The helper through a read-only bind, then opened on its fd, as the app's launcher does.
      idx(`: >> '${plan.podDir}/stage1/rkt-helper' && mount --bind '${TOOLS.helper}' '${plan.podDir}/stage1/rkt-helper' && mount -o remount,bind,ro '${plan.podDir}/stage1/rkt-helper' || die`),
      idx(`exec 7<'${plan.podDir}/stage1/rkt-helper' || die`),
      l.length - 2,
    ];
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(l[0]).toMatch(/^# /);
    expect(l).toContain('pid=$1; mntns=$2; shift 2');
  });

  test('the exec: busybox nsenter into the app\'s namespaces, then the app\'s own last step through the helper\'s fd, with no_new_privs and no pivot', () => {
    const argv = execArgv(lastExec(script));
    expect(argv).toEqual([
      TOOLS.busybox, 'nsenter', '--mount=/proc/self/fd/3', '--uts=/proc/self/fd/4', '--ipc=/proc/self/fd/5', '--net=/proc/self/fd/6', '--pid=/proc/self/fd/8', '--',
      '/proc/self/fd/7', '--app', '0', '1000', '2000', '10,20', '421', '1', '/srv', '-', 'PATH=/usr/bin:/bin', 'AC_APP_NAME=web',
    ]);
    // The caller's TERM and command follow as "$@".
    expect(lastExec(script).trimEnd().endsWith('"$@"')).toBe(true);
  });

  test('the app ends in the same step, so whatever is added to it confines enter too', () => {
    const nnp = { ...app, noNewPrivileges: true };
    expect(appStep(app, true)).toEqual(['--app', '0', ...appStep(nnp).slice(2)]);
  });

  test('socket activation: a command run by rkt enter gets no LISTEN_FDS (its fds are the app\'s alone)', () => {
    const sa = makeApp({ env: [['PATH', '/bin'], ['LISTEN_FDS', '2'], ['LISTEN_FDNAMES', 'a:b']] });
    expect(appStep(sa)).toContain('LISTEN_FDS=2');
    expect(appStep(sa, true).filter((a) => a.startsWith('LISTEN_'))).toEqual([]);
  });

  (BUSYBOX || process.env.CI === 'true' ? test : test.skip)('a PID that no longer holds the app\'s mount namespace is refused before anything runs', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-enter-'));
    try {
      const procs = path.join(tmp, 'cgroup.procs');
      const a = makeApp({ cgroupProcs: [procs] });
      const f = path.join(tmp, 'enter.sh');
      fs.writeFileSync(f, renderEnter(makePlan({ apps: [a] }), a));
      const r = spawnSync(BUSYBOX!, ['sh', f, String(process.pid), 'mnt:[1]', '/bin/sh'], { encoding: 'utf8' });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 254, stderr: 'stage1: the app is not running\n' });
      expect(fs.readFileSync(procs, 'utf8')).toBe('0\n'); // it got as far as joining the cgroups
      const gone = spawnSync(BUSYBOX!, ['sh', f, '999999999', 'mnt:[1]', '/bin/sh'], { encoding: 'utf8' });
      expect(gone.status).toBe(254);
      expect(gone.stderr).toBe('stage1: the app is not running\n');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('--insecure-options=capabilities: the whole bounding set, as for the app', () => {
    const all = makeApp({ capabilities: 'all' });
    expect(execArgv(lastExec(renderEnter(makePlan({ apps: [all] }), all)))[14]).toBe('all');
  });
});

describe('initBoundingSet (the pod\'s PID 1)', () => {
  test('the apps\' capabilities plus what stage1 needs, and nothing like CAP_DAC_READ_SEARCH', () => {
    const caps = initBoundingSet(makePlan({ apps: [makeApp({ capabilities: ['CAP_NET_BIND_SERVICE'] }), makeApp({ name: 'b', capabilities: ['CAP_NET_RAW'] })] }));
    expect(caps).toEqual(['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_MKNOD', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW',
      'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_ADMIN']);
  });

  test('CAP_SYS_RESOURCE for an OOM score, CAP_NET_ADMIN to bring up lo in a new netns; an app with all keeps all', () => {
    expect(initBoundingSet(makePlan({ apps: [makeApp({ oomScoreAdj: -5 })] }))).toContain('CAP_SYS_RESOURCE');
    expect(initBoundingSet(makePlan({ net: { kind: 'none' } }))).toContain('CAP_NET_ADMIN');
    expect(initBoundingSet(makePlan())).not.toContain('CAP_NET_ADMIN');
    expect(initBoundingSet(makePlan({ apps: [makeApp(), makeApp({ name: 'b', capabilities: 'all' })] }))).toBe('all');
  });
});

describe('skeletonOps (the mount points an app launcher makes)', () => {
  test('nothing without a skeleton (a plan from before it)', () => {
    expect(skeletonOps(makeApp())).toEqual([]);
    expect(renderApp(makePlan(), makeApp()).files['app-web.launch']).not.toContain('rkt-skeleton');
  });

  test('--no-overlay: no tmpfs (the rootfs copies are on disk there)', () => {
    expect(skeletonOps(makeApp({ skeleton: { dirs: [] } })).some((o) => o.includes('tmpfs'))).toBe(false);
  });

  test('--private-users: the /dev skeleton and the files belong to the pod root', () => {
    const ops = skeletonOps(makeApp({ skeleton: { dirs: [], owner: 1310720, files: [{ path: '/p/hosts', content: 'x' }] } }));
    const owned = ops.filter((o) => o[0] === 'chown').map((o) => o[2]);
    expect(ops.filter((o) => o[0] === 'chown').every((o) => o[1] === '1310720')).toBe(true);
    expect(owned).toEqual([`${POD}/stage1/dev/web`, `${POD}/stage1/dev/web/pts`, `${POD}/stage1/dev/web/shm`, ...DEV_LINKS.map(([n]) => `${POD}/stage1/dev/web/${n}`), '/p/hosts']);
  });
});
