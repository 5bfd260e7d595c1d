import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, test } from '@jest/globals';
import { dataDirModes, groupId, makePodPrivateDirs, privilegedEntries } from '../../../src/store/datadir.js';
import { tempDir } from './aci-fixtures.js';

const dirs: string[] = [];
function scratch(): string {
  const d = tempDir('datadir');
  dirs.push(d);
  return d;
}
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

describe('groupId', () => {
  test('reads the gid of a group, and nothing for a missing or malformed one', () => {
    const file = path.join(scratch(), 'group');
    fs.writeFileSync(file, 'root:x:0:\nrkt-admin:x:994:\nrkt:x:995:alice,bob\nbroken:x::\n');
    expect(groupId('rkt', file)).toBe(995);
    expect(groupId('rkt-admin', file)).toBe(994);
    expect(groupId('rk', file)).toBeUndefined();
    expect(groupId('broken', file)).toBeUndefined();
    expect(groupId('rkt', path.join(scratch(), 'absent'))).toBeUndefined();
  });
});

describe('the modes of the layout', () => {
  test('nothing is open to others; trees are root only; only cas dirs are group-writable', () => {
    for (const [rel, mode] of dataDirModes()) {
      expect([rel, mode & 0o007]).toEqual([rel, 0]);
      if (rel.startsWith('cas/tree')) expect(mode & 0o070).toBe(0);
      if ((mode & 0o020) !== 0) expect(rel.startsWith('cas')).toBe(true);
    }
    expect(dataDirModes().map(([rel]) => rel)).toEqual(expect.arrayContaining(['', 'cas', 'cas/tree', 'cas/tmp', 'pods', 'pods/run']));
  });

  test('a pod\'s app filesystems and volumes are private', () => {
    const pod = scratch();
    makePodPrivateDirs(pod);
    for (const sub of ['stage1', 'overlay', 'volumes']) expect((fs.statSync(path.join(pod, sub)).mode & 0o7777)).toBe(0o700);
  });
});

describe('privilegedEntries', () => {
  test('finds setuid and setgid files at any depth, not plain ones, and follows no symlink', () => {
    const d = scratch();
    fs.mkdirSync(path.join(d, 'rootfs/usr/bin'), { recursive: true });
    const file = (rel: string, mode: number): void => {
      fs.writeFileSync(path.join(d, rel), 'x');
      fs.chmodSync(path.join(d, rel), mode);
    };
    file('rootfs/usr/bin/su', 0o4755);
    file('rootfs/usr/bin/wall', 0o2755);
    file('rootfs/usr/bin/ls', 0o755);
    const outside = scratch();
    fs.writeFileSync(path.join(outside, 'suid'), 'x');
    fs.chmodSync(path.join(outside, 'suid'), 0o4755);
    fs.symlinkSync(outside, path.join(d, 'rootfs/link'));
    expect(privilegedEntries(d).map((p) => path.relative(d, p)).sort()).toEqual(['rootfs/usr/bin/su', 'rootfs/usr/bin/wall']);
    expect(privilegedEntries(d, 1)).toHaveLength(1);
  });
});
