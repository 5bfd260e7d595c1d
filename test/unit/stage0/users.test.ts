import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { passwdEntry, resolveGroup, resolveUser } from '../../../src/stage0/users.js';
import { RktError } from '../../../src/util/errors.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'www:x:33:34:web:/var/www:/bin/false',
  'nohome:x:4242:4242:::/bin/false',
  'broken:x:notanumber:1:::',
  '',
].join('\n');
const GROUP = ['root:x:0:', 'wheel:x:10:root', 'www-data:x:34:', 'web:x:2000:www', ''].join('\n');

let tmp: string;
let rootfs: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-users-'));
  rootfs = path.join(tmp, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
});
afterEach(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

const writeDb = () => {
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), PASSWD);
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), GROUP);
};

describe('resolveUser / resolveGroup', () => {
  test('numbers are taken as they are, even without /etc/passwd', () => {
    expect(resolveUser(rootfs, '1000')).toBe(1000);
    expect(resolveGroup(rootfs, '0')).toBe(0);
    expect(resolveUser(rootfs, '65534')).toBe(65534);
  });

  test("names come from the image's /etc/passwd and /etc/group", () => {
    writeDb();
    expect(resolveUser(rootfs, 'www')).toBe(33);
    expect(resolveUser(rootfs, 'daemon')).toBe(1);
    expect(resolveGroup(rootfs, 'www-data')).toBe(34);
    expect(resolveGroup(rootfs, 'web')).toBe(2000);
    // A user name is not a group name.
    expect(() => resolveGroup(rootfs, 'www')).toThrow(RktError);
  });

  test('names are never looked up on the host', () => {
    // Every Debian host has "daemon" and "bin"; an image without /etc/passwd does not.
    expect(() => resolveUser(rootfs, 'daemon')).toThrow(`"daemon" user not found in the image's /etc/passwd: use a numeric uid or a name the image defines`);
    expect(() => resolveGroup(rootfs, 'bin')).toThrow(`"bin" group not found in the image's /etc/group: use a numeric gid or a name the image defines`);
  });

  test('/etc/passwd reached through an absolute symlink is read inside the rootfs', () => {
    fs.mkdirSync(path.join(rootfs, 'data'));
    fs.writeFileSync(path.join(rootfs, 'data', 'passwd'), 'app:x:777:777::/home/app:/bin/sh\n');
    fs.symlinkSync('/data/passwd', path.join(rootfs, 'etc', 'passwd'));
    expect(resolveUser(rootfs, 'app')).toBe(777);
  });

  test('root works without /etc/passwd or /etc/group', () => {
    expect(resolveUser(rootfs, 'root')).toBe(0);
    expect(resolveGroup(rootfs, 'root')).toBe(0);
  });

  test('an entry with a bad id is not used', () => {
    writeDb();
    expect(() => resolveUser(rootfs, 'broken')).toThrow('"broken" user not found');
  });

  test('a /path uses the owner (user) or group (group) of that path in the image', () => {
    const f = path.join(rootfs, 'srv-file');
    fs.writeFileSync(f, '');
    // Distinct owner and group when we may chown; otherwise whatever we got.
    if (process.getuid?.() === 0) fs.chownSync(f, 1234, 5678);
    const { uid, gid } = fs.statSync(f);
    expect(resolveUser(rootfs, '/srv-file')).toBe(uid);
    expect(resolveGroup(rootfs, '/srv-file')).toBe(gid);
    // Through a symlink that is absolute inside the image.
    fs.symlinkSync('/srv-file', path.join(rootfs, 'link'));
    expect(resolveUser(rootfs, '/link')).toBe(uid);
    expect(resolveGroup(rootfs, '/link')).toBe(gid);
  });

  test('a /path that does not exist in the image is an error', () => {
    expect(() => resolveUser(rootfs, '/no/such')).toThrow('user path "/no/such" does not exist in the image: give a user name, a number, or an existing path');
    expect(() => resolveGroup(rootfs, '/no/such')).toThrow('group path "/no/such" does not exist in the image');
    // Exists on the host, not in the image.
    expect(() => resolveUser(rootfs, '/etc/hostname')).toThrow(RktError);
  });
});

describe('passwdEntry', () => {
  test('name and home for a uid from the image passwd', () => {
    writeDb();
    expect(passwdEntry(rootfs, 0)).toEqual({ name: 'root', home: '/root' });
    expect(passwdEntry(rootfs, 33)).toEqual({ name: 'www', home: '/var/www' });
  });

  test('an empty home is /', () => {
    writeDb();
    expect(passwdEntry(rootfs, 4242)).toEqual({ name: 'nohome', home: '/' });
  });

  test('undefined for an unknown uid or without /etc/passwd', () => {
    writeDb();
    expect(passwdEntry(rootfs, 999)).toBeUndefined();
    fs.rmSync(path.join(rootfs, 'etc', 'passwd'));
    expect(passwdEntry(rootfs, 0)).toBeUndefined();
  });
});
