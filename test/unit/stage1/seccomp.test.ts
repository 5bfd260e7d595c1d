import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import {
  AUDIT_ARCH_X86_64, CLONE_NAMESPACE_FLAGS, Insn, RET_ALLOW, RET_KILL_PROCESS, SeccompSpec, compileSeccomp,
  defaultSeccomp, encodeBpf, parseSeccompFlag, resolveSeccomp, retErrno,
} from '../../../src/stage1/seccomp/filter.js';
import {
  DOCKER_DEFAULT_BLACKLIST, DOCKER_DEFAULT_WHITELIST, NAMED_SETS, RKT_DEFAULT_BLACKLIST, RKT_DEFAULT_WHITELIST, isSyscallName,
} from '../../../src/stage1/seccomp/sets.js';
import { X86_64_SYSCALLS } from '../../../src/stage1/seccomp/syscalls.js';
import { RktError } from '../../../src/util/errors.js';
import { seccompFilter } from '../../../src/stage0/start.js';
import { describeIf, ROOT } from '../../helpers/rkt.js';

/** Runs a classic BPF seccomp program the way the kernel does, on one struct seccomp_data. */
function run(prog: Insn[], data: { nr: number; arch?: number; arg0?: number }): number {
  const mem = Buffer.alloc(64);
  mem.writeUInt32LE(data.nr >>> 0, 0);
  mem.writeUInt32LE((data.arch ?? AUDIT_ARCH_X86_64) >>> 0, 4);
  mem.writeUInt32LE((data.arg0 ?? 0) >>> 0, 16);
  let a = 0;
  for (let pc = 0; pc < prog.length; pc++) {
    const { code, jt, jf, k } = prog[pc]!;
    switch (code) {
      case 0x20: a = mem.readUInt32LE(k); break;
      case 0x15: pc += a === k ? jt : jf; break;
      case 0x35: pc += a >= k ? jt : jf; break;
      case 0x45: pc += (a & k) !== 0 ? jt : jf; break;
      case 0x05: pc += k; break;
      case 0x06: return k >>> 0;
      default: throw new Error(`unknown BPF opcode ${code} at ${pc}`);
    }
  }
  throw new Error('fell off the end of the program');
}

const nr = (name: string) => X86_64_SYSCALLS[name]!;
const EPERM = retErrno(1);
const ENOSYS = retErrno(38);

/** Must fail with EPERM under the default filter (Docker's default blocks them all). */
const MUST_BLOCK = [
  'keyctl', 'add_key', 'request_key', 'kexec_load', 'kexec_file_load', 'open_by_handle_at', 'init_module',
  'finit_module', 'delete_module', 'bpf', 'perf_event_open', 'userfaultfd', 'mount', 'umount2', 'pivot_root',
  'swapon', 'swapoff', 'reboot', 'unshare', 'ptrace', 'setns', 'fsopen', 'fsmount', 'move_mount', 'open_tree',
  'io_uring_setup', 'process_vm_readv', 'process_vm_writev', 'syslog', 'acct', 'settimeofday', 'clock_settime',
];

function expectFail(fn: () => unknown, message: RegExp): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(RktError);
  expect((err as RktError).exitCode).toBe(254);
  expect((err as Error).message).toMatch(message);
  expect((err as Error).message).not.toMatch(/\n/);
}

