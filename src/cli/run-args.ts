/**
 * rkt's run/prepare grammar:
 *   rkt [global flags] run [pod flags] IMAGE [app flags] [-- app args] [---] [IMAGE ...]
 * Pod and global flags may appear anywhere; app flags apply to the image before them;
 * `--` starts that image's arguments and a lone `---` ends them. `--mount` before any
 * image applies to every app.
 */
import { FlagSpec, FlagValues, parseOneFlag, flagList } from './flags.js';
import { GLOBAL_FLAGS, GlobalOptions, globalOptionsFrom } from './globals.js';
import { fail } from '../util/errors.js';
import { setDebug } from '../util/log.js';

export const APP_FLAGS: FlagSpec[] = [
  { name: 'exec', kind: 'string', help: 'override the exec command for the preceding image' },
  { name: 'name', kind: 'string', help: 'set the name of the app (default: derived from the image name)' },
  { name: 'user', kind: 'string', help: 'user override: a uid, a user name in the image, or a /path whose owner is used' },
  { name: 'group', kind: 'string', help: 'group override: a gid, a group name in the image, or a /path whose group is used' },
  { name: 'supplementary-gids', kind: 'string', help: 'supplementary group IDs, comma-separated' },
  { name: 'working-dir', kind: 'string', help: 'working directory of the app' },
  { name: 'environment', kind: 'list', help: 'set an environment variable for the app (K=V)' },
  { name: 'cpu', kind: 'string', help: 'CPU limit, e.g. 500m or 2' },
  { name: 'memory', kind: 'string', help: 'memory limit, e.g. 128M or 1Gi' },
  { name: 'cpu-shares', kind: 'string', help: 'relative CPU weight' },
  { name: 'caps-retain', kind: 'string', help: 'capabilities to keep in the bounding set, comma-separated', aliases: ['cap-retain'] },
  { name: 'caps-remove', kind: 'string', help: 'capabilities to drop from the default bounding set, comma-separated', aliases: ['cap-remove'] },
  { name: 'readonly-rootfs', kind: 'bool', help: 'mount the app rootfs read-only' },
  { name: 'signature', kind: 'string', help: 'local signature file for the preceding image' },
  { name: 'mount', kind: 'list', help: 'mount a volume: volume=NAME,target=PATH' },
  { name: 'oom-score-adj', kind: 'string', help: 'OOM score adjustment (-1000..1000)' },
  { name: 'pids-limit', kind: 'string', help: "maximum number of processes of the app (the pod's default is 4096, set in limits.d)" },
  { name: 'seccomp', kind: 'string', help: 'seccomp filter: mode=retain|remove[,errno=ENAME],SYSCALL|@SET,... (replaces the image\'s seccomp isolator)' },
  { name: 'user-annotation', kind: 'list', help: "set an annotation of the app, KEY=VALUE (repeatable; in the pod manifest and status --format=json)" },
  { name: 'user-label', kind: 'list', help: 'set a label of the app, KEY=VALUE (repeatable; in the pod manifest and status --format=json)' },
];

const NETWORK_FLAGS: FlagSpec[] = [
  { name: 'net', kind: 'list', optionalValue: true, noValue: 'default', help: 'networks: default, host, none, all or names from net.d, with :K=V args' },
  { name: 'dns', kind: 'list', help: 'DNS server (repeatable), or host, or none' },
  { name: 'dns-search', kind: 'list', help: 'DNS search domain (repeatable)' },
  { name: 'dns-opt', kind: 'list', help: 'DNS resolver option (repeatable)' },
  { name: 'dns-domain', kind: 'string', help: 'DNS local domain' },
  { name: 'hosts-entry', kind: 'list', help: 'IP=HOST entries for /etc/hosts (repeatable), or host' },
  { name: 'hostname', kind: 'string', help: 'pod hostname (default rkt-<uuid>)' },
  { name: 'interactive', kind: 'bool', help: 'run the pod interactively (one app; stdin and tty passed through)' },
  { name: 'mds-register', kind: 'bool', help: 'register with the metadata service (not supported)', hidden: true },
  { name: 'ipc', kind: 'string', help: 'IPC namespace: auto, private or parent' },
];

