/**
 * Helpers for the pod integration tests (test/integration/pod-*.test.ts): start pods in
 * the background, read `rkt list/status`, find a pod's processes and cgroups from the
 * host, and tear everything down even when a test failed half-way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ACI, RktEnv, cleanup, rkt, rktBackground, waitFor } from './rkt.js';

export const INSECURE = '--insecure-options=image';

/** Args of `rkt run` for one busybox app running a shell script. */
export function shArgs(podFlags: string[], appFlags: string[], script: string): string[] {
  return [INSECURE, 'run', ...podFlags, BUSYBOX_ACI, ...appFlags, '--exec=/bin/sh', '--', '-c', script];
}

/** Output an app printed as `==name==` header lines followed by content, as a map. */
export function sections(out: string): Record<string, string> {
  const res: Record<string, string> = {};
  let current: string | undefined;
  for (const line of out.split('\n')) {
    const m = /^==([\w.-]+)==$/.exec(line);
    if (m) { current = m[1]; res[current] = ''; continue; }
    if (current !== undefined) res[current] += `${line}\n`;
  }
  for (const k of Object.keys(res)) res[k] = res[k].trim();
  return res;
}

/** rkt's api/v1 JSON (src/cli/api-v1.ts): pod times in seconds, app times in nanoseconds. */
export interface ListedApp { name: string; state: string; image_id: string; exit_code?: number; created_at?: number; started_at?: number; finished_at?: number; user_annotations?: Record<string, string>; user_labels?: Record<string, string> }
export interface ListedPod { name: string; state: string; app_names: string[]; apps: ListedApp[]; created_at?: number; started_at?: number; networks?: Array<{ netName: string; netConf: string; pluginPath: string; ifName: string; ip: string; args: string; mask: string }> }

export function listJson(env: RktEnv): ListedPod[] {
  const r = rkt(env, ['list', '--format=json']);
  if (r.status !== 0) throw new Error(`rkt list failed (${r.status}): ${r.stderr}`);
  // rkt prints `null` when there are no pods (a nil Go slice).
  return (JSON.parse(r.stdout) as ListedPod[] | null) ?? [];
}

