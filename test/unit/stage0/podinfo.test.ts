import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { ensurePodsDirs, HOLDER_FILE, podDir } from '../../../src/stage0/pod.js';
import { summarize } from '../../../src/stage0/podinfo.js';
import { FakeHost } from '../../helpers/fake-host.js';

let dataDir: string;
let host: FakeHost;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-podinfo-'));
  host = new FakeHost();
});
afterEach(() => { fs.rmSync(dataDir, { recursive: true, force: true }); });

const UUID = '0b7e2a41-5d3c-4f7a-8e21-9c6d4b2a1f00';

test('a pod that moved from prepare/ to run/ while it was listed is summarized where it is now', () => {
  ensurePodsDirs(dataDir);
  const dir = podDir(dataDir, 'run', UUID);
  fs.mkdirSync(dir);
  fs.symlinkSync('100 555', path.join(dir, HOLDER_FILE));
  host.processes.set(100, '555');
  // What `rkt list` or `status` found just before the start renamed the pod.
  const s = summarize(host, { uuid: UUID, stateDir: 'prepare', dir: podDir(dataDir, 'prepare', UUID) });
  expect(s.state).toBe('running');
  expect(s.pid).toBe(100);
});

test('a pod in prepare/ without a live holder is an aborted prepare', () => {
  ensurePodsDirs(dataDir);
  const dir = podDir(dataDir, 'prepare', UUID);
  fs.mkdirSync(dir);
  fs.symlinkSync('100 555', path.join(dir, HOLDER_FILE));
  expect(summarize(host, { uuid: UUID, stateDir: 'prepare', dir }).state).toBe('aborted prepare');
});
