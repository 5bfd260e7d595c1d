/**
 * Stops as a service manager sees them: nothing but rkt's own lines on stderr (the journal),
 * the grace period before SIGKILL set by `run --stop-timeout` / `run-prepared --stop-timeout`
 * and by `rkt stop --timeout`, a pod that had to be SIGKILLed said on stderr and in
 * `rkt status`, and rkt run's exit status: 0 for an outside stop that ended cleanly.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RKT, RktEnv, makeEnv, rkt, rktBackground, describeIf, skipReason, waitFor } from '../helpers/rkt.js';
import { INSECURE, listJson, podTraces, shArgs, startPod, statusJson, statusText, teardown } from '../helpers/pods.js';

const suite = describeIf(skipReason());

/** stderr lines that are not rkt's own image notes: what a journal would show beyond them. */
const unexpected = (stderr: string) => stderr.split('\n').filter((l) => l && !/^[\w-]+: (using image from file|warning: (image )?(signature verification has been disabled|no volume specified))/.test(l));

/** An app that notes SIGTERM and carries on; "ready" once its trap is set. */
const IGNORES_TERM = "trap 'echo got TERM' TERM; echo ready; while :; do sleep 0.1; done";

suite('stopping pods', () => {
  let env: RktEnv;
  beforeAll(() => { env = makeEnv(); });
  afterAll(async () => { await teardown(env); });

  test('rkt stop: the app dies of SIGTERM, rkt run exits 0 and says nothing (no "Terminated")', async () => {
    const pod = await startPod(env, [INSECURE, 'run', '--net=host', BUSYBOX_ACI, '--exec=/bin/sleep', '--', '1000'], /sleep 1000$/);
    expect(rkt(env, ['stop', pod.uuid]).status).toBe(0);
    const done = await pod.done;
    expect(unexpected(done.stderr)).toEqual([]);
    expect(done.code).toBe(0);
    expect(statusText(env, pod.uuid)).toMatchObject({ state: 'exited', 'app-busybox': '143' });
    expect(statusText(env, pod.uuid)['stop-killed']).toBeUndefined();
  });

  test('a caller that ignores signals (a script\'s background job, nohup): the app gets every signal at its default action, as rkt\'s systemd stage1 gave it', () => {
    const ignoring = (app: string[]) => spawnSync('sh', ['-c', `trap '' TERM INT HUP QUIT USR1 PIPE; exec "$@"`, 'sh', RKT, ...env.globals, INSECURE, 'run', '--net=host', BUSYBOX_ACI, ...app],
      { encoding: 'utf8', timeout: 60_000 });
    const status = ignoring(['--exec=/bin/cat', '--', '/proc/self/status']);
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/^SigIgn:\t0{16}$/m);
    expect(status.stdout).toMatch(/^SigBlk:\t0{16}$/m);
    // SIGTERM ends it, as a stop's would.
    const term = ignoring(['--exec=/bin/sh', '--', '-c', 'kill -TERM $$; sleep 2; echo survived']);
    expect([term.status, term.stdout]).toEqual([143, '']);
  });

  test('--stop-timeout: an app that outlives it is SIGKILLed, said once on stderr (no "Killed"), in rkt status, and rkt run exits 137', async () => {
    const pod = await startPod(env, shArgs(['--net=host', '--stop-timeout=1s'], [], IGNORES_TERM), 'ready');
    pod.child.kill('SIGTERM'); // as systemctl stop does
    const done = await pod.done;
    expect(done.stdout).toContain('got TERM');
    expect(unexpected(done.stderr)).toEqual(['stage1: app "busybox" did not stop within 1s of SIGTERM: killed it']);
    expect(done.code).toBe(137);
    expect(statusText(env, pod.uuid)).toMatchObject({ state: 'exited', 'app-busybox': '137', 'stop-killed': 'busybox' });
    expect(statusJson(env, pod.uuid).apps?.[0]).toMatchObject({ name: 'busybox', exit_code: 137 });
    expect(podTraces(env, pod.uuid).procs).toEqual([]);
  });

  test('rkt stop --timeout overrides the pod\'s grace period for this stop', async () => {
    // With the pod's own hour the test would time out: the stop's 500ms is what ends it.
    const pod = await startPod(env, shArgs(['--net=host', '--stop-timeout=1h'], ['--name=stubborn'], IGNORES_TERM), 'ready');
    const stop = rkt(env, ['stop', '--timeout=500ms', pod.uuid]);
    expect(stop.status).toBe(0);
    expect(stop.stdout).toBe(`"${pod.uuid}"\n`);
    const done = await pod.done;
    expect(unexpected(done.stderr)).toEqual(['stage1: app "stubborn" did not stop within 0.5s of SIGTERM: killed it']);
    expect(done.code).toBe(137);
    expect(statusText(env, pod.uuid)['stop-killed']).toBe('stubborn');
  });

  test('an app that stops within the grace period: a clean stop, exit 0, not reported as killed', async () => {
    const pod = await startPod(env, shArgs(['--net=host', '--stop-timeout=30s'], [], "trap 'sleep 0.5; echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done"), 'ready');
    expect(rkt(env, ['stop', pod.uuid]).status).toBe(0);
    const done = await pod.done;
    expect(done.stdout).toContain('bye');
    expect(unexpected(done.stderr)).toEqual([]);
    expect(done.code).toBe(0);
    expect(statusText(env, pod.uuid)).toMatchObject({ 'app-busybox': '0' });
    expect(statusText(env, pod.uuid)['stop-killed']).toBeUndefined();
  });

  test('run-prepared --stop-timeout sets the grace period of a prepared pod', async () => {
    const prep = rkt(env, [INSECURE, 'prepare', '--quiet', BUSYBOX_ACI, '--exec=/bin/sh', '--', '-c', IGNORES_TERM]);
    expect(prep.status).toBe(0);
    const uuid = prep.stdout.trim();
    const pod = rktBackground(env, ['run-prepared', '--net=host', '--stop-timeout=300ms', uuid]);
    await waitFor(() => pod.output().stdout.includes('ready'), 15_000, 'the app');
    pod.child.kill('SIGTERM');
    const done = await pod.done;
    expect(unexpected(done.stderr)).toEqual(['stage1: app "busybox" did not stop within 0.3s of SIGTERM: killed it']);
    expect(done.code).toBe(137);
  });

  test.each([
    ['abc', /^run: invalid duration "abc" for --stop-timeout: use forms like 30m0s, 24h, 10s or 0s$/],
    ['-5s', /^run: invalid duration "-5s" for --stop-timeout/],
    ['48h', /^run: --stop-timeout=48h is longer than a day: give at most 24h$/],
  ])('run --stop-timeout=%s: one line, exit 254, no pod', (value, message) => {
    const before = listJson(env).length;
    const r = rkt(env, shArgs(['--net=host', `--stop-timeout=${value}`], [], 'true'));
    expect(r.status).toBe(254);
    expect(unexpected(r.stderr)).toHaveLength(1);
    expect(unexpected(r.stderr)[0]).toMatch(message);
    expect(listJson(env)).toHaveLength(before);
    for (const state of ['embryo', 'prepare', 'run']) {
      const dir = path.join(env.dir, 'pods', state);
      if (fs.existsSync(dir)) expect(fs.readdirSync(dir).filter((n) => !listJson(env).some((p) => p.name === n))).toEqual([]);
    }
  });

  test('run-prepared --stop-timeout=abc: one line, exit 254, the pod stays prepared', () => {
    const uuid = rkt(env, [INSECURE, 'prepare', '--quiet', BUSYBOX_ACI]).stdout.trim();
    const r = rkt(env, ['run-prepared', '--net=host', '--stop-timeout=abc', uuid]);
    expect(r.status).toBe(254);
    expect(r.stderr).toBe('run-prepared: invalid duration "abc" for --stop-timeout: use forms like 30m0s, 24h, 10s or 0s\n');
    expect(statusJson(env, uuid).state).toBe('prepared');
  });

  test('rkt stop --timeout=abc, or with --force: one line, exit 254, the pod keeps running', async () => {
    const pod = await startPod(env, [INSECURE, 'run', '--net=host', BUSYBOX_ACI, '--exec=/bin/sleep', '--', '1000'], /sleep 1000$/);
    try {
      let r = rkt(env, ['stop', '--timeout=abc', pod.uuid]);
      expect(r.status).toBe(254);
      expect(r.stderr).toBe('stop: invalid duration "abc" for --timeout: use forms like 30m0s, 24h, 10s or 0s\n');
      r = rkt(env, ['stop', '--force', '--timeout=1s', pod.uuid]);
      expect(r.status).toBe(254);
      expect(r.stderr).toMatch(/^stop: --force and --timeout cannot be combined/);
      expect(r.stderr.split('\n')).toHaveLength(2);
      expect(statusJson(env, pod.uuid).state).toBe('running');
    } finally {
      rkt(env, ['stop', pod.uuid]);
      await pod.done;
    }
  });
});
