/**
 * An app's seccomp filter: from rkt's interface (the `--seccomp` flag, the
 * `os/linux/seccomp-{remove,retain}-set` isolators, `--insecure-options=seccomp`) to a
 * description (SeccompSpec), and from that to the classic BPF program the stage1
 * helper loads (src/stage1/helper/rkt-helper.c). Generated here so that the exact
 * program is unit-tested; the helper only hands it to the kernel.
 *
 * Rules (rkt's, except where noted):
 * - No flag and no isolator: allow only @rkt/default-whitelist; anything else fails with
 *   EPERM (rkt killed the app with SIGSYS here; we return EPERM, as Docker does).
 * - retain-set: an allow list (plus what systemd always allowed, so exec and exit work);
 *   `@appc.io/all` means no filter at all.
 * - remove-set: a deny list; `@appc.io/empty` means the default allow list.
 * - `errno=ENAME` makes blocked calls fail with it; an explicit set without errno kills
 *   the process with SIGSYS, as in rkt (systemd's SystemCallFilter=).
 * - `--seccomp` replaces the image's seccomp isolators.
 * - Whenever unshare is blocked and clone allowed, clone with namespace flags is blocked
 *   too and clone3 (whose flags BPF cannot read) fails with ENOSYS, so libc falls back to clone.
 * - An allow list that has socket refuses AF_VSOCK sockets, as Docker's profile does.
 * - Only the native x86_64 ABI passes: i386 and x32 calls get the blocked action, since
 *   their numbers would slip past a list of x86_64 numbers.
 */
import { fail } from '../../util/errors.js';
import type { Isolator } from '../../image/types.js';
import { SECCOMP_REMOVE, SECCOMP_RETAIN } from '../../image/isolators.js';
import { ERRNO } from './errno.js';
import { ALWAYS_ALLOWED, APPC_ALL, APPC_EMPTY, NAMED_SETS, RKT_DEFAULT_WHITELIST, SET_NAMES, isSyscallName } from './sets.js';
import { X86_64_SYSCALLS } from './syscalls.js';

export interface SeccompSpec {
  /** allow: only `syscalls` pass; deny: all but `syscalls` pass. */
  mode: 'allow' | 'deny';
  /** Sorted syscall names (any architecture's; others than x86_64's are ignored in the filter). */
  syscalls: string[];
  /** errno for blocked calls; undefined kills the process (SIGSYS). */
  errno?: number;
}

/** The default filter: rkt's default allow list, EPERM for everything else. */
export function defaultSeccomp(): SeccompSpec {
  return { mode: 'allow', syscalls: [...RKT_DEFAULT_WHITELIST], errno: ERRNO.EPERM };
}

type Where = string;

function errnoOf(name: string, where: Where): number {
  const n = Object.hasOwn(ERRNO, name) ? ERRNO[name] : undefined;
  if (n === undefined) fail(`${where}: unknown errno "${name}": use a name from errno(3), e.g. EPERM`);
  return n;
}

/** Expands names and @sets; 'all'/'empty' for the two appc markers. */
function expand(items: string[], where: Where): string[] | 'all' | 'empty' {
  const out: string[] = [];
  for (const raw of items) {
    const item = raw.trim();
    if (item === APPC_ALL) return 'all';
    if (item === APPC_EMPTY) return 'empty';
    if (item.startsWith('@')) {
      const set = Object.hasOwn(NAMED_SETS, item) ? NAMED_SETS[item] : undefined;
      if (!set) fail(`${where}: unknown syscall set "${item}": use one of ${SET_NAMES.join(', ')}`);
      out.push(...set);
    } else if (isSyscallName(item)) out.push(item);
    else fail(`${where}: unknown syscall "${item}": use names from syscalls(2), e.g. reboot, or a set such as @rkt/default-blacklist`);
  }
  return out;
}