describe('named sets', () => {
  test('every name in every set is a known syscall', () => {
    for (const [set, names] of Object.entries(NAMED_SETS)) {
      for (const n of names) expect([set, isSyscallName(n)]).toEqual([set, true]);
    }
  });

  test('the default allow list leaves out everything Docker blocks, and ptrace', () => {
    for (const n of MUST_BLOCK) expect([n, RKT_DEFAULT_WHITELIST.includes(n)]).toEqual([n, false]);
    for (const n of ['read', 'write', 'execve', 'clone', 'statx', 'rseq', 'openat2', 'close_range', 'chroot', 'fchmodat2']) {
      expect([n, RKT_DEFAULT_WHITELIST.includes(n)]).toEqual([n, true]);
    }
  });

  test('Docker\'s allow list has ptrace (kernel >= 4.8), rkt\'s does not; blocklists have the keyring calls', () => {
    expect(DOCKER_DEFAULT_WHITELIST).toContain('ptrace');
    expect(RKT_DEFAULT_WHITELIST).not.toContain('ptrace');
    for (const set of [DOCKER_DEFAULT_BLACKLIST, RKT_DEFAULT_BLACKLIST]) {
      for (const n of ['keyctl', 'add_key', 'request_key', 'mount', 'unshare', 'reboot', 'kexec_load']) expect(set).toContain(n);
    }
    expect(RKT_DEFAULT_BLACKLIST).toEqual(expect.arrayContaining([...DOCKER_DEFAULT_BLACKLIST, 'fsopen', 'io_uring_setup']));
  });

  test('rkt\'s systemd groups exist', () => {
    for (const g of ['clock', 'default-whitelist', 'mount', 'network-io', 'obsolete', 'privileged', 'process', 'raw-io']) {
      expect(NAMED_SETS[`@systemd/${g}`]!.length).toBeGreaterThan(3);
    }
    expect(NAMED_SETS['@systemd/mount']).toEqual(['chroot', 'mount', 'pivot_root', 'umount', 'umount2']);
  });

  test('the x86_64 table is one-to-one and has the numbers the kernel uses', () => {
    const numbers = Object.values(X86_64_SYSCALLS);
    expect(new Set(numbers).size).toBe(numbers.length);
    expect([nr('read'), nr('keyctl'), nr('clone3'), nr('mseal'), nr('file_setattr')]).toEqual([0, 250, 435, 462, 469]);
  });
});

describe('--seccomp flag and isolators', () => {
  test('mode=remove with errno: a deny list', () => {
    expect(parseSeccompFlag('mode=remove,errno=ENOTSUP,reboot,swapon')).toEqual({ mode: 'deny', syscalls: ['reboot', 'swapon'], errno: 95 });
  });

  test('mode=retain: an allow list that still lets the app exec and exit; no errno kills', () => {
    const spec = parseSeccompFlag('mode=retain,read,write')!;
    expect(spec.mode).toBe('allow');
    expect(spec.errno).toBeUndefined();
    expect(spec.syscalls).toEqual(expect.arrayContaining(['read', 'write', 'execve', 'exit_group']));
  });

  test('sets expand; @appc.io/all retains everything (no filter); @appc.io/empty is the default list', () => {
    expect(parseSeccompFlag('mode=remove,@docker/default-blacklist')!.syscalls).toEqual([...DOCKER_DEFAULT_BLACKLIST]);
    expect(parseSeccompFlag('mode=retain,@appc.io/all')).toBeUndefined();
    expect(parseSeccompFlag('mode=remove,errno=EPERM,@appc.io/empty')).toEqual(defaultSeccomp());
  });

  test('bad input: one line naming the flag and the fix', () => {
    expectFail(() => parseSeccompFlag('mode=remove,rebooot'), /^--seccomp "mode=remove,rebooot": unknown syscall "rebooot": use names/);
    expectFail(() => parseSeccompFlag('mode=remove,@rkt/nope'), /unknown syscall set "@rkt\/nope": use one of @appc.io\/all/);
    expectFail(() => parseSeccompFlag('reboot'), /give a mode, e.g. --seccomp mode=remove/);
    expectFail(() => parseSeccompFlag('mode=keep,reboot'), /mode must be retain or remove/);
    expectFail(() => parseSeccompFlag('mode=remove,errno=ENOPE,reboot'), /unknown errno "ENOPE"/);
    expectFail(() => parseSeccompFlag('mode=remove'), /the set is empty/);
    expectFail(() => parseSeccompFlag('mode=remove,@appc.io/all'), /only goes with mode=retain/);
  });

  const removeIso = { name: 'os/linux/seccomp-remove-set', value: { set: ['reboot'], errno: 'EXFULL' } };
  const retainIso = { name: 'os/linux/seccomp-retain-set', value: { set: ['@appc.io/all'] } };

  test('precedence: insecure, then the flag, then the image, then the default', () => {
    expect(resolveSeccomp(undefined, undefined, false)).toEqual(defaultSeccomp());
    expect(resolveSeccomp([removeIso], undefined, false)).toEqual({ mode: 'deny', syscalls: ['reboot'], errno: 54 });
    expect(resolveSeccomp([retainIso], undefined, false)).toBeUndefined();
    expect(resolveSeccomp([removeIso], 'mode=remove,swapon', false)).toEqual({ mode: 'deny', syscalls: ['swapon'], errno: undefined });
    expect(resolveSeccomp([removeIso], undefined, true)).toBeUndefined();
  });

  test('a bad isolator or flag is reported even with --insecure-options=seccomp', () => {
    expectFail(() => resolveSeccomp([{ name: 'os/linux/seccomp-retain-set', value: { set: ['nosuchcall'] } }], undefined, false),
      /^isolator os\/linux\/seccomp-retain-set: unknown syscall "nosuchcall"/);
    expectFail(() => resolveSeccomp(undefined, 'mode=remove,nosuch', true), /unknown syscall "nosuch"/);
    expectFail(() => resolveSeccomp([removeIso, removeIso], undefined, false), /appc allows one/);
  });
});

