import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Command } from './command.js';
import { flagString, parseOneFlag, FlagSpec, FlagValues } from './flags.js';
import { GLOBAL_FLAGS, globalOptionsFrom } from './globals.js';
import { realHost } from '../host/real.js';
import { fail } from '../util/errors.js';
import { info } from '../util/log.js';
import { findPod, podState } from '../stage0/pod.js';
import { appHostPid } from '../stage0/procs.js';
import { findStage1Tools } from '../stage1/tools.js';

const FLAGS: FlagSpec[] = [{ name: 'app', kind: 'string', help: 'name of the app to enter within the pod' }];

/** Flags stop at the UUID: what follows is the command with its own flags (`UUID /bin/sh -c ...`), as in rkt. */
function parseEnterArgs(leading: FlagValues, argv: string[]): { values: FlagValues; rest: string[] } {
  const values = new Map(leading);
  let i = 0;
  while (i < argv.length && argv[i] !== '--') {
    const used = parseOneFlag(argv, i, [...GLOBAL_FLAGS, ...FLAGS], values);
    if (used > 0) { i += used; continue; }
    if (argv[i].startsWith('-') && argv[i] !== '-') fail(`unknown flag: ${argv[i].split('=')[0]} (see "rkt enter --help")`);
    break;
  }
  if (argv[i] === '--') i++;
  return { values, rest: argv.slice(i) };
}

export const command: Command = {
  name: 'enter',
  summary: 'Enter the namespaces of an app within a rkt pod',
  usage: 'enter [--app=APPNAME] UUID [CMD [ARGS...]]',
  flags: FLAGS,
  ownGrammar: true,
  needsRoot: true,
  async run({ parsed, rawArgs }) {
    const { values, rest } = parseEnterArgs(parsed.values, rawArgs);
    const globals = globalOptionsFrom(values);
    const [ref, ...afterRef] = rest;
    const cmdRest = afterRef[0] === '--' ? afterRef.slice(1) : afterRef;
    if (!ref) fail('enter needs a pod UUID: rkt enter [--app=NAME] UUID [CMD...]');
    const pod = findPod(globals.dir, ref);
    if (podState(realHost, pod) !== 'running') fail(`pod ${pod.uuid} is not running`);
    const apps = fs.readdirSync(path.join(pod.dir, 'rkt', 'env'));
    let app = flagString(values, 'app');
    if (!app) {
      if (apps.length !== 1) fail(`pod ${pod.uuid} has several apps (${apps.join(', ')}): choose one with --app`);
      app = apps[0];
    }
    if (!apps.includes(app)) fail(`pod ${pod.uuid} has no app "${app}" (apps: ${apps.join(', ')})`);
    let pid: number | undefined;
    // The pid file may lag the pod's start by a moment; the pod may also die meanwhile.
    for (let i = 0; i < 50 && pid === undefined && podState(realHost, pod) === 'running'; i++) {
      pid = appHostPid(realHost, pod.dir, app);
      if (pid === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    if (pid === undefined) fail(`app ${app} of pod ${pod.uuid} is not running`);
    let cmd = cmdRest;
    if (cmd.length === 0) {
      info('no command specified, assuming "/bin/bash"');
      cmd = ['/bin/bash'];
    }
    const env = fs.readFileSync(path.join(pod.dir, 'rkt', 'env', app), 'utf8').split('\0').filter(Boolean);
    if (process.env.TERM) env.push(`TERM=${process.env.TERM}`);
    // nsenter is a host binary: loader variables from the image must not reach it.
    const envObj = Object.fromEntries(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]).filter(([k]) => !k.startsWith('LD_')));
    const tools = findStage1Tools();
    const r = spawnSync(tools.nsenter, [`--target=${pid}`, '--mount', '--uts', '--ipc', '--net', '--pid', '--root', '--wd', '--', ...cmd], { stdio: 'inherit', env: envObj });
    return r.status ?? 128 + 9;
  },
};
