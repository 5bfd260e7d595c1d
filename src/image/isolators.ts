/**
 * appc isolators (spec/ace.md): checking the value shapes of the ones appc defines, and
 * turning an app's isolators plus the CLI overrides into the limits rkt applies
 * (rkt's computeAppResources, getAppCapabilities and prepareIsolators).
 */
import { fail } from '../util/errors.js';
import { isACIdentifier, notACIdentifier } from './acname.js';
import { ceilQuantity, isQuantity, parseCpuMillis, parseMemoryBytes } from './quantity.js';
import type { Isolator } from './types.js';
import {
  asArray, asBool, asInt, asObject, asString, asStringMap, bad, index, key, opt, quote, req, withPrefix,
} from './validate.js';

export const MEMORY = 'resource/memory';
export const CPU = 'resource/cpu';
export const BLOCK_BANDWIDTH = 'resource/block-bandwidth';
export const BLOCK_IOPS = 'resource/block-iops';
export const NETWORK_BANDWIDTH = 'resource/network-bandwidth';
export const CPU_SHARES = 'os/linux/cpu-shares';
export const OOM_SCORE_ADJ = 'os/linux/oom-score-adj';
export const CAPS_RETAIN = 'os/linux/capabilities-retain-set';
export const CAPS_REMOVE = 'os/linux/capabilities-remove-set';
export const NO_NEW_PRIVILEGES = 'os/linux/no-new-privileges';
export const SECCOMP_RETAIN = 'os/linux/seccomp-retain-set';
export const SECCOMP_REMOVE = 'os/linux/seccomp-remove-set';
export const SELINUX_CONTEXT = 'os/linux/selinux-context';
export const APPARMOR_PROFILE = 'os/linux/apparmor-profile';
export const SYSCTL = 'os/unix/sysctl';

/** Capability names in kernel order, so a name's index is its number (linux/capability.h). */
const CAP_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/** Every Linux capability with its number: CAP_CHOWN = 0 .. CAP_CHECKPOINT_RESTORE = 40. */
export const LINUX_CAPABILITIES: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries(CAP_NAMES.map((name, n) => [name, n])),
);

/** The bounding set an app gets when it has no capability isolator (appc spec/ace.md). */
export const DEFAULT_CAPS: readonly string[] = Object.freeze([
  'CAP_AUDIT_WRITE', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_KILL', 'CAP_MKNOD',
  'CAP_NET_RAW', 'CAP_NET_BIND_SERVICE', 'CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETFCAP', 'CAP_SYS_CHROOT',
]);

/** The canonical name for `CAP_SYS_ADMIN`, `cap_sys_admin` or `sys_admin`; undefined if unknown. */
function capName(s: string): string | undefined {
  const upper = s.trim().toUpperCase();
  const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  return Object.hasOwn(LINUX_CAPABILITIES, name) ? name : undefined;
}

/** `CAP_SYS_ADMIN`, `cap_sys_admin` and `sys_admin` all mean CAP_SYS_ADMIN. */
export function normalizeCap(s: string): string {
  const name = capName(s);
  if (!name) fail(`unknown capability ${JSON.stringify(s)}: use a name from capabilities(7), e.g. CAP_NET_ADMIN`);
  return name;
}

/** Canonical capability names, deduplicated and sorted by number. */
export function sortCaps(caps: Iterable<string>): string[] {
  return [...new Set(caps)].sort((a, b) => LINUX_CAPABILITIES[a]! - LINUX_CAPABILITIES[b]!);
}

// ---- value shapes --------------------------------------------------------------------------

function checkQuantity(obj: Record<string, unknown>, name: string, path: string): void {
  const v = opt(obj, name);
  if (v === undefined) return;
  // Kubernetes quantities also unmarshal from bare JSON numbers.
  const s = typeof v === 'number' ? String(v) : asString(v, key(path, name));
  if (!isQuantity(s)) bad(key(path, name), `${quote(v)} is not a quantity (e.g. 500m, 2, 128M or 1Gi)`);
}

/** resource/memory and resource/cpu: {request?, limit?}; "default" must be false. */
function checkResource(v: unknown, path: string): void {
  const obj = asObject(v, path);
  if (opt(obj, 'default') !== undefined && asBool(obj.default, key(path, 'default'))) {
    bad(key(path, 'default'), 'must be false for this resource');
  }
  checkQuantity(obj, 'request', path);
  checkQuantity(obj, 'limit', path);
}

/** block and network bandwidth: {default: true, limit}, no request. */
function checkDefaultResource(v: unknown, path: string): void {
  const obj = asObject(v, path);
  if (!asBool(req(obj, 'default', path), key(path, 'default'))) bad(key(path, 'default'), 'must be true');
  if (opt(obj, 'request') !== undefined) bad(key(path, 'request'), 'is not supported by this resource: remove it');
  checkQuantity(obj, 'limit', path);
}

function checkCapSet(v: unknown, path: string): void {
  const setPath = key(path, 'set');
  const set = asArray(req(asObject(v, path), 'set', path), setPath);
  if (set.length === 0) bad(setPath, 'must list at least one capability');
  set.forEach((c, i) => {
    const capPath = index(setPath, i);
    if (!capName(asString(c, capPath))) bad(capPath, `unknown capability ${quote(c)} (use names like CAP_NET_ADMIN)`);
  });
}

