/**
 * Commands rkt had that this rkt does not implement: each says so in one line (exit 254)
 * instead of "unknown command", so scripts written for rkt fail clearly.
 */
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

function notImplemented(name: string, summary: string, why: string): Command {
  return {
    name,
    summary,
    usage: `${name} [flags]`,
    flags: [],
    ownGrammar: true,
    async run() { return fail(`"rkt ${name}" is not implemented in this rkt: ${why}`); },
  };
}

export const metadataService = notImplemented('metadata-service', 'Run metadata service (not implemented)', 'pods get no metadata service (--mds-register is refused)');
export const apiService = notImplemented('api-service', 'Run API service (not implemented)', 'use "rkt list/status --format=json", which print rkt\'s api/v1 JSON');
export const attach = notImplemented('attach', 'Attach to an app running within a rkt pod (not implemented)', 'run the pod with --interactive, or use "rkt enter"');