/** One seccomp set in rkt's terms: retain (allow list) or remove (deny list). */
function fromSet(mode: 'retain' | 'remove', items: string[], errnoName: string | undefined, where: Where): SeccompSpec | undefined {
  if (items.length === 0) fail(`${where}: the set is empty: list syscalls or sets, e.g. mode=remove,reboot`);
  const errno = errnoName ? errnoOf(errnoName, where) : undefined;
  const names = expand(items, where);
  if (names === 'all') {
    if (mode === 'retain') return undefined;
    fail(`${where}: ${APPC_ALL} only goes with mode=retain (no filter at all)`);
  }
  if (names === 'empty') {
    if (mode === 'remove') return { mode: 'allow', syscalls: [...RKT_DEFAULT_WHITELIST], errno };
    fail(`${where}: ${APPC_EMPTY} only goes with mode=remove (the default filter)`);
  }
  const syscalls = mode === 'retain' ? [...names, ...ALWAYS_ALLOWED] : names;
  return { mode: mode === 'retain' ? 'allow' : 'deny', syscalls: [...new Set(syscalls)].sort(), errno };
}

/** Parses `--seccomp mode=retain|remove[,errno=ENAME],NAME,...`. */
export function parseSeccompFlag(value: string): SeccompSpec | undefined {
  const where = `--seccomp "${value}"`;
  let mode: 'retain' | 'remove' | undefined;
  let errno: string | undefined;
  const items: string[] = [];
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(mode|errno)=(.*)$/.exec(part);
    if (!m) { items.push(part); continue; }
    if (m[1] === 'mode') {
      if (m[2] !== 'retain' && m[2] !== 'remove') fail(`${where}: mode must be retain or remove, e.g. --seccomp mode=remove,reboot`);
      mode = m[2];
    } else errno = m[2];
  }
  if (!mode) fail(`${where}: give a mode, e.g. --seccomp mode=remove,errno=EPERM,reboot`);
  return fromSet(mode, items, errno, where);
}

/** An image's seccomp isolator (already shape-checked by validateIsolators). */
function fromIsolator(iso: Isolator): SeccompSpec | undefined {
  const v = iso.value as { set: string[]; errno?: string };
  const mode = iso.name === SECCOMP_RETAIN ? 'retain' : 'remove';
  return fromSet(mode, v.set, v.errno || undefined, `isolator ${iso.name}`);
}

/**
 * The app's filter, or undefined for none: `--insecure-options=seccomp`, then the flag,
 * then the image's isolator, then the default.
 */
export function resolveSeccomp(isolators: Isolator[] | undefined, flag: string | undefined, insecure: boolean): SeccompSpec | undefined {
  // Parsed even when disabled, so that a typo is reported either way.
  const fromFlag = flag !== undefined ? { spec: parseSeccompFlag(flag) } : undefined;
  const isos = (isolators ?? []).filter((i) => i.name === SECCOMP_RETAIN || i.name === SECCOMP_REMOVE);
  if (isos.length > 1) fail(`the image has ${isos.length} seccomp isolators: appc allows one (override it with --seccomp)`);
  const fromImage = !fromFlag && isos.length === 1 ? { spec: fromIsolator(isos[0]!) } : undefined;
  if (insecure) return undefined;
  return (fromFlag ?? fromImage ?? { spec: defaultSeccomp() }).spec;
}

// ---- BPF ------------------------------------------------------------------------------------

export const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;
export const RET_ALLOW = 0x7fff0000;
export const RET_KILL_PROCESS = 0x80000000;
export const retErrno = (e: number) => (0x00050000 | (e & 0xffff)) >>> 0;
/** Namespace flags of clone(2): NEWNS UTS IPC USER PID NET CGROUP (Docker's mask 0x7E020000). */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** One classic BPF instruction. */
export interface Insn { code: number; jt: number; jf: number; k: number }
const LD_ABS_W = 0x20;
const JEQ = 0x15;
const JGE = 0x35;
const JSET = 0x45;
const JA = 0x05;
const RET = 0x06;
/** Offsets in struct seccomp_data. */
const NR = 0;
const ARCH = 4;
const ARG0_LOW = 16;

/** AF_VSOCK: sockets to the hypervisor's host, which Docker's profile refuses. */
export const AF_VSOCK = 40;

/** What one syscall number gets: a return value, or an argument check. */
type Action = number | 'clone' | 'socket';

/** A run of syscall numbers [from, next from) with one action. */
interface Run { from: number; action: Action }