describe('BPF generation', () => {
  const defaultProg = compileSeccomp(defaultSeccomp());

  test('the default program: allow list passes, the rest EPERM, unknown numbers ENOSYS', () => {
    for (const name of MUST_BLOCK) expect([name, run(defaultProg, { nr: nr(name) })]).toEqual([name, EPERM]);
    for (const name of ['read', 'write', 'openat', 'execve', 'exit_group', 'statx', 'fork', 'mseal']) {
      expect([name, run(defaultProg, { nr: nr(name) })]).toEqual([name, RET_ALLOW]);
    }
    expect(run(defaultProg, { nr: 470 })).toBe(ENOSYS);
    expect(run(defaultProg, { nr: 400 })).toBe(ENOSYS); // a gap in the table
    expect(defaultProg.length).toBeLessThan(4096);
  });

  test('every x86_64 number gets exactly what the spec says', () => {
    const spec: SeccompSpec = { mode: 'deny', syscalls: ['reboot', 'keyctl', 'clone3', 'write'], errno: 54 };
    const prog = compileSeccomp(spec);
    for (const [name, n] of Object.entries(X86_64_SYSCALLS)) {
      const want = spec.syscalls.includes(name) ? retErrno(54) : RET_ALLOW;
      expect([name, run(prog, { nr: n })]).toEqual([name, want]);
    }
    expect(run(prog, { nr: 1000 })).toBe(RET_ALLOW);
  });

  test('clone with a namespace flag is blocked, plain clone (fork, threads) passes; clone3 says ENOSYS', () => {
    for (const flag of [0x10000000 /* NEWUSER */, 0x20000000 /* NEWPID */, 0x00020000 /* NEWNS */, 0x40000000 /* NEWNET */]) {
      expect(run(defaultProg, { nr: nr('clone'), arg0: flag | 17 })).toBe(EPERM);
    }
    expect(run(defaultProg, { nr: nr('clone'), arg0: 0x01200011 })).toBe(RET_ALLOW); // fork()
    expect(run(defaultProg, { nr: nr('clone'), arg0: 0x003d0f00 })).toBe(RET_ALLOW); // pthread_create
    expect(run(defaultProg, { nr: nr('clone3') })).toBe(ENOSYS);
    expect(CLONE_NAMESPACE_FLAGS & 0x10000000).toBeTruthy();
  });

  test('a deny list that blocks unshare restricts clone too; one that does not leaves clone alone', () => {
    const withUnshare = compileSeccomp(parseSeccompFlag('mode=remove,errno=EPERM,unshare')!);
    expect(run(withUnshare, { nr: nr('clone'), arg0: 0x10000000 })).toBe(EPERM);
    expect(run(withUnshare, { nr: nr('clone3') })).toBe(ENOSYS);
    const plain = compileSeccomp(parseSeccompFlag('mode=remove,errno=EPERM,reboot')!);
    expect(run(plain, { nr: nr('clone'), arg0: 0x10000000 })).toBe(RET_ALLOW);
    expect(run(plain, { nr: nr('clone3') })).toBe(RET_ALLOW);
  });

  test('an allow list refuses AF_VSOCK sockets and allows the others; a deny list leaves socket alone', () => {
    expect(run(defaultProg, { nr: nr('socket'), arg0: 40 })).toBe(EPERM);
    expect(run(defaultProg, { nr: nr('socket'), arg0: 2 })).toBe(RET_ALLOW);
    expect(run(defaultProg, { nr: nr('socket'), arg0: 1 })).toBe(RET_ALLOW);
    const deny = compileSeccomp(parseSeccompFlag('mode=remove,errno=EPERM,reboot')!);
    expect(run(deny, { nr: nr('socket'), arg0: 40 })).toBe(RET_ALLOW);
  });

  test('i386 and x32 calls get the blocked action; without errno it is a kill', () => {
    const kill = compileSeccomp(parseSeccompFlag('mode=remove,reboot')!);
    expect(run(kill, { nr: nr('reboot') })).toBe(RET_KILL_PROCESS);
    expect(run(kill, { nr: 1, arch: 0x40000003 })).toBe(RET_KILL_PROCESS);
    expect(run(kill, { nr: 0x40000000 + 1 })).toBe(RET_KILL_PROCESS);
    expect(run(defaultProg, { nr: 1, arch: 0x40000003 })).toBe(EPERM);
  });

  test('long jumps go through ja (an allow list of every other call)', () => {
    const every = Object.keys(X86_64_SYSCALLS).filter((_, i) => i % 2 === 0);
    const prog = compileSeccomp({ mode: 'allow', syscalls: every, errno: 1 });
    expect(prog.some((i) => i.code === 0x05)).toBe(true);
    for (const [name, n] of Object.entries(X86_64_SYSCALLS)) {
      const want = every.includes(name) ? RET_ALLOW : name === 'clone3' && !every.includes('unshare') && every.includes('clone') ? ENOSYS : EPERM;
      if (name === 'clone' || name === 'socket') continue;
      expect([name, run(prog, { nr: n })]).toEqual([name, want]);
    }
  });

  test('encoding: struct sock_filter, little-endian', () => {
    expect(encodeBpf([{ code: 0x06, jt: 1, jf: 2, k: RET_ALLOW }])).toBe('060001020000ff7f');
    expect(encodeBpf(defaultProg).length).toBe(defaultProg.length * 16);
  });
});

describe('the default filter compiled into the bundle (scripts/bundle.mjs)', () => {
  const bundle = path.join(ROOT, 'dist', 'rkt.cjs');
  const withBundle = describeIf(fs.existsSync(bundle) ? undefined : 'dist/rkt.cjs: npm run build');
  withBundle('in dist/rkt.cjs', () => {
    test('is the default spec compiled by this source; other specs are compiled per app', () => {
      const hex = encodeBpf(compileSeccomp(defaultSeccomp()));
      expect(fs.readFileSync(bundle, 'utf8')).toContain(`"${hex}"`);
      // Outside the bundle (and for any other spec) seccompFilter compiles.
      expect(seccompFilter({ seccomp: undefined })).toBe(hex);
      const other: SeccompSpec = { mode: 'deny', syscalls: ['ptrace'], errno: 1 };
      expect(seccompFilter({ seccomp: other })).toBe(encodeBpf(compileSeccomp(other)));
      expect(seccompFilter({ seccomp: null })).toBeUndefined();
    });
  });
});
