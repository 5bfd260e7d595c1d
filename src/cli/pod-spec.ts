/**
 * rkt's run/prepare/run-prepared flags turned into stage0's typed options (stage0/spec.ts).
 * Every check that needs neither an image nor the host is made here, before anything is
 * fetched or created; stage0 never reads a flag.
 */
import { fail } from '../util/errors.js';
import { parseDurationMs } from '../util/duration.js';
import { flagBool, flagList, flagString, FlagValues } from './flags.js';
import type { AppArgs, RunArgs } from './run-args.js';
import { parseNetFlag, parsePortFlag } from '../net/netflag.js';
import { parseDnsFlags, parseHostsEntries, type DnsOptions } from '../net/dns.js';
import { parseEnvAssignment, parseEnvFile, parseSetEnv } from '../stage0/env.js';
import { parsePidsLimit } from '../stage0/limits.js';
import { parseMount, parseVolume } from '../stage0/volumes.js';
import { DEFAULT_STOP_TIMEOUT_MS, type AppSpec, type PodSpec, type PullPolicy, type StartOptions } from '../stage0/spec.js';

/** A day: longer is surely a typo, and keeps the number short for the init script. */
const MAX_STOP_TIMEOUT_MS = 86_400_000;

/**
 * A grace period in milliseconds from a duration flag (`--stop-timeout` of run and
 * run-prepared, `--timeout` of stop): 10s, 1m30s, 500ms or 0 (SIGKILL at once).
 */
export function parseStopTimeout(value: string, flag: string): number {
  const ms = parseDurationMs(value, flag);
  if (ms > MAX_STOP_TIMEOUT_MS) fail(`--${flag}=${value} is longer than a day: give at most 24h`);
  return ms;
}

function parseIpc(flags: FlagValues): boolean {
  const ipc = flagString(flags, 'ipc') ?? 'auto';
  if (!['auto', 'private', 'parent'].includes(ipc)) fail(`invalid --ipc "${ipc}": use auto, private or parent`);
  return ipc === 'parent';
}

/** Host name rules as systemd-nspawn (rkt's stage1) applied them; the kernel takes at most 64 bytes. */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?';
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

function parseHostname(flags: FlagValues): string | undefined {
  const h = flagString(flags, 'hostname');
  if (h !== undefined && (h.length > 64 || !HOSTNAME.test(h))) {
    fail(`invalid --hostname ${JSON.stringify(h)}: use at most 64 letters, digits, "-", "_" and dots, e.g. --hostname=web-1`);
  }
  return h;
}

/** resolv.conf is line based: a value with spaces or a newline would add lines of its own. */
function parseDns(flags: FlagValues): DnsOptions | undefined {
  const search = flagList(flags, 'dns-search');
  const opts = flagList(flags, 'dns-opt');
  const domain = flagString(flags, 'dns-domain');
  const dns = parseDnsFlags(flagList(flags, 'dns'), search, opts, domain);
  for (const [flag, values] of [['dns-search', search], ['dns-opt', opts], ['dns-domain', domain === undefined ? [] : [domain]]] as const) {
    for (const v of values) {
      if (v === '' || /\s/.test(v)) fail(`invalid --${flag} ${JSON.stringify(v)}: give one non-empty word per --${flag}, without spaces`);
    }
  }
  return dns;
}

/** The start options of run and run-prepared (prepare checks them too, then forgets them). */
export function startOptionsFrom(flags: FlagValues): StartOptions {
  const net = parseNetFlag(flagList(flags, 'net'));
  const sharedIpc = parseIpc(flags);
  const stop = flagString(flags, 'stop-timeout');
  const stopTimeoutMs = stop === undefined ? DEFAULT_STOP_TIMEOUT_MS : parseStopTimeout(stop, 'stop-timeout');
  const hostname = parseHostname(flags);
  const dns = parseDns(flags);
  const hostsEntries = parseHostsEntries(flagList(flags, 'hosts-entry'));
  return { net, dns, hostsEntries, hostname, sharedIpc, stopTimeoutMs, interactive: flagBool(flags, 'interactive') };
}

export function parsePullPolicy(pod: FlagValues): PullPolicy {
  if (flagBool(pod, 'store-only')) return 'never';
  if (flagBool(pod, 'no-store')) return 'update';
  const p = flagString(pod, 'pull-policy') ?? 'new';
  if (p !== 'new' && p !== 'update' && p !== 'never') fail(`invalid --pull-policy "${p}": use new, update or never`);
  return p;
}