function leaf(action: Action, blocked: number): Insn[] {
  if (action === 'socket') {
    return [
      { code: LD_ABS_W, jt: 0, jf: 0, k: ARG0_LOW },
      { code: JEQ, jt: 1, jf: 0, k: AF_VSOCK },
      { code: RET, jt: 0, jf: 0, k: RET_ALLOW },
      { code: RET, jt: 0, jf: 0, k: blocked },
    ];
  }
  if (action !== 'clone') return [{ code: RET, jt: 0, jf: 0, k: action >>> 0 }];
  return [
    { code: LD_ABS_W, jt: 0, jf: 0, k: ARG0_LOW },
    { code: JSET, jt: 1, jf: 0, k: CLONE_NAMESPACE_FLAGS },
    { code: RET, jt: 0, jf: 0, k: RET_ALLOW },
    { code: RET, jt: 0, jf: 0, k: blocked },
  ];
}

/** A binary search over the runs (the accumulator holds the syscall number). */
function tree(runs: Run[], blocked: number): Insn[] {
  if (runs.length === 1) return leaf(runs[0]!.action, blocked);
  const mid = runs.length >> 1;
  const left = tree(runs.slice(0, mid), blocked);
  const right = tree(runs.slice(mid), blocked);
  const k = runs[mid]!.from;
  // Conditional jumps reach 255 instructions; a longer left side goes through `ja`.
  if (left.length <= 255) return [{ code: JGE, jt: left.length, jf: 0, k }, ...left, ...right];
  return [{ code: JGE, jt: 0, jf: 1, k }, { code: JA, jt: 0, jf: 0, k: left.length }, ...left, ...right];
}

/** The action for every x86_64 syscall number, as runs. */
function runsFor(spec: SeccompSpec, blocked: number): Run[] {
  const listed = new Set(spec.syscalls);
  const allow = (name: string) => (spec.mode === 'allow' ? listed.has(name) : !listed.has(name));
  const numbers = new Map<number, string>(Object.entries(X86_64_SYSCALLS).map(([n, nr]) => [nr, n]));
  const max = Math.max(...numbers.keys());
  const restrictNamespaces = !allow('unshare') && allow('clone');
  const enosys = retErrno(ERRNO.ENOSYS!);
  // Numbers the table does not know: ENOSYS in an allow list (libc falls back), allowed in a deny list.
  const unknown = spec.mode === 'allow' ? enosys : RET_ALLOW;
  const actionOf = (nr: number): Action => {
    const name = numbers.get(nr);
    if (name === undefined) return unknown;
    if (name === 'clone' && restrictNamespaces) return 'clone';
    if (name === 'clone3' && restrictNamespaces) return enosys;
    if (name === 'socket' && spec.mode === 'allow' && allow(name)) return 'socket';
    return allow(name) ? RET_ALLOW : blocked;
  };
  const runs: Run[] = [];
  for (let nr = 0; nr <= max + 1; nr++) {
    const action = nr > max ? unknown : actionOf(nr);
    const last = runs[runs.length - 1];
    if (!last || last.action !== action || typeof action === 'string') runs.push({ from: nr, action });
  }
  return runs;
}

/** The filter as classic BPF for x86_64. */
export function compileSeccomp(spec: SeccompSpec): Insn[] {
  const blocked = spec.errno === undefined ? RET_KILL_PROCESS : retErrno(spec.errno);
  return [
    { code: LD_ABS_W, jt: 0, jf: 0, k: ARCH },
    { code: JEQ, jt: 1, jf: 0, k: AUDIT_ARCH_X86_64 },
    { code: RET, jt: 0, jf: 0, k: blocked },
    { code: LD_ABS_W, jt: 0, jf: 0, k: NR },
    { code: JGE, jt: 0, jf: 1, k: X32_SYSCALL_BIT },
    { code: RET, jt: 0, jf: 0, k: blocked },
    ...tree(runsFor(spec, blocked), blocked),
  ];
}

/** struct sock_filter[] as hex (8 bytes per instruction, little-endian): the helper's argument. */
export function encodeBpf(prog: Insn[]): string {
  // Plain strings: a first Buffer hex encoding costs ~5 ms of a cold start.
  const le = (n: number, bytes: number) => {
    let out = '';
    for (let i = 0; i < bytes; i++) out += HEX[(n >>> (8 * i)) & 0xff];
    return out;
  };
  return prog.map((i) => le(i.code, 2) + le(i.jt, 1) + le(i.jf, 1) + le(i.k >>> 0, 4)).join('');
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** Fails unless this machine can run the filters compiled here. */
export function checkSeccompArch(): void {
  if (process.arch !== 'x64') fail(`seccomp filters are built for x86_64 only, and this is ${process.arch}: run with --insecure-options=seccomp`);
}
