import { describe, expect, test } from '@jest/globals';
import {
  DEFAULT_CAPS, LINUX_CAPABILITIES, normalizeCap, resolveAppResources, sortCaps, validateIsolator, validateIsolators,
} from '../../../src/image/isolators.js';
import type { Isolator } from '../../../src/image/types.js';
import { RktError } from '../../../src/util/errors.js';

const DEFAULT_SORTED = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP',
];

describe('capability tables', () => {
  test('LINUX_CAPABILITIES numbers all 41 capabilities 0..40', () => {
    const entries = Object.entries(LINUX_CAPABILITIES);
    expect(entries).toHaveLength(41);
    expect(entries.map(([, n]) => n).sort((a, b) => a - b)).toEqual([...Array(41).keys()]);
    expect(LINUX_CAPABILITIES.CAP_CHOWN).toBe(0);
    expect(LINUX_CAPABILITIES.CAP_NET_BIND_SERVICE).toBe(10);
    expect(LINUX_CAPABILITIES.CAP_NET_ADMIN).toBe(12);
    expect(LINUX_CAPABILITIES.CAP_SYS_ADMIN).toBe(21);
    expect(LINUX_CAPABILITIES.CAP_MKNOD).toBe(27);
    expect(LINUX_CAPABILITIES.CAP_AUDIT_WRITE).toBe(29);
    expect(LINUX_CAPABILITIES.CAP_SETFCAP).toBe(31);
    expect(LINUX_CAPABILITIES.CAP_AUDIT_READ).toBe(37);
    expect(LINUX_CAPABILITIES.CAP_PERFMON).toBe(38);
    expect(LINUX_CAPABILITIES.CAP_BPF).toBe(39);
    expect(LINUX_CAPABILITIES.CAP_CHECKPOINT_RESTORE).toBe(40);
  });

  test('DEFAULT_CAPS is appc\'s 14', () => {
    expect([...DEFAULT_CAPS].sort()).toEqual([
      'CAP_AUDIT_WRITE', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_MKNOD',
      'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
    ]);
    for (const c of DEFAULT_CAPS) expect(c in LINUX_CAPABILITIES).toBe(true);
  });

  test('sortCaps orders by number and drops duplicates', () => {
    expect(sortCaps(['CAP_SYS_ADMIN', 'CAP_CHOWN', 'CAP_KILL', 'CAP_CHOWN'])).toEqual(['CAP_CHOWN', 'CAP_KILL', 'CAP_SYS_ADMIN']);
    expect(sortCaps(DEFAULT_CAPS)).toEqual(DEFAULT_SORTED);
  });
});

describe('normalizeCap', () => {
  test.each(['CAP_SYS_ADMIN', 'cap_sys_admin', 'sys_admin', 'SYS_ADMIN', ' Cap_Sys_Admin '])('%p → CAP_SYS_ADMIN', (s) => {
    expect(normalizeCap(s)).toBe('CAP_SYS_ADMIN');
  });
  test('rejects unknown names, naming them', () => {
    expect(() => normalizeCap('CAP_FLY')).toThrow(RktError);
    expect(() => normalizeCap('CAP_FLY')).toThrow('unknown capability "CAP_FLY": use a name from capabilities(7), e.g. CAP_NET_ADMIN');
    expect(() => normalizeCap('')).toThrow('unknown capability ""');
    expect(() => normalizeCap('CAP_toString')).toThrow('unknown capability');
  });
});

const iso = (name: string, value: unknown) => ({ name, value });
const check = (name: string, value: unknown) => () => validateIsolator(iso(name, value), 'app.isolators[0]');

