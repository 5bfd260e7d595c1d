/**
 * `rkt gc` as root on real pod dirs: every dead pod is collected by ONE gc, including
 * a pod whose leftover processes ignore SIGTERM and are still in its cgroups after its
 * rkt process was SIGKILLed; pods within the grace period are named and kept.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RKT, RktEnv, background, describeIf, hostFootprint, makeEnv, rkt, rktBackground, skipReason, waitFor } from '../helpers/rkt.js';
import { INSECURE, gcTrash, listJson, podCgroupDirs, podProcess, podTraces, podUuids, shArgs, startPod, teardown } from '../helpers/pods.js';

const suite = describeIf(skipReason());

/** pid and kernel start time of `n` processes that have exited (the holders of dead pods). */
function deadHolders(n: number): Array<[number, string]> {
  // Each `cut` prints its own pid and start time (field 22 of its stat), then exits.
  const r = spawnSync('sh', ['-c', `i=0; while [ $i -lt ${n} ]; do cut -d' ' -f1,22 /proc/self/stat; i=$((i+1)); done`], { encoding: 'utf8' });
  const out = r.stdout.trim().split('\n').map((l) => l.split(' ')).map(([pid, start]) => [Number(pid), start] as [number, string]);
  expect(out).toHaveLength(n);
  return out;
}

/**
 * Writes an exited pod the way a real one looks after its pod died: in pods/run/, with
 * the pod manifest, the creation marker, the holder file naming a dead process and the
 * app's exit status.
 */
function writeExitedPod(env: RktEnv, holder: [number, string]): string {
  const uuid = randomUUID();
  const dir = path.join(env.dir, 'pods', 'run', uuid);
  fs.mkdirSync(path.join(dir, 'rkt', 'status'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'pod-created'), '');
  const manifest = {
    acKind: 'PodManifest', acVersion: '0.8.11', volumes: [],
    apps: [{ name: 'busybox', image: { name: 'rkt.local/busybox', id: `sha512-${'0'.repeat(128)}` }, app: { exec: ['/bin/true'], user: '0', group: '0' } }],
  };
  fs.writeFileSync(path.join(dir, 'pod'), JSON.stringify(manifest));
  fs.writeFileSync(path.join(dir, 'pid'), `${holder[0]} ${holder[1]}\n`);
  fs.writeFileSync(path.join(dir, 'rkt', 'status', 'busybox'), '0');
  return uuid;
}