function checkSeccomp(v: unknown, path: string): void {
  const obj = asObject(v, path);
  const setPath = key(path, 'set');
  const set = asArray(req(obj, 'set', path), setPath);
  if (set.length === 0) bad(setPath, 'must list at least one syscall');
  set.forEach((s, i) => asString(s, index(setPath, i)));
  const errno = opt(obj, 'errno');
  if (errno !== undefined && asString(errno, key(path, 'errno')) !== '' && !/^E[A-Z0-9]*$/.test(errno as string)) {
    bad(key(path, 'errno'), `${quote(errno)} is not an errno name (e.g. EPERM)`);
  }
}

function checkSELinux(v: unknown, path: string): void {
  const obj = asObject(v, path);
  for (const part of ['user', 'role', 'type', 'level']) {
    const s = asString(req(obj, part, path), key(path, part));
    if (s === '' || (part !== 'level' && s.includes(':'))) bad(key(path, part), `${quote(s)} is not a valid ${part}`);
  }
}

function checkAppArmor(v: unknown, path: string): void {
  const obj = asObject(v, path);
  if (asString(req(obj, 'profile', path), key(path, 'profile')) === '') bad(key(path, 'profile'), 'must not be empty');
}

const VALUE_CHECKS: Record<string, (v: unknown, path: string) => void> = {
  [MEMORY]: checkResource,
  [CPU]: checkResource,
  [BLOCK_BANDWIDTH]: checkDefaultResource,
  [BLOCK_IOPS]: checkDefaultResource,
  [NETWORK_BANDWIDTH]: checkDefaultResource,
  [CPU_SHARES]: (v, path) => asInt(v, path, 2, 262144),
  [OOM_SCORE_ADJ]: (v, path) => asInt(v, path, -1000, 1000),
  [CAPS_RETAIN]: checkCapSet,
  [CAPS_REMOVE]: checkCapSet,
  [NO_NEW_PRIVILEGES]: asBool,
  [SECCOMP_RETAIN]: checkSeccomp,
  [SECCOMP_REMOVE]: checkSeccomp,
  [SELINUX_CONTEXT]: checkSELinux,
  [APPARMOR_PROFILE]: checkAppArmor,
  [SYSCTL]: asStringMap,
};

/** appc allows several of these per app; for the rest one is the most. */
const MULTIPLE_ALLOWED = new Set([
  MEMORY, CPU, BLOCK_BANDWIDTH, BLOCK_IOPS, NETWORK_BANDWIDTH, CAPS_RETAIN, CAPS_REMOVE, NO_NEW_PRIVILEGES,
]);

/** Checks one isolator `{name, value}`; unknown names are valid appc and only need an AC identifier. */
export function validateIsolator(iso: unknown, path: string): Isolator {
  const obj = asObject(iso, path);
  const name = asString(req(obj, 'name', path), key(path, 'name'));
  if (!isACIdentifier(name)) bad(key(path, 'name'), notACIdentifier(name));
  const value = req(obj, 'value', path);
  if (Object.hasOwn(VALUE_CHECKS, name)) VALUE_CHECKS[name]!(value, key(path, 'value'));
  return { name, value };
}

/** Checks a list of isolators, including appc's "only one of" and "not together" rules. */
export function validateIsolators(list: unknown, path: string): Isolator[] {
  const isolators = asArray(list, path).map((iso, i) => validateIsolator(iso, index(path, i)));
  const seen = new Set<string>();
  isolators.forEach(({ name }, i) => {
    if (seen.has(name) && Object.hasOwn(VALUE_CHECKS, name) && !MULTIPLE_ALLOWED.has(name)) {
      bad(index(path, i), `only one ${quote(name)} isolator is allowed`);
    }
    const rival = name === SECCOMP_RETAIN ? SECCOMP_REMOVE : name === SECCOMP_REMOVE ? SECCOMP_RETAIN : undefined;
    if (rival && seen.has(rival)) bad(index(path, i), `${quote(name)} cannot be used together with ${quote(rival)}`);
    seen.add(name);
  });
  return isolators;
}

// ---- resolution ------------------------------------------------------------------------------

export interface AppResources {
  memoryBytes?: number;
  cpuMillis?: number;
  cpuShares?: number;
  oomScoreAdj?: number;
  /** The bounding set: normalized, sorted by number. */
  capabilities: string[];
  noNewPrivileges: boolean;
}

/** Per-app CLI flags, as given (before parsing). */
export interface ResourceOverrides {
  memory?: string;
  cpu?: string;
  cpuShares?: string;
  capsRetain?: string[];
  capsRemove?: string[];
  oomScoreAdj?: string;
}

function parseIntFlag(flag: string, s: string, min: number, max: number): number {
  const n = /^[+-]?\d+$/.test(s.trim()) ? Number(s) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    fail(`--${flag} value ${JSON.stringify(s)} must be an integer between ${min} and ${max}`);
  }
  return n;
}

