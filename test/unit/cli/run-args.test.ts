import { describe, expect, test } from '@jest/globals';
import { parseRunArgs, RUN_POD_FLAGS, RUN_PREPARED_FLAGS } from '../../../src/cli/run-args.js';
import { flagBool, flagList, flagString } from '../../../src/cli/flags.js';
import { RktError } from '../../../src/util/errors.js';

const parse = (argv: string[]) => parseRunArgs(argv, RUN_POD_FLAGS);
/** The error message parseRunArgs throws for argv (fails the test if it does not throw). */
function errorOf(argv: string[]): string {
  try {
    parse(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(RktError);
    return (e as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(argv)} to be rejected`);
}

describe('parseRunArgs: the documented examples', () => {
  test('coreos.com/etcd:v2.0.0 --cpu=750m --memory=128M', () => {
    const r = parse(['coreos.com/etcd:v2.0.0', '--cpu=750m', '--memory=128M']);
    expect(r.apps).toHaveLength(1);
    expect(r.apps[0].image).toBe('coreos.com/etcd:v2.0.0');
    expect(Object.fromEntries(r.apps[0].flags)).toEqual({ cpu: '750m', memory: '128M' });
    expect(r.apps[0].args).toEqual([]);
    expect(r.apps[0].hasArgs).toBe(false);
    expect(r.pod.size).toBe(0);
    expect(r.podMounts).toEqual([]);
  });

  test('--net=host coreos.com/etcd:v2.0.0', () => {
    const r = parse(['--net=host', 'coreos.com/etcd:v2.0.0']);
    expect(flagList(r.pod, 'net')).toEqual(['host']);
    expect(r.apps.map((a) => a.image)).toEqual(['coreos.com/etcd:v2.0.0']);
    expect(r.apps[0].flags.size).toBe(0);
  });

  test("--insecure-options=image ./busybox.aci --exec=/bin/sh -- -c 'echo hi; exit 3'", () => {
    const r = parse(['--insecure-options=image', './busybox.aci', '--exec=/bin/sh', '--', '-c', 'echo hi; exit 3']);
    expect(flagString(r.pod, 'insecure-options')).toBe('image');
    expect(r.apps).toHaveLength(1);
    expect(r.apps[0].image).toBe('./busybox.aci');
    expect(flagString(r.apps[0].flags, 'exec')).toBe('/bin/sh');
    // `-c` after `--` is an app argument, not a flag.
    expect(r.apps[0].args).toEqual(['-c', 'echo hi; exit 3']);
    expect(r.apps[0].hasArgs).toBe(true);
  });

  test('--volume ... --mount ... IMAGE with pod and app flags mixed, then -- arg1', () => {
    const r = parse([
      '--volume=data,kind=host,source=/srv/x', '--mount=volume=data,target=/data', 'IMAGE',
      '--set-env=K=V', '--exec=/bin/cmd', '--memory=256M', '--cpu=500m', '--', 'arg1',
    ]);
    expect(flagList(r.pod, 'volume')).toEqual(['data,kind=host,source=/srv/x']);
    // --set-env is a pod flag even after the image.
    expect(flagList(r.pod, 'set-env')).toEqual(['K=V']);
    // --mount before any image applies to every app and is not a pod flag value.
    expect(r.podMounts).toEqual(['volume=data,target=/data']);
    expect(r.pod.has('mount')).toBe(false);
    expect(r.apps).toHaveLength(1);
    const app = r.apps[0];
    expect(app.image).toBe('IMAGE');
    expect(Object.fromEntries(app.flags)).toEqual({ exec: '/bin/cmd', memory: '256M', cpu: '500m' });
    expect(app.args).toEqual(['arg1']);
    expect(app.hasArgs).toBe(true);
  });

  test('three apps separated by ---, each with its own flags and args', () => {
    const r = parse([
      '--net=host',
      'example.com/a', '--exec=/bin/a', '--', 'a1', '--exec=/not-a-flag', 'a2', '---',
      'example.com/b', '--name=bee', '---',
      'example.com/c', '--memory=64M', '--', 'c1',
    ]);
    expect(flagList(r.pod, 'net')).toEqual(['host']);
    expect(r.apps.map((a) => a.image)).toEqual(['example.com/a', 'example.com/b', 'example.com/c']);
    expect(Object.fromEntries(r.apps[0].flags)).toEqual({ exec: '/bin/a' });
    expect(r.apps[0].args).toEqual(['a1', '--exec=/not-a-flag', 'a2']);
    expect(Object.fromEntries(r.apps[1].flags)).toEqual({ name: 'bee' });
    expect(r.apps[1].args).toEqual([]);
    expect(r.apps[1].hasArgs).toBe(false);
    expect(Object.fromEntries(r.apps[2].flags)).toEqual({ memory: '64M' });
    expect(r.apps[2].args).toEqual(['c1']);
    expect(r.apps[2].hasArgs).toBe(true);
  });
});

describe('parseRunArgs: pod and global flags', () => {
  test('pod flags are accepted anywhere, before, between and after images', () => {
    const r = parse(['--hostname=h1', 'img1', '--interactive', '--dns=8.8.8.8', 'img2', '--port=http:8080', '--uuid-file-save=/tmp/u']);
    expect(flagString(r.pod, 'hostname')).toBe('h1');
    expect(flagBool(r.pod, 'interactive')).toBe(true);
    expect(flagList(r.pod, 'dns')).toEqual(['8.8.8.8']);
    expect(flagList(r.pod, 'port')).toEqual(['http:8080']);
    expect(flagString(r.pod, 'uuid-file-save')).toBe('/tmp/u');
    expect(r.apps.map((a) => a.image)).toEqual(['img1', 'img2']);
    expect(r.apps.every((a) => a.flags.size === 0)).toBe(true);
  });

  test('global flags (--insecure-options, --dir, --debug) are accepted anywhere', () => {
    const r = parse(['img', '--insecure-options=image,paths', '--dir', '/var/lib/x', '--debug']);
    expect(flagString(r.pod, 'insecure-options')).toBe('image,paths');
    expect(flagString(r.pod, 'dir')).toBe('/var/lib/x');
    expect(flagBool(r.pod, 'debug')).toBe(true);
    expect(r.apps).toHaveLength(1);
    expect(r.apps[0].flags.size).toBe(0);
  });

  test('a bare --net means default and does not take the next word as its value', () => {
    const r = parse(['--net', 'coreos.com/etcd:v2.0.0']);
    expect(flagList(r.pod, 'net')).toEqual(['default']);
    expect(r.apps.map((a) => a.image)).toEqual(['coreos.com/etcd:v2.0.0']);
  });

  test('--net=host and a bare --net after the image', () => {
    expect(flagList(parse(['img', '--net=host']).pod, 'net')).toEqual(['host']);
    expect(flagList(parse(['img', '--net']).pod, 'net')).toEqual(['default']);
    expect(flagList(parse(['--net=none', 'img']).pod, 'net')).toEqual(['none']);
  });

  test('repeated list flags accumulate in order', () => {
    const r = parse([
      '--net=a', '--set-env=A=1', '--volume=v1,kind=empty', 'img', '--net=b:IP=10.1.1.1', '--set-env=B=2',
      '--volume', 'v2,kind=host,source=/x', '--dns-search=x.org', '--dns-search=y.org', '--set-env-file=/f1', '--set-env-file=/f2',
    ]);
    expect(flagList(r.pod, 'net')).toEqual(['a', 'b:IP=10.1.1.1']);
    expect(flagList(r.pod, 'set-env')).toEqual(['A=1', 'B=2']);
    expect(flagList(r.pod, 'volume')).toEqual(['v1,kind=empty', 'v2,kind=host,source=/x']);
    expect(flagList(r.pod, 'dns-search')).toEqual(['x.org', 'y.org']);
    expect(flagList(r.pod, 'set-env-file')).toEqual(['/f1', '/f2']);
  });

  test('value flags take the next word when given without =', () => {
    const r = parse(['--hostname', 'myhost', 'img', '--exec', '/bin/sh', '--memory', '1G']);
    expect(flagString(r.pod, 'hostname')).toBe('myhost');
    expect(r.apps).toHaveLength(1);
    expect(Object.fromEntries(r.apps[0].flags)).toEqual({ exec: '/bin/sh', memory: '1G' });
  });

  test('a bool pod flag given =false', () => {
    const r = parse(['--inherit-env=false', '--no-overlay', 'img']);
    expect(r.pod.get('inherit-env')).toBe(false);
    expect(r.pod.get('no-overlay')).toBe(true);
  });

  test('run-prepared flags have no prepare-only flags', () => {
    const r = parseRunArgs(['--net=host', '--interactive'], RUN_PREPARED_FLAGS);
    expect(flagList(r.pod, 'net')).toEqual(['host']);
    expect(flagBool(r.pod, 'interactive')).toBe(true);
    expect(() => parseRunArgs(['--volume=x,kind=empty'], RUN_PREPARED_FLAGS)).toThrow('unknown flag: --volume');
  });
});

describe('parseRunArgs: per-app flags', () => {
  test('app flags go to the image before them, not to later or earlier images', () => {
    const r = parse(['img1', '--user=1000', '--group=100', 'img2', '--working-dir=/w', '--readonly-rootfs', '--environment=A=1', '--environment=B=2']);
    expect(Object.fromEntries(r.apps[0].flags)).toEqual({ user: '1000', group: '100' });
    expect(Object.fromEntries(r.apps[1].flags)).toEqual({ 'working-dir': '/w', 'readonly-rootfs': true, environment: ['A=1', 'B=2'] });
  });

  test('deprecated --cap-retain/--cap-remove are stored under caps-*', () => {
    const r = parse(['img', '--cap-retain=CAP_NET_ADMIN', 'img2', '--cap-remove=CAP_CHOWN']);
    expect(flagString(r.apps[0].flags, 'caps-retain')).toBe('CAP_NET_ADMIN');
    expect(flagString(r.apps[1].flags, 'caps-remove')).toBe('CAP_CHOWN');
  });

  test('--mount before any image applies to all apps; after an image only to that image', () => {
    const r = parse(['--mount=volume=a,target=/a', '--mount', 'volume=b,target=/b', 'img1', '--mount=volume=c,target=/c', 'img2']);
    expect(r.podMounts).toEqual(['volume=a,target=/a', 'volume=b,target=/b']);
    expect(flagList(r.apps[0].flags, 'mount')).toEqual(['volume=c,target=/c']);
    expect(flagList(r.apps[1].flags, 'mount')).toEqual([]);
    expect(r.pod.has('mount')).toBe(false);
  });

  test.each([
    [['--memory=128M', 'img'], '--memory'],
    [['--memory', '128M', 'img'], '--memory'],
    [['--exec=/bin/sh', 'img'], '--exec'],
    [['--net=host', '--cpu=1', 'img'], '--cpu'],
    [['--readonly-rootfs', 'img'], '--readonly-rootfs'],
  ])('a per-app flag before any image is an error naming it: %j', (argv, flag) => {
    const msg = errorOf(argv);
    expect(msg).toBe(`${flag} must follow an image: put it after the image it applies to`);
  });

  test('a per-app flag after --- still applies to the previous image', () => {
    const r = parse(['img', '--', 'x', '---', '--memory=1G']);
    expect(flagString(r.apps[0].flags, 'memory')).toBe('1G');
    expect(r.apps[0].args).toEqual(['x']);
  });
});

describe('parseRunArgs: app arguments', () => {
  test('everything after -- up to --- is an app argument, even flags and a second --', () => {
    const r = parse(['img', '--', '--net=host', '--', '-x', '---', 'img2']);
    expect(r.apps[0].args).toEqual(['--net=host', '--', '-x']);
    expect(r.pod.size).toBe(0);
    expect(r.apps[1].image).toBe('img2');
  });

  test('an empty -- block still counts as given', () => {
    const r = parse(['img', '--']);
    expect(r.apps[0].args).toEqual([]);
    expect(r.apps[0].hasArgs).toBe(true);
  });

  test('only one set of app arguments per image', () => {
    expect(errorOf(['img', '--', 'a', '---', '--', 'b'])).toBe('only one set of app arguments allowed per image (img)');
    expect(errorOf(['img', '--', '---', '--net=host', '--'])).toContain('only one set of app arguments allowed per image');
  });

  test('a new image after --- may have its own --', () => {
    const r = parse(['img', '--', 'a', '---', 'img2', '--', 'b']);
    expect(r.apps.map((a) => a.args)).toEqual([['a'], ['b']]);
  });

  test('-- before any image is an error', () => {
    expect(errorOf(['--', 'x'])).toBe('app arguments ("--") must follow an image');
    expect(errorOf(['--net=host', '--', 'x'])).toBe('app arguments ("--") must follow an image');
  });

  test('a lone --- is ignored outside app arguments', () => {
    const r = parse(['---', 'img', '---', '---', 'img2']);
    expect(r.apps.map((a) => a.image)).toEqual(['img', 'img2']);
  });
});

describe('parseRunArgs: errors', () => {
  test.each([
    [['--bogus', 'img'], 'unknown flag: --bogus (see "rkt run --help")'],
    [['img', '--bogus=1'], 'unknown flag: --bogus (see "rkt run --help")'],
    [['img', '--exec-path=/x'], 'unknown flag: --exec-path (see "rkt run --help")'],
  ])('unknown flag %j', (argv, msg) => {
    expect(errorOf(argv)).toBe(msg);
  });

  test('a value flag at the end of argv needs its argument', () => {
    expect(errorOf(['img', '--exec'])).toBe('flag needs an argument: --exec');
    expect(errorOf(['--hostname'])).toBe('flag needs an argument: --hostname');
  });

  test('a bad boolean value is rejected', () => {
    expect(errorOf(['img', '--readonly-rootfs=maybe'])).toContain('invalid value "maybe" for --readonly-rootfs');
  });

  test('no images at all gives no apps (the caller reports it)', () => {
    const r = parse(['--net=host']);
    expect(r.apps).toEqual([]);
  });
});
