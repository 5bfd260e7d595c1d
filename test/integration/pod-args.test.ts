/**
 * Flags are checked before a pod exists: each bad run/prepare/run-prepared flag is one
 * line, exit 254, and leaves nothing in `rkt list` or under pods/. `rkt stop` and
 * `rkt rm` with several UUIDs handle each one and fail if any failed, as rkt.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RktEnv, describeIf, makeEnv, rkt, skipReason, waitFor } from '../helpers/rkt.js';
import { INSECURE, listJson, podTraces, podUuids, shArgs, startPod, statusJson, teardown } from '../helpers/pods.js';

const suite = describeIf(skipReason());

/** The error line of a failed rkt command: its last stderr line. */
function errorLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  return lines[lines.length - 1];
}

/** Everything under pods/<state>/ (the state dirs themselves may exist). */
function podDirEntries(env: RktEnv): string[] {
  const pods = path.join(env.dir, 'pods');
  if (!fs.existsSync(pods)) return [];
  return fs.readdirSync(pods, { withFileTypes: true }).filter((d) => d.isDirectory())
    .flatMap((d) => fs.readdirSync(path.join(pods, d.name)).map((n) => `${d.name}/${n}`));
}

function expectRejected(env: RktEnv, cmd: string, r: { status: number | null; stdout: string; stderr: string }, problem: RegExp): void {
  expect(errorLine(r.stderr)).toMatch(new RegExp(`^${cmd}: `));
  expect(errorLine(r.stderr)).toMatch(problem);
  expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
  expect(r.status).toBe(254);
  expect(listJson(env)).toEqual([]);
  expect(podDirEntries(env)).toEqual([]);
}

suite('validate first, create second', () => {
  let env: RktEnv;
  beforeAll(() => {
    env = makeEnv();
    // The image is in the store first, so each case below is about its flag only.
    expect(rkt(env, [INSECURE, 'fetch', BUSYBOX_ACI]).status).toBe(0);
  });
  afterAll(async () => { await teardown(env); });

  const runCases: Array<[string, string[], RegExp]> = [
    ['a --port with a bad host port', ['--port=http:99999'], /--port "http:99999".*1 to 65535/],
    ['a --port naming no port of the image', ['--port=nope:8080'], /no app in this pod declares a port named "nope"/],
    ['a --port with --net=host', ['--net=host', '--port=http:8080'], /--port cannot be used with --net=host/],
    ['a --port with --net=none', ['--net=none', '--port=http:8080'], /--port cannot be used with --net=none/],
    ['a bad --dns', ['--dns=not-an-ip'], /invalid IP passed to --dns: "not-an-ip"/],
    ['--dns=host with another server', ['--dns=host', '--dns=8.8.8.8'], /--dns=host cannot be combined/],
    ['a --dns-search with a newline', ['--dns=8.8.8.8', '--dns-search=a\nnameserver 6.6.6.6'], /invalid --dns-search/],
    ['a --dns-opt with a space', ['--dns=8.8.8.8', '--dns-opt=debug rotate'], /invalid --dns-opt/],
    ['a --net naming an unknown network', ['--net=nosuchnet'], /failed to setup network: network "nosuchnet" not found in /],
    ['a --net with a bad argument', ['--net=default:IP'], /--net: bad argument "IP"/],
    ['--net=host with another network', ['--net=host,default'], /--net=host cannot be combined/],
    ['--interactive with two apps', ['--interactive'], /--interactive works with one app only/],
    ['a --hostname with a space', ['--hostname=a b'], /invalid --hostname "a b"/],
    ['a --hostname longer than 64 bytes', [`--hostname=${'h'.repeat(65)}`], /invalid --hostname/],
    ['a bad --ipc', ['--ipc=shared'], /invalid --ipc "shared"/],
    ['a bad --hosts-entry', ['--hosts-entry=nohost'], /bad --hosts-entry "nohost"/],
    ['a host volume whose source is missing', ['--volume=data,kind=host,source=/nonexistent/rkt-it'], /volume "data".*\/nonexistent\/rkt-it/],
    ['a bad --volume kind', ['--volume=data,kind=weird'], /data/],
    ['a --uuid-file-save in a missing dir', ['--uuid-file-save=/nonexistent/rkt-it/uuid'], /--uuid-file-save \/nonexistent\/rkt-it\/uuid/],
  ];
  test.each(runCases)('run with %s: one line, exit 254, no pod', (_what, flags, problem) => {
    // Two apps for --interactive; one otherwise.
    const second = flags.includes('--interactive') ? ['---', BUSYBOX_ACI, '--name=second', '--exec=/bin/true'] : [];
    const r = rkt(env, [INSECURE, 'run', ...flags, BUSYBOX_ACI, '--exec=/bin/true', ...second]);
    expectRejected(env, 'run', r, problem);
  });

  test('a bad --mount target volume: one line, exit 254, no pod', () => {
    const r = rkt(env, [INSECURE, 'run', BUSYBOX_ACI, '--mount=volume=nosuch,target=/data', '--exec=/bin/true']);
    expectRejected(env, 'run', r, /nosuch/);
  });

  const prepareCases: Array<[string, string[], RegExp]> = [
    ['a --port naming no port of the image', ['--port=nope:8080'], /no app in this pod declares a port named "nope"/],
    ['a bad --dns', ['--dns=300.1.1.1'], /invalid IP passed to --dns/],
    ['a bad --hostname', ['--hostname=-x'], /invalid --hostname/],
  ];
  test.each(prepareCases)('prepare with %s: one line, exit 254, no pod', (_what, flags, problem) => {
    const r = rkt(env, [INSECURE, 'prepare', ...flags, BUSYBOX_ACI, '--exec=/bin/true']);
    expectRejected(env, 'prepare', r, problem);
  });

  test('run-prepared with a flag its pod cannot take leaves the pod prepared, and it still runs', () => {
    const p = rkt(env, [INSECURE, 'prepare', '--quiet', '--port=http:18080', BUSYBOX_ACI, '--exec=/bin/true']);
    expect(p.status).toBe(0);
    const uuid = p.stdout.trim();
    for (const flags of [['--net=host'], ['--hostname=a b'], ['--dns=bad']]) {
      const r = rkt(env, ['run-prepared', ...flags, uuid]);
      expect(r.status).toBe(254);
      expect(errorLine(r.stderr)).toMatch(/^run-prepared: /);
      expect(statusJson(env, uuid).state).toBe('prepared');
    }
    // App flags and arguments belong to prepare: refused, not dropped.
    for (const after of [['--exec=/bin/false'], ['--', 'x']]) {
      const r = rkt(env, ['run-prepared', '--net=default', uuid, ...after]);
      expect(r.status).toBe(254);
      expect(errorLine(r.stderr)).toBe('run-prepared: app flags and arguments are not taken after the UUID: give them to "rkt prepare"');
      expect(statusJson(env, uuid).state).toBe('prepared');
    }
    expect(rkt(env, ['run-prepared', '--net=default', uuid]).status).toBe(0);
    expect(statusJson(env, uuid).state).toBe('exited');
    expect(rkt(env, ['rm', uuid]).status).toBe(0);
    expect(podDirEntries(env)).toEqual([]);
  });
});

