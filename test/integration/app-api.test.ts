/**
 * rkt's app-level API: a sandbox pod, apps added, started, stopped and removed while it runs,
 * each step checked from inside the app and on the host; then the hostile inputs.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RktEnv, describeIf, hostFootprint, makeEnv, rkt, rktBackground, skipReason, waitFor } from '../helpers/rkt.js';
import { INSECURE, listJson, podCgroupDirs, podTraces, processTable, startPod, statusJson, statusText, teardown } from '../helpers/pods.js';

const suite = describeIf(skipReason());

/** One line, exit 254: how every refusal must look. */
function refused(r: { status: number | null; stderr: string }, re: RegExp): void {
  expect(r.status).toBe(254);
  expect(r.stderr).toMatch(/^[^\n]+\n$/);
  expect(r.stderr).toMatch(re);
}

interface Sandbox { uuid: string; dir: string; done: Promise<{ code: number | null; stdout: string; stderr: string }>; output: () => { stdout: string; stderr: string } }

let sandboxes = 0;
async function sandbox(env: RktEnv, flags: string[]): Promise<Sandbox> {
  const file = path.join(env.base, `sandbox-${++sandboxes}`);
  const bg = rktBackground(env, [INSECURE, 'app', 'sandbox', `--uuid-file-save=${file}`, ...flags]);
  let exited = false;
  void bg.done.then(() => { exited = true; });
  await waitFor(() => { if (exited) throw new Error(`app sandbox exited: ${bg.output().stderr}`); return fs.existsSync(file) && fs.readFileSync(file, 'utf8').length > 0; }, 15_000, 'the sandbox UUID');
  const uuid = fs.readFileSync(file, 'utf8');
  expect(rkt(env, ['status', '--wait-ready=15s', uuid]).status).toBe(0);
  return { uuid, dir: path.join(env.dir, 'pods', 'run', uuid), done: bg.done, output: bg.output };
}

/** The app cgroups under the pod's (v2's stage1 leaf is the pod's own). */
const appCgroups = (uuid: string) => podCgroupDirs(uuid).flatMap((d) => fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== 'stage1.init').map((e) => path.join(d, e.name)));

const appsJson = (env: RktEnv, uuid: string) => JSON.parse(rkt(env, ['app', 'list', '--format=json', uuid]).stdout) as Array<{ name: string; state: string; exit_code?: number; created_at?: number; started_at?: number; finished_at?: number; image_id: string }> | null;
const appStatus = (env: RktEnv, uuid: string, app: string) => Object.fromEntries(rkt(env, ['app', 'status', `--app=${app}`, uuid]).stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));

