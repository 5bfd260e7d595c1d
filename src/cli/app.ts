/**
 * `rkt app sandbox|add|start|stop|rm|list|status|exec`: rkt's app-level API (stage0/app.ts).
 * rkt hid it behind RKT_EXPERIMENT_APP=true because its interface was still moving; this
 * rkt's is fixed, so it needs no switch (setting it changes nothing).
 */
import type { Command } from './command.js';
import { flagBool, flagList, flagString, parseOneFlag, type FlagSpec, type FlagValues } from './flags.js';
import { GLOBAL_FLAGS, globalOptionsFrom } from './globals.js';
import { APP_FLAGS, parseRunArgs, runGlobals, RUN_POD_FLAGS } from './run-args.js';
import { appSpecFrom, parsePullPolicy, parseStopTimeout, podSpecFrom } from './pod-spec.js';
import { marshal, podV1, type AppV1 } from './api-v1.js';
import { summarize } from '../stage0/podinfo.js';
import { realHost } from '../host/real.js';
import { fail } from '../util/errors.js';
import { goTime, humanTime, tabulate } from '../util/table.js';
import { findPod, type Pod } from '../stage0/pod.js';
import { podsFromArgs, UUID_FILE_FLAG } from './pod-args.js';
import { addApp, checkAppName, createSandbox, listApps, removeApp, startApp, stopApp } from '../stage0/app.js';
import type { PodPlan } from '../stage1/plan.js';
import { PLAN_FILE } from '../pod-layout.js';
import fs from 'node:fs';
import path from 'node:path';
import { toStdout } from '../util/log.js';

/** Pod flags of `rkt run` a sandbox takes; the others would need the apps, which come later. */
const NOT_FOR_SANDBOX = ['pod-manifest', 'quiet', 'inherit-env', 'set-env', 'set-env-file', 'pull-policy', 'store-only', 'no-store'];
const SANDBOX_FLAGS = RUN_POD_FLAGS.filter((f) => !NOT_FOR_SANDBOX.includes(f.name));
const REFUSED: Array<[string, string]> = [
  ['private-users', 'apps are started into the pod from the host, which a pod user namespace would not allow'],
  ['no-overlay', 'apps added later get an overlay rootfs'],
  ['interactive', 'a sandbox has no app to give the terminal to'],
];

export const sandbox: Command = {
  name: 'app sandbox',
  summary: 'Create an empty pod (in the foreground, like rkt run) that apps are added to later',
  usage: 'app sandbox [--uuid-file-save=FILE] [--net=...] [--dns=...] [--hostname=NAME] [--volume=...] [--stop-timeout=DURATION]',
  flags: SANDBOX_FLAGS,
  ownGrammar: true,
  needsRoot: true,
  async run({ parsed, rawArgs }) {
    const args = parseRunArgs(rawArgs, SANDBOX_FLAGS);
    if (args.apps.length > 0 || args.podMounts.length > 0) fail('"rkt app sandbox" takes no image: add apps with "rkt app add UUID IMAGE"');
    for (const [flag, why] of REFUSED) if (flagBool(args.pod, flag)) fail(`--${flag} is not supported by "rkt app sandbox": ${why}`);
    if (flagList(args.pod, 'port').length > 0) fail('--port is not supported by "rkt app sandbox": the ports are the apps\', which are added later; use --net=host');
    const globals = runGlobals(parsed.values, args);
    const started = await createSandbox(realHost, globals, podSpecFrom(args, { sandbox: true }));
    return { handoff: started.handoff, podDir: started.pod.dir };
  },
};

const ADD_POD_FLAGS: FlagSpec[] = [{ name: 'pull-policy', kind: 'string', help: 'new (default), update or never' }];