describe('validateIsolator', () => {
  test('returns the isolator and accepts unknown names with any value', () => {
    expect(validateIsolator(iso('resource/memory', { limit: '1G' }), 'p')).toEqual(iso('resource/memory', { limit: '1G' }));
    expect(validateIsolator(iso('example.com/whatever', [1, 'x']), 'p')).toEqual(iso('example.com/whatever', [1, 'x']));
  });

  test('checks the isolator object itself', () => {
    expect(() => validateIsolator('x', 'app.isolators[0]')).toThrow('app.isolators[0]: must be an object, got string "x"');
    expect(() => validateIsolator({ value: 1 }, 'app.isolators[0]')).toThrow('app.isolators[0].name: is required');
    expect(() => validateIsolator({ name: 'Resource/Memory', value: 1 }, 'app.isolators[0]')).toThrow(
      'app.isolators[0].name: "Resource/Memory" is not a valid AC identifier (lower case alphanumerics and -._~/, starting and ending with an alphanumeric)',
    );
    expect(() => validateIsolator({ name: 'x' }, 'app.isolators[0]')).toThrow('app.isolators[0].value: is required');
    expect(() => validateIsolator({ name: 'x', value: null }, 'app.isolators[0]')).toThrow('app.isolators[0].value: is required');
  });

  test('resource/memory and resource/cpu: quantities, default false', () => {
    expect(check('resource/memory', { request: '1G', limit: '2Gi' })).not.toThrow();
    expect(check('resource/cpu', { limit: '500m' })).not.toThrow();
    expect(check('resource/cpu', { limit: 2 })).not.toThrow();
    expect(check('resource/cpu', { default: false, limit: '1' })).not.toThrow();
    expect(check('resource/memory', {})).not.toThrow();
    expect(check('resource/memory', '1G')).toThrow('app.isolators[0].value: must be an object, got string "1G"');
    expect(check('resource/memory', { limit: 'lots' })).toThrow(
      'app.isolators[0].value.limit: "lots" is not a quantity (e.g. 500m, 2, 128M or 1Gi)',
    );
    expect(check('resource/cpu', { request: true })).toThrow('app.isolators[0].value.request: must be a string, got boolean true');
    expect(check('resource/cpu', { default: true, limit: '1' })).toThrow('app.isolators[0].value.default: must be false for this resource');
  });

  test('bandwidth and iops resources: default true, no request', () => {
    for (const name of ['resource/block-bandwidth', 'resource/block-iops', 'resource/network-bandwidth']) {
      expect(check(name, { default: true, limit: '2M' })).not.toThrow();
      expect(check(name, { limit: '2M' })).toThrow('app.isolators[0].value.default: is required');
      expect(check(name, { default: false, limit: '2M' })).toThrow('app.isolators[0].value.default: must be true');
      expect(check(name, { default: true, request: '1M', limit: '2M' })).toThrow(
        'app.isolators[0].value.request: is not supported by this resource: remove it',
      );
    }
  });

  test('cpu-shares and oom-score-adj: integers in range', () => {
    expect(check('os/linux/cpu-shares', 2)).not.toThrow();
    expect(check('os/linux/cpu-shares', 262144)).not.toThrow();
    expect(check('os/linux/cpu-shares', 1)).toThrow('app.isolators[0].value: must be an integer in 2..262144, got number 1');
    expect(check('os/linux/cpu-shares', '512')).toThrow('must be an integer in 2..262144, got string "512"');
    expect(check('os/linux/oom-score-adj', -1000)).not.toThrow();
    expect(check('os/linux/oom-score-adj', 1000)).not.toThrow();
    expect(check('os/linux/oom-score-adj', 1001)).toThrow('app.isolators[0].value: must be an integer in -1000..1000, got number 1001');
    expect(check('os/linux/oom-score-adj', 1.5)).toThrow('must be an integer in -1000..1000');
  });

  test('capability sets: a non-empty list of known capabilities', () => {
    for (const name of ['os/linux/capabilities-retain-set', 'os/linux/capabilities-remove-set']) {
      expect(check(name, { set: ['CAP_NET_ADMIN', 'cap_kill', 'sys_time'] })).not.toThrow();
      expect(check(name, {})).toThrow('app.isolators[0].value.set: is required');
      expect(check(name, { set: [] })).toThrow('app.isolators[0].value.set: must list at least one capability');
      expect(check(name, { set: 'CAP_KILL' })).toThrow('app.isolators[0].value.set: must be a list, got string "CAP_KILL"');
      expect(check(name, { set: ['CAP_KILL', 'CAP_FLY'] })).toThrow(
        'app.isolators[0].value.set[1]: unknown capability "CAP_FLY" (use names like CAP_NET_ADMIN)',
      );
      expect(check(name, { set: [7] })).toThrow('app.isolators[0].value.set[0]: must be a string, got number 7');
    }
  });

  test('no-new-privileges: a boolean', () => {
    expect(check('os/linux/no-new-privileges', true)).not.toThrow();
    expect(check('os/linux/no-new-privileges', false)).not.toThrow();
    expect(check('os/linux/no-new-privileges', 'true')).toThrow('app.isolators[0].value: must be true or false, got string "true"');
  });

  test('seccomp sets: non-empty syscall list, optional errno name', () => {
    for (const name of ['os/linux/seccomp-retain-set', 'os/linux/seccomp-remove-set']) {
      expect(check(name, { set: ['@appc.io/all'] })).not.toThrow();
      expect(check(name, { set: ['reboot'], errno: 'ENOTSUP' })).not.toThrow();
      expect(check(name, { set: ['reboot'], errno: '' })).not.toThrow();
      expect(check(name, { set: [] })).toThrow('app.isolators[0].value.set: must list at least one syscall');
      expect(check(name, { set: ['reboot'], errno: 'eperm' })).toThrow(
        'app.isolators[0].value.errno: "eperm" is not an errno name (e.g. EPERM)',
      );
      expect(check(name, { set: ['reboot'], errno: 1 })).toThrow('app.isolators[0].value.errno: must be a string');
    }
  });

  test('selinux-context, apparmor-profile and sysctl shapes', () => {
    const ctx = { user: 'system_u', role: 'system_r', type: 'dhcpc_t', level: 's0:c1' };
    expect(check('os/linux/selinux-context', ctx)).not.toThrow();
    expect(check('os/linux/selinux-context', { ...ctx, role: 'a:b' })).toThrow('app.isolators[0].value.role: "a:b" is not a valid role');
    expect(check('os/linux/selinux-context', { ...ctx, level: '' })).toThrow('app.isolators[0].value.level: "" is not a valid level');
    expect(check('os/linux/selinux-context', { user: 'u' })).toThrow('app.isolators[0].value.role: is required');
    expect(check('os/linux/apparmor-profile', { profile: 'rkt-default' })).not.toThrow();
    expect(check('os/linux/apparmor-profile', { profile: '' })).toThrow('app.isolators[0].value.profile: must not be empty');
    expect(check('os/unix/sysctl', { 'net.ipv4.tcp_mtu_probing': '1' })).not.toThrow();
    expect(check('os/unix/sysctl', { 'net.ipv4.tcp_mtu_probing': 1 })).toThrow(
      'app.isolators[0].value.net.ipv4.tcp_mtu_probing: must be a string, got number 1',
    );
  });
});