suite('rkt app: the app-level API', () => {
  let env: RktEnv;
  beforeAll(() => { env = makeEnv(); });
  afterAll(async () => { await teardown(env); });

  test('rkt help lists the app commands, none of them "not implemented"', () => {
    const help = rkt(env, ['help', 'app']);
    expect(help.status).toBe(0);
    for (const sub of ['sandbox', 'add', 'start', 'stop', 'rm', 'list', 'status', 'exec']) expect(help.stdout).toMatch(new RegExp(`^  ${sub} +\\S`, 'm'));
    expect(help.stdout).not.toMatch(/not implemented/);
    expect(rkt(env, ['help']).stdout).toMatch(/^ {2}app +Operate on the apps of a pod: rkt's app-level API\n/m);
  });

  test('sandbox, add, start, exec, stop, status, rm, then stop the sandbox: nothing left behind', async () => {
    const vol = path.join(env.base, 'vol');
    fs.mkdirSync(vol);
    const sb = await sandbox(env, ['--net=default', '--hostname=sandbox-1', `--volume=data,kind=host,source=${vol}`]);
    expect(appsJson(env, sb.uuid)).toBeNull();
    const ours = () => Object.values(hostFootprint()).flat().filter((l) => l.includes(sb.uuid));
    expect(fs.existsSync(`/var/run/netns/rkt-${sb.uuid}`)).toBe(true);

    const add = rkt(env, [INSECURE, 'app', 'add', sb.uuid, BUSYBOX_ACI, '--name=web', '--exec=/bin/sh', '--', '-c',
      'echo $$ > /tmp/pid; hostname > /data/.hostname && mv /data/.hostname /data/hostname; echo started-web; exec sleep 1000']);
    expect(add.status).toBe(0);
    expect(appsJson(env, sb.uuid)).toEqual([expect.objectContaining({ name: 'web', state: 'created' })]);
    expect(appStatus(env, sb.uuid, 'web')).toMatchObject({ name: 'web', state: 'created' });
    expect(statusJson(env, sb.uuid).apps).toEqual([expect.objectContaining({ name: 'web', state: 'created' })]);
    expect(fs.existsSync(path.join(vol, 'hostname'))).toBe(false);

    // The sandbox's output here is a socket (Node's pipes are socketpairs): the app logs to a file.
    const log = path.join(sb.dir, 'stage1', 'log', 'web');
    const start = rkt(env, ['app', 'start', '--app=web', sb.uuid]);
    expect(start.status).toBe(0);
    expect(start.stderr).toBe(`start: warning: the pod's output cannot be reopened (a socket): app "web" writes to ${log}\n`);
    await waitFor(() => fs.existsSync(path.join(vol, 'hostname')), 15_000, 'the app to write to its volume');
    expect(fs.readFileSync(path.join(vol, 'hostname'), 'utf8')).toBe('sandbox-1\n');
    await waitFor(() => fs.readFileSync(log, 'utf8').includes('started-web\n'), 5_000, "the app's output in its log");
    expect(appsJson(env, sb.uuid)).toEqual([expect.objectContaining({ name: 'web', state: 'running' })]);
    expect(statusJson(env, sb.uuid).apps).toEqual([expect.objectContaining({ name: 'web', state: 'running' })]);

    // Inside: the app's own files, the pod's PID namespace, the app a child of the pod's PID 1,
    // the pod's network (an eth0 from CNI), and no way to PID 1's root.
    const inside = rkt(env, ['app', 'exec', '--app=web', sb.uuid, '--', '/bin/sh', '-c',
      'p=$(cat /tmp/pid); grep PPid /proc/$p/status; cat /proc/$p/comm; ip -o link | grep -c eth0; ls /proc/1/root/ 2>&1 >/dev/null | grep -c denied']);
    expect(inside.stderr).toBe('');
    expect(inside.stdout.split('\n')).toEqual(['PPid:\t1', 'sleep', '1', '1', '']);
    // On the host: the app is in its own cgroup of the pod's.
    const sleeper = [...processTable()].find(([, p]) => p.cmdline === 'sleep 1000' && fs.readFileSync(`/proc/${p.ppid}/cmdline`, 'utf8').includes(`/${sb.uuid}/stage1/init.table`));
    expect(sleeper).toBeDefined();
    expect(fs.readFileSync(`/proc/${sleeper![0]}/cgroup`, 'utf8')).toContain(`/rkt-${sb.uuid}/web\n`);

    expect(rkt(env, ['app', 'stop', '--app=web', sb.uuid]).status).toBe(0);
    expect(appStatus(env, sb.uuid, 'web')).toMatchObject({ name: 'web', state: 'exited', exit_code: '143' });
    const [web] = appsJson(env, sb.uuid)!;
    expect(web).toMatchObject({ name: 'web', state: 'exited', exit_code: 143 });
    // rkt status and rkt list of the sandbox tell the same.
    expect(statusJson(env, sb.uuid).apps).toEqual([web]);
    expect(listJson(env).find((p) => p.name === sb.uuid)?.apps).toEqual([web]);
    expect(web.created_at! <= web.started_at! && web.started_at! <= web.finished_at!).toBe(true);

    expect(rkt(env, ['app', 'rm', '--app=web', sb.uuid]).status).toBe(0);
    expect(appsJson(env, sb.uuid)).toBeNull();
    for (const d of ['overlay', 'volumes', 'rkt/pid', 'rkt/status', 'rkt/created']) expect(fs.readdirSync(path.join(sb.dir, d))).toEqual([]);
    expect(fs.readdirSync(path.join(sb.dir, 'stage1')).filter((f) => f.includes('web'))).toEqual([]);
    expect(podCgroupDirs(sb.uuid).length).toBeGreaterThan(0);
    expect(appCgroups(sb.uuid)).toEqual([]);
    expect(JSON.parse(rkt(env, ['cat-manifest', sb.uuid]).stdout).apps).toEqual([]);

    // The sandbox outlives its apps; a second one, of another user, is still running when it stops.
    expect(rkt(env, [INSECURE, 'app', 'add', sb.uuid, BUSYBOX_ACI, '--name=other', '--user=1000', '--exec=/bin/sleep', '--', '1000']).status).toBe(0);
    expect(rkt(env, ['app', 'start', '--app=other', sb.uuid]).status).toBe(0);
    expect(rkt(env, ['stop', sb.uuid]).status).toBe(0);
    const done = await sb.done;
    expect(done.code).toBe(0);
    expect(statusText(env, sb.uuid)).toMatchObject({ state: 'exited' });
    expect(appStatus(env, sb.uuid, 'other')).toMatchObject({ state: 'exited', exit_code: '143' });
    expect(podTraces(env, sb.uuid).procs).toEqual([]);
    expect(rkt(env, ['gc', '--grace-period=0s']).status).toBe(0);
    // Other pods of this host may come and go meanwhile: only this one's traces count.
    expect(ours()).toEqual([]);
    expect(podTraces(env, sb.uuid)).toEqual({ procs: [], cgroups: [], mounts: [], dirs: [] });
  });

  test('an added app is confined exactly as the same app of rkt run: capabilities, ids, seccomp, mounts, /dev, cgroups, limits', async () => {
    const script = [
      'grep -E "^(Cap|Seccomp|NoNewPrivs|Uid|Gid|Groups)" /proc/self/status',
      'cut -d" " -f5,6 /proc/self/mountinfo | sort',
      'ls -l /dev | cut -c1-10,30-',
      'sed "s/rkt-[0-9a-f-]*/POD/" /proc/self/cgroup',
      'ulimit -a; umask; echo end',
    ].join('; ');
    const app = ['--name=c', '--user=1000', '--caps-retain=CAP_NET_BIND_SERVICE', '--exec=/bin/sh', '--', '-c', script];
    const run = rkt(env, [INSECURE, 'run', '--net=none', BUSYBOX_ACI, ...app]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^Uid:\t1000\t[\s\S]*\nCapBnd:\t0+400\n[\s\S]*\nSeccomp:\t2\n[\s\S]*\nend\n$/);
    const sb = await sandbox(env, ['--net=none']);
    expect(rkt(env, [INSECURE, 'app', 'add', sb.uuid, BUSYBOX_ACI, ...app]).status).toBe(0);
    expect(rkt(env, ['app', 'start', '--app=c', sb.uuid]).status).toBe(0);
    const log = path.join(sb.dir, 'stage1', 'log', 'c');
    await waitFor(() => fs.readFileSync(log, 'utf8').endsWith('\nend\n'), 10_000, 'the app');
    expect(fs.readFileSync(log, 'utf8')).toBe(run.stdout);
    expect(rkt(env, ['stop', sb.uuid]).status).toBe(0);
    expect((await sb.done).code).toBe(0);
  });

  test('an app that fails leaves the sandbox and its other apps running; its status is its own', async () => {
    const sb = await sandbox(env, ['--net=none']);
    for (const [name, script] of [['bad', 'exit 3'], ['good', 'exec sleep 1000']]) {
      expect(rkt(env, [INSECURE, 'app', 'add', sb.uuid, BUSYBOX_ACI, `--name=${name}`, '--exec=/bin/sh', '--', '-c', script]).status).toBe(0);
      expect(rkt(env, ['app', 'start', `--app=${name}`, sb.uuid]).status).toBe(0);
    }
    // A program the image does not have: said in the app's output, 127 as a shell would.
    expect(rkt(env, [INSECURE, 'app', 'add', sb.uuid, BUSYBOX_ACI, '--name=missing', '--exec=/no/such']).status).toBe(0);
    expect(rkt(env, ['app', 'start', '--app=missing', sb.uuid]).status).toBe(0);
    await waitFor(() => appStatus(env, sb.uuid, 'bad').state === 'exited' && appStatus(env, sb.uuid, 'missing').state === 'exited', 10_000, 'the failing apps');
    expect(appStatus(env, sb.uuid, 'bad')).toMatchObject({ exit_code: '3' });
    expect(appStatus(env, sb.uuid, 'missing')).toMatchObject({ exit_code: '127' });
    expect(fs.readFileSync(path.join(sb.dir, 'stage1', 'log', 'missing'), 'utf8')).toBe('Error: Unable to open "/no/such": No such file or directory\n');
    expect(appStatus(env, sb.uuid, 'good')).toMatchObject({ state: 'running' });
    expect(statusText(env, sb.uuid)).toMatchObject({ state: 'running' });
    expect(rkt(env, ['app', 'exec', '--app=good', sb.uuid, '--', '/bin/true']).status).toBe(0);
    // rkt enter's grammar too: the command right after the UUID, and its exit status.
    expect(rkt(env, ['app', 'exec', '--app=good', sb.uuid, '/bin/sh', '-c', 'exit 7']).status).toBe(7);
    refused(rkt(env, ['app', 'exec', '--app=good', sb.uuid]), /needs a command/);
    // Restarting means removing and adding again.
    expect(rkt(env, ['app', 'rm', '--app=bad', sb.uuid]).status).toBe(0);
    expect(appsJson(env, sb.uuid)!.map((a) => a.name)).toEqual(['good', 'missing']);
    expect(rkt(env, ['stop', sb.uuid]).status).toBe(0);
    expect((await sb.done).code).toBe(0);
  });

  test('hostile and wrong inputs: one line, exit 254, nothing changed', async () => {
    const sb = await sandbox(env, ['--net=none']);
    const manifest = () => rkt(env, ['cat-manifest', sb.uuid]).stdout;
    const entries = () => ['overlay', 'stage1', 'rkt', 'rkt/pid', 'rkt/status', 'volumes'].flatMap((d) => fs.readdirSync(path.join(sb.dir, d)).map((e) => `${d}/${e}`)).sort();
    const cgroups = () => [...podCgroupDirs(sb.uuid), ...appCgroups(sb.uuid)].sort();
    const was = { manifest: manifest(), entries: entries(), cgroups: cgroups() };
    const unchanged = () => expect({ manifest: manifest(), entries: entries(), cgroups: cgroups() }).toEqual(was);

    for (const name of ['../evil', 'a/b', '..']) {
      refused(rkt(env, [INSECURE, 'app', 'add', sb.uuid, BUSYBOX_ACI, `--name=${name}`]), /invalid app name/);
      for (const cmd of ['start', 'stop', 'rm', 'status']) refused(rkt(env, ['app', cmd, `--app=${name}`, sb.uuid]), /invalid app name/);
      refused(rkt(env, ['app', 'exec', `--app=${name}`, sb.uuid, '--', '/bin/true']), /invalid app name/);
    }
    unchanged();
    refused(rkt(env, ['app', 'start', '--app=nope', sb.uuid]), /has no app "nope"/);
    refused(rkt(env, ['app', 'start', sb.uuid]), /no app given/);
    refused(rkt(env, [INSECURE, 'app', 'sandbox', BUSYBOX_ACI]), /takes no image/);
    refused(rkt(env, [INSECURE, 'app', 'sandbox', '--private-users']), /--private-users is not supported/);
    refused(rkt(env, [INSECURE, 'app', 'add', sb.uuid, path.join(env.base, 'missing.aci')]), /missing\.aci/);
    unchanged();

    expect(rkt(env, [INSECURE, 'app', 'add', sb.uuid, BUSYBOX_ACI, '--name=app', '--exec=/bin/sleep', '--', '1000']).status).toBe(0);
    refused(rkt(env, [INSECURE, 'app', 'add', sb.uuid, BUSYBOX_ACI, '--name=app']), /"app" is used twice/);
    refused(rkt(env, ['app', 'stop', '--app=app', sb.uuid]), /is created, not running/);
    expect(rkt(env, ['app', 'start', '--app=app', sb.uuid]).status).toBe(0);
    refused(rkt(env, ['app', 'start', '--app=app', sb.uuid]), /is running: an app starts once/);
    refused(rkt(env, ['app', 'rm', '--app=app', sb.uuid]), /is running: stop it first/);
    expect(appStatus(env, sb.uuid, 'app')).toMatchObject({ state: 'running' });

    // A pod of rkt run is not a sandbox.
    const pod = await startPod(env, [INSECURE, 'run', '--net=none', BUSYBOX_ACI, '--exec=/bin/sleep', '--', '1000'], /sleep 1000$/);
    refused(rkt(env, [INSECURE, 'app', 'add', pod.uuid, BUSYBOX_ACI, '--name=x']), /is not a sandbox/);
    refused(rkt(env, ['app', 'start', '--app=busybox', pod.uuid]), /is not a sandbox/);
    expect(rkt(env, ['stop', pod.uuid]).status).toBe(0);
    await pod.done;

    // A stopped sandbox takes no app.
    expect(rkt(env, ['stop', sb.uuid]).status).toBe(0);
    expect((await sb.done).code).toBe(0);
    refused(rkt(env, [INSECURE, 'app', 'add', sb.uuid, BUSYBOX_ACI, '--name=late']), /is exited, not running/);
    refused(rkt(env, ['app', 'start', '--app=app', sb.uuid]), /is exited, not running/);
    expect(appStatus(env, sb.uuid, 'app')).toMatchObject({ state: 'exited', exit_code: '143' });
  });
});
