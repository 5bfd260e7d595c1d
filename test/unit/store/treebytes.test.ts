import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { treeBytes } from '../../../src/store/treestore.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-treebytes-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

test('every entry counts by its lstat size (dirs and links too), a hard-linked file once, as rkt\'s image list', () => {
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'f'), 'x'.repeat(1000));
  fs.linkSync(path.join(dir, 'sub', 'f'), path.join(dir, 'hard'));
  fs.symlinkSync('sub/f', path.join(dir, 'link'));
  const l = (p: string) => fs.lstatSync(path.join(dir, p)).size;
  expect(treeBytes(dir)).toBe(l('.') + l('sub') + 1000 + l('link'));
});