describe('validateIsolators', () => {
  test('allows repeats of resource, capability and no-new-privileges isolators', () => {
    const list = [
      iso('resource/memory', { limit: '1G' }), iso('resource/memory', { limit: '2G' }),
      iso('os/linux/capabilities-retain-set', { set: ['CAP_KILL'] }), iso('os/linux/capabilities-retain-set', { set: ['CAP_CHOWN'] }),
      iso('os/linux/no-new-privileges', true), iso('os/linux/no-new-privileges', false),
      iso('example.com/x', 1), iso('example.com/x', 2),
    ];
    expect(validateIsolators(list, 'isolators')).toEqual(list);
  });

  test.each(['os/linux/cpu-shares', 'os/linux/oom-score-adj'])('allows only one %p', (name) => {
    expect(() => validateIsolators([iso(name, 100), iso(name, 200)], 'app.isolators')).toThrow(
      `app.isolators[1]: only one "${name}" isolator is allowed`,
    );
  });

  test('allows one seccomp isolator, never retain with remove', () => {
    const retain = iso('os/linux/seccomp-retain-set', { set: ['read'] });
    const remove = iso('os/linux/seccomp-remove-set', { set: ['reboot'] });
    expect(() => validateIsolators([retain, retain], 'i')).toThrow('i[1]: only one "os/linux/seccomp-retain-set" isolator is allowed');
    expect(() => validateIsolators([retain, remove], 'i')).toThrow(
      'i[1]: "os/linux/seccomp-remove-set" cannot be used together with "os/linux/seccomp-retain-set"',
    );
  });

  test('reports the bad item by index', () => {
    expect(() => validateIsolators([iso('os/linux/cpu-shares', 100), iso('os/linux/cpu-shares', 0)], 'app.isolators')).toThrow(
      'app.isolators[1].value: must be an integer in 2..262144',
    );
    expect(() => validateIsolators({}, 'app.isolators')).toThrow('app.isolators: must be a list, got an object');
  });
});

