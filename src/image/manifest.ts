/**
 * Validation of appc 0.8.11 image and pod manifests (spec/aci.md, spec/pods.md), plus rkt's
 * run-time os/arch check. Validators return a clean copy: unknown and `null` fields dropped,
 * port counts defaulted to 1. Errors are one line: `bad image manifest: <json path>: <problem>`.
 */
import { isIP } from 'node:net';
import { fail } from '../util/errors.js';
import { isACIdentifier, isACName, notACIdentifier, notACName } from './acname.js';
import { validateIsolators } from './isolators.js';
import type {
  Annotation, App, Dependency, EnvVar, EventHandler, ExposedPort, ImageManifest, Label, MountPoint, PodManifest,
  PodMount, PodVolume, Port, RuntimeApp, RuntimeImage,
} from './types.js';
import { labelValue } from './types.js';
import {
  asAbsolutePath, asArray, asBool, asInt, asObject, asString, asStringMap, bad, compact, index, key, listOf, opt,
  optField, quote, req, withPrefix,
} from './validate.js';

// ---- image IDs --------------------------------------------------------------------------------

/**
 * A full image ID: `sha512-` and 128 lower-case hex digits (the SHA-512 of the uncompressed
 * ACI), or the 64-digit form that rkt's store uses as key and writes into pod manifests.
 */
export function isFullImageId(s: unknown): s is string {
  return typeof s === 'string' && /^sha512-([0-9a-f]{64}|[0-9a-f]{128})$/.test(s);
}

const IMAGE_ID_FORM = '"sha512-" and 128 (or 64) lower-case hex digits';

export function validateImageId(s: string): string {
  if (!isFullImageId(s)) fail(`bad image ID ${JSON.stringify(s)}: use ${IMAGE_ID_FORM}`);
  return s;
}

function imageId(v: unknown, path: string): string {
  const s = asString(v, path);
  if (!isFullImageId(s)) bad(path, `${quote(s)} is not an image ID (${IMAGE_ID_FORM})`);
  return s;
}

/**
 * An image in a pod manifest: a full ID, or a prefix of one such as the short ID that
 * `rkt fetch` prints (`sha512-` and 32 hex digits). rkt looked it up as a store key
 * prefix, so do we; prepare resolves it and writes the full ID into the pod.
 */
function podImageId(v: unknown, path: string): string {
  const s = asString(v, path);
  if (!/^sha512-[0-9a-f]{2,128}$/.test(s)) bad(path, `${quote(s)} is not an image ID ("sha512-" and at least 2 of its lower-case hex digits)`);
  return s;
}

// ---- names, labels, annotations ----------------------------------------------------------------

function identifier(v: unknown, path: string): string {
  const s = asString(v, path);
  if (!isACIdentifier(s)) bad(path, notACIdentifier(s));
  return s;
}

function acName(v: unknown, path: string): string {
  const s = asString(v, path);
  if (!isACName(s)) bad(path, notACName(s));
  return s;
}

/** appc's ValidOSArch table (schema/types/labels.go). */
export const VALID_OS_ARCH: Readonly<Record<string, readonly string[]>> = {
  linux: ['amd64', 'i386', 'aarch64', 'aarch64_be', 'armv6l', 'armv7l', 'armv7b', 'ppc64', 'ppc64le', 's390x'],
  freebsd: ['amd64', 'i386', 'arm'],
  darwin: ['x86_64', 'i386'],
};

/** What is wrong with an os label, or an arch label for that os, according to the table. */
function osProblem(os: string): string | undefined {
  if (Object.hasOwn(VALID_OS_ARCH, os)) return undefined;
  return `bad os ${quote(os)}: must be one of ${Object.keys(VALID_OS_ARCH).sort().join(', ')}`;
}

function archProblem(os: string, arch: string): string | undefined {
  const arches = Object.hasOwn(VALID_OS_ARCH, os) ? VALID_OS_ARCH[os]! : [];
  if (arches.includes(arch)) return undefined;
  return `bad arch ${quote(arch)} for os ${os}: must be one of ${arches.join(', ')}`;
}

/** A list of `{name, value}` with unique names; a missing value is "" as in Go. */
function namedValues(v: unknown, path: string, what: string, checkName: (n: unknown, p: string) => string): Label[] {
  const seen = new Set<string>();
  return listOf((item, p) => {
    const obj = asObject(item, p);
    const name = checkName(req(obj, 'name', p), key(p, 'name'));
    if (seen.has(name)) bad(key(p, 'name'), `duplicate ${what} ${quote(name)}`);
    seen.add(name);
    return { name, value: optField(obj, 'value', p, asString) ?? '' };
  })(v, path);
}

