/** The stage1 scripts of a --private-users pod (the plan's `userns`). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from '@jest/globals';
import { appMounts, appStep, IDMAP, initOps, MountEntry, mountOps, renderApp, renderEnter, sq, USERNS_ID_FILE } from '../../../src/stage1/scripts.js';
import type { AppPlan, PodPlan, PodUserns } from '../../../src/stage1/plan.js';
import { parseTable } from '../../helpers/tables.js';

const UUID = '6e1c7c0c-3c5a-4c1e-9a4b-3d7a3f0e2b11';
const POD = `/var/lib/rkt/pods/run/${UUID}`;
const R = `${POD}/stage1/rootfs/opt/stage2/web/rootfs`;
const TREE = '/var/lib/rkt/cas/tree/deps-sha512-abc/rootfs';
const HELPER = '/opt/rkt/dist/stage1/rkt-idmap';
const USERNS: PodUserns = { helper: HELPER, file: `${POD}/stage1/userns`, base: 1310720, count: 65536 };

function makeApp(over: Partial<AppPlan> = {}): AppPlan {
  return {
    name: 'web', treeRootfs: TREE, rootfs: R,
    overlay: { upper: `${POD}/overlay/web/upper`, work: `${POD}/overlay/web/work` },
    idmapLower: `${POD}/stage1/lower/web`,
    exec: ['/bin/server'], env: [['PATH', '/bin']], workingDir: '/', uid: 1000, gid: 2000, supplementaryGids: [],
    capabilities: ['CAP_CHOWN'], noNewPrivileges: false, readOnlyRootfs: false, mounts: [],
    devDir: `${POD}/stage1/dev/web`, protect: { maskedDirs: [], maskedFiles: [] }, cgroupProcs: [],
    ...over,
  };
}

function makePlan(over: Partial<PodPlan> = {}): PodPlan {
  return {
    uuid: UUID, podDir: POD, hostname: 'h', apps: [makeApp()], net: { kind: 'host' }, sharedIpc: false, interactive: false,
    openPaths: false, podCgroupProcs: [], stopGraceSeconds: 10,
    tools: { nsenter: '/usr/bin/nsenter', busybox: '/bin/busybox', helper: '/usr/lib/rkt/rkt-helper' },
    userns: USERNS,
    ...over,
  };
}

const fields = (e: MountEntry) => [e.source, e.target, e.type, e.options];

/** The argv of the script's final `exec`, as sh builds it. */
function execArgv(script: string): string[] {
  // The first exec of a command (the launcher's `exec 7<helper` only opens an fd).
  let at = script.indexOf('\nexec ') + 1;
  while (at > 0 && /^exec \d</.test(script.slice(at))) at = script.indexOf('\nexec ', at) + 1;
  const r = spawnSync('/bin/sh', ['-c', `printf '%s\\0' ${script.slice(at + 5)}`], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout.slice(0, -1).split('\0');
}

function syntaxOk(script: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-userns-sh-'));
  try {
    fs.writeFileSync(path.join(dir, 's.sh'), script);
    for (const sh of [['/bin/sh'], ['/bin/busybox', 'sh']].filter((s) => fs.existsSync(s[0]))) {
      const r = spawnSync(sh[0], [...sh.slice(1), '-n', path.join(dir, 's.sh')], { encoding: 'utf8' });
      expect({ sh, status: r.status, stderr: r.stderr }).toEqual({ sh, status: 0, stderr: '' });
    }
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
}

describe('appMounts with --private-users', () => {
  test('overlay: the shared tree is idmapped onto the lower mount point first, and the overlay sits on it', () => {
    const app = makeApp();
    const { mounts } = appMounts(makePlan(), app);
    expect(mounts.slice(0, 2).map(fields)).toEqual([
      [TREE, `${POD}/stage1/lower/web`, IDMAP, 'bind'],
      ['overlay', R, 'overlay', `lowerdir=${POD}/stage1/lower/web,upperdir=${POD}/overlay/web/upper,workdir=${POD}/overlay/web/work`],
    ]);
    // The shared tree itself is never the overlay's lower dir: the pod would see host owners.
    expect(mounts.some((m) => m.options.includes(`lowerdir=${TREE}`))).toBe(false);
  });

  test('--no-overlay: the private copy is idmapped onto itself', () => {
    const { mounts } = appMounts(makePlan(), makeApp({ overlay: undefined, idmapLower: undefined }));
    expect(fields(mounts[0])).toEqual([R, R, IDMAP, 'bind']);
  });

  test("/dev/shm belongs to the pod's root", () => {
    const { mounts } = appMounts(makePlan(), makeApp());
    expect(mounts.find((m) => m.source === 'shm')!.options).toBe('mode=1777,nosuid,nodev,size=65536k,uid=1310720,gid=1310720');
  });

  test('host volumes marked idmap are idmapped binds (rbind when recursive); others stay plain binds', () => {
    const app = makeApp({
      mounts: [
        { source: '/srv/data', target: '/data', readOnly: false, recursive: true, isFile: false, idmap: true },
        { source: '/srv/one', target: '/one', readOnly: true, recursive: false, isFile: false, idmap: true },
        { source: '/srv/raw', target: '/raw', readOnly: false, recursive: false, isFile: false },
      ],
    });
    const { mounts, readOnly } = appMounts(makePlan(), app);
    const vols = mounts.filter((m) => m.source.startsWith('/srv/')).map(fields);
    expect(vols).toEqual([
      ['/srv/data', `${R}/data`, IDMAP, 'rbind'],
      ['/srv/one', `${R}/one`, IDMAP, 'bind'],
      ['/srv/raw', `${R}/raw`, 'none', 'bind'],
    ]);
    expect(readOnly).toEqual([`${R}/one`]);
  });

  test('without --private-users nothing changes: no idmap entries even if a volume asks', () => {
    const app = makeApp({ idmapLower: undefined, mounts: [{ source: '/srv/data', target: '/data', readOnly: false, recursive: true, isFile: false, idmap: true }] });
    const { mounts } = appMounts(makePlan({ userns: undefined }), app);
    expect(mounts.some((m) => m.type === IDMAP)).toBe(false);
    expect(mounts[0].options).toContain(`lowerdir=${TREE}`);
    expect(mounts.find((m) => m.source === 'shm')!.options).toBe('mode=1777,nosuid,nodev,size=65536k');
  });
});

describe('mountOps with idmapped entries', () => {
  test('an idmapped entry is a call of rkt-idmap between the mounts, order kept', () => {
    const entries: MountEntry[] = [
      { source: TREE, target: `${POD}/stage1/lower/web`, type: IDMAP, options: 'bind' },
      { source: 'overlay', target: R, type: 'overlay', options: 'lowerdir=x' },
      { source: '/srv/data', target: `${R}/data`, type: IDMAP, options: 'rbind' },
      { source: 'proc', target: `${R}/proc`, type: 'proc', options: 'ro' },
    ];
    expect(mountOps(entries, USERNS)).toEqual([
      ['idmap', HELPER, USERNS.file, 'bind', TREE, `${POD}/stage1/lower/web`],
      ['mount', 'overlay', R, 'overlay', 'lowerdir=x'],
      ['idmap', HELPER, USERNS.file, 'rbind', '/srv/data', `${R}/data`],
      ['mount', 'proc', `${R}/proc`, 'proc', 'ro'],
    ]);
  });

  test('an idmapped entry without a user namespace is a bug, not a silent plain bind', () => {
    expect(() => mountOps([{ source: '/a', target: '/b', type: IDMAP, options: 'bind' }])).toThrow(/without a user namespace/);
  });
});

describe('renderApp with --private-users', () => {
  test('the last step runs inside the user namespace: helper exec USERNS ROOTFS, then rkt-helper --app as without it', () => {
    // The launch table makes every mount (and read-only remount) first, as host root; its
    // `arg` lines are what comes next.
    const next = (plan: PodPlan, app: AppPlan) => {
      const table = parseTable(Object.values(renderApp(plan, app).files)[0]);
      return table.filter((o) => o[0] === 'arg').map((o) => o[1]);
    };
    const plan = makePlan();
    const argv = next(plan, plan.apps[0]);
    expect(argv.slice(0, 5)).toEqual([HELPER, 'exec', USERNS.file, R, '/usr/lib/rkt/rkt-helper']);
    // Without a user namespace, the launcher goes on with the same --app itself.
    const plain = next(makePlan({ userns: undefined }), makeApp({ idmapLower: undefined }));
    expect(argv.slice(5)).toEqual(plain);
    expect(plain.slice(0, 2)).toEqual(['--app', '1']);
  });
});

describe('initOps with --private-users', () => {
  test("PID 1 creates the pod's user namespace, and records its identity for rkt enter, after the cgroups and before any app starts", () => {
    const ops = initOps(makePlan({ net: { kind: 'netns', path: '/run/netns/x' } }));
    expect(ops.slice(-2)).toEqual([
      ['userns', HELPER, USERNS.file, '1310720', '65536', `${POD}/${USERNS_ID_FILE}`],
      ['write', '/proc/sys/net/ipv4/ip_unprivileged_port_start', '0'],
    ]);
    expect(ops.findIndex((o) => o[0] === 'userns')).toBeGreaterThan(ops.findIndex((o) => o[0] === 'hostname'));
  });

  test('low ports: allowed in a pod network namespace, the host sysctl untouched with --net=host', () => {
    const knob = (net: PodPlan['net']) => initOps(makePlan({ net })).some((o) => o[1] === '/proc/sys/net/ipv4/ip_unprivileged_port_start');
    expect(knob({ kind: 'netns', path: '/run/netns/x' })).toBe(true);
    expect(knob({ kind: 'none' })).toBe(true);
    expect(knob({ kind: 'host' })).toBe(false);
  });

  test('without --private-users: no user namespace, no sysctl', () => {
    const ops = initOps(makePlan({ userns: undefined, net: { kind: 'none' } }));
    expect(ops.map((o) => o[0])).toEqual(['bounding', 'hostname', 'up']);
  });
});

describe('renderEnter with --private-users', () => {
  const app = makeApp({ supplementaryGids: [10] });
  const plan = makePlan({ apps: [app] });
  const script = renderEnter(plan, app);
  /** The chain's exec (the step inside it has execs of its own). */
  const lastExec = (s: string) => s.slice(s.indexOf("\nexec '/usr/bin/nsenter'"));

  test('parses; opens the app\'s user namespace on fd 9 and refuses one that is not the pod\'s', () => {
    syntaxOk(script);
    const l = script.split('\n');
    expect(l).toContain('[ -e "/proc/$pid/ns/mnt" ] && command exec 3<"/proc/$pid/ns/mnt" 4<"/proc/$pid/ns/uts" 5<"/proc/$pid/ns/ipc" 6<"/proc/$pid/ns/net" 8<"/proc/$pid/ns/pid" 9<"/proc/$pid/ns/user" || die \'the app is not running\'');
    const check = `[ "$(readlink /proc/self/fd/9)" = "$(cat ${sq(`${POD}/${USERNS_ID_FILE}`)})" ] || die "the app has left the pod's user namespace"`;
    expect(l.indexOf(check)).toBeGreaterThan(l.findIndex((x) => x.includes('9<"/proc/$pid/ns/user"')));
    expect(l.indexOf(check)).toBeLessThan(l.findIndex((x) => x.startsWith('exec ')));
  });

  test('host-owned namespaces and the user namespace first (util-linux nsenter), then its mount namespace, then the app\'s privileges', () => {
    expect(execArgv(lastExec(script))).toEqual([
      '/usr/bin/nsenter', '--uts=/proc/self/fd/4', '--ipc=/proc/self/fd/5', '--net=/proc/self/fd/6', '--pid=/proc/self/fd/8', '--user=/proc/self/fd/9', '--',
      '/bin/busybox', 'nsenter', '--mount=/proc/self/fd/3', '--',
      '/proc/self/fd/7', ...appStep(app, true),
    ]);
    expect(appStep(app, true).slice(0, 7)).toEqual(['--app', '0', '1000', '2000', '10', '1', '1']);
  });

  test('without --private-users: no user namespace is opened or joined', () => {
    const plain = renderEnter(makePlan({ userns: undefined }), app);
    expect(plain).not.toContain('ns/user');
    expect(plain).not.toContain('/usr/bin/nsenter');
    expect(plain).not.toContain(USERNS_ID_FILE);
  });
});
