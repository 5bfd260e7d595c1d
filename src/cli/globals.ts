/** rkt's global flags, accepted before or after the command name. */
import path from 'node:path';
import fs from 'node:fs';
import { FlagSpec, FlagValues, flagBool, flagString } from './flags.js';
import { fail } from '../util/errors.js';
import { parseDurationMs } from '../util/duration.js';
import { DEFAULT_LIMITS, parseSizeFlag, type FetchLimits } from '../image/limits.js';
import type { GlobalOptions, InsecureOption } from '../options.js';

export const INSECURE_OPTIONS = ['none', 'image', 'tls', 'ondisk', 'http', 'pubkey', 'capabilities', 'paths', 'seccomp', 'all-fetch', 'all-run', 'all'] as const;
export type { GlobalOptions, InsecureOption } from '../options.js';

export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'dir', kind: 'string', help: 'rkt data directory (default /var/lib/rkt)' },
  { name: 'local-config', kind: 'string', help: 'local configuration directory (default /etc/rkt)' },
  { name: 'system-config', kind: 'string', help: 'system configuration directory (default /usr/lib/rkt)' },
  { name: 'user-config', kind: 'string', help: 'user configuration directory' },
  { name: 'insecure-options', kind: 'string', help: 'comma-separated: none,image,tls,ondisk,http,pubkey,capabilities,paths,seccomp,all-fetch,all-run,all' },
  { name: 'debug', kind: 'bool', help: 'print out more debug information to stderr' },
  { name: 'trust-keys-from-https', kind: 'bool', help: 'automatically trust gpg keys fetched from https' },
  { name: 'http-connect-timeout', kind: 'string', help: 'give up on an HTTP(S) server that does not accept the connection in this time (default 30s)' },
  { name: 'http-stall-timeout', kind: 'string', help: 'give up on an HTTP(S) download when no byte arrives for this long (default 1m0s)' },
  { name: 'max-download-size', kind: 'string', help: 'largest image to download or import, e.g. 2G (default: free space in --dir less a margin)' },
  { name: 'max-expanded-size', kind: 'string', help: 'largest uncompressed image, e.g. 8G (default: free space in --dir less a margin)' },
  { name: 'help', kind: 'bool', help: 'help for this command', aliases: ['h'] },
];

export function parseInsecureOptions(raw: string | undefined): Set<InsecureOption> {
  const out = new Set<InsecureOption>();
  if (!raw) return out;
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    switch (part) {
      case 'none': case 'ondisk': break; // ondisk is accepted and ignored, as rkt does
      case 'image': case 'tls': case 'http': case 'pubkey': case 'capabilities': case 'paths': case 'seccomp':
        out.add(part); break;
      case 'all-fetch': ['image', 'tls', 'http', 'pubkey'].forEach((o) => out.add(o as InsecureOption)); break;
      case 'all-run': ['capabilities', 'paths', 'seccomp'].forEach((o) => out.add(o as InsecureOption)); break;
      case 'all': ['image', 'tls', 'http', 'pubkey', 'capabilities', 'paths', 'seccomp'].forEach((o) => out.add(o as InsecureOption)); break;
      default:
        fail(`unknown --insecure-options value "${part}": use ${INSECURE_OPTIONS.join(',')}`);
    }
  }
  return out;
}

function absolute(p: string): string {
  const abs = path.resolve(p);
  try { return fs.realpathSync(abs); } catch { return abs; }
}

export function globalOptionsFrom(values: FlagValues): GlobalOptions {
  return {
    dir: absolute(flagString(values, 'dir') ?? '/var/lib/rkt'),
    localConfig: absolute(flagString(values, 'local-config') ?? '/etc/rkt'),
    systemConfig: absolute(flagString(values, 'system-config') ?? '/usr/lib/rkt'),
    userConfig: flagString(values, 'user-config') ? absolute(flagString(values, 'user-config')!) : undefined,
    insecure: parseInsecureOptions(flagString(values, 'insecure-options')),
    debug: flagBool(values, 'debug'),
    trustKeysFromHttps: flagBool(values, 'trust-keys-from-https'),
    limits: limitsFrom(values),
  };
}

function timeoutFlag(values: FlagValues, name: string, dflt: number): number {
  const raw = flagString(values, name);
  if (raw === undefined) return dflt;
  const ms = parseDurationMs(raw, name);
  if (ms <= 0) fail(`invalid --${name} "${raw}": must be more than 0, e.g. 30s or 2m`);
  return ms;
}

function limitsFrom(values: FlagValues): FetchLimits {
  const size = (name: string): number | undefined => {
    const raw = flagString(values, name);
    return raw === undefined ? undefined : parseSizeFlag(raw, name);
  };
  return {
    connectTimeoutMs: timeoutFlag(values, 'http-connect-timeout', DEFAULT_LIMITS.connectTimeoutMs),
    stallTimeoutMs: timeoutFlag(values, 'http-stall-timeout', DEFAULT_LIMITS.stallTimeoutMs),
    maxDownloadBytes: size('max-download-size'),
    maxExpandedBytes: size('max-expanded-size'),
  };
}