export function statusJson(env: RktEnv, uuid: string): ListedPod {
  const r = rkt(env, ['status', '--format=json', uuid]);
  if (r.status !== 0) throw new Error(`rkt status failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as ListedPod;
}

/** `rkt status` text output as key -> value. */
export function statusText(env: RktEnv, uuid: string): Record<string, string> {
  const r = rkt(env, ['status', uuid]);
  if (r.status !== 0) throw new Error(`rkt status failed (${r.status}): ${r.stderr}`);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** The pod's pid as `rkt status` prints it (the process the caller started: it became the pod). */
export function podPid(env: RktEnv, uuid: string): number {
  return Number(statusText(env, uuid).pid);
}

let uuidFiles = 0;

export interface BackgroundPod {
  uuid: string;
  child: ReturnType<typeof rktBackground>['child'];
  done: ReturnType<typeof rktBackground>['done'];
  output: () => { stdout: string; stderr: string };
}

/**
 * Starts `rkt <args>` (a run) in the background with --uuid-file-save and waits until the
 * pod runs: its holder has exec'd stage1, and, if `ready` is given, the app printed that
 * string on stdout (or, for a RegExp, a process of the pod has a matching command line).
 */
export async function startPod(env: RktEnv, args: string[], ready?: string | RegExp, timeoutMs = 15_000): Promise<BackgroundPod> {
  const uuidFile = path.join(env.base, `uuid-${++uuidFiles}`);
  const runAt = args.indexOf('run');
  const withUuid = [...args.slice(0, runAt + 1), `--uuid-file-save=${uuidFile}`, ...args.slice(runAt + 1)];
  const bg = rktBackground(env, withUuid);
  let exited = false;
  void bg.done.then(() => { exited = true; });
  const alive = () => { if (exited) throw new Error(`rkt exited early: ${bg.output().stderr}`); };
  await waitFor(() => { alive(); return fs.existsSync(uuidFile) && fs.readFileSync(uuidFile, 'utf8').length > 0; }, timeoutMs, 'the pod UUID');
  const uuid = fs.readFileSync(uuidFile, 'utf8');
  const stage1 = () => {
    try { return fs.readFileSync(`/proc/${bg.child.pid}/cmdline`, 'utf8').includes(`/${uuid}/stage1/init.table`); } catch { return false; }
  };
  await waitFor(() => { alive(); return stage1() && statusJson(env, uuid).state === 'running'; }, timeoutMs, 'the pod to run');
  if (typeof ready === 'string') await waitFor(() => { alive(); return bg.output().stdout.includes(ready); }, timeoutMs, `"${ready}" from the app`);
  if (ready instanceof RegExp) await waitFor(() => { alive(); return podProcess(env, uuid, ready) !== undefined; }, timeoutMs, `a process like ${ready}`);
  return { uuid, child: bg.child, done: bg.done, output: bg.output };
}

/** Every process as pid -> { ppid, cmdline }. */
export function processTable(): Map<number, { ppid: number; cmdline: string }> {
  const out = new Map<number, { ppid: number; cmdline: string }>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      out.set(Number(name), { ppid, cmdline });
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/** pid and all its descendants. */
export function descendants(pid: number, table = processTable()): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const [p, info] of table) if (info.ppid === out[i]) out.push(p);
  }
  return out;
}

/** Host PID of the process of a running pod whose command line matches `re` (the app, usually). */
export function podProcess(env: RktEnv, uuid: string, re: RegExp): number | undefined {
  const holder = podPid(env, uuid);
  if (!(holder > 0)) return undefined;
  const table = processTable();
  return descendants(holder, table).find((p) => re.test(table.get(p)?.cmdline ?? ''));
}

/** Cgroup dirs named rkt-<uuid> anywhere under /sys/fs/cgroup. */
export function podCgroupDirs(uuid: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 8) return;
    let ents: fs.Dirent[] = [];
    try { ents = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name === `rkt-${uuid}`) found.push(p);
      else if (!e.name.startsWith('rkt-')) walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}

/** Where the v1 hierarchy holding `controller` is mounted. */
export function cgroupMountOf(controller: string): string {
  const mount = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[f.indexOf('-') + 1] === 'cgroup' && f[f.indexOf('-') + 3]?.split(',').includes(controller));
  if (!mount) throw new Error(`no cgroup v1 mount for ${controller}`);
  return mount[4];
}

/** The cgroup dir of a process in one v1 hierarchy ("memory", "cpu", "cpuacct"...). */
export function cgroupOf(pid: number | 'self', controller: string): string {
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes(controller));
  if (!line) throw new Error(`process ${pid} has no ${controller} cgroup`);
  return path.join(cgroupMountOf(controller), line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1));
}

/** What this pod still holds on the host: processes, cgroups, host mounts, its pod dir. */
export function podTraces(env: RktEnv, uuid: string): { procs: string[]; cgroups: string[]; mounts: string[]; dirs: string[] } {
  const table = processTable();
  const procs = [...table].filter(([p, i]) => p !== process.pid && i.cmdline.includes(uuid)).map(([p, i]) => `${p} ${i.cmdline}`);
  const cgroups = podCgroupDirs(uuid);
  for (const dir of cgroups) {
    for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
      if (!f.endsWith('cgroup.procs')) continue;
      for (const p of fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean)) procs.push(`${p} in ${dir}`);
    }
  }
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(uuid) || l.includes(env.base));
  const dirs = podEntries(env).filter((e) => e.includes(uuid));
  return { procs, cgroups, mounts, dirs };
}

/**
 * `state/name` of everything in the env's pod state dirs (pods, and gc's claimed dot-names).
 * Not gc's trash (pods/.gc-trash): what a detached rm is still deleting; see gcTrash.
 */
function podEntries(env: RktEnv): string[] {
  const pods = path.join(env.dir, 'pods');
  if (!fs.existsSync(pods)) return [];
  return fs.readdirSync(pods, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== '.gc-trash')
    .flatMap((d) => fs.readdirSync(path.join(pods, d.name)).map((n) => `${d.name}/${n}`));
}

/** `batch/n` of the pod dirs gc moved to its trash (numbered) that its detached rm has not deleted yet. */
export function gcTrash(env: RktEnv): string[] {
  const trash = path.join(env.dir, 'pods', '.gc-trash');
  if (!fs.existsSync(trash)) return [];
  return fs.readdirSync(trash).flatMap((b) => {
    try { return fs.readdirSync(path.join(trash, b)).map((n) => `${b}/${n}`); } catch { return []; } // deleted meanwhile
  });
}

/** Every pod UUID with a directory in the env, in any state. */
export function podUuids(env: RktEnv): string[] {
  return podEntries(env).map((e) => e.slice(e.indexOf('/') + 1));
}

/** Removes a cgroup dir and its children, deepest first (they must have no processes). */
function removeCgroup(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(path.join(dir, e.name));
  try { fs.rmdirSync(dir); } catch { /* still busy */ }
}

/**
 * Kills whatever is left of the env's pods (even after a failed test), then gc and rm the
 * env; cgroups a broken gc would leave behind are removed by hand, so the machine stays clean.
 */
export async function teardown(env: RktEnv): Promise<void> {
  let uuids: string[] = [];
  try { uuids = podUuids(env); } catch { /* keep going: the env must go anyway */ }
  let pods: ListedPod[] = [];
  try { pods = listJson(env); } catch { /* no data dir */ }
  for (const p of pods.filter((x) => x.state === 'running')) rkt(env, ['stop', '--force', p.name]);
  for (const p of pods) {
    try {
      await waitFor(() => podTraces(env, p.name).procs.length === 0, 5_000, `pod ${p.name} to die`);
    } catch {
      // Last resort: SIGKILL everything naming the pod or in its cgroups.
      for (const line of podTraces(env, p.name).procs) {
        try { process.kill(Number(line.split(' ')[0]), 'SIGKILL'); } catch { /* gone */ }
      }
    }
  }
  cleanup(env);
  for (const u of uuids) for (const dir of podCgroupDirs(u)) removeCgroup(dir);
}

/** Sleeps ms milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A file or link under rootfs/ of a test ACI. */
export interface AciEntry { path: string; type?: 'file' | 'directory' | 'symlink'; content?: string | Buffer; mode?: number; linkname?: string }

/**
 * Writes a small uncompressed ACI whose rootfs holds the host's static busybox as /bin/busybox,
 * `applets` as links to it, and `extra` entries. The manifest's app has no environment.
 */
export async function buildBusyboxAci(file: string, name: string, applets: string[], extra: AciEntry[], app: Record<string, unknown> = {}, manifestExtra: Record<string, unknown> = {}): Promise<void> {
  const { pack } = await import('tar-stream');
  const p = pack();
  const out = fs.createWriteStream(file);
  const written = new Promise<void>((resolve, reject) => { out.on('finish', resolve); out.on('error', reject); p.on('error', reject); });
  p.pipe(out);
  const manifest = {
    acKind: 'ImageManifest', acVersion: '0.8.11', name,
    labels: [{ name: 'version', value: '1.0.0' }, { name: 'os', value: 'linux' }, { name: 'arch', value: 'amd64' }],
    app: { exec: ['/bin/sh'], user: '0', group: '0', ...app },
    ...manifestExtra,
  };
  p.entry({ name: 'manifest', mode: 0o644 }, JSON.stringify(manifest));
  const entries: AciEntry[] = [
    { path: 'bin', type: 'directory' },
    { path: 'bin/busybox', content: fs.readFileSync('/bin/busybox'), mode: 0o755 },
    ...applets.map((a): AciEntry => ({ path: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    ...extra,
  ];
  p.entry({ name: 'rootfs', type: 'directory', mode: 0o755 });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: `rootfs/${e.path}`, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), linkname: e.linkname };
    if (type === 'file') p.entry(header, e.content ?? '');
    else p.entry(header);
  }
  p.finalize();
  await written;
}