const PREPARE_POD_FLAGS: FlagSpec[] = [
  { name: 'port', kind: 'list', help: 'forward a host port to a port of the image: NAME:[HOSTIP:]HOSTPORT' },
  { name: 'uuid-file-save', kind: 'string', help: 'write the pod UUID to this file' },
  { name: 'volume', kind: 'list', help: 'volume: NAME,kind=host,source=PATH[,readOnly=BOOL][,recursive=BOOL][,idmap=BOOL] or NAME,kind=empty[,mode=0755][,uid=0][,gid=0]' },
  { name: 'inherit-env', kind: 'bool', help: "inherit the caller's environment" },
  { name: 'set-env', kind: 'list', help: 'environment variable K=V for all apps' },
  { name: 'set-env-file', kind: 'list', help: 'file of K=V lines for all apps' },
  { name: 'pull-policy', kind: 'string', help: 'new (default), update or never' },
  { name: 'store-only', kind: 'bool', help: 'deprecated: --pull-policy=never', hidden: true },
  { name: 'no-store', kind: 'bool', help: 'deprecated: --pull-policy=update', hidden: true },
  { name: 'no-overlay', kind: 'bool', help: 'copy the image rootfs instead of using overlayfs' },
  { name: 'pod-manifest', kind: 'string', help: 'run the pod described by this pod manifest file' },
  { name: 'private-users', kind: 'bool', help: 'run the pod in a user namespace: its root is an unprivileged range of host uids' },
  { name: 'quiet', kind: 'bool', help: 'print only the UUID (prepare)' },
  { name: 'stage1-path', kind: 'string', help: 'not supported: this rkt runs stage1 from host tools', hidden: true },
  { name: 'stage1-url', kind: 'string', help: 'not supported', hidden: true },
  { name: 'stage1-name', kind: 'string', help: 'not supported', hidden: true },
  { name: 'stage1-hash', kind: 'string', help: 'not supported', hidden: true },
  { name: 'stage1-from-dir', kind: 'string', help: 'not supported', hidden: true },
];

export const RUN_POD_FLAGS: FlagSpec[] = [...PREPARE_POD_FLAGS, ...NETWORK_FLAGS];
export const RUN_PREPARED_FLAGS: FlagSpec[] = [...NETWORK_FLAGS];

export interface AppArgs {
  image: string;
  flags: FlagValues;
  /** Arguments after `--`. */
  args: string[];
  hasArgs: boolean;
}

export interface RunArgs {
  pod: FlagValues;
  apps: AppArgs[];
  /** `--mount` given before any image: applies to every app. */
  podMounts: string[];
}

export function parseRunArgs(argv: string[], podFlags: FlagSpec[]): RunArgs {
  const pod: FlagValues = new Map();
  const apps: AppArgs[] = [];
  const podMounts: string[] = [];
  const podSpecs = [...GLOBAL_FLAGS, ...podFlags];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i];
    const current = apps[apps.length - 1];
    if (arg === '---') { i++; continue; }
    if (arg === '--') {
      if (!current) fail('app arguments ("--") must follow an image');
      if (current.hasArgs) fail(`only one set of app arguments allowed per image (${current.image})`);
      current.hasArgs = true;
      i++;
      while (i < argv.length && argv[i] !== '---') current.args.push(argv[i++]);
      continue;
    }
    if (arg.startsWith('--')) {
      let used = parseOneFlag(argv, i, podSpecs, pod);
      if (used > 0) { i += used; continue; }
      if (current) {
        used = parseOneFlag(argv, i, APP_FLAGS, current.flags);
        if (used > 0) { i += used; continue; }
      } else {
        const scratch: FlagValues = new Map();
        used = parseOneFlag(argv, i, APP_FLAGS, scratch);
        if (used > 0) {
          const mounts = flagList(scratch, 'mount');
          if (mounts.length === 0) fail(`${arg.split('=')[0]} must follow an image: put it after the image it applies to`);
          podMounts.push(...mounts);
          i += used;
          continue;
        }
      }
      fail(`unknown flag: ${arg.split('=')[0]} (see "rkt run --help")`);
    }
    apps.push({ image: arg, flags: new Map(), args: [], hasArgs: false });
    i++;
  }
  return { pod, apps, podMounts };
}

/**
 * The global options of a run/prepare: main parsed only the flags before the command
 * name, and global flags may also follow it (`rkt run --insecure-options=image IMAGE`).
 */
export function runGlobals(leading: FlagValues, args: RunArgs): GlobalOptions {
  const globals = globalOptionsFrom(new Map([...leading, ...args.pod]));
  if (globals.debug) setDebug(true);
  return globals;
}

