/**
 * The narrow interface between rkt's logic and the machine: every host effect that is
 * not a plain file in rkt's own data dir (cgroup writes, process spawns such as CNI
 * plugins and umount, signals, /proc reads) goes through it. `RealHost` does it;
 * `FakeHost` (test/helpers) records it, so plans are unit-testable without root.
 */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string;
  env?: Record<string, string>;
  /** Start from an empty environment plus `env` (CNI plugins get exactly what we pass). */
  cleanEnv?: boolean;
  timeoutMs?: number;
}

export interface Host {
  /** Runs a program to completion; never throws for a non-zero exit. */
  exec(file: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
  readFile(path: string): string | undefined;
  writeFile(path: string, data: string): void;
  /** Like writeFile, but for kernel files that may refuse a value: returns the error. */
  tryWriteFile(path: string, data: string): Error | undefined;
  /** Creates one directory; throws (code EEXIST) if the path exists, ENOENT if its parent does not. */
  mkdir(path: string): void;
  rmdir(path: string): void;
  exists(path: string): boolean;
  readdir(path: string): string[];
  kill(pid: number, signal: NodeJS.Signals | 0): boolean;
  /** The start time of a process (field 22 of /proc/PID/stat), or undefined if it is gone. */
  processStartTime(pid: number): string | undefined;
  /** Mount points (field 5 of /proc/self/mountinfo), unescaped. */
  mountPoints(): string[];
  now(): Date;
  /** Waits; the fake advances its clock instead, so bounded waits are testable. */
  sleep(ms: number): Promise<void>;
}