export const add: Command = {
  name: 'app add',
  summary: 'Add an app to a sandbox pod (state: created)',
  usage: 'app add UUID IMAGE [--name=NAME] [--exec=/path] [app flags as for rkt run] [-- image-args...]',
  flags: [...ADD_POD_FLAGS, ...APP_FLAGS],
  ownGrammar: true,
  needsRoot: true,
  async run({ parsed, rawArgs }) {
    // rkt run's grammar: the UUID comes where an image would, and takes no app flag.
    const args = parseRunArgs(rawArgs, ADD_POD_FLAGS);
    const globals = runGlobals(parsed.values, args);
    const [ref, image, ...more] = args.apps;
    if (!ref || !image) fail('"rkt app add" needs a pod and an image: rkt app add UUID IMAGE [app flags]');
    if (more.length > 0) fail('"rkt app add" adds one image: run it once per app');
    if (ref.flags.size > 0 || ref.hasArgs) fail('app flags and arguments follow the image: rkt app add UUID IMAGE [app flags] [-- args]');
    const pod = findPod(globals.dir, ref.image);
    await addApp(realHost, globals, pod, appSpecFrom(image), parsePullPolicy(args.pod));
    return 0;
  },
};

const APP_FLAG: FlagSpec = { name: 'app', kind: 'string', help: 'name of the app' };

/** The pod (one UUID or --uuid-file) and the --app of start, stop, rm and status. */
function podAndApp(dir: string, values: FlagValues, positionals: string[]): { pod: Pod; app: string } {
  const [pod] = podsFromArgs(dir, { values, positionals, afterDashes: undefined }, true);
  return { pod, app: checkAppName(flagString(values, 'app'), pod) };
}

export const start: Command = {
  name: 'app start',
  summary: 'Start an app of a sandbox pod',
  usage: 'app start --app=NAME UUID',
  flags: [APP_FLAG, UUID_FILE_FLAG],
  needsRoot: true,
  async run({ globals, parsed }) {
    const { pod, app } = podAndApp(globals.dir, parsed.values, parsed.positionals);
    await startApp(realHost, pod, app);
    return 0;
  },
};

export const stop: Command = {
  name: 'app stop',
  summary: 'Stop an app of a sandbox pod (SIGTERM, then SIGKILL after a grace period)',
  usage: "app stop --app=NAME [--timeout=DURATION] UUID",
  flags: [APP_FLAG, UUID_FILE_FLAG, { name: 'timeout', kind: 'string', help: "grace period before SIGKILL, e.g. 30s (default: the pod's --stop-timeout)" }],
  needsRoot: true,
  async run({ globals, parsed }) {
    const { pod, app } = podAndApp(globals.dir, parsed.values, parsed.positionals);
    const timeout = flagString(parsed.values, 'timeout');
    let graceMs: number;
    if (timeout !== undefined) graceMs = parseStopTimeout(timeout, 'timeout');
    else {
      try { graceMs = (JSON.parse(fs.readFileSync(path.join(pod.dir, PLAN_FILE), 'utf8')) as PodPlan).stopGraceSeconds * 1000; } catch { graceMs = 10_000; }
    }
    await stopApp(realHost, pod, app, graceMs);
    return 0;
  },
};

export const rm: Command = {
  name: 'app rm',
  summary: 'Remove a created or exited app from a sandbox pod',
  usage: 'app rm --app=NAME UUID',
  flags: [APP_FLAG, UUID_FILE_FLAG],
  needsRoot: true,
  async run({ globals, parsed }) {
    const { pod, app } = podAndApp(globals.dir, parsed.values, parsed.positionals);
    await removeApp(realHost, pod, app);
    return 0;
  },
};

/** The pod's apps as rkt's api/v1 reports them (as rkt list and status --format=json do). */
function appsV1(pod: Pod): AppV1[] {
  return podV1(pod, summarize(realHost, pod)).apps ?? [];
}

const dateOf = (ns: bigint | undefined) => (ns === undefined ? undefined : new Date(Number(ns / 1_000_000n)));

function checkFormat(values: FlagValues): { json: boolean; pretty: boolean } {
  const format = flagString(values, 'format');
  if (format !== undefined && format !== 'json' && format !== 'json-pretty') fail(`invalid --format "${format}": use json or json-pretty`);
  return { json: format !== undefined, pretty: format === 'json-pretty' };
}

const FORMAT_FLAG: FlagSpec = { name: 'format', kind: 'string', help: 'json or json-pretty' };

