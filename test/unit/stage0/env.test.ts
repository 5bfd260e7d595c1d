import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { buildAppEnv, DEFAULT_PATH, EnvInputs, parseEnvAssignment, parseEnvFile, parseSetEnv } from '../../../src/stage0/env.js';
import { RktError } from '../../../src/util/errors.js';

const none = () => new Map<string, string>();
function inputs(over: Partial<EnvInputs> = {}): EnvInputs {
  return { appName: 'web', fileEnv: none(), setEnv: none(), appEnv: none(), user: undefined, ...over };
}
const asObj = (env: Array<[string, string]>) => Object.fromEntries(env);

describe('parseEnvAssignment', () => {
  test('splits at the first =, the value may hold = and be empty', () => {
    expect(parseEnvAssignment('K=V', '--set-env')).toEqual(['K', 'V']);
    expect(parseEnvAssignment('K=a=b==c', '--set-env')).toEqual(['K', 'a=b==c']);
    expect(parseEnvAssignment('K=', '--set-env')).toEqual(['K', '']);
    expect(parseEnvAssignment('_x.y-z1=1', '--set-env')).toEqual(['_x.y-z1', '1']);
  });

  test.each([
    ['NOEQUALS', 'invalid --set-env "NOEQUALS": expected NAME=VALUE'],
    ['=value', 'invalid --set-env "=value": expected NAME=VALUE'],
    ['1X=v', 'invalid --set-env "1X=v": "1X" is not a valid variable name'],
    ['A B=v', 'invalid --set-env "A B=v": "A B" is not a valid variable name'],
  ])('rejects %j', (s, msg) => {
    expect(() => parseEnvAssignment(s, '--set-env')).toThrow(RktError);
    expect(() => parseEnvAssignment(s, '--set-env')).toThrow(msg);
  });
});

describe('parseSetEnv', () => {
  test('keeps every assignment', () => {
    expect([...parseSetEnv(['A=1', 'B=x=y', 'C='])]).toEqual([['A', '1'], ['B', 'x=y'], ['C', '']]);
  });

  test('a duplicate name is an error, even with the same value', () => {
    expect(() => parseSetEnv(['A=1', 'B=2', 'A=3'])).toThrow('--set-env: "A" is set twice: give each variable once');
    expect(() => parseSetEnv(['A=1', 'A=1'])).toThrow(RktError);
  });
});

describe('parseEnvFile', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-env-')); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  test('skips blank lines and # or ; comments, trims lines, keeps = in values', () => {
    const f = path.join(dir, 'env');
    fs.writeFileSync(f, [
      '# a comment',
      '; another comment',
      '',
      '   ',
      'A=1',
      '  B=two words  ',
      '\t# indented comment',
      'C=x=y',
      'D=',
      'A=override',
      '',
    ].join('\n'));
    expect([...parseEnvFile(f)]).toEqual([['A', 'override'], ['B', 'two words'], ['C', 'x=y'], ['D', '']]);
  });

  test('handles CRLF line ends', () => {
    const f = path.join(dir, 'env');
    fs.writeFileSync(f, 'A=1\r\nB=2\r\n');
    expect([...parseEnvFile(f)]).toEqual([['A', '1'], ['B', '2']]);
  });

  test('a bad line names the file', () => {
    const f = path.join(dir, 'env');
    fs.writeFileSync(f, 'A=1\nnot an assignment\n');
    expect(() => parseEnvFile(f)).toThrow(`invalid line in ${f} "not an assignment": expected NAME=VALUE`);
  });

  test('a missing file is a one-line error', () => {
    const f = path.join(dir, 'missing');
    expect(() => parseEnvFile(f)).toThrow(RktError);
    expect(() => parseEnvFile(f)).toThrow(`cannot read --set-env-file ${f}:`);
  });
});

describe('buildAppEnv', () => {
  test('precedence: inherit < image < set-env-file < set-env < --environment', () => {
    const env = asObj(buildAppEnv(inputs({
      inherit: { V1: 'inherit', V2: 'inherit', V3: 'inherit', V4: 'inherit', V5: 'inherit' },
      image: [{ name: 'V2', value: 'image' }, { name: 'V3', value: 'image' }, { name: 'V4', value: 'image' }, { name: 'V5', value: 'image' }],
      fileEnv: new Map([['V3', 'file'], ['V4', 'file'], ['V5', 'file']]),
      setEnv: new Map([['V4', 'set-env'], ['V5', 'set-env']]),
      appEnv: new Map([['V5', 'environment']]),
    })));
    expect(env).toMatchObject({ V1: 'inherit', V2: 'image', V3: 'file', V4: 'set-env', V5: 'environment' });
  });

  test('defaults fill only unset variables; AC_APP_NAME is always the app name', () => {
    const bare = asObj(buildAppEnv(inputs()));
    expect(bare).toEqual({
      AC_APP_NAME: 'web', PATH: DEFAULT_PATH, SHELL: '/bin/sh', USER: 'root', LOGNAME: 'root', HOME: '/root',
    });
    expect(DEFAULT_PATH).toBe('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');

    const set = asObj(buildAppEnv(inputs({
      image: [{ name: 'PATH', value: '/opt/bin' }, { name: 'AC_APP_NAME', value: 'spoofed' }],
      setEnv: new Map([['HOME', '/data'], ['SHELL', '/bin/bash']]),
    })));
    expect(set.PATH).toBe('/opt/bin');
    expect(set.HOME).toBe('/data');
    expect(set.SHELL).toBe('/bin/bash');
    expect(set.AC_APP_NAME).toBe('web');
  });

  test('USER, LOGNAME and HOME come from the app user when known', () => {
    const env = asObj(buildAppEnv(inputs({ user: { name: 'www', home: '/var/www' } })));
    expect(env).toMatchObject({ USER: 'www', LOGNAME: 'www', HOME: '/var/www' });
  });

  test('inherited variables with names that are not valid or values undefined are dropped', () => {
    const env = asObj(buildAppEnv(inputs({ inherit: { 'BAD NAME': 'x', '1X': 'y', OK: 'z', GONE: undefined } })));
    expect(env.OK).toBe('z');
    expect(Object.keys(env)).not.toContain('BAD NAME');
    expect(Object.keys(env)).not.toContain('1X');
    expect(Object.keys(env)).not.toContain('GONE');
  });

  test('an inherited PATH wins over the default; without inherit the caller env does not leak', () => {
    expect(asObj(buildAppEnv(inputs({ inherit: { PATH: '/caller/bin' } }))).PATH).toBe('/caller/bin');
    const key = 'RKT_ENV_TEST_MARKER';
    process.env[key] = '1';
    try {
      expect(asObj(buildAppEnv(inputs())).RKT_ENV_TEST_MARKER).toBeUndefined();
    } finally {
      delete process.env[key];
    }
  });

  test('each name appears once', () => {
    const env = buildAppEnv(inputs({
      inherit: { A: '1' }, image: [{ name: 'A', value: '2' }], setEnv: new Map([['A', '3']]), appEnv: new Map([['A', '4']]),
    }));
    expect(env.filter(([k]) => k === 'A')).toEqual([['A', '4']]);
    expect(new Set(env.map(([k]) => k)).size).toBe(env.length);
  });
});
