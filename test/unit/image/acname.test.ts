import { describe, expect, test } from '@jest/globals';
import {
  appNameFromImageName, isACIdentifier, isACName, notACIdentifier, notACName, sanitizeACName,
} from '../../../src/image/acname.js';
import { RktError } from '../../../src/util/errors.js';

describe('isACIdentifier', () => {
  // appc's validator checks the characters and the two ends only (rkt's own test images use shorthash--29).
  test.each(['a', 'etcd', 'coreos.com/etcd', 'example.com/my-app_x', 'a.b~c/d-e', '0', 'a_b', 'os', 'appc.io/executor/supports-systemd-notify',
    'shorthash--29', 'a//b', 'a..b', 'a-_~b'])(
    'accepts %p', (s) => expect(isACIdentifier(s)).toBe(true),
  );
  test.each(['', 'Etcd', 'a_', '_a', 'a b', '-a', 'a-', '/a', 'a/', 'ä', 'a:b', 'a,b', '-', 'a\n'])(
    'rejects %p', (s) => expect(isACIdentifier(s)).toBe(false),
  );
  test('rejects non-strings', () => {
    expect(isACIdentifier(undefined)).toBe(false);
    expect(isACIdentifier(42)).toBe(false);
  });
});

describe('isACName', () => {
  test.each(['a', 'etcd', 'my-app', 'a1-b2-c3', '0', 'a--b'])('accepts %p', (s) => expect(isACName(s)).toBe(true));
  test.each(['', 'My-app', 'a.b', 'a/b', 'a_b', '-a', 'a-', 'a~b', '-'])('rejects %p', (s) => expect(isACName(s)).toBe(false));
});

test('problem texts name the value and the rule', () => {
  expect(notACIdentifier('Bad_Name')).toBe('"Bad_Name" is not a valid AC identifier (lower case alphanumerics and -._~/, starting and ending with an alphanumeric)');
  expect(notACName('a.b')).toBe('"a.b" is not a valid AC name (lower case alphanumerics and -, starting and ending with an alphanumeric)');
});

describe('sanitizeACName', () => {
  test.each([
    ['etcd', 'etcd'],
    ['My_App.v2', 'my-app-v2'],
    ['a__b', 'a-b'],
    ['--a--b--', 'a-b'],
    ['..x', 'x'],
    ['v2.0.0', 'v2-0-0'],
  ])('%p → %p', (input, out) => {
    expect(sanitizeACName(input)).toBe(out);
    expect(isACName(out)).toBe(true);
  });
  test('may give an empty string', () => expect(sanitizeACName('__')).toBe(''));
});

describe('appNameFromImageName', () => {
  test.each([
    ['coreos.com/etcd', 'etcd'],
    ['example.com/my_app.v2', 'my-app-v2'],
    ['coreos.com/etcd:v2.0.0', 'etcd-v2-0-0'],
    ['docker://registry.hub.docker.com/library/fedora', 'fedora'],
    ['busybox', 'busybox'],
    ['example.com/A/B/Web~Server', 'web-server'],
  ])('%p → %p', (name, app) => expect(appNameFromImageName(name)).toBe(app));

  test('fails with a hint when nothing is left', () => {
    expect(() => appNameFromImageName('example.com/__')).toThrow(RktError);
    expect(() => appNameFromImageName('example.com/')).toThrow(
      'cannot derive an app name from image name "example.com/": give one with --name',
    );
  });
});
