import fs from 'node:fs';
import type { ExecOptions, ExecResult, Host } from './host.js';

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export class RealHost implements Host {
  async exec(file: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    // execa loads lazily: the `rkt run` fast path spawns nothing from Node.
    const { execa } = await import('execa');
    const r = await execa(file, args, {
      env: opts.env ?? {},
      extendEnv: !opts.cleanEnv,
      input: opts.input ?? '',
      timeout: opts.timeoutMs,
      reject: false,
      stripFinalNewline: false,
    });
    const code = typeof r.exitCode === 'number' ? r.exitCode : r.failed ? 127 : 128 + 9;
    return { code, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') + (r.exitCode === undefined && r.failed ? r.message : '') };
  }

  readFile(path: string): string | undefined {
    try { return fs.readFileSync(path, 'utf8'); } catch { return undefined; }
  }

  writeFile(path: string, data: string): void { fs.writeFileSync(path, data); }

  tryWriteFile(path: string, data: string): Error | undefined {
    try { fs.writeFileSync(path, data); return undefined; } catch (e) { return e as Error; }
  }

  mkdir(path: string): void { fs.mkdirSync(path); }

  rmdir(path: string): void {
    try { fs.rmdirSync(path); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
  }

  exists(path: string): boolean { return fs.existsSync(path); }

  readdir(path: string): string[] {
    try { return fs.readdirSync(path); } catch { return []; }
  }

  kill(pid: number, signal: NodeJS.Signals | 0): boolean {
    try { process.kill(pid, signal); return true; } catch { return false; }
  }

  processStartTime(pid: number): string | undefined {
    // Most holders `rkt list` asks about are dead: a failed access(2) costs less than a thrown ENOENT.
    if (!fs.existsSync(`/proc/${pid}/stat`)) return undefined;
    const stat = this.readFile(`/proc/${pid}/stat`);
    if (!stat) return undefined;
    // comm (field 2) may hold spaces and parens; fields after the last ')' are plain.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie is dead: it only waits for its parent (maybe a slow init) to reap it.
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return fields[19];
  }

  mountPoints(): string[] {
    const info = this.readFile('/proc/self/mountinfo') ?? '';
    return info.split('\n').filter(Boolean).map((l) => unescapeMount(l.split(' ')[4]));
  }

  now(): Date { return new Date(); }

  sleep(ms: number): Promise<void> { return new Promise((resolve) => setTimeout(resolve, ms)); }
}

export const realHost = new RealHost();
