import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { RANGE_FILE } from '../stage0/userns.js';
import type { Command } from './command.js';
import { flagString, parseOneFlag, FlagSpec, FlagValues } from './flags.js';
import { GLOBAL_FLAGS, globalOptionsFrom } from './globals.js';
import { realHost } from '../host/real.js';
import { fail } from '../util/errors.js';
import { info } from '../util/log.js';
import { findPod, podState } from '../stage0/pod.js';
import { appHostPid, podInitPid } from '../stage0/procs.js';
import { findStage1Tools } from '../stage1/tools.js';
import { enterScript, STAGE1_DIR, USERNS_ID_FILE } from '../pod-layout.js';

/**
 * True if the app's process is still in the pod's user namespace: that of the pod's PID 1,
 * or with --private-users the one PID 1 made and recorded. An app that made a user namespace
 * of its own (and a mount namespace in it, where it may mount over /proc) must not have rkt
 * enter run into namespaces it controls. (enter-APP.sh checks the userns again on the fd it joins.)
 */
function inPodUserNs(podDir: string, pid: number, init: number | undefined): boolean {
  try {
    const mine = fs.readlinkSync(`/proc/${pid}/ns/user`);
    if (fs.existsSync(path.join(podDir, RANGE_FILE))) return mine === fs.readFileSync(path.join(podDir, USERNS_ID_FILE), 'utf8').trim();
    return init !== undefined && mine === fs.readlinkSync(`/proc/${init}/ns/user`);
  } catch { return false; }
}

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
    // Each app has its enter script (stage1/enter-NAME.sh).
    const apps = fs.readdirSync(path.join(pod.dir, STAGE1_DIR)).flatMap((f) => /^enter-(.+)\.sh$/.exec(f)?.[1] ?? []).sort();
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
      info('no command specified, assuming "/bin/sh"');
      cmd = ['/bin/sh'];
    }
    if (cmd[0].includes('=')) fail(`command "${cmd[0]}" must not contain "=": give the path of a program`);
    if (!inPodUserNs(pod.dir, pid, podInitPid(realHost, pod.dir))) fail(`app ${app} of pod ${pod.uuid} has left the pod's user namespace: refusing to enter it`);
    let mntns: string;
    try { mntns = fs.readlinkSync(`/proc/${pid}/ns/mnt`); } catch { return fail(`app ${app} of pod ${pod.uuid} is not running`); }
    // The script stage1 wrote for this app confines the command exactly like the app.
    const script = path.join(pod.dir, enterScript(app));
    if (!fs.existsSync(script)) fail(`pod ${pod.uuid} was started by an older rkt that cannot enter it safely: restart the pod`);
    const term = process.env.TERM ? [`TERM=${process.env.TERM}`] : [];
    const { busybox } = findStage1Tools();
    // A private mount namespace for the script's read-only bind of the stage1 helper.
    const r = spawnSync(busybox, ['unshare', '-m', '--', busybox, 'sh', script, String(pid), mntns, ...term, ...cmd], { stdio: 'inherit', env: {} });
    return r.status ?? 128 + 9;
  },
};
