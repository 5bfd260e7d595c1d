import { describe, expect, test } from '@jest/globals';
import { aciNameOf, formatDockerRef, parseDockerRef, stripDockerScheme } from '../../../../src/image/docker/reference.js';
import { classifyImageArg } from '../../../../src/image/imageref.js';
import { RktError } from '../../../../src/util/errors.js';

const H = 'registry-1.docker.io';
const D = `sha256:${'ab'.repeat(32)}`;

describe('parseDockerRef: rkt defaults', () => {
  test.each<[string, string, string, string | undefined, string | undefined]>([
    ['busybox', H, 'library/busybox', 'latest', undefined],
    ['busybox:1.36', H, 'library/busybox', '1.36', undefined],
    ['library/redis', H, 'library/redis', 'latest', undefined],
    ['someone/app:v2', H, 'someone/app', 'v2', undefined],
    ['docker.io/nginx', H, 'library/nginx', 'latest', undefined],
    ['index.docker.io/someone/app', H, 'someone/app', 'latest', undefined],
    ['quay.io/zanui/nginx', 'quay.io', 'zanui/nginx', 'latest', undefined],
    ['127.0.0.1:5000/test/app:1.0', '127.0.0.1:5000', 'test/app', '1.0', undefined],
    ['localhost/app', 'localhost', 'app', 'latest', undefined],
    ['localhost:5000/a/b/c', 'localhost:5000', 'a/b/c', 'latest', undefined],
    [`busybox@${D}`, H, 'library/busybox', undefined, D],
    [`example.com:443/x/y:tag@${D}`, 'example.com:443', 'x/y', 'tag', D],
    ['my-registry.local/my__app.v2-x', 'my-registry.local', 'my__app.v2-x', 'latest', undefined],
  ])('%s', (raw, registry, repository, tag, digest) => {
    expect(parseDockerRef(raw)).toEqual({ registry, repository, tag, digest, original: raw });
  });

  test('a single name on another registry gets no library/', () => {
    expect(parseDockerRef('quay.io/app').repository).toBe('app');
  });
});

describe('parseDockerRef: bad references name the reference and the problem', () => {
  test.each<[string, string]>([
    ['', 'the image name is missing'],
    ['Busybox', '"Busybox" is not a valid repository name part'],
    ['a//b', '"" is not a valid repository name part'],
    ['app:', '"" is not a valid tag'],
    ['app:-x', '"-x" is not a valid tag'],
    ['app@sha256:1234', '"sha256:1234" is not a digest'],
    [`app@sha256:${'AB'.repeat(32)}`, 'is not a sha256 digest'],
    ['host.io:99999/app', 'port 99999 of registry'],
    ['bad_host.io/app', '"bad_host.io" is not a registry host'],
    ['../etc/app', '".." is not a registry host'],
    ['app/../x', '".." is not a valid repository name part'],
    [`${'a'.repeat(300)}/x`, 'longer than 255'],
  ])('%p', (raw, problem) => {
    expect(() => parseDockerRef(raw)).toThrow(RktError);
    expect(() => parseDockerRef(raw)).toThrow(`bad docker image reference "docker://${raw}": `);
    expect(() => parseDockerRef(raw)).toThrow(problem);
  });
});

describe('names', () => {
  test('canonical form', () => {
    expect(formatDockerRef(parseDockerRef('busybox'))).toBe(`docker://${H}/library/busybox:latest`);
    expect(formatDockerRef(parseDockerRef(`a/b:1@${D}`))).toBe(`docker://${H}/a/b@${D}`);
  });

  test('ACI names as docker2aci made them, always valid AC identifiers', () => {
    expect(aciNameOf(parseDockerRef('redis'))).toBe(`${H}/library/redis`);
    expect(aciNameOf(parseDockerRef('127.0.0.1:5000/test/app'))).toBe('127.0.0.1_5000/test/app');
    expect(aciNameOf(parseDockerRef('reg.io/my__app/x--y'))).toBe('reg.io/my_app/x-y');
  });

  test('docker: and docker:// are both accepted', () => {
    expect(stripDockerScheme('docker://busybox')).toBe('busybox');
    expect(stripDockerScheme('docker:busybox')).toBe('busybox');
  });
});

describe('classifyImageArg', () => {
  test('docker references are docker images', () => {
    const ref = classifyImageArg('docker://quay.io/zanui/nginx', () => false);
    expect(ref).toEqual({ kind: 'docker', ref: parseDockerRef('quay.io/zanui/nginx') });
    expect(classifyImageArg('docker:busybox', () => false)).toEqual({ kind: 'docker', ref: parseDockerRef('busybox') });
  });
});