suite('stop and rm with several UUIDs', () => {
  let env: RktEnv;
  const MISSING = '0badc0de-0000-4000-8000-000000000000';
  beforeAll(() => { env = makeEnv(); });
  afterAll(async () => { await teardown(env); });

  const sleeper = () => shArgs(['--net=host'], [], 'echo up; exec sleep 1000');

  test('stop A MISSING B stops A and B, names MISSING on stderr and exits 254', async () => {
    const a = await startPod(env, sleeper(), 'up');
    const b = await startPod(env, sleeper(), 'up');
    const r = rkt(env, ['stop', a.uuid, MISSING, b.uuid]);
    expect(r.stdout).toBe(`"${a.uuid}"\n"${b.uuid}"\n`);
    expect(r.stderr).toMatch(new RegExp(`no matches found for "${MISSING}"`));
    expect(r.stderr).toMatch(/failed to stop 1 of 3 pod\(s\)/);
    expect(r.status).toBe(254);
    await a.done;
    await b.done;
    expect(statusJson(env, a.uuid).state).toBe('exited');
    expect(statusJson(env, b.uuid).state).toBe('exited');

    // rm: both exited pods go, the missing one is reported, exit 254.
    const rm = rkt(env, ['rm', a.uuid, MISSING, b.uuid]);
    expect(rm.stdout).toBe(`"${a.uuid}"\n"${b.uuid}"\n`);
    expect(rm.stderr).toMatch(new RegExp(`no matches found for "${MISSING}"`));
    expect(rm.stderr).toMatch(/failed to remove 1 of 3 pod\(s\)/);
    expect(rm.status).toBe(254);
    expect(podUuids(env)).toEqual([]);
    for (const u of [a.uuid, b.uuid]) expect(podTraces(env, u)).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
  });

  test('rm RUNNING EXITED removes the exited pod, keeps the running one and exits 254', async () => {
    const done = rkt(env, shArgs(['--net=host'], [], 'exit 0'));
    expect(done.status).toBe(0);
    const exited = listJson(env).find((p) => p.state === 'exited')!.name;
    const running = await startPod(env, sleeper(), 'up');
    const r = rkt(env, ['rm', running.uuid, exited]);
    expect(r.stdout).toBe(`"${exited}"\n`);
    expect(r.stderr).toMatch(new RegExp(`pod "${running.uuid}" is currently running`));
    expect(r.status).toBe(254);
    expect(statusJson(env, running.uuid).state).toBe('running');
    expect(podUuids(env)).toEqual([running.uuid]);

    // All good: exit 0 and nothing on stderr about failures.
    const s = rkt(env, ['stop', running.uuid]);
    expect(s.status).toBe(0);
    await running.done;
    await waitFor(() => statusJson(env, running.uuid).state === 'exited', 10_000, 'the pod to exit');
    const rm = rkt(env, ['rm', running.uuid]);
    expect(rm.stderr).not.toMatch(/failed/);
    expect(rm.status).toBe(0);
  });
});
