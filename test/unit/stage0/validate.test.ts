import { describe, expect, test } from '@jest/globals';
import { checkStartOptions } from '../../../src/stage0/validate.js';
import type { PreparedApp } from '../../../src/stage0/prepare.js';
import type { FlagValues } from '../../../src/cli/flags.js';
import { globalOptionsFrom } from '../../../src/cli/globals.js';
import { startOptionsFrom } from '../../../src/cli/pod-spec.js';
import { parsePortFlag } from '../../../src/net/netflag.js';
import { RktError } from '../../../src/util/errors.js';
import { FakeHost } from '../../helpers/fake-host.js';

const globals = globalOptionsFrom(new Map([['dir', '/var/lib/rkt'], ['local-config', '/etc/rkt']]));
const app = (ports: PreparedApp['ports'] = [{ name: 'http', protocol: 'tcp', port: 80 }]) => ({ name: 'web', ports } as unknown as PreparedApp);

function flags(entries: Array<[string, string | string[] | boolean]>): FlagValues {
  return new Map(entries);
}

/** The flags as the CLI turns them into options, then checked by stage0 against the apps. */
async function check(f: FlagValues, opts: { ports?: string[]; apps?: PreparedApp[]; run?: boolean } = {}): Promise<void> {
  const start = startOptionsFrom(f);
  const ports = (opts.ports ?? []).map(parsePortFlag);
  await checkStartOptions(new FakeHost(), globals, opts.apps ?? [app()], ports, start, opts.run ?? true);
}

/** The message the flags are rejected with (fails the test if they are accepted). */
async function rejection(f: FlagValues, opts: { ports?: string[]; apps?: PreparedApp[]; run?: boolean } = {}): Promise<string> {
  try {
    await check(f, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(RktError);
    expect((e as Error).message).not.toContain('\n'); // one line, whatever the user typed
    return (e as Error).message;
  }
  throw new Error('expected the flags to be rejected');
}

describe('start options: syntax (cli) and against the pod (stage0)', () => {
  test('good flags pass, for run and for prepare', async () => {
    const good = flags([['net', ['default']], ['dns', ['8.8.8.8']], ['dns-search', ['example.com']], ['hostname', 'web-1.example'], ['ipc', 'private'], ['hosts-entry', ['10.0.0.5=db']]]);
    await expect(check(good, { ports: ['http:8080'], run: true })).resolves.toBeUndefined();
    await expect(check(good, { ports: ['http:8080'], run: false })).resolves.toBeUndefined();
  });

  test('the typed options carry what the flags said', () => {
    const o = startOptionsFrom(flags([['net', ['host']], ['dns', ['8.8.8.8']], ['hostname', 'web-1'], ['ipc', 'parent'], ['hosts-entry', ['10.0.0.5=db']], ['stop-timeout', '1m30s'], ['interactive', true]]));
    expect(o).toEqual({
      net: { kind: 'host' }, dns: { servers: ['8.8.8.8'], search: [], options: [] }, hostsEntries: [{ ip: '10.0.0.5', host: 'db' }],
      hostname: 'web-1', sharedIpc: true, stopTimeoutMs: 90_000, interactive: true,
    });
    const d = startOptionsFrom(flags([]));
    expect(d).toEqual({ net: { kind: 'cni', nets: [{ name: 'default' }] }, dns: undefined, hostsEntries: [], hostname: undefined, sharedIpc: false, stopTimeoutMs: 10_000, interactive: false });
  });

  test.each([
    ['a hostname with a newline', [['hostname', 'a\nb']], /invalid --hostname "a\\nb"/],
    ['a hostname with a shell quote', [['hostname', "x'; reboot; '"]], /invalid --hostname/],
    ['a 65-byte hostname', [['hostname', 'h'.repeat(65)]], /invalid --hostname/],
    ['a dns-search that adds a nameserver line', [['dns', ['1.1.1.1']], ['dns-search', ['a\nnameserver 6.6.6.6']]], /invalid --dns-search "a\\nnameserver 6.6.6.6"/],
    ['an empty dns-opt', [['dns', ['1.1.1.1']], ['dns-opt', ['']]], /invalid --dns-opt/],
    ['a dns-domain with a space', [['dns-domain', 'a b']], /invalid --dns-domain/],
    ['a bad ipc', [['ipc', 'host']], /invalid --ipc "host"/],
    ['a stop timeout over a day', [['stop-timeout', '25h']], /longer than a day/],
    ['an unknown network', [['net', ['nosuch']]], /network "nosuch" not found/],
  ] as Array<[string, Array<[string, string | string[]]>, RegExp]>)('%s is refused', async (_what, entries, problem) => {
    expect(await rejection(flags(entries))).toMatch(problem);
  });

  test('--port: its syntax and its name always; with --net=host or none only for run', async () => {
    expect(await rejection(flags([]), { ports: ['http:0'] })).toMatch(/1 to 65535/);
    expect(await rejection(flags([]), { ports: ['ssh:2222'] })).toMatch(/--port ssh:2222: no app in this pod declares a port named "ssh"/);
    expect(await rejection(flags([['net', ['host']]]), { ports: ['http:8080'] })).toMatch(/--port cannot be used with --net=host/);
    await expect(check(flags([['net', ['host']]]), { ports: ['http:8080'], run: false })).resolves.toBeUndefined();
  });

  test('--interactive takes one app, for run', async () => {
    const two = [app(), { ...app(), name: 'db' } as PreparedApp];
    expect(await rejection(flags([['interactive', true]]), { apps: two })).toMatch(/--interactive works with one app only/);
    await expect(check(flags([['interactive', true]]))).resolves.toBeUndefined();
  });
});