export const list: Command = {
  name: 'app list',
  summary: 'List the apps of a pod',
  usage: 'app list [--no-legend] [--format=json|json-pretty] UUID',
  flags: [UUID_FILE_FLAG, FORMAT_FLAG, { name: 'no-legend', kind: 'bool', help: 'suppress a legend with the list' }],
  async run({ globals, parsed }) {
    const { json, pretty } = checkFormat(parsed.values);
    const [pod] = podsFromArgs(globals.dir, parsed, true);
    const apps = appsV1(pod);
    if (json) {
      toStdout(marshal(apps.length > 0 ? apps : null, pretty));
      return 0;
    }
    const images = new Map(listApps(pod).map((a) => [a.name, a.imageName]));
    const time = (ns: bigint | undefined) => { const d = dateOf(ns); return d ? humanTime(d.getTime(), Date.now()) : ''; };
    const body = apps.map((a) => [a.name, images.get(a.name) ?? '', a.state, time(a.created_at), time(a.started_at), time(a.finished_at), a.exit_code === undefined ? '' : String(a.exit_code)]);
    const table = flagBool(parsed.values, 'no-legend') ? body : [['NAME', 'IMAGE NAME', 'STATE', 'CREATED', 'STARTED', 'FINISHED', 'EXIT CODE'], ...body];
    if (table.length > 0) toStdout(tabulate(table));
    return 0;
  },
};

export const status: Command = {
  name: 'app status',
  summary: 'Print the status of an app of a pod',
  usage: 'app status --app=NAME [--format=json|json-pretty] UUID',
  flags: [APP_FLAG, UUID_FILE_FLAG, FORMAT_FLAG],
  async run({ globals, parsed }) {
    const { json, pretty } = checkFormat(parsed.values);
    const { pod, app } = podAndApp(globals.dir, parsed.values, parsed.positionals);
    const a = appsV1(pod).find((x) => x.name === app);
    if (!a) fail(`pod ${pod.uuid} has no app "${app}": see "rkt app list ${pod.uuid}"`);
    if (json) {
      toStdout(marshal(a, pretty));
      return 0;
    }
    const lines = [`name=${a.name}`, `state=${a.state}`];
    for (const [key, ns] of [['created', a.created_at], ['started', a.started_at], ['finished', a.finished_at]] as const) {
      const d = dateOf(ns);
      if (d) lines.push(`${key}=${goTime(d)}`);
    }
    if (a.exit_code !== undefined) lines.push(`exit_code=${a.exit_code}`);
    toStdout(`${lines.join('\n')}\n`);
    return 0;
  },
};

export const exec: Command = {
  name: 'app exec',
  summary: 'Run a command in a running app of a pod (as rkt enter)',
  usage: 'app exec --app=NAME UUID [--] CMD [ARGS...]',
  flags: [APP_FLAG],
  ownGrammar: true,
  needsRoot: true,
  async run(input) {
    // Flags until the UUID; then the command (after an optional `--`), as rkt enter's.
    const values: FlagValues = new Map(input.parsed.values);
    const argv = input.rawArgs;
    let i = 0;
    while (i < argv.length && argv[i] !== '--') {
      const used = parseOneFlag(argv, i, [...GLOBAL_FLAGS, APP_FLAG], values);
      if (used > 0) { i += used; continue; }
      if (argv[i].startsWith('-')) fail(`unknown flag: ${argv[i].split('=')[0]} (see "rkt app exec --help")`);
      break;
    }
    if (argv[i] === '--') i++;
    const positionals = argv[i] === undefined ? [] : [argv[i]];
    const cmd = argv[i + 1] === '--' ? argv.slice(i + 2) : argv.slice(i + 1);
    if (positionals.length !== 1) fail('"rkt app exec" needs a pod: rkt app exec --app=NAME UUID [--] CMD [ARGS...]');
    if (cmd.length === 0) fail('"rkt app exec" needs a command: rkt app exec --app=NAME UUID [--] CMD [ARGS...]');
    const globals = globalOptionsFrom(values);
    const { pod, app } = podAndApp(globals.dir, values, positionals);
    const enter = (await import('./enter.js')).command;
    return enter.run({ ...input, parsed: { values, positionals: [], afterDashes: undefined }, rawArgs: [`--app=${app}`, pod.uuid, '--', ...cmd] });
  },
};
