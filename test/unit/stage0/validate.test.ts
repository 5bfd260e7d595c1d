import { describe, expect, test } from '@jest/globals';
import { checkStartFlags } from '../../../src/stage0/validate.js';
import type { PreparedApp } from '../../../src/stage0/prepare.js';
import type { FlagValues } from '../../../src/cli/flags.js';
import { globalOptionsFrom } from '../../../src/cli/globals.js';
import { RktError } from '../../../src/util/errors.js';
import { FakeHost } from '../../helpers/fake-host.js';

const globals = globalOptionsFrom(new Map([['dir', '/var/lib/rkt'], ['local-config', '/etc/rkt']]));
const app = (ports: PreparedApp['ports'] = [{ name: 'http', protocol: 'tcp', port: 80 }]) => ({ name: 'web', ports } as unknown as PreparedApp);

function flags(entries: Array<[string, string | string[] | boolean]>): FlagValues {
  return new Map(entries);
}

/** The message checkStartFlags rejects with (fails the test if it accepts). */
async function rejection(f: FlagValues, opts: { ports?: string[]; apps?: PreparedApp[]; run?: boolean } = {}): Promise<string> {
  try {
    await checkStartFlags(new FakeHost(), globals, opts.apps ?? [app()], opts.ports ?? [], f, opts.run ?? true);
  } catch (e) {
    expect(e).toBeInstanceOf(RktError);
    expect((e as Error).message).not.toContain('\n'); // one line, whatever the user typed
    return (e as Error).message;
  }
  throw new Error('expected the flags to be rejected');
}

describe('checkStartFlags', () => {
  test('good flags pass, for run and for prepare', async () => {
    const good = flags([['net', ['default']], ['dns', ['8.8.8.8']], ['dns-search', ['example.com']], ['hostname', 'web-1.example'], ['ipc', 'private'], ['hosts-entry', ['10.0.0.5=db']]]);
    await expect(checkStartFlags(new FakeHost(), globals, [app()], ['http:8080'], good, true)).resolves.toBeUndefined();
    await expect(checkStartFlags(new FakeHost(), globals, [app()], ['http:8080'], good, false)).resolves.toBeUndefined();
  });

  test.each([
    ['a hostname with a newline', [['hostname', 'a\nb']], /invalid --hostname "a\\nb"/],
    ['a hostname with a shell quote', [['hostname', "x'; reboot; '"]], /invalid --hostname/],
    ['a 65-byte hostname', [['hostname', 'h'.repeat(65)]], /invalid --hostname/],
    ['a dns-search that adds a nameserver line', [['dns', ['1.1.1.1']], ['dns-search', ['a\nnameserver 6.6.6.6']]], /invalid --dns-search "a\\nnameserver 6.6.6.6"/],
    ['an empty dns-opt', [['dns', ['1.1.1.1']], ['dns-opt', ['']]], /invalid --dns-opt/],
    ['a dns-domain with a space', [['dns-domain', 'a b']], /invalid --dns-domain/],
    ['a bad ipc', [['ipc', 'host']], /invalid --ipc "host"/],
    ['an unknown network', [['net', ['nosuch']]], /network "nosuch" not found/],
  ] as Array<[string, Array<[string, string | string[]]>, RegExp]>)('%s is refused', async (_what, entries, problem) => {
    expect(await rejection(flags(entries))).toMatch(problem);
  });

  test('--port: its syntax and its name always; with --net=host or none only for run', async () => {
    expect(await rejection(flags([]), { ports: ['http:0'] })).toMatch(/1 to 65535/);
    expect(await rejection(flags([]), { ports: ['ssh:2222'] })).toMatch(/no app in this pod declares a port named "ssh"/);
    expect(await rejection(flags([['net', ['host']]]), { ports: ['http:8080'] })).toMatch(/--port cannot be used with --net=host/);
    await expect(checkStartFlags(new FakeHost(), globals, [app()], ['http:8080'], flags([['net', ['host']]]), false)).resolves.toBeUndefined();
  });

  test('--interactive takes one app, for run', async () => {
    const two = [app(), { ...app(), name: 'db' } as PreparedApp];
    expect(await rejection(flags([['interactive', true]]), { apps: two })).toMatch(/--interactive works with one app only/);
    await expect(checkStartFlags(new FakeHost(), globals, [app()], [], flags([['interactive', true]]), true)).resolves.toBeUndefined();
  });
});
