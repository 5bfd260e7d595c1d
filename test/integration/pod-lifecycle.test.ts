/**
 * A pod's whole life with real pods: list and status while it runs and after, stop
 * (graceful and forced), SIGTERM/SIGINT to `rkt run` itself, the grace period before
 * SIGKILL, enter, prepare + run-prepared, --uuid-file-save, rm, gc, cat-manifest, and
 * app output reaching rkt's stdout/stderr as it is written.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RktEnv, makeEnv, rkt, rktBackground, describeIf, skipReason, waitFor } from '../helpers/rkt.js';
import { INSECURE, listJson, podProcess, podTraces, shArgs, startPod, statusJson, statusText, teardown } from '../helpers/pods.js';

const suite = describeIf(skipReason());

const sleeper = (appFlags: string[] = [], podFlags: string[] = []) => [INSECURE, 'run', '--net=host', ...podFlags, BUSYBOX_ACI, ...appFlags, '--exec=/bin/sleep', '--', '1000'];

suite('pod lifecycle', () => {
  let env: RktEnv;
  let suiteStart: number;
  beforeAll(() => { env = makeEnv(); suiteStart = Date.now(); });
  afterAll(async () => { await teardown(env); });

  describe('a running pod in list and status, then stopped', () => {
    let pod: Awaited<ReturnType<typeof startPod>>;
    beforeAll(async () => { pod = await startPod(env, sleeper(['--name=sleepy']), /sleep 1000$/); });
    afterAll(async () => { pod.child.kill('SIGKILL'); await pod.done; });

    test('rkt list shows it running, in the table, --full, --no-legend and --format=json', () => {
      const table = rkt(env, ['list']);
      expect(table.status).toBe(0);
      const [header, ...rows] = table.stdout.trim().split('\n');
      expect(header.split(/\t+/)).toEqual(['UUID', 'APP', 'IMAGE NAME', 'STATE', 'CREATED', 'STARTED', 'NETWORKS']);
      const row = rows.find((r) => r.startsWith(pod.uuid.slice(0, 8)))!.split(/\t+/);
      expect(row.slice(0, 4)).toEqual([pod.uuid.slice(0, 8), 'sleepy', 'rkt.local/busybox', 'running']);
      const full = rkt(env, ['list', '--full']).stdout;
      expect(full).toMatch(new RegExp(`^${pod.uuid}\\tsleepy\\trkt\\.local/busybox\\tsha512-[0-9a-f]{12}\\trunning\\t`, 'm'));
      const bare = rkt(env, ['list', '--no-legend']).stdout;
      expect(bare).not.toMatch(/UUID/);
      expect(bare).toMatch(new RegExp(`^${pod.uuid.slice(0, 8)}\\t`, 'm'));
      const json = listJson(env).find((p) => p.name === pod.uuid)!;
      expect(json).toMatchObject({ state: 'running', app_names: ['sleepy'], apps: [{ name: 'sleepy', state: 'running' }] });
    });

    test('rkt status shows state, pid, times; --format=json the same; a UUID prefix works', () => {
      const t = statusText(env, pod.uuid.slice(0, 6));
      expect(t.state).toBe('running');
      expect(Number(t.pid)).toBe(pod.child.pid);
      // This pod's own times: made during this suite, started after it was created.
      expect(Date.parse(t.created)).toBeGreaterThanOrEqual(Math.floor(suiteStart / 1000) * 1000);
      expect(Date.parse(t.created)).toBeLessThanOrEqual(Date.now());
      expect(Date.parse(t.started)).toBeGreaterThanOrEqual(Date.parse(t.created));
      expect(t['app-sleepy']).toBeUndefined(); // no exit status while it runs
      const j = statusJson(env, pod.uuid);
      expect(j).toMatchObject({ name: pod.uuid, state: 'running', app_names: ['sleepy'] });
      // Seconds, as rkt's api/v1: the text's times to the second.
      expect(j.created_at).toBe(Math.floor(Date.parse(t.created) / 1000));
      expect(j.started_at).toBe(Math.floor(Date.parse(t.started) / 1000));
    });

    test('status --wait with a short limit fails while the pod runs', () => {
      const r = rkt(env, ['status', '--wait=200ms', pod.uuid]);
      expect(r.status).toBe(254);
      expect(r.stderr).toMatch(/still running/);
    });

    test('rm of a running pod is refused and the pod keeps running', () => {
      const r = rkt(env, ['rm', pod.uuid]);
      expect(r.status).toBe(254);
      expect(r.stderr).toMatch(/running/);
      expect(statusJson(env, pod.uuid).state).toBe('running');
    });

    test('rkt stop: the app gets SIGTERM (143), rkt run exits 0, status --wait returns', async () => {
      const waiter = rktBackground(env, ['status', '--wait', pod.uuid]);
      const stop = rkt(env, ['stop', pod.uuid]);
      expect(stop.status).toBe(0);
      expect(stop.stdout.trim()).toBe(`"${pod.uuid}"`);
      const done = await pod.done;
      expect(done.code).toBe(0);
      const waited = await waiter.done;
      expect(waited.code).toBe(0);
      expect(waited.stdout).toMatch(/^state=exited$/m);
      const t = statusText(env, pod.uuid);
      // As rkt: the pod's pid stays in its status after it exited (never -1).
      expect(t).toMatchObject({ state: 'exited', pid: String(pod.child.pid), exited: 'true', 'app-sleepy': '143' });
      expect(statusJson(env, pod.uuid).apps[0].exit_code).toBe(143);
      expect(listJson(env).find((p) => p.name === pod.uuid)!.state).toBe('exited');
    });

    test('status and list --full print times as rkt (Go) did: the zone\'s abbreviation from the tz database', () => {
      const created = statusJson(env, pod.uuid).created_at! * 1000;
      // IST all year round: the local time is UTC + 5:30, and Go names it IST (Intl: GMT+5:30).
      const ist = new Date(created + 330 * 60_000).toISOString().slice(0, 19).replace('T', ' ');
      expect(rkt(env, ['status', pod.uuid], { env: { TZ: 'Asia/Kolkata' } }).stdout).toMatch(new RegExp(`^created=${ist}(\\.\\d+)? \\+0530 IST$`, 'm'));
      // Berlin: the name goes with the offset of that day (CET in winter, CEST in summer).
      const line = rkt(env, ['list', '--full', '--no-legend'], { env: { TZ: 'Europe/Berlin' } }).stdout.split('\n').find((l) => l.startsWith(pod.uuid))!;
      expect(line).toMatch(/\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? (\+0100 CET|\+0200 CEST)\t/);
      expect(rkt(env, ['status', pod.uuid], { env: { TZ: '' } }).stdout).toMatch(/^created=\S+ \S+ \+0000 UTC$/m);
    });
  });

  test('rkt stop --force kills the pod at once', async () => {
    const pod = await startPod(env, shArgs(['--net=host'], [], "trap '' TERM; echo ready; while :; do sleep 1; done"), 'ready');
    expect(rkt(env, ['stop', '--force', pod.uuid]).status).toBe(0);
    const done = await pod.done;
    // 137, not 0: the pod's init was killed, no graceful stop (which would exit 0) was tried.
    expect(done.code).toBe(137);
    expect(statusJson(env, pod.uuid).state).toBe('exited');
    expect(podTraces(env, pod.uuid).procs).toEqual([]);
  });

  test.each([['SIGTERM'], ['SIGINT']] as const)('%s to rkt run stops the pod: the app gets SIGTERM (143) and rkt exits 0', async (sig) => {
    const pod = await startPod(env, sleeper(), /sleep 1000$/);
    pod.child.kill(sig);
    const done = await pod.done;
    expect(done.code).toBe(0);
    expect(statusText(env, pod.uuid)['app-busybox']).toBe('143'); // the pod's init forwards SIGTERM to its apps
    expect(podTraces(env, pod.uuid).procs).toEqual([]);
  });

  test('an app that traps SIGTERM sees it and may exit 0', async () => {
    const pod = await startPod(env, shArgs(['--net=host'], [], "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done"), 'ready');
    pod.child.kill('SIGTERM');
    const done = await pod.done;
    expect(done.stdout).toContain('got TERM');
    expect(done.code).toBe(0);
    expect(statusText(env, pod.uuid)['app-busybox']).toBe('0');
  });

  test('an app that ignores SIGTERM is SIGKILLed after the grace period (10 s by default); the stop is not clean', async () => {
    // The app notes the SIGTERM and carries on: it is seen alive after it, then SIGKILLed.
    const pod = await startPod(env, shArgs(['--net=host'], [], "trap 'echo got TERM' TERM; echo ready; while :; do sleep 0.1; echo alive; done"), 'ready');
    pod.child.kill('SIGTERM');
    const done = await pod.done;
    expect(done.stdout).toMatch(/^got TERM\nalive$/m);
    expect(done.stderr).toMatch(/^stage1: app "busybox" did not stop within 10s of SIGTERM: killed it$/m);
    expect(done.code).toBe(137);
    expect(statusText(env, pod.uuid)['app-busybox']).toBe('137');
    expect(podTraces(env, pod.uuid).procs).toEqual([]);
  });

  test('rkt enter runs a command in the app\'s namespaces with its environment', async () => {
    const pod = await startPod(env, sleeper(['--environment=ENTER_ME=yes'], ['--hostname=entered']), /sleep 1000$/);
    try {
      const app = podProcess(env, pod.uuid, /sleep 1000$/);
      const r = rkt(env, ['enter', pod.uuid, '/bin/sh', '-c', 'echo "$ENTER_ME $AC_APP_NAME $PATH"; hostname; readlink /proc/self/ns/mnt; readlink /proc/self/ns/pid; ls /; exit 7']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(7);
      const [vars, hostname, mnt, pid, ...root] = r.stdout.trim().split('\n');
      expect(vars).toBe('yes busybox /bin:/sbin');
      expect(hostname).toBe('entered');
      expect(mnt).toBe(fs.readlinkSync(`/proc/${app}/ns/mnt`));
      expect(pid).toBe(fs.readlinkSync(`/proc/${app}/ns/pid`));
      expect(root).toContain('data'); // the image's rootfs, not the host's
      expect(root).not.toContain('boot');
    } finally {
      rkt(env, ['stop', pod.uuid]);
      await pod.done;
    }
  });

  test('prepare then run-prepared keeps --exec and the app arguments', () => {
    const prep = rkt(env, [INSECURE, 'prepare', '--quiet', BUSYBOX_ACI, '--name=later', '--exec=/bin/sh', '--', '-c', 'echo "args: $*"; exit 4', 'arg0', 'one', 'two words']);
    expect(prep.status).toBe(0);
    const uuid = prep.stdout.trim();
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(statusJson(env, uuid).state).toBe('prepared');
    expect(listJson(env).find((p) => p.name === uuid)!.state).toBe('prepared');
    const run = rkt(env, ['run-prepared', '--net=host', uuid]);
    expect(run.stdout).toBe('args: one two words\n');
    expect(run.status).toBe(4);
    expect(statusText(env, uuid)).toMatchObject({ state: 'exited', 'app-later': '4' });
    // A pod runs once.
    const again = rkt(env, ['run-prepared', '--net=host', uuid]);
    expect(again.status).toBe(254);
    expect(again.stderr).toMatch(/not prepared/);
  });

  test('--uuid-file-save writes the UUID, without newline, before the pod starts; rm --uuid-file cleans up a failed start', () => {
    const file = path.join(env.base, 'failed-start-uuid');
    // stage0 accepts this; stage1 fails on the missing working dir, after the pod was created.
    const r = rkt(env, shArgs(['--net=host', `--uuid-file-save=${file}`], ['--working-dir=/does/not/exist'], 'true'));
    expect(r.status).toBe(254);
    expect(r.stderr).toMatch(/working directory/);
    const uuid = fs.readFileSync(file, 'utf8');
    expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(statusJson(env, uuid).state).toBe('exited');
    const rm = rkt(env, ['rm', `--uuid-file=${file}`]);
    expect(rm.status).toBe(0);
    expect(listJson(env).map((p) => p.name)).not.toContain(uuid);
    expect(podTraces(env, uuid)).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
  });

  test('rm removes an exited pod and a prepared one', () => {
    const ran = rkt(env, [...shArgs(['--net=host', `--uuid-file-save=${path.join(env.base, 'rm-uuid')}`], [], 'exit 0')]);
    expect(ran.status).toBe(0);
    const exited = fs.readFileSync(path.join(env.base, 'rm-uuid'), 'utf8');
    const prepared = rkt(env, [INSECURE, 'prepare', '--quiet', BUSYBOX_ACI]).stdout.trim();
    const r = rkt(env, ['rm', exited, prepared]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`"${exited}"\n"${prepared}"\n`);
    const left = listJson(env).map((p) => p.name);
    expect(left).not.toContain(exited);
    expect(left).not.toContain(prepared);
    for (const u of [exited, prepared]) expect(podTraces(env, u)).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
  });

  test('cat-manifest prints the pod manifest', () => {
    const file = path.join(env.base, 'manifest-uuid');
    expect(rkt(env, shArgs(['--net=host', `--uuid-file-save=${file}`], ['--name=shown'], 'true')).status).toBe(0);
    const uuid = fs.readFileSync(file, 'utf8');
    const r = rkt(env, ['cat-manifest', uuid]);
    expect(r.status).toBe(0);
    const m = JSON.parse(r.stdout);
    expect(m).toMatchObject({ acKind: 'PodManifest', apps: [{ name: 'shown', image: { name: 'rkt.local/busybox' }, app: { exec: ['/bin/sh', '-c', 'true'] } }] });
    expect(m.apps[0].image.id).toMatch(/^sha512-[0-9a-f]{128}$/);
  });

  test('app output reaches rkt\'s stdout and stderr as it is written', async () => {
    // The app prints, then waits for the test to create /data/go: what rkt printed before
    // that was passed through as written, not at the app's exit.
    const gate = fs.mkdtempSync(path.join(env.base, 'gate-'));
    const bg = rktBackground(env, shArgs(['--net=host', `--volume=data,kind=host,source=${gate}`], [],
      'echo to-stdout; echo to-stderr >&2; while [ ! -e /data/go ]; do sleep 0.05; done; echo done'));
    await waitFor(() => bg.output().stdout.includes('to-stdout') && bg.output().stderr.includes('to-stderr'), 60_000, 'the first lines');
    expect(bg.output().stdout).not.toContain('done');
    fs.writeFileSync(path.join(gate, 'go'), '');
    const d = await bg.done;
    expect(d.stdout).toBe('to-stdout\ndone\n');
    expect(d.code).toBe(0);
  });

  test('gc removes exited pods, keeps prepared ones and the data dir, and leaves nothing on the host', () => {
    const prepared = rkt(env, [INSECURE, 'prepare', '--quiet', BUSYBOX_ACI]).stdout.trim();
    const exited = listJson(env).filter((p) => p.state === 'exited').map((p) => p.name);
    expect(exited.length).toBeGreaterThan(3);
    const r = rkt(env, ['gc', '--grace-period=0s']);
    expect(r.status).toBe(0);
    const left = listJson(env);
    expect(left.map((p) => [p.name, p.state])).toEqual([[prepared, 'prepared']]);
    expect(fs.existsSync(path.join(env.dir, 'pods'))).toBe(true);
    for (const u of exited) expect(podTraces(env, u)).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
  });
});