function rejectUnsupported(pod: FlagValues): void {
  for (const f of ['stage1-path', 'stage1-url', 'stage1-name', 'stage1-hash', 'stage1-from-dir']) {
    if (flagString(pod, f) !== undefined) fail(`--${f} is not supported: this rkt's stage1 is made of host tools (util-linux, busybox-static) and rkt's own static helpers`);
  }
  if (flagBool(pod, 'mds-register')) fail('--mds-register is not supported: there is no metadata service');
}

function parseGids(s: string | undefined): number[] | undefined {
  if (s === undefined) return undefined;
  return s.split(',').filter(Boolean).map((g) => {
    if (!/^\d+$/.test(g)) fail(`invalid --supplementary-gids "${s}": give numbers separated by commas`);
    return Number(g);
  });
}

/** `--user-annotation=K=V` (repeatable) as a map; the key must not be empty. */
function userKv(a: AppArgs, flag: string): Record<string, string> | undefined {
  const values = flagList(a.flags, flag);
  if (values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) fail(`invalid --${flag} "${v}": use KEY=VALUE, e.g. --${flag}=team=web`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

export function appSpecFrom(a: AppArgs): AppSpec {
  const f = a.flags;
  const caps = (flag: string) => flagString(f, flag)?.split(',').filter(Boolean);
  const userAnnotations = userKv(a, 'user-annotation');
  const userLabels = userKv(a, 'user-label');
  const spec: AppSpec = {
    image: a.image,
    signature: flagString(f, 'signature'),
    name: flagString(f, 'name'),
    exec: flagString(f, 'exec'),
    args: a.args,
    user: flagString(f, 'user'),
    group: flagString(f, 'group'),
    supplementaryGids: parseGids(flagString(f, 'supplementary-gids')),
    workingDir: flagString(f, 'working-dir'),
    environment: new Map(flagList(f, 'environment').map((e) => parseEnvAssignment(e, '--environment'))),
    resources: {
      memory: flagString(f, 'memory'),
      cpu: flagString(f, 'cpu'),
      cpuShares: flagString(f, 'cpu-shares'),
      capsRetain: caps('caps-retain'),
      capsRemove: caps('caps-remove'),
      oomScoreAdj: flagString(f, 'oom-score-adj'),
    },
    pidsLimit: parsePidsLimit(flagString(f, 'pids-limit')),
    seccomp: flagString(f, 'seccomp'),
    readOnlyRootfs: flagBool(f, 'readonly-rootfs'),
    mounts: flagList(f, 'mount').map(parseMount),
    ...(userAnnotations ? { userAnnotations } : {}),
    ...(userLabels ? { userLabels } : {}),
  };
  return spec;
}

/** The pod of `rkt run`/`rkt prepare`, every flag checked. */
export function podSpecFrom(args: RunArgs, opts: { sandbox?: boolean } = {}): PodSpec {
  const pod = args.pod;
  rejectUnsupported(pod);
  const podManifest = flagString(pod, 'pod-manifest');
  if (podManifest !== undefined) {
    const conflicting = ['volume', 'port', 'set-env', 'set-env-file'].filter((f) => flagList(pod, f).length > 0);
    if (args.apps.length > 0 || args.podMounts.length > 0 || conflicting.length > 0 || flagBool(pod, 'inherit-env') || flagBool(pod, 'store-only') || flagBool(pod, 'no-store')) {
      fail('conflicting flags set with --pod-manifest (see --help): give images, volumes, ports and environment in the manifest');
    }
  } else if (args.apps.length === 0 && !opts.sandbox) {
    fail('no image given: rkt run [flags] IMAGE [app flags] [-- args] [--- IMAGE ...]');
  }
  const apps = args.apps.map(appSpecFrom);
  const start = startOptionsFrom(pod);
  const volumes = flagList(pod, 'volume').map(parseVolume);
  if (new Set(volumes.map((v) => v.name)).size !== volumes.length) fail('a volume name is given twice in --volume: give each volume once');
  return {
    ...(podManifest !== undefined ? { podManifest } : {}),
    apps,
    podMounts: args.podMounts.map(parseMount),
    volumes,
    ports: flagList(pod, 'port').map(parsePortFlag),
    setEnv: parseSetEnv(flagList(pod, 'set-env')),
    fileEnv: new Map(flagList(pod, 'set-env-file').flatMap((file) => [...parseEnvFile(file)])),
    inheritEnv: flagBool(pod, 'inherit-env'),
    pullPolicy: parsePullPolicy(pod),
    overlay: !flagBool(pod, 'no-overlay'),
    privateUsers: flagBool(pod, 'private-users'),
    uuidFileSave: flagString(pod, 'uuid-file-save'),
    start,
  };
}
