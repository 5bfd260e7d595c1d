/**
 * A recording fake of the host interface: an in-memory file tree plus a log of every
 * effect, and scripted answers for exec. Unit tests check the plan through it.
 */
import type { ExecOptions, ExecResult, Host } from '../../src/host/host.js';

export interface ExecCall { file: string; args: string[]; opts: ExecOptions }

export class FakeHost implements Host {
  files = new Map<string, string>();
  dirs = new Set<string>(['/']);
  calls: string[] = [];
  execCalls: ExecCall[] = [];
  killed: Array<{ pid: number; signal: NodeJS.Signals | 0 }> = [];
  /** pid -> start time of "live" processes. */
  processes = new Map<number, string>();
  mounts: string[] = [];
  /** Paths whose writes fail, with the error message. */
  failingWrites = new Map<string, string>();
  execHandler: (call: ExecCall) => ExecResult = () => ({ code: 0, stdout: '', stderr: '' });
  clock = new Date('2026-01-01T00:00:00Z');
  /** SIGKILLed pids: as with the kernel, they leave their cgroups only after a while (at the next sleep). */
  dying = new Set<number>();
  /** Pids that SIGKILL does not end (a process stuck in the kernel). */
  unkillable = new Set<number>();

  async exec(file: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const call = { file, args, opts };
    this.execCalls.push(call);
    this.calls.push(`exec ${file} ${args.join(' ')}`);
    return this.execHandler(call);
  }
  readFile(path: string): string | undefined { return this.files.get(path); }
  writeFile(path: string, data: string): void {
    const err = this.tryWriteFile(path, data);
    if (err) throw err;
  }
  tryWriteFile(path: string, data: string): Error | undefined {
    this.calls.push(`write ${path} ${data}`);
    const msg = this.failingWrites.get(path);
    if (msg) return new Error(msg);
    this.files.set(path, data);
    return undefined;
  }
  mkdir(path: string): void {
    const fail = (code: string) => Object.assign(new Error(`${code}: mkdir '${path}'`), { code });
    if (this.exists(path)) throw fail('EEXIST');
    if (!this.dirs.has(path.slice(0, path.lastIndexOf('/')) || '/')) throw fail('ENOENT');
    this.mkdirp(path);
  }
  /** Test set-up: the directory and its parents (recorded as one mkdir). */
  mkdirp(path: string): void {
    this.calls.push(`mkdir ${path}`);
    let p = '';
    for (const part of path.split('/').filter(Boolean)) { p += `/${part}`; this.dirs.add(p); }
  }
  rmdir(path: string): void {
    this.calls.push(`rmdir ${path}`);
    // As the kernel: a cgroup with member processes or child cgroups is busy.
    const members = ['cgroup.procs', 'tasks'].some((f) => (this.files.get(`${path}/${f}`) ?? '').trim() !== '');
    const children = [...this.dirs].some((d) => d.startsWith(`${path}/`));
    if (members || children) throw Object.assign(new Error(`EBUSY: resource or device busy, rmdir '${path}'`), { code: 'EBUSY' });
    this.dirs.delete(path);
    for (const f of [...this.files.keys()]) if (f.startsWith(`${path}/`)) this.files.delete(f);
  }
  exists(path: string): boolean { return this.dirs.has(path) || this.files.has(path); }
  readdir(path: string): string[] {
    const prefix = path.endsWith('/') ? path : `${path}/`;
    const names = new Set<string>();
    for (const p of [...this.dirs, ...this.files.keys()]) {
      if (p.startsWith(prefix)) names.add(p.slice(prefix.length).split('/')[0]);
    }
    names.delete('');
    return [...names].sort();
  }
  kill(pid: number, signal: NodeJS.Signals | 0): boolean {
    this.killed.push({ pid, signal });
    this.calls.push(`kill ${pid} ${signal}`);
    if (signal === 'SIGKILL' && !this.unkillable.has(pid)) this.dying.add(pid);
    return this.processes.has(pid);
  }
  processStartTime(pid: number): string | undefined { return this.processes.get(pid); }
  mountPoints(): string[] { return [...this.mounts]; }
  now(): Date { return this.clock; }
  async sleep(ms: number): Promise<void> {
    this.calls.push(`sleep ${ms}`);
    this.clock = new Date(this.clock.getTime() + ms);
    if (this.dying.size === 0) return;
    for (const [file, text] of this.files) {
      if (!file.endsWith('/cgroup.procs') && !file.endsWith('/tasks')) continue;
      this.files.set(file, text.split('\n').filter((pid) => pid && !this.dying.has(Number(pid))).map((pid) => `${pid}\n`).join(''));
    }
    for (const pid of this.dying) this.processes.delete(pid);
    this.dying.clear();
  }
}
