import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { marshal, podV1 } from '../../../src/cli/api-v1.js';
import { statusText } from '../../../src/cli/status.js';
import type { Pod } from '../../../src/stage0/pod.js';
import type { PodSummary } from '../../../src/stage0/podinfo.js';

interface FieldSpec { field: string; type: string; unit?: 's' | 'ns'; omitempty?: boolean; values?: string[] }
const FIXTURE = JSON.parse(fs.readFileSync(path.resolve('test/fixtures/rkt-api-v1.json'), 'utf8')) as { types: Record<string, FieldSpec[]> };

/**
 * Checks `value` against the fixture's type, field by field: only known fields, in Go's
 * order, the required ones present, each of its type and unit. `raw` is the same object
 * parsed from our JSON text with integers as strings (exact int64s).
 */
function conforms(typeName: string, value: Record<string, unknown>, where = typeName): void {
  const spec = FIXTURE.types[typeName];
  const names = spec.map((f) => f.field);
  const keys = Object.keys(value);
  for (const k of keys) expect({ where, field: k, known: names.includes(k) }).toEqual({ where, field: k, known: true });
  expect(keys).toEqual(names.filter((n) => keys.includes(n))); // Go's field order
  for (const f of spec) {
    const v = value[f.field];
    if (v === undefined) { expect({ where, field: f.field, omitempty: f.omitempty ?? false }).toEqual({ where, field: f.field, omitempty: true }); continue; }
    const ctx = `${where}.${f.field}`;
    const list = /^\[\](\w+)$/.exec(f.type);
    if (list) {
      expect(Array.isArray(v)).toBe(true);
      expect((v as unknown[]).length).toBeGreaterThan(0); // an empty omitempty slice is left out
      (v as unknown[]).forEach((item, i) => {
        if (list[1] === 'string') expect(typeof item).toBe('string');
        else conforms(list[1], item as Record<string, unknown>, `${ctx}[${i}]`);
      });
    } else if (f.type === 'string') {
      expect(typeof v).toBe('string');
      if (f.values) expect(f.values).toContain(v);
    } else if (f.type === 'bool') {
      expect(typeof v).toBe('boolean');
    } else if (f.type.startsWith('int')) {
      expect(typeof v).toBe('string'); // parsed exactly, see exact()
      expect(v).toMatch(/^-?\d+$/);
      const n = Number(v);
      if (f.unit === 's') { expect(n).toBeGreaterThan(1e9); expect(n).toBeLessThan(1e11); }
      if (f.unit === 'ns') { expect(n).toBeGreaterThan(1e18); expect(n).toBeLessThan(1e20); }
      if (f.type === 'int32') expect(Math.abs(n)).toBeLessThan(2 ** 31);
    } else if (f.type.startsWith('map[')) {
      expect(typeof v).toBe('object');
      for (const x of Object.values(v as object)) expect(typeof x).toBe('string');
      expect(Object.keys(v as object).length).toBeGreaterThan(0);
    } else {
      throw new Error(`fixture type ${f.type} unknown to the test`);
    }
  }
}

/** JSON.parse with every integer kept as its exact digits. */
function exact(text: string): Record<string, unknown> {
  return JSON.parse(text.replace(/([:[,]\s*)(-?\d+)(?=\s*[,}\]])/g, '$1"$2"')) as Record<string, unknown>;
}