describe('resolveAppResources', () => {
  const resolve = (isolators: Isolator[] | undefined, overrides = {}, opts = {}) => resolveAppResources(isolators, overrides, opts);

  test('defaults: no limits, the 14 default caps sorted by number, no NNP', () => {
    expect(resolve(undefined)).toEqual({ capabilities: DEFAULT_SORTED, noNewPrivileges: false });
    expect(resolve([])).toEqual({ capabilities: DEFAULT_SORTED, noNewPrivileges: false });
  });

  test('unknown isolators are ignored', () => {
    expect(resolve([iso('example.com/fancy', { x: 1 }), iso('resource/block-iops', { default: true, limit: '1000' })])).toEqual(
      { capabilities: DEFAULT_SORTED, noNewPrivileges: false },
    );
  });

  describe('memory', () => {
    test('uses the limit, in bytes', () => {
      expect(resolve([iso('resource/memory', { request: '100M', limit: '128Mi' })]).memoryBytes).toBe(134_217_728);
      expect(resolve([iso('resource/memory', { limit: '1G' })]).memoryBytes).toBe(1e9);
      expect(resolve([iso('resource/memory', { limit: 5000 })]).memoryBytes).toBe(5000);
    });
    test('a request alone sets no limit', () => {
      expect(resolve([iso('resource/memory', { request: '1G' })]).memoryBytes).toBeUndefined();
    });
    test('the last isolator with a limit wins', () => {
      const list = [iso('resource/memory', { limit: '1G' }), iso('resource/memory', { limit: '2G' }), iso('resource/memory', { request: '5G' })];
      expect(resolve(list).memoryBytes).toBe(2e9);
    });
    test('--memory replaces the image isolator', () => {
      expect(resolve([iso('resource/memory', { limit: '1G' })], { memory: '16Mi' }).memoryBytes).toBe(16_777_216);
      expect(resolve(undefined, { memory: '128M' }).memoryBytes).toBe(128_000_000);
    });
    test('--memory is checked', () => {
      expect(() => resolve(undefined, { memory: '16m' })).toThrow('--memory value "16m" is too small');
    });
  });

  describe('cpu', () => {
    test('uses the limit, in millicores', () => {
      expect(resolve([iso('resource/cpu', { request: '250m', limit: '500m' })]).cpuMillis).toBe(500);
      expect(resolve([iso('resource/cpu', { limit: '2' })]).cpuMillis).toBe(2000);
      expect(resolve([iso('resource/cpu', { limit: 0.25 })]).cpuMillis).toBe(250);
      expect(resolve([iso('resource/cpu', { request: '1' })]).cpuMillis).toBeUndefined();
      expect(resolve([iso('resource/cpu', { limit: '1' }), iso('resource/cpu', { limit: '3' })]).cpuMillis).toBe(3000);
    });
    test('--cpu replaces the image isolator', () => {
      expect(resolve([iso('resource/cpu', { limit: '2' })], { cpu: '750m' }).cpuMillis).toBe(750);
      expect(() => resolve(undefined, { cpu: '0' })).toThrow('--cpu value "0" must be more than zero');
    });
    test('a zero image limit is an error', () => {
      expect(() => resolve([iso('resource/cpu', { limit: '0' })])).toThrow(
        'bad resource/cpu isolator: limit "0" must be more than zero',
      );
    });
  });

  test('cpu-shares: the isolator, replaced by --cpu-shares', () => {
    expect(resolve([iso('os/linux/cpu-shares', 512)]).cpuShares).toBe(512);
    expect(resolve([iso('os/linux/cpu-shares', 512)], { cpuShares: '2048' }).cpuShares).toBe(2048);
    expect(resolve(undefined, { cpuShares: '2' }).cpuShares).toBe(2);
    for (const bad of ['1', '262145', 'x', '1.5', '']) {
      expect(() => resolve(undefined, { cpuShares: bad })).toThrow(
        `--cpu-shares value ${JSON.stringify(bad)} must be an integer between 2 and 262144`,
      );
    }
  });

  test('oom-score-adj: the isolator, replaced by --oom-score-adj', () => {
    expect(resolve([iso('os/linux/oom-score-adj', -500)]).oomScoreAdj).toBe(-500);
    expect(resolve([iso('os/linux/oom-score-adj', -500)], { oomScoreAdj: '300' }).oomScoreAdj).toBe(300);
    expect(resolve(undefined, { oomScoreAdj: '-1000' }).oomScoreAdj).toBe(-1000);
    expect(resolve(undefined, { oomScoreAdj: '0' }).oomScoreAdj).toBe(0);
    for (const bad of ['1001', '-1001', 'high']) {
      expect(() => resolve(undefined, { oomScoreAdj: bad })).toThrow(
        `--oom-score-adj value ${JSON.stringify(bad)} must be an integer between -1000 and 1000`,
      );
    }
  });

  describe('capabilities', () => {
    const retain = (...set: string[]) => iso('os/linux/capabilities-retain-set', { set });
    const remove = (...set: string[]) => iso('os/linux/capabilities-remove-set', { set });

    test('a retain set gives exactly that set', () => {
      expect(resolve([retain('CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN')]).capabilities).toEqual(['CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN']);
      expect(resolve([retain('sys_admin')]).capabilities).toEqual(['CAP_SYS_ADMIN']);
    });
    test('several retain sets add up', () => {
      expect(resolve([retain('CAP_SYS_ADMIN'), retain('CAP_CHOWN')]).capabilities).toEqual(['CAP_CHOWN', 'CAP_SYS_ADMIN']);
    });
    test('a remove set takes from the default set', () => {
      expect(resolve([remove('CAP_SYS_CHROOT', 'CAP_MKNOD')]).capabilities).toEqual(
        DEFAULT_SORTED.filter((c) => c !== 'CAP_SYS_CHROOT' && c !== 'CAP_MKNOD'),
      );
      expect(resolve([remove('CAP_SYS_CHROOT', 'CAP_MKNOD')]).capabilities).toHaveLength(12);
    });
    test('removing a capability outside the default set has no effect', () => {
      expect(resolve([remove('CAP_SYS_ADMIN')]).capabilities).toEqual(DEFAULT_SORTED);
    });
    test('retain and remove together in the image is an error', () => {
      expect(() => resolve([retain('CAP_KILL'), remove('CAP_CHOWN')])).toThrow(RktError);
      expect(() => resolve([retain('CAP_KILL'), remove('CAP_CHOWN')])).toThrow(
        'the app has both os/linux/capabilities-retain-set and os/linux/capabilities-remove-set isolators: keep only one of them',
      );
    });
    test('--caps-retain replaces every image capability isolator', () => {
      expect(resolve([remove('CAP_CHOWN')], { capsRetain: ['CAP_SYS_ADMIN'] }).capabilities).toEqual(['CAP_SYS_ADMIN']);
      expect(resolve([retain('CAP_KILL'), remove('CAP_CHOWN')], { capsRetain: ['net_admin,CAP_KILL'] }).capabilities).toEqual(
        ['CAP_KILL', 'CAP_NET_ADMIN'],
      );
    });
    test('--caps-remove replaces every image capability isolator', () => {
      // An image retain set plus --caps-remove=CAP_KILL gives the default set minus KILL.
      expect(resolve([retain('CAP_SYS_ADMIN')], { capsRemove: ['CAP_KILL'] }).capabilities).toEqual(
        DEFAULT_SORTED.filter((c) => c !== 'CAP_KILL'),
      );
      expect(resolve(undefined, { capsRemove: ['CAP_KILL', 'cap_chown,mknod'] }).capabilities).toEqual(
        DEFAULT_SORTED.filter((c) => !['CAP_KILL', 'CAP_CHOWN', 'CAP_MKNOD'].includes(c)),
      );
    });
    test('--caps-retain and --caps-remove are exclusive', () => {
      expect(() => resolve(undefined, { capsRetain: ['CAP_KILL'], capsRemove: ['CAP_CHOWN'] })).toThrow(
        '--caps-retain and --caps-remove cannot be used on the same image: use one of them',
      );
    });
    test('flag values are checked', () => {
      expect(() => resolve(undefined, { capsRetain: ['CAP_FLY'] })).toThrow('unknown capability "CAP_FLY"');
      expect(() => resolve(undefined, { capsRemove: [','] })).toThrow(
        '--caps-remove needs at least one capability, e.g. --caps-remove=CAP_NET_ADMIN',
      );
      // An empty list means the flag was not given.
      expect(resolve(undefined, { capsRetain: [] }).capabilities).toEqual(DEFAULT_SORTED);
    });
    test('allCaps (--insecure-options=capabilities) gives every capability', () => {
      const all = resolve([retain('CAP_KILL'), remove('CAP_CHOWN')], {}, { allCaps: true }).capabilities;
      expect(all).toHaveLength(41);
      expect(all[0]).toBe('CAP_CHOWN');
      expect(all[40]).toBe('CAP_CHECKPOINT_RESTORE');
      expect(resolve(undefined, { capsRetain: ['CAP_KILL'] }, { allCaps: true }).capabilities).toHaveLength(41);
    });
  });

  test('no-new-privileges is on when any isolator says true', () => {
    const nnp = (v: boolean) => iso('os/linux/no-new-privileges', v);
    expect(resolve([nnp(true)]).noNewPrivileges).toBe(true);
    expect(resolve([nnp(false)]).noNewPrivileges).toBe(false);
    expect(resolve([nnp(true), nnp(false)]).noNewPrivileges).toBe(true);
    expect(resolve([nnp(false), nnp(true)]).noNewPrivileges).toBe(true);
  });

  test('invalid isolators are reported', () => {
    expect(() => resolve([iso('os/linux/cpu-shares', 'lots')])).toThrow(
      'bad isolator: isolators[0].value: must be an integer in 2..262144, got string "lots"',
    );
  });
});
