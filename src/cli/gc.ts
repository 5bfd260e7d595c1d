import type { Command } from './command.js';
import { flagBool, flagString } from './flags.js';
import { realHost } from '../host/real.js';
import { parseDurationMs } from '../util/duration.js';
import { gcPods } from '../stage0/gc.js';

export const command: Command = {
  name: 'gc',
  summary: 'Garbage collect rkt pods no longer in use',
  usage: 'gc [--grace-period=30m0s] [--expire-prepared=24h0m0s] [--mark-only]',
  flags: [
    { name: 'grace-period', kind: 'string', help: 'duration to wait before discarding inactive pods from garbage (default 30m0s)' },
    { name: 'expire-prepared', kind: 'string', help: 'duration to wait before expiring prepared pods (default 24h0m0s)' },
    { name: 'mark-only', kind: 'bool', help: 'only move exited pods to the garbage states, do not delete them' },
  ],
  needsRoot: true,
  async run({ globals, parsed }) {
    const failed = await gcPods(realHost, globals.dir, {
      gracePeriodMs: parseDurationMs(flagString(parsed.values, 'grace-period') ?? '30m0s', 'grace-period'),
      expirePreparedMs: parseDurationMs(flagString(parsed.values, 'expire-prepared') ?? '24h0m0s', 'expire-prepared'),
      markOnly: flagBool(parsed.values, 'mark-only'),
    });
    return failed > 0 ? 254 : 0;
  },
};
