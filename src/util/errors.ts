/** rkt's own failures exit 254; apps' statuses pass through unchanged. */
import path from 'node:path';

export const RKT_FAILURE = 254;

/** An error meant for the user: one line that names the problem and the fix. */
export class RktError extends Error {
  /** `cause`: the host error behind it, if any (hostFaultMessage looks through to it). */
  constructor(message: string, readonly exitCode: number = RKT_FAILURE, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'RktError';
  }
}

export function fail(message: string, exitCode: number = RKT_FAILURE): never {
  throw new RktError(message, exitCode);
}

/** The data dir of the command being run (set once by cli.ts): its host faults get one clear line. */
let faultDir: string | undefined;
export function setDataDirForErrors(dir: string | undefined): void { faultDir = dir; }

/** The one place errors become text: a host fault on the data dir is said as such. */
export function errorMessage(err: unknown): string {
  const fault = hostFaultMessage(err, faultDir);
  if (fault) return fault;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Errors the host's state causes (full, read-only, not ours to write) rather than rkt or its input. */
const HOST_FAULTS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM']);

/** The errno error behind `err` (itself or its causes) whose code is a host fault. */
export function hostFault(err: unknown): NodeJS.ErrnoException | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const n = e as NodeJS.ErrnoException;
    if (n.code && HOST_FAULTS.has(n.code)) return n;
  }
  return undefined;
}

/** What the failed call was doing, in words. */
function doing(syscall: string | undefined): string {
  switch (syscall) {
    case 'mkdir': return 'create directory';
    case 'scandir': case 'opendir': return 'list';
    case 'rename': return 'rename';
    case 'unlink': case 'rmdir': case 'rm': return 'remove';
    case 'chmod': case 'fchmod': case 'chown': case 'fchown': case 'lchown': return 'change owner or mode of';
    case 'open': case 'write': case 'copyfile': case 'symlink': case 'link': case 'utime': case 'futime': return 'write';
    case 'stat': case 'lstat': case 'access': case 'read': return 'read';
    default: return 'use';
  }
}

function inside(p: string, dir: string): boolean {
  const rel = path.relative(dir, path.resolve(p));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * One line for a host fault on a path in the data dir: which dir, what rkt needed to do
 * there and how to fix it. Undefined for any other error (it keeps its own message).
 */
export function hostFaultMessage(err: unknown, dataDir: string | undefined): string | undefined {
  const e = hostFault(err);
  if (!e || !dataDir) return undefined;
  const paths = [e.path, (e as { dest?: string }).dest].filter((p): p is string => !!p);
  const where = paths.find((p) => inside(p, dataDir));
  let what: string;
  if (where) what = `${doing(e.syscall)} ${path.relative(dataDir, path.resolve(where)) || '.'}`;
  // A write(2) on an fd names no file; rkt's writes of any size go to the data dir.
  else if (paths.length === 0 && (e.code === 'ENOSPC' || e.code === 'EDQUOT')) what = 'write a file';
  else return undefined;
  switch (e.code) {
    case 'ENOSPC':
      return `no space left in the data directory ${dataDir} (needed to ${what}): free space in ${dataDir} or use --dir to choose another data directory`;
    case 'EDQUOT':
      return `disk quota exceeded in the data directory ${dataDir} (needed to ${what}): free space in ${dataDir}, raise the quota, or use --dir to choose another data directory`;
    case 'EROFS':
      return `the data directory ${dataDir} is on a read-only filesystem (needed to ${what}): remount it read-write or use --dir to choose a writable data directory`;
    default:
      return `permission denied in the data directory ${dataDir} (needed to ${what}): run as root (members of group "rkt" may list pods and images, read status and fetch)`;
  }
}
