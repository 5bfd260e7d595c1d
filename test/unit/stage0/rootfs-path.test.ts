import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { kernelTargets, resolveInRootfs, statInRootfs } from '../../../src/stage0/rootfs-path.js';
import { RktError } from '../../../src/util/errors.js';

let tmp: string;
let rootfs: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-rootfs-'));
  rootfs = path.join(tmp, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'usr', 'lib'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'real', 'dir'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'real', 'dir', 'file'), 'inside');
});
afterEach(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

const link = (to: string, at: string) => fs.symlinkSync(to, path.join(rootfs, at));

describe('resolveInRootfs', () => {
  test('plain paths are normalised', () => {
    expect(resolveInRootfs(rootfs, '/real/dir/file')).toBe('/real/dir/file');
    expect(resolveInRootfs(rootfs, '//real/./dir//file/')).toBe('/real/dir/file');
    expect(resolveInRootfs(rootfs, '/')).toBe('/');
  });

  test('an absolute symlink resolves inside the rootfs, not on the host', () => {
    // On the host /etc exists; inside the rootfs the link must land on rootfs/real/dir.
    link('/real/dir', 'etc/conf');
    expect(resolveInRootfs(rootfs, '/etc/conf/file')).toBe('/real/dir/file');
    // A link to a host-only absolute path stays a path inside the rootfs.
    link(tmp, 'escape');
    expect(resolveInRootfs(rootfs, '/escape/x')).toBe(`${tmp}/x`);
    expect(path.join(rootfs, resolveInRootfs(rootfs, '/escape/x')).startsWith(`${rootfs}/`)).toBe(true);
  });

  test('a relative symlink resolves against the link\'s directory', () => {
    link('../real/dir', 'usr/d');
    expect(resolveInRootfs(rootfs, '/usr/d/file')).toBe('/real/dir/file');
    link('dir/file', 'real/f');
    expect(resolveInRootfs(rootfs, '/real/f')).toBe('/real/dir/file');
  });

  test('.. cannot climb above the rootfs root, in the path or through a link', () => {
    expect(resolveInRootfs(rootfs, '/../../../etc/passwd')).toBe('/etc/passwd');
    expect(resolveInRootfs(rootfs, '/real/../../..')).toBe('/');
    link('../../../../../../..', 'usr/lib/up');
    expect(resolveInRootfs(rootfs, '/usr/lib/up/etc/shadow')).toBe('/etc/shadow');
  });

  test('chains of links are followed', () => {
    link('/b', 'a');
    link('c/', 'b');
    link('/real', 'c');
    expect(resolveInRootfs(rootfs, '/a/dir/file')).toBe('/real/dir/file');
  });

  test('a symlink loop is an error', () => {
    link('/loop2', 'loop1');
    link('/loop1', 'loop2');
    expect(() => resolveInRootfs(rootfs, '/loop1/x')).toThrow(RktError);
    expect(() => resolveInRootfs(rootfs, '/loop1/x')).toThrow('too many symbolic links resolving "/loop1/x" in the image');
    link('self', 'self');
    expect(() => resolveInRootfs(rootfs, '/self')).toThrow('too many symbolic links');
  });

  test('a nonexistent tail is kept as given (after resolving what exists)', () => {
    link('/real/dir', 'etc/conf');
    expect(resolveInRootfs(rootfs, '/etc/conf/new/sub/file')).toBe('/real/dir/new/sub/file');
    expect(resolveInRootfs(rootfs, '/nothing/here')).toBe('/nothing/here');
    // A dangling link is still followed: the target is where a mount would land.
    link('/real/not-yet', 'dangling');
    expect(resolveInRootfs(rootfs, '/dangling')).toBe('/real/not-yet');
  });

  test('a relative target is rejected', () => {
    expect(() => resolveInRootfs(rootfs, 'etc/passwd')).toThrow('path "etc/passwd" must be absolute');
  });
});

describe('statInRootfs', () => {
  test('stats the resolved in-rootfs path, or undefined', () => {
    link('/real/dir/file', 'etc/f');
    expect(statInRootfs(rootfs, '/etc/f')?.isFile()).toBe(true);
    expect(statInRootfs(rootfs, '/etc/f')?.size).toBe('inside'.length);
    expect(statInRootfs(rootfs, '/etc/missing')).toBeUndefined();
    // /etc/hostname exists on the host, but not in this rootfs.
    link('/etc/hostname', 'h');
    expect(statInRootfs(rootfs, '/h')).toBeUndefined();
  });
});

describe('kernelTargets (/proc, /sys, /dev of an image)', () => {
  test('plain directories, or missing ones, stay where they are named', () => {
    expect(kernelTargets(rootfs)).toEqual({ proc: '/proc', sys: '/sys', dev: '/dev' });
  });

  test('links are followed inside the rootfs, absolute ones too', () => {
    link(tmp, 'proc'); // a host path: inside the rootfs it is just a path
    link('real/dir', 'sys');
    link('../../../../real/devs', 'dev');
    expect(kernelTargets(rootfs)).toEqual({ proc: tmp, sys: '/real/dir', dev: '/real/devs' });
  });

  test.each([
    ['sys', 'proc', "the image's /sys leads to /proc, which would share its mount with /proc"],
    ['proc', '/', "the image's /proc leads to /, which would share its mount with the rootfs itself"],
    ['dev', 'sys/x', "the image's /dev leads to /sys/x, which would share its mount with /sys"],
  ])('/%s -> %s is refused with one line', (name, to, message) => {
    link(to, name);
    expect(() => kernelTargets(rootfs)).toThrow(RktError);
    expect(() => kernelTargets(rootfs)).toThrow(`${message}: make /proc, /sys and /dev separate directories in the image`);
  });
});
