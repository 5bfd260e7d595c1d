/**
 * Faults: `rkt run` killed with SIGKILL while it prepares, while the pod runs and while
 * the pod stops; then `rkt gc --grace-period=0s` must leave nothing of those pods in
 * the data dir, the mount table, the cgroup trees or the process table. And 50 pods
 * started at once, with `rkt list` and `rkt gc` running meanwhile.
 */
import { afterAll, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { BUSYBOX_ACI, ETCD_ACI, RKT, RktEnv, hostFootprint, makeEnv, rkt, rktBackground, describeIf, skipReason, waitFor } from '../helpers/rkt.js';
import { INSECURE, descendants, podUuids, listJson, podProcess, podTraces, shArgs, sleep, startPod, statusJson, teardown } from '../helpers/pods.js';

const suite = describeIf(skipReason());


const alive = (pid: number) => fs.existsSync(`/proc/${pid}`);

/** gc, then nothing of these pods anywhere. */
function expectCollected(env: RktEnv, uuids: string[]): void {
  const gc = rkt(env, ['gc', '--grace-period=0s']);
  expect(gc.stderr).not.toMatch(/cannot garbage collect/);
  expect(gc.status).toBe(0);
  expect(podUuids(env)).toEqual([]);
  for (const u of uuids) expect(podTraces(env, u)).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
  const fp = hostFootprint();
  expect(fp.mounts.filter((m) => m.includes(env.base))).toEqual([]);
  expect(fp.cgroups.filter((c) => uuids.some((u) => c.includes(u)))).toEqual([]);
}

suite('pod faults', () => {
  const envs: RktEnv[] = [];
  const newEnv = () => { const e = makeEnv(); envs.push(e); return e; };
  afterAll(async () => { for (const e of envs) await teardown(e); });

  test.each([
    ['the rkt PID', 100], ['the rkt PID', 300], ['the rkt PID', 500],
    ['its process group', 100], ['its process group', 300], ['its process group', 500],
  ])('SIGKILL to %s %i ms into a run (while it prepares or starts), then gc: nothing left', async (what, delay) => {
    const env = newEnv();
    // A fresh store: the first run imports the 15 MB etcd image, which gives prepare some length.
    const child = spawn(RKT, [...env.globals, INSECURE, 'run', '--net=host', ETCD_ACI, '--exec=/bin/true'], { stdio: 'ignore', detached: true });
    await sleep(delay);
    const family = descendants(child.pid!);
    // On a fast machine the run may be over by then (child.kill says so by returning false):
    // what is left must still be collected.
    if (what === 'the rkt PID') child.kill('SIGKILL');
    else {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; }
    }
    // A stage0 orphaned by its launcher's death must finish or die on its own.
    await waitFor(() => family.every((p) => !alive(p)), 15_000, 'every process of that run to end');
    const uuids = podUuids(env);
    expectCollected(env, uuids);
  });

  test('SIGKILL to rkt while the pod runs kills the app too; gc leaves nothing', async () => {
    const env = newEnv();
    const pod = await startPod(env, [INSECURE, 'run', '--net=host', BUSYBOX_ACI, '--memory=64M', '--exec=/bin/sleep', '--', '1000'], /sleep 1000$/);
    const app = podProcess(env, pod.uuid, /sleep 1000$/);
    pod.child.kill('SIGKILL');
    await pod.done;
    await waitFor(() => !alive(app!), 15_000, 'the app to die with its pod');
    expect(statusJson(env, pod.uuid).state).toBe('exited');
    expectCollected(env, [pod.uuid]);
  });

  test('SIGKILL to rkt while the pod stops (apps in their TERM handlers); gc leaves nothing', async () => {
    const env = newEnv();
    const pod = await startPod(env, shArgs(['--net=host'], [], "trap 'echo stopping; sleep 5; exit 0' TERM; echo ready; while :; do sleep 0.1; done"), 'ready');
    const app = podProcess(env, pod.uuid, /^\/bin\/sh -c trap/);
    pod.child.kill('SIGTERM');
    await waitFor(() => pod.output().stdout.includes('stopping'), 15_000, 'the app to start stopping');
    pod.child.kill('SIGKILL');
    await pod.done;
    await waitFor(() => !alive(app!), 15_000, 'the app to die with its pod');
    expectCollected(env, [pod.uuid]);
  });

  test('50 pods at once all succeed while rkt list and rkt gc run in a loop; then gc removes them', async () => {
    const env = newEnv();
    expect(rkt(env, shArgs(['--net=host'], [], 'true')).status).toBe(0); // image in the store first
    expect(rkt(env, ['gc', '--grace-period=0s']).status).toBe(0);
    // Each app says it started in a host dir, then waits there for "go": all 50 are up at
    // once, and list and gc are seen to run against them, however fast pods start. (Polling
    // once a second: 50 apps polling faster load a 2-core machine enough to slow the starts.)
    const gate = fs.mkdtempSync(`${env.base}/gate-`);
    const waitForGo = 'mktemp /gate/started.XXXXXX >/dev/null && while [ ! -e /gate/go ]; do sleep 1; done';
    let running = true;
    const failures: string[] = [];
    let loops = 0;
    const loop = (args: string[]) => (async () => {
      while (running) {
        const r = rktBackground(env, args);
        const d = await r.done;
        loops++;
        if (d.code !== 0) failures.push(`rkt ${args.join(' ')} exited ${d.code}: ${d.stderr}`);
        else if (args[0] === 'list') {
          try { JSON.parse(d.stdout); } catch { failures.push(`rkt list printed bad JSON: ${d.stdout.slice(0, 200)}`); }
        }
      }
    })();
    // The default grace period: gc marks exited pods meanwhile (renames racing the starts) but deletes none.
    const loops2 = [loop(['list', '--format=json']), loop(['gc'])];
    const runs = Array.from({ length: 50 }, () => rktBackground(env, shArgs(['--net=host', `--volume=gate,kind=host,source=${gate}`],
      ['--mount=volume=gate,target=/gate'], waitForGo)).done);
    let results;
    try {
      const started = () => fs.readdirSync(gate).filter((f) => f.startsWith('started.')).length;
      await waitFor(() => started() === 50, 90_000, 'all 50 apps to start');
      const loopsWithAllUp = loops;
      await waitFor(() => loops >= loopsWithAllUp + 4, 30_000, 'four list/gc runs while all 50 pods run');
    } finally {
      fs.writeFileSync(`${gate}/go`, '');
      results = await Promise.all(runs);
      running = false;
      await Promise.all(loops2);
    }
    expect(results.filter((r) => r.code !== 0).map((r) => r.stderr)).toEqual([]);
    expect(failures).toEqual([]);
    const pods = listJson(env);
    expect(pods).toHaveLength(50);
    for (const p of pods) {
      expect(['exited', 'exited garbage']).toContain(p.state);
      expect(p.apps.map((a) => a.exit_code)).toEqual([0]);
    }
    expectCollected(env, pods.map((p) => p.name));
  }, 180_000);
});
