/**
 * Compatibility with appc's own tool (Debian package appc-spec): an image built by
 * `actool build` fetches and renders, its ID is the sha512 of the uncompressed tar, and
 * what `rkt image export` writes passes `actool validate`.
 */
import { afterEach, beforeAll, beforeEach, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { manifestFor, tempDir } from '../unit/store/aci-fixtures.js';
import { ensureBuilt, rkt } from './store-cli.js';
import { describeIf } from '../helpers/rkt.js';

const actool = spawnSync('actool', ['version']).status === 0;

describeIf(actool ? undefined : 'actool is not installed (apt-get install appc-spec)')('actool', () => {
  let root: string;

  beforeAll(() => ensureBuilt(), 180_000);

  beforeEach(() => {
    root = tempDir('actool');
  });

  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('an image built by actool fetches, renders, exports and validates', async () => {
    const layout = path.join(root, 'layout');
    fs.mkdirSync(path.join(layout, 'rootfs', 'etc'), { recursive: true });
    fs.mkdirSync(path.join(layout, 'rootfs', 'bin'), { recursive: true });
    fs.writeFileSync(path.join(layout, 'manifest'), JSON.stringify(manifestFor('example.com/actool-built')));
    fs.writeFileSync(path.join(layout, 'rootfs', 'etc', 'greeting'), 'hello from actool\n');
    fs.writeFileSync(path.join(layout, 'rootfs', 'bin', 'app'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    fs.symlinkSync('app', path.join(layout, 'rootfs', 'bin', 'app-link'));
    const aci = path.join(root, 'built.aci');
    execFileSync('actool', ['build', '--owner-root', layout, aci]);

    const dir = `--dir=${path.join(root, 'data')}`;
    const fetched = await rkt([dir, '--insecure-options=image', 'fetch', '--full', aci]).done;
    expect(fetched.code).toBe(0);
    const id = fetched.stdout.trim();
    const tar = zlib.gunzipSync(fs.readFileSync(aci));
    expect(id).toBe(`sha512-${crypto.createHash('sha512').update(tar).digest('hex')}`);

    const out = path.join(root, 'rendered');
    expect((await rkt([dir, 'image', 'render', id, out]).done).code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'rootfs', 'etc', 'greeting'), 'utf8')).toBe('hello from actool\n');
    expect(fs.statSync(path.join(out, 'rootfs', 'bin', 'app')).mode & 0o777).toBe(0o755);
    expect(fs.readlinkSync(path.join(out, 'rootfs', 'bin', 'app-link'))).toBe('app');

    const exported = path.join(root, 'exported.aci');
    expect((await rkt([dir, 'image', 'export', id, exported]).done).code).toBe(0);
    expect(fs.readFileSync(exported).equals(fs.readFileSync(aci))).toBe(true);
    const validate = spawnSync('actool', ['validate', exported], { encoding: 'utf8' });
    expect(validate.stderr + validate.stdout).toBe('');
    expect(validate.status).toBe(0);

    // Both tools print the same manifest.
    const ours = await rkt([dir, 'image', 'cat-manifest', id]).done;
    const theirs = execFileSync('actool', ['cat-manifest', exported], { encoding: 'utf8' });
    expect(JSON.parse(ours.stdout)).toEqual(JSON.parse(theirs));
  });
});