describe("list/status JSON is rkt's api/v1", () => {
  let dir: string;
  let pod: Pod;
  const uuid = '0f2a51d4-7c1d-4b55-9c6e-2f0a8d3e4b61';
  const created = new Date('2026-03-01T10:00:00.250Z');
  const started = new Date('2026-03-01T10:00:01.500Z');

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-api-'));
    pod = { uuid, stateDir: 'exited-garbage', dir: path.join(dir, 'pods', 'exited-garbage', uuid) };
    fs.mkdirSync(path.join(pod.dir, 'rkt', 'status'), { recursive: true });
    fs.writeFileSync(path.join(pod.dir, 'pod'), JSON.stringify({
      acKind: 'PodManifest', acVersion: '0.8.11',
      apps: [
        { name: 'web', image: { name: 'example.com/web', id: 'sha512-aaa' }, app: { exec: ['/web'], user: '0', group: '0', userAnnotations: { team: 'a<b>&c' }, userLabels: { tier: 'front' } }, mounts: [{ volume: 'data', path: '/data' }] },
        { name: 'side', image: { name: 'example.com/side', id: 'sha512-bbb' }, app: { exec: ['/side'], user: '0', group: '0' } },
      ],
      volumes: [{ name: 'data', kind: 'host', source: '/srv/data', readOnly: true }],
      userAnnotations: { owner: 'ops' },
    }));
    fs.writeFileSync(path.join(pod.dir, 'pod-created'), '');
    fs.utimesSync(path.join(pod.dir, 'pod-created'), created, created);
    fs.writeFileSync(path.join(pod.dir, 'pid'), '4242 123\n');
    fs.utimesSync(path.join(pod.dir, 'pid'), started, started);
    fs.writeFileSync(path.join(pod.dir, 'rkt', 'status', 'web'), '3');
    fs.writeFileSync(path.join(pod.dir, 'net-info.json'), JSON.stringify([
      { netName: 'default', ifName: 'eth0', confPath: 'net/default.conf', containerID: uuid, args: 'IP=172.16.28.9', cniPath: '/etc/rkt/net.d:/usr/lib/cni', ip: '172.16.28.9', mask: '255.255.255.0' },
      { netName: 'half', ifName: 'eth1', confPath: 'net/half.conf', containerID: uuid, args: '', cniPath: '/usr/lib/cni' },
    ]));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const summary = (): PodSummary => ({
    uuid, state: 'exited garbage', created, started,
    apps: [{ name: 'web', imageName: 'example.com/web', imageId: 'sha512-aaa', exitCode: 3 }, { name: 'side', imageName: 'example.com/side', imageId: 'sha512-bbb' }],
    networks: [{ netName: 'default', ifName: 'eth0', ip: '172.16.28.9' }],
  });

  test('every field is one of the fixture, in order, of its type and unit', () => {
    const text = marshal(podV1(pod, summary()), false);
    conforms('Pod', exact(text));
  });

  test('the values: seconds for the pod, exact nanoseconds for apps, app state, mounts, annotations, networks', () => {
    const text = marshal(podV1(pod, summary()), false);
    const raw = exact(text);
    expect(raw.created_at).toBe(String(Math.floor(created.getTime() / 1000)));
    expect(raw.started_at).toBe(String(Math.floor(started.getTime() / 1000)));
    const [web, side] = raw.apps as Array<Record<string, unknown>>;
    expect(web.created_at).toBe(String(fs.statSync(path.join(pod.dir, 'pod-created'), { bigint: true }).mtimeNs));
    expect(web.started_at).toBe(String(fs.statSync(path.join(pod.dir, 'pid'), { bigint: true }).mtimeNs));
    expect(web.finished_at).toBe(String(fs.statSync(pod.dir, { bigint: true }).mtimeNs));
    expect(web).toMatchObject({ name: 'web', state: 'exited', exit_code: '3', image_id: 'sha512-aaa', user_annotations: { team: 'a<b>&c' }, user_labels: { tier: 'front' } });
    expect(web.mounts).toEqual([{ name: 'data', container_path: '/data', host_path: '/srv/data', read_only: true }]);
    expect(side).toMatchObject({ name: 'side', state: 'exited', image_id: 'sha512-bbb' });
    expect(side).not.toHaveProperty('exit_code');
    expect(raw.app_names).toEqual(['web', 'side']);
    expect(raw.user_annotations).toEqual({ owner: 'ops' });
    // A network still being joined (no IP yet) is not reported.
    expect(raw.networks).toEqual([{ netName: 'default', netConf: path.join(pod.dir, 'net/default.conf'), pluginPath: '/etc/rkt/net.d:/usr/lib/cni', ifName: 'eth0', ip: '172.16.28.9', args: 'IP=172.16.28.9', mask: '255.255.255.0' }]);
    // Go escapes <, > and & in strings.
    expect(text).toContain('"team":"a\\u003cb\\u003e\\u0026c"');
  });

  test('a prepared pod: apps created, no start, no networks', () => {
    pod = { ...pod, stateDir: 'prepared' };
    const raw = exact(marshal(podV1(pod, { ...summary(), state: 'prepared', started: undefined, networks: [], apps: summary().apps.map((a) => ({ ...a, exitCode: undefined })) }), false));
    conforms('Pod', raw);
    expect(raw).not.toHaveProperty('started_at');
    expect(raw).not.toHaveProperty('networks');
    expect((raw.apps as Array<Record<string, unknown>>).map((a) => a.state)).toEqual(['created', 'created']);
  });

  test('json-pretty is indented with tabs; an empty list is null', () => {
    const pretty = marshal([podV1(pod, summary())], true);
    expect(pretty).toMatch(/^\[\n\t\{\n\t\t"name": "0f2a51d4/);
    expect(pretty).not.toMatch(/^ +"/m);
    expect(pretty.endsWith('}\n]\n')).toBe(true);
    expect(marshal(null, false)).toBe('null\n');
    expect(marshal(null, true)).toBe('null\n');
  });
});

describe('status text as rkt prints it', () => {
  const pod: Pod = { uuid: 'u', stateDir: 'exited-garbage', dir: '/nonexistent/pod' };
  const base: PodSummary = { uuid: 'u', state: 'exited garbage', created: new Date(Date.UTC(2026, 2, 1, 10, 0, 0, 250)), started: new Date(Date.UTC(2026, 2, 1, 10, 0, 1)), apps: [{ name: 'web', imageId: 'x', exitCode: 3 }], networks: [] };

  test('exited garbage: exited=true, app statuses, no pid line when the pid is not known', () => {
    const text = statusText(pod, base);
    expect(text).toMatch(/^state=exited garbage\ncreated=2026-03-01 \d\d:00:00\.25 [+-]\d{4} \S+\nstarted=2026-03-01 \d\d:00:01 [+-]\d{4} \S+\nexited=true\napp-web=3\n$/);
  });

  test('running: networks and pid, exited=false, no app statuses', () => {
    const text = statusText({ ...pod, stateDir: 'run' }, { ...base, state: 'running', pid: 77, apps: [{ name: 'web', imageId: 'x' }], networks: [{ netName: 'default', ip: '172.16.28.2' }] });
    expect(text).toMatch(/\nnetworks=default:ip4=172\.16\.28\.2\npid=77\nexited=false\n$/);
  });

  test('prepared: state and created only', () => {
    const text = statusText({ ...pod, stateDir: 'prepared' }, { ...base, state: 'prepared', started: undefined, apps: [{ name: 'web', imageId: 'x' }] });
    expect(text).toMatch(/^state=prepared\ncreated=[^\n]+\n$/);
  });
});