/** A --caps-* flag: entries may themselves be comma-separated lists. */
function parseCapsFlag(flag: string, values: string[]): string[] {
  const caps = values.flatMap((v) => v.split(',')).filter((c) => c.trim() !== '');
  if (caps.length === 0) fail(`--${flag} needs at least one capability, e.g. --${flag}=CAP_NET_ADMIN`);
  return caps.map(normalizeCap);
}

function capSet(iso: Isolator): string[] {
  return (iso.value as { set: string[] }).set.map(normalizeCap);
}

/** rkt's getAppCapabilities: retain gives exactly that set, remove takes from the default set. */
function imageCapabilities(isolators: Isolator[]): string[] {
  const retain = isolators.filter((i) => i.name === CAPS_RETAIN).flatMap(capSet);
  const remove = isolators.filter((i) => i.name === CAPS_REMOVE).flatMap(capSet);
  if (retain.length > 0 && remove.length > 0) {
    fail(`the app has both ${CAPS_RETAIN} and ${CAPS_REMOVE} isolators: keep only one of them (or override with --caps-retain or --caps-remove)`);
  }
  if (retain.length > 0) return retain;
  return DEFAULT_CAPS.filter((c) => !remove.includes(c));
}

function lastOf(isolators: Isolator[], name: string): Isolator | undefined {
  return isolators.filter((i) => i.name === name).pop();
}

/** The limit of the last isolator of this kind that sets one (rkt skips those without a limit). */
function lastLimit(isolators: Isolator[], name: string): string | undefined {
  const limits = isolators
    .filter((i) => i.name === name)
    .map((i) => opt(i.value as Record<string, unknown>, 'limit'))
    .filter((l) => l !== undefined);
  const limit = limits.pop();
  return limit === undefined ? undefined : String(limit);
}

/**
 * What rkt enforces for one app, from its isolators and the per-app CLI flags:
 * - memory and cpu use the `limit` of the last such isolator (a `request` alone sets no limit);
 *   --memory / --cpu replace the image's isolator of that kind.
 * - cpu-shares and oom-score-adj: the last isolator, replaced by the flag.
 * - capabilities: the default 14, an exact retain set, or the default minus a remove set;
 *   --caps-retain / --caps-remove (one of them) replace all the image's capability isolators;
 *   `allCaps` (--insecure-options=capabilities) lifts the bounding set entirely.
 * - no-new-privileges: set if any such isolator is true (as rkt's getAppNoNewPrivileges).
 * Unknown isolators are valid appc and ignored here.
 */
export function resolveAppResources(
  isolators: Isolator[] | undefined,
  overrides: ResourceOverrides,
  opts: { allCaps?: boolean },
): AppResources {
  const list = isolators ? withPrefix('bad isolator', () => validateIsolators(isolators, 'isolators')) : [];
  const res: AppResources = { capabilities: [], noNewPrivileges: false };

  const memory = lastLimit(list, MEMORY);
  if (overrides.memory !== undefined) res.memoryBytes = parseMemoryBytes(overrides.memory);
  else if (memory !== undefined) res.memoryBytes = ceilQuantity(memory);

  const cpu = lastLimit(list, CPU);
  if (overrides.cpu !== undefined) res.cpuMillis = parseCpuMillis(overrides.cpu);
  else if (cpu !== undefined) {
    res.cpuMillis = ceilQuantity(cpu, 1000);
    if (res.cpuMillis <= 0 || !Number.isSafeInteger(res.cpuMillis)) {
      fail(`bad ${CPU} isolator: limit ${JSON.stringify(cpu)} must be more than zero and at most ${Number.MAX_SAFE_INTEGER}m`);
    }
  }

  const shares = lastOf(list, CPU_SHARES);
  if (overrides.cpuShares !== undefined) res.cpuShares = parseIntFlag('cpu-shares', overrides.cpuShares, 2, 262144);
  else if (shares) res.cpuShares = shares.value as number;

  const oom = lastOf(list, OOM_SCORE_ADJ);
  if (overrides.oomScoreAdj !== undefined) res.oomScoreAdj = parseIntFlag('oom-score-adj', overrides.oomScoreAdj, -1000, 1000);
  else if (oom) res.oomScoreAdj = oom.value as number;

  const retainFlag = overrides.capsRetain?.length ? overrides.capsRetain : undefined;
  const removeFlag = overrides.capsRemove?.length ? overrides.capsRemove : undefined;
  if (retainFlag && removeFlag) fail('--caps-retain and --caps-remove cannot be used on the same image: use one of them');
  if (opts.allCaps) res.capabilities = sortCaps(CAP_NAMES);
  else if (retainFlag) res.capabilities = sortCaps(parseCapsFlag('caps-retain', retainFlag));
  else if (removeFlag) {
    const remove = parseCapsFlag('caps-remove', removeFlag);
    res.capabilities = sortCaps(DEFAULT_CAPS.filter((c) => !remove.includes(c)));
  } else res.capabilities = sortCaps(imageCapabilities(list));

  res.noNewPrivileges = list.some((i) => i.name === NO_NEW_PRIVILEGES && i.value === true);
  return res;
}
