/**
 * The units of dist/systemd: systemd itself parses them (systemd-analyze verify, in a root
 * holding the host's systemd units and an executable /usr/bin/rkt), and they say what
 * docs/systemd.md promises.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { describeIf, ROOT } from '../../helpers/rkt.js';

const UNITS = path.join(ROOT, 'dist', 'systemd');
const SYSTEM_UNITS = '/usr/lib/systemd/system';
const analyze = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0;
const suite = describeIf(analyze && fs.existsSync(SYSTEM_UNITS) ? undefined : 'needs systemd-analyze and the systemd units (package systemd, scripts/setup.sh)');
const unit = (name: string) => fs.readFileSync(path.join(UNITS, name), 'utf8');

suite('systemd-analyze verify', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-units-'));
    fs.mkdirSync(path.join(root, 'usr', 'bin'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr', 'bin', 'rkt'), '#!/bin/sh\n', { mode: 0o755 });
    fs.mkdirSync(path.join(root, 'usr', 'lib', 'systemd'), { recursive: true });
    fs.cpSync(SYSTEM_UNITS, path.join(root, 'usr', 'lib', 'systemd', 'system'), { recursive: true, verbatimSymlinks: true });
    fs.mkdirSync(path.join(root, 'etc', 'systemd', 'system'), { recursive: true });
  });
  afterAll(() => { fs.rmSync(root, { recursive: true, force: true }); });

  /** Installs `files` (name -> text) in the root and verifies them; systemd's complaints, one a line. */
  const verify = (files: Record<string, string>) => {
    const dir = path.join(root, 'etc', 'systemd', 'system');
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, ...Object.keys(files).map((f) => path.join(dir, f))], { encoding: 'utf8' });
    return { status: r.status, complaints: r.stderr.split('\n').filter(Boolean) };
  };

  test('every unit parses without a complaint', () => {
    const names = fs.readdirSync(UNITS).sort();
    expect(names).toEqual(['etcd.service', 'hello-socket.service', 'hello-socket.socket', 'rkt-gc.service', 'rkt-gc.timer']);
    expect(verify(Object.fromEntries(names.map((n) => [n, unit(n)])))).toEqual({ status: 0, complaints: [] });
  });

  test('a mistake would be seen (the check can fail)', () => {
    const r = verify({ 'etcd.service': unit('etcd.service').replace(/^Type=notify$/m, 'Type=notiffy').replace(/^KillMode=mixed$/m, 'KillMod=mixed') });
    expect(r.complaints).toEqual([
      expect.stringContaining('Failed to parse service type, ignoring: notiffy'),
      expect.stringContaining("Unknown key 'KillMod'"),
    ]);
  });
});

describe('what the units say', () => {
  /** A unit's `Key=value` lines as [key, value] pairs, comments dropped. */
  const settings = (name: string) => unit(name).split('\n').filter((l) => /^[A-Za-z]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);

  test('rkt-gc.service and rkt-gc.timer: rkt\'s (gc with a 24h grace period, at boot and every 12h)', () => {
    expect(settings('rkt-gc.service')).toEqual(expect.arrayContaining([
      ['Type', 'oneshot'], ['Environment', 'GRACE_PERIOD=24h'], ['ExecStart', '/usr/bin/rkt gc --grace-period=${GRACE_PERIOD}'],
    ]));
    expect(settings('rkt-gc.timer')).toEqual(expect.arrayContaining([['OnActiveSec', '0s'], ['OnUnitActiveSec', '12h'], ['WantedBy', 'multi-user.target']]));
  });

  test('etcd.service: Type=notify, --uuid-file-save, gc --mark-only after stop, KillMode=mixed', () => {
    const s = settings('etcd.service');
    expect(s).toEqual(expect.arrayContaining([['Type', 'notify'], ['ExecStopPost', '/usr/bin/rkt gc --mark-only'], ['KillMode', 'mixed']]));
    expect(s.find(([k]) => k === 'ExecStart')![1]).toMatch(/^\/usr\/bin\/rkt run --uuid-file-save=\/run\/etcd\/pod-uuid /);
  });

  test('the socket pair: the service needs its socket; the socket starts its service of the same name', () => {
    expect(settings('hello-socket.socket')).toEqual(expect.arrayContaining([['ListenStream', '8080']]));
    expect(settings('hello-socket.service')).toEqual(expect.arrayContaining([['Requires', 'hello-socket.socket'], ['KillMode', 'mixed']]));
  });
});
