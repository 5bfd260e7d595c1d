import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { DEFAULT_POD_PIDS_LIMIT, configPodPidsLimit, parsePidsLimit, podPidsLimit } from '../../../src/stage0/limits.js';
import { RktError } from '../../../src/util/errors.js';

describe('--pids-limit', () => {
  test('a positive number of processes', () => {
    expect(parsePidsLimit(undefined)).toBeUndefined();
    expect(parsePidsLimit('1')).toBe(1);
    expect(parsePidsLimit('512')).toBe(512);
    expect(parsePidsLimit('4194304')).toBe(4194304);
  });

  test.each(['0', 'abc', '-5', '1.5', '', ' 12', '0x10', '4194305', '1e3'])('%j: one line naming the flag and the fix', (v) => {
    expect(() => parsePidsLimit(v)).toThrow(RktError);
    expect(() => parsePidsLimit(v)).toThrow(`invalid --pids-limit "${v}": give a number of processes from 1 to 4194304, e.g. --pids-limit=512`);
  });
});

describe('limits.d config', () => {
  let tmp: string;
  let system: string;
  let local: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-limits-'));
    system = path.join(tmp, 'lib');
    local = path.join(tmp, 'etc');
  });
  afterEach(() => { fs.rmSync(tmp, { recursive: true, force: true }); });
  const write = (base: string, name: string, content: unknown) => {
    fs.mkdirSync(path.join(base, 'limits.d'), { recursive: true });
    fs.writeFileSync(path.join(base, 'limits.d', name), typeof content === 'string' ? content : JSON.stringify(content));
  };

  test('4096 without any config', () => {
    expect(DEFAULT_POD_PIDS_LIMIT).toBe(4096);
    expect(configPodPidsLimit([system, local, undefined])).toBe(4096);
  });

  test('local config overrides system config; a later file overrides an earlier one; other kinds and fields are ignored', () => {
    write(system, '10-pids.json', { rktKind: 'limits', rktVersion: 'v1', pidsLimit: 100 });
    expect(configPodPidsLimit([system, local])).toBe(100);
    write(local, '10-pids.json', { rktKind: 'limits', rktVersion: 'v1', pidsLimit: 200 });
    write(local, '20-more.json', { rktKind: 'limits', rktVersion: 'v1', pidsLimit: 300 });
    write(local, '30-paths.json', { rktKind: 'paths', rktVersion: 'v1', data: '/x' });
    write(local, '40-other.json', { rktKind: 'limits', rktVersion: 'v1' });
    write(local, 'README', 'not json');
    expect(configPodPidsLimit([system, local])).toBe(300);
  });

  test.each([
    ['{', /cannot read .*bad\.json: .*: fix or remove the file/],
    [{ rktKind: 'limits', rktVersion: 'v1', pidsLimit: 0 }, /bad\.json: invalid pidsLimit 0: give a number from 1 to 4194304/],
    [{ rktKind: 'limits', rktVersion: 'v1', pidsLimit: 'lots' }, /bad\.json: invalid pidsLimit "lots"/],
    [{ rktKind: 'limits', rktVersion: 'v2', pidsLimit: 5 }, /bad\.json: unknown rktVersion "v2" for kind "limits": use "v1"/],
  ])('a bad file is an error naming it: %j', (content, message) => {
    write(local, 'bad.json', content);
    expect(() => configPodPidsLimit([system, local])).toThrow(message);
  });

  test('the pod gets the configured limit, or the sum of its apps\' limits when higher', () => {
    expect(podPidsLimit(4096, [undefined, undefined])).toBe(4096);
    expect(podPidsLimit(4096, [100, undefined])).toBe(4096);
    expect(podPidsLimit(100, [3000, 2000])).toBe(5000);
    expect(podPidsLimit(4096, [4194304, 4194304])).toBe(4194304);
  });
});
