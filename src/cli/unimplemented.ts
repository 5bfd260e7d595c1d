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

const APP_WHY = 'the app-level API (rkt\'s experimental one, which rktlet drove) is not there; run whole pods with "rkt run", and "rkt enter" runs a command in a running app';

export const metadataService = notImplemented('metadata-service', 'Run metadata service (not implemented)', 'pods get no metadata service (--mds-register is refused)');
export const apiService = notImplemented('api-service', 'Run API service (not implemented)', 'use "rkt list/status --format=json", which print rkt\'s api/v1 JSON');
export const attach = notImplemented('attach', 'Attach to an app running within a rkt pod (not implemented)', 'run the pod with --interactive, or use "rkt enter"');
/** rkt's experimental `app` family: one entry per subcommand, so each names itself. */
export const app: Record<string, Command> = {
  sandbox: notImplemented('app sandbox', 'Create an empty pod that apps are added to later (not implemented)', APP_WHY),
  add: notImplemented('app add', 'Add an app to a sandbox pod (not implemented)', APP_WHY),
  start: notImplemented('app start', 'Start an app of a sandbox pod (not implemented)', APP_WHY),
  stop: notImplemented('app stop', 'Stop an app of a sandbox pod (not implemented)', APP_WHY),
  rm: notImplemented('app rm', 'Remove an app from a sandbox pod (not implemented)', APP_WHY),
  list: notImplemented('app list', 'List the apps of a pod (not implemented)', APP_WHY),
  status: notImplemented('app status', 'Print the status of an app of a pod (not implemented)', APP_WHY),
  exec: notImplemented('app exec', 'Run a command in an app of a pod (not implemented)', APP_WHY),
};