function alive(pid: number): boolean {
  try { return !/^\S+ \(.*\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

suite('rkt gc', () => {
  let env: RktEnv;
  beforeAll(() => {
    env = makeEnv();
    // The state dirs a data dir has once rkt made its first pod.
    for (const s of ['embryo', 'prepare', 'prepared', 'run', 'exited-garbage', 'garbage']) fs.mkdirSync(path.join(env.dir, 'pods', s), { recursive: true });
  });
  afterAll(async () => { await teardown(env); });

  test('500 exited pods with dead holders: each is collected by one gc --grace-period=0s, which names each', async () => {
    const uuids = deadHolders(500).map((h) => writeExitedPod(env, h));
    for (const h of uuids.slice(0, 3)) expect(listJson(env).find((p) => p.name === h)?.state).toBe('exited');
    const r = rkt(env, ['gc', '--grace-period=0s']);
    // The mark phase names each pod it moves (stderr), the sweep each it deletes (stdout), as rkt.
    expect(r.stderr.trim().split('\n').sort()).toEqual(uuids.map((u) => `gc: moving pod "${u}" to garbage`).sort());
    expect(r.status).toBe(0);
    const said = r.stdout.trim().split('\n').sort();
    expect(said).toEqual(uuids.map((u) => `Garbage collecting pod "${u}"`).sort());
    expect(podUuids(env)).toEqual([]);
    expect(listJson(env)).toEqual([]);
    // Their files are deleted by a detached rm that gc started: in its trash or gone, then gone.
    expect(gcTrash(env).length).toBeLessThanOrEqual(500);
    const trash = path.join(env.dir, 'pods', '.gc-trash');
    await waitFor(() => fs.readdirSync(trash).length === 0, 120_000, 'gc\'s detached rm to delete the pod dirs and its batch dir');
    expect(fs.statSync(trash).mode & 0o777).toBe(0o700);
  }, 180_000);

  test('a pod within the grace period is named on stderr and kept; gc --grace-period=0s then removes it', () => {
    const [uuid] = deadHolders(1).map((h) => writeExitedPod(env, h));
    const r = rkt(env, ['gc']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`gc: moving pod "${uuid}" to garbage\ngc: pod "${uuid}" not removed: still within grace period (30m0s)\n`);
    expect(listJson(env).map((p) => [p.name, p.state])).toEqual([[uuid, 'exited garbage']]);
    const again = rkt(env, ['gc', '--grace-period=1h']);
    expect(again.stderr).toBe(`gc: pod "${uuid}" not removed: still within grace period (1h0m0s)\n`);
    const now = rkt(env, ['gc', '--grace-period=0s']);
    expect(now.stdout).toBe(`Garbage collecting pod "${uuid}"\n`);
    expect(now.status).toBe(0);
    expect(podUuids(env)).toEqual([]);
  });

  test('a pod whose processes ignore SIGTERM and stay in its cgroups after rkt was SIGKILLed: one gc collects it', async () => {
    const pod = await startPod(env, shArgs(['--net=host'], ['--memory=64M'], "trap '' TERM; echo ready; while :; do sleep 1; done"), 'ready');
    const app = podProcess(env, pod.uuid, /^\/bin\/sh -c trap/);
    expect(app).toBeDefined();
    // A process outside the pod's PID namespace that joined its app cgroups (as one entered
    // into the pod may) and ignores SIGTERM: the pod's death does not end it; gc must.
    const cg = JSON.parse(fs.readFileSync(path.join(env.dir, 'pods', 'run', pod.uuid, 'cgroups.json'), 'utf8')) as { appProcs: Record<string, string[]> };
    const stray = spawn('sh', ['-c', "trap '' TERM; exec sleep 1000"], { stdio: 'ignore', detached: true });
    await waitFor(() => fs.readFileSync(`/proc/${stray.pid}/cmdline`, 'utf8').startsWith('sleep'), 10_000, 'the stray process to exec sleep');
    for (const f of cg.appProcs.busybox) fs.writeFileSync(f, String(stray.pid));
    const strayExit = new Promise<NodeJS.Signals | null>((resolve) => stray.on('exit', (_c, sig) => resolve(sig)));

    // SIGKILL to rkt (the pod's holder), then gc at once: the app may not even have died yet.
    pod.child.kill('SIGKILL');
    await pod.done;
    const r = rkt(env, ['gc', '--grace-period=0s']);
    expect(r.stderr).toBe(`gc: moving pod "${pod.uuid}" to garbage\n`);
    expect(r.stdout).toBe(`Garbage collecting pod "${pod.uuid}"\n`);
    expect(r.status).toBe(0);
    expect(await strayExit).toBe('SIGKILL');
    expect(alive(app!)).toBe(false);
    expect(podCgroupDirs(pod.uuid)).toEqual([]);
    expect(podTraces(env, pod.uuid)).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
    expect(hostFootprint().cgroups.filter((c) => c.includes(pod.uuid))).toEqual([]);
  });

  test('an exited real pod and a hand-made one are collected together; a running one is left alone', async () => {
    expect(rkt(env, shArgs(['--net=host'], [], 'exit 0')).status).toBe(0);
    const running = await startPod(env, [INSECURE, 'run', '--net=host', BUSYBOX_ACI, '--exec=/bin/sleep', '--', '1000'], /sleep 1000$/);
    const [made] = deadHolders(1).map((h) => writeExitedPod(env, h));
    const r = rkt(env, ['gc', '--grace-period=0s']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(2);
    expect(r.stdout).toContain(`Garbage collecting pod "${made}"`);
    expect(listJson(env).map((p) => [p.name, p.state])).toEqual([[running.uuid, 'running']]);
    expect(rkt(env, ['stop', running.uuid]).status).toBe(0);
    await running.done;
  });

  test('gc --grace-period=0s, list and status in a loop while pods start (run and run-prepared): none is collected early or misreported', async () => {
    // gc in its own loop, so it overlaps every step of each start.
    const stop = path.join(env.base, 'gc-loop-stop');
    const loop = background('sh', ['-c', `while [ ! -e '${stop}' ]; do "$0" "$@" gc --grace-period=0s >/dev/null; "$0" "$@" list >/dev/null || echo "list failed"; done`, RKT, ...env.globals]);
    const app = ['--exec=/bin/sh', '--', '-c', 'echo up; sleep 0.5; exit 7'];
    const prepared = [1, 2, 3].map(() => {
      const p = rkt(env, [INSECURE, 'prepare', '--quiet', BUSYBOX_ACI, ...app]);
      expect(p.status).toBe(0);
      return p.stdout.trim();
    });
    const pods: Array<{ uuid: () => string; bg: ReturnType<typeof rktBackground> }> = [];
    for (let i = 0; i < 6; i++) {
      const file = path.join(env.base, `start-${i}`);
      pods.push({ uuid: () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''), bg: rktBackground(env, [INSECURE, 'run', '--net=host', `--uuid-file-save=${file}`, BUSYBOX_ACI, ...app]) });
    }
    for (const uuid of prepared) pods.push({ uuid: () => uuid, bg: rktBackground(env, ['run-prepared', '--net=host', uuid]) });
    let ended = 0;
    let runningSeen = 0;
    const results = pods.map((p) => p.bg.done.then((r) => { ended++; return r; }));
    try {
      // While they start and run, status of a running pod names the pod's own process (the rkt the
      // caller started), never stage0 or nothing; a pod whose rkt still runs never shows as collected.
      while (ended < pods.length) {
        for (const p of pods) {
          const uuid = p.uuid();
          const pid = p.bg.child.pid!;
          if (!uuid || !alive(pid)) continue;
          const r = rkt(env, ['status', uuid]);
          // Its rkt (the holder) ended meanwhile: gc may have taken it. (Node has not noticed
          // yet while rkt() blocked it, so ask /proc.)
          if (!alive(pid)) continue;
          expect(r.stderr).toBe('');
          const state = /^state=(.*)$/m.exec(r.stdout)?.[1];
          expect(['preparing', 'prepared', 'running']).toContain(state);
          if (state === 'running') {
            runningSeen++;
            expect(r.stdout).toContain(`\npid=${pid}\n`);
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      fs.writeFileSync(stop, '');
    }
    const loopEnd = await loop.done;
    expect(loopEnd.stdout).toBe('');
    // gc only ever moved pods that had ended; no start was taken for a failed prepare.
    expect(loopEnd.stderr.split('\n').filter((l) => l && !/^gc: moving pod "[0-9a-f-]+" to garbage$/.test(l))).toEqual([]);
    expect(runningSeen).toBeGreaterThan(0);
    for (const r of await Promise.all(results)) {
      expect(r.stderr.split('\n').filter((l) => l && !/warning:/.test(l))).toEqual([]);
      expect(r.stdout).toBe('up\n');
      expect(r.code).toBe(7);
    }
  });

  test('a start that fails once the pod is in run/ leaves an aborted prepare without cgroups, which gc collects at once', () => {
    // LISTEN_FDS is read once the pod is in run/: 65 (more than a pod takes) fails the start there.
    const uuidFile = path.join(env.base, 'u-fail');
    const r = spawnSync('sh', ['-c', 'LISTEN_PID=$$ LISTEN_FDS=65 exec "$0" "$@"', RKT, ...env.globals, INSECURE, 'run', '--net=host', `--uuid-file-save=${uuidFile}`, BUSYBOX_ACI, '--exec=/bin/true'], { encoding: 'utf8' });
    expect(r.status).toBe(254);
    expect(r.stderr).toContain('run: LISTEN_FDS=65: rkt passes at most 64 socket-activation fds to a pod');
    const uuid = fs.readFileSync(uuidFile, 'utf8');
    expect(fs.existsSync(path.join(env.dir, 'pods', 'run', uuid))).toBe(false);
    expect(listJson(env).find((p) => p.name === uuid)?.state).toBe('aborted prepare');
    expect(podCgroupDirs(uuid)).toEqual([]);
    // (Pods of the earlier tests that ended after their last gc go too.)
    const gc = rkt(env, ['gc', '--grace-period=0s']);
    expect(gc.stderr.split('\n').filter((l) => l.includes(uuid))).toEqual([`gc: moving failed prepare "${uuid}" to garbage`]);
    expect(podTraces(env, uuid)).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
  });

  test('what stage0 writes for stage1 names the pod where it runs, never prepare/', () => {
    const p = rkt(env, [INSECURE, 'prepare', '--quiet', BUSYBOX_ACI, '--exec=/bin/true']);
    const uuid = p.stdout.trim();
    expect(rkt(env, ['run-prepared', '--net=host', uuid]).status).toBe(0);
    expect(rkt(env, ['--insecure-options=image', 'run', '--net=host', `--uuid-file-save=${path.join(env.base, 'u-run')}`, BUSYBOX_ACI, '--exec=/bin/true']).status).toBe(0);
    for (const id of [uuid, fs.readFileSync(path.join(env.base, 'u-run'), 'utf8')]) {
      const stage1 = path.join(env.dir, 'pods', 'run', id, 'stage1');
      const files = fs.readdirSync(stage1).filter((f) => /\.(sh|json|table|launch|mounts)$/.test(f));
      expect(files).toEqual(expect.arrayContaining(['init.table', 'app-busybox.launch', 'enter-busybox.sh']));
      for (const f of files) {
        const text = fs.readFileSync(path.join(stage1, f), 'utf8');
        expect(text).not.toContain('/pods/prepare');
        expect(text).not.toContain('/pods/prepared');
      }
      expect(fs.readFileSync(path.join(stage1, 'app-busybox.launch'), 'utf8')).toContain(`/pods/run/${id}/`);
    }
  });
});