function labels(v: unknown, path: string): Label[] {
  const list = namedValues(v, path, 'label', identifier);
  const os = labelValue(list, 'os');
  list.forEach(({ name, value }, i) => {
    const p = index(path, i);
    if (name === 'name') bad(key(p, 'name'), '"name" cannot be a label: the image name is the top-level "name" field');
    const problem = name === 'os' ? osProblem(value) : name === 'arch' && os !== undefined && !osProblem(os) ? archProblem(os, value) : undefined;
    if (problem) bad(key(p, 'value'), problem);
  });
  return list;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** Annotations; appc also checks the values of the well-known "created", "homepage" and "documentation". */
function annotations(v: unknown, path: string): Annotation[] {
  const list = namedValues(v, path, 'annotation', identifier);
  list.forEach(({ name, value }, i) => {
    const p = key(index(path, i), 'value');
    if (name === 'created' && !(RFC3339.test(value) && !Number.isNaN(Date.parse(value)))) {
      bad(p, `${quote(value)} is not an RFC 3339 date (e.g. 2016-05-12T10:20:30Z)`);
    }
    if ((name === 'homepage' || name === 'documentation') && !/^https?:\/\/[^/\s]/.test(value)) {
      bad(p, `${quote(value)} is not an http or https URL`);
    }
  });
  return list;
}

/** Items must have unique names; `name` picks the name. */
function unique<T>(list: T[], path: string, what: string, name: (t: T) => string): T[] {
  const seen = new Set<string>();
  list.forEach((t, i) => {
    if (seen.has(name(t))) bad(key(index(path, i), 'name'), `duplicate ${what} ${quote(name(t))}`);
    seen.add(name(t));
  });
  return list;
}

// ---- app ------------------------------------------------------------------------------------

/** A non-empty list of strings: a program and its arguments. */
function command(v: unknown, path: string): string[] {
  const list = asArray(v, path);
  if (list.length === 0) bad(path, 'must not be empty: give the program and its arguments');
  return list.map((s, i) => asString(s, index(path, i)));
}

function eventHandler(v: unknown, path: string): EventHandler {
  const obj = asObject(v, path);
  const name = asString(req(obj, 'name', path), key(path, 'name'));
  if (name !== 'pre-start' && name !== 'post-stop') bad(key(path, 'name'), `must be "pre-start" or "post-stop", got ${quote(name)}`);
  return { name, exec: command(req(obj, 'exec', path), key(path, 'exec')) };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function envName(v: unknown, path: string): string {
  const s = asString(v, path);
  if (!ENV_NAME.test(s)) bad(path, `${quote(s)} is not a valid environment variable name (letters, digits, _ . -, not starting with a digit)`);
  return s;
}

function mountPoint(v: unknown, path: string): MountPoint {
  const obj = asObject(v, path);
  return compact({
    name: acName(req(obj, 'name', path), key(path, 'name')),
    path: asAbsolutePath(req(obj, 'path', path), key(path, 'path')),
    readOnly: optField(obj, 'readOnly', path, asBool),
  });
}

function port(v: unknown, path: string): Port {
  const obj = asObject(v, path);
  const name = acName(req(obj, 'name', path), key(path, 'name'));
  const protocol = asString(req(obj, 'protocol', path), key(path, 'protocol'));
  if (protocol !== 'tcp' && protocol !== 'udp') bad(key(path, 'protocol'), `must be "tcp" or "udp", got ${quote(protocol)}`);
  const number = asInt(req(obj, 'port', path), key(path, 'port'), 1, 65535);
  // appc reads a missing or zero count as 1.
  const count = optField(obj, 'count', path, (c, p) => asInt(c, p, 0, 65535)) || 1;
  if (number + count - 1 > 65535) bad(key(path, 'count'), `the range ${number}..${number + count - 1} goes past port 65535`);
  return compact({ name, protocol, port: number, count, socketActivated: optField(obj, 'socketActivated', path, asBool) });
}

/** user and group must be present and non-empty. */
function requiredString(obj: Record<string, unknown>, name: string, path: string): string {
  const s = asString(req(obj, name, path), key(path, name));
  if (s === '') bad(key(path, name), 'is required');
  return s;
}

function app(v: unknown, path: string): App {
  const obj = asObject(v, path);
  const field = <T>(name: string, check: (v: unknown, p: string) => T) => optField(obj, name, path, check);
  return compact<App>({
    exec: field('exec', command),
    user: requiredString(obj, 'user', path),
    group: requiredString(obj, 'group', path),
    supplementaryGIDs: field('supplementaryGIDs', listOf((g, p) => asInt(g, p, 0, 0xffffffff))),
    eventHandlers: field('eventHandlers', (l, p) => unique(listOf(eventHandler)(l, p), p, 'event handler', (h) => h.name)),
    // appc treats "" as unset.
    workingDirectory: obj.workingDirectory === '' ? undefined : field('workingDirectory', asAbsolutePath),
    environment: field('environment', (l, p): EnvVar[] => namedValues(l, p, 'environment variable', envName)),
    isolators: field('isolators', validateIsolators),
    mountPoints: field('mountPoints', (l, p) => unique(listOf(mountPoint)(l, p), p, 'mount point', (m) => m.name)),
    ports: field('ports', (l, p) => unique(listOf(port)(l, p), p, 'port', (m) => m.name)),
    userAnnotations: field('userAnnotations', asStringMap),
    userLabels: field('userLabels', asStringMap),
  });
}

// ---- image manifest -------------------------------------------------------------------------

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

/** Checks acKind and returns acVersion. */
function header(obj: Record<string, unknown>, kind: 'ImageManifest' | 'PodManifest'): string {
  const acKind = asString(req(obj, 'acKind', ''), 'acKind');
  if (acKind !== kind) bad('acKind', `must be ${quote(kind)}, got ${quote(acKind)}`);
  const version = asString(req(obj, 'acVersion', ''), 'acVersion');
  if (!SEMVER.test(version) || version === '0.0.0') bad('acVersion', `${quote(version)} is not a semantic version (e.g. 0.8.11)`);
  return version;
}

function dependency(v: unknown, path: string): Dependency {
  const obj = asObject(v, path);
  return compact({
    imageName: identifier(req(obj, 'imageName', path), key(path, 'imageName')),
    imageID: optField(obj, 'imageID', path, imageId),
    labels: optField(obj, 'labels', path, labels),
    size: optField(obj, 'size', path, (s, p) => asInt(s, p, 0, Number.MAX_SAFE_INTEGER)),
  });
}

function imageManifest(v: unknown): ImageManifest {
  const obj = asObject(v, '');
  return compact<ImageManifest>({
    acKind: 'ImageManifest',
    acVersion: header(obj, 'ImageManifest'),
    name: identifier(req(obj, 'name', ''), 'name'),
    labels: optField(obj, 'labels', '', labels),
    app: optField(obj, 'app', '', app),
    annotations: optField(obj, 'annotations', '', annotations),
    dependencies: optField(obj, 'dependencies', '', listOf(dependency)),
    pathWhitelist: optField(obj, 'pathWhitelist', '', listOf(asAbsolutePath)),
  });
}

export function validateImageManifest(obj: unknown): ImageManifest {
  return withPrefix('bad image manifest', () => imageManifest(obj));
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    fail(`${what}: not valid JSON (${(e as Error).message})`);
  }
}

export function parseImageManifest(text: string): ImageManifest {
  return validateImageManifest(parseJson(text, 'bad image manifest'));
}

// ---- os/arch at run time --------------------------------------------------------------------

export interface OsArch { os: string; arch: string }

/** This machine in appc terms (Node's process.arch names mapped to appc arch labels). */
export function hostOsArch(): OsArch {
  const arch: Record<string, string> = { x64: 'amd64', ia32: 'i386', arm64: 'aarch64', arm: 'armv7l', ppc64: 'ppc64le', s390x: 's390x' };
  return { os: process.platform, arch: arch[process.arch] ?? process.arch };
}

/**
 * rkt refuses to run an image without os and arch labels or with a pair outside appc's
 * table; we also refuse an image built for another os/arch than the host.
 */
export function checkOsArch(m: ImageManifest, host: OsArch = { os: 'linux', arch: 'amd64' }): void {
  const os = labelValue(m.labels, 'os');
  const arch = labelValue(m.labels, 'arch');
  const where = `the image manifest of ${m.name}`;
  if (os === undefined) fail(`missing os label in ${where}: add {"name":"os","value":"${host.os}"}`);
  if (arch === undefined) fail(`missing arch label in ${where}: add {"name":"arch","value":"${host.arch}"}`);
  const problem = osProblem(os) ?? archProblem(os, arch);
  if (problem) fail(`${problem} (in ${where})`);
  if (os !== host.os || arch !== host.arch) {
    const which = os !== host.os ? `os ${quote(os)}` : `arch ${quote(arch)}`;
    fail(`bad ${which}: ${m.name} is built for ${os}/${arch} and this host is ${host.os}/${host.arch}: fetch the ${host.os}/${host.arch} image`);
  }
}

// ---- pod manifest -----------------------------------------------------------------------------

function volume(v: unknown, path: string): PodVolume {
  const obj = asObject(v, path);
  const kind = asString(req(obj, 'kind', path), key(path, 'kind'));
  if (kind !== 'host' && kind !== 'empty') bad(key(path, 'kind'), `must be "host" or "empty", got ${quote(kind)}`);
  const onlyFor = kind === 'host' ? ['mode', 'uid', 'gid'] : ['source'];
  for (const name of onlyFor) {
    if (opt(obj, name) !== undefined) bad(key(path, name), `is not used by ${quote(kind)} volumes: remove it`);
  }
  const id = (n: unknown, p: string) => asInt(n, p, 0, 0xffffffff);
  return compact<PodVolume>({
    name: acName(req(obj, 'name', path), key(path, 'name')),
    kind,
    source: kind === 'host' ? asAbsolutePath(req(obj, 'source', path), key(path, 'source')) : undefined,
    readOnly: optField(obj, 'readOnly', path, asBool),
    recursive: optField(obj, 'recursive', path, asBool),
    mode: optField(obj, 'mode', path, (m, p) => {
      const s = asString(m, p);
      if (!/^0?[0-7]{3,4}$/.test(s)) bad(p, `${quote(s)} is not an octal mode (e.g. "0755")`);
      return s;
    }),
    uid: optField(obj, 'uid', path, id),
    gid: optField(obj, 'gid', path, id),
  });
}

/** A mount names a pod volume unless it brings its own appVolume. */
function mount(volumes: Set<string>) {
  return (v: unknown, path: string): PodMount => {
    const obj = asObject(v, path);
    const m = compact<PodMount>({
      volume: acName(req(obj, 'volume', path), key(path, 'volume')),
      path: asAbsolutePath(req(obj, 'path', path), key(path, 'path')),
      appVolume: optField(obj, 'appVolume', path, volume),
    });
    if (!m.appVolume && !volumes.has(m.volume)) bad(key(path, 'volume'), `no volume named ${quote(m.volume)} in the pod's volumes`);
    return m;
  };
}

function runtimeImage(v: unknown, path: string): RuntimeImage {
  const obj = asObject(v, path);
  return compact({
    id: podImageId(req(obj, 'id', path), key(path, 'id')),
    name: optField(obj, 'name', path, identifier),
    labels: optField(obj, 'labels', path, labels),
  });
}

function runtimeApp(volumes: Set<string>) {
  return (v: unknown, path: string): RuntimeApp => {
    const obj = asObject(v, path);
    return compact({
      name: acName(req(obj, 'name', path), key(path, 'name')),
      image: runtimeImage(req(obj, 'image', path), key(path, 'image')),
      app: optField(obj, 'app', path, app),
      readOnlyRootFS: optField(obj, 'readOnlyRootFS', path, asBool),
      mounts: optField(obj, 'mounts', path, listOf(mount(volumes))),
      annotations: optField(obj, 'annotations', path, annotations),
    });
  };
}

function exposedPort(v: unknown, path: string): ExposedPort {
  const obj = asObject(v, path);
  return compact({
    name: acName(req(obj, 'name', path), key(path, 'name')),
    hostPort: asInt(req(obj, 'hostPort', path), key(path, 'hostPort'), 1, 65535),
    hostIP: optField(obj, 'hostIP', path, (ip, p) => {
      const s = asString(ip, p);
      if (isIP(s) === 0) bad(p, `${quote(s)} is not an IP address (e.g. 127.0.0.1)`);
      return s;
    }),
    podPort: optField(obj, 'podPort', path, port),
  });
}

function podManifest(v: unknown): PodManifest {
  const obj = asObject(v, '');
  const acVersion = header(obj, 'PodManifest');
  const volumes = optField(obj, 'volumes', '', (l, p) => unique(listOf(volume)(l, p), p, 'volume', (x) => x.name));
  const apps = asArray(req(obj, 'apps', ''), 'apps');
  if (apps.length === 0) bad('apps', 'pod must contain at least one application');
  const volumeNames = new Set((volumes ?? []).map((x) => x.name));
  return compact<PodManifest>({
    acKind: 'PodManifest',
    acVersion,
    apps: unique(listOf(runtimeApp(volumeNames))(apps, 'apps'), 'apps', 'app', (a) => a.name),
    volumes,
    isolators: optField(obj, 'isolators', '', validateIsolators),
    annotations: optField(obj, 'annotations', '', annotations),
    ports: optField(obj, 'ports', '', (l, p) => unique(listOf(exposedPort)(l, p), p, 'port', (x) => x.name)),
    userAnnotations: optField(obj, 'userAnnotations', '', asStringMap),
    userLabels: optField(obj, 'userLabels', '', asStringMap),
  });
}

export function validatePodManifest(obj: unknown): PodManifest {
  return withPrefix('bad pod manifest', () => podManifest(obj));
}

export function parsePodManifest(text: string): PodManifest {
  return validatePodManifest(parseJson(text, 'bad pod manifest'));
}
