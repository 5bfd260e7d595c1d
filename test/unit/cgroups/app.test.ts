/** `rkt app add/rm`: an app's cgroups added to a running pod and removed again. */
import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { cgroupManager } from '../../../src/cgroups/cgroups.js';
import { RktError } from '../../../src/util/errors.js';
import { hybridHost, v2Host } from './fake-trees.js';

const UUID = '7d2f3a10-55aa-4c3e-8e1b-0c9d2e4f6a7b';
const WEB = { name: 'web', memoryBytes: 134217728, cpuMillis: 500, pidsMax: 64 };

beforeEach(() => { jest.spyOn(process.stderr, 'write').mockImplementation(() => true); });
afterEach(() => { jest.restoreAllMocks(); });

describe.each([['pure v2', () => v2Host('/ci/job')], ['hybrid (v1 controllers)', hybridHost]])('%s', (_name, makeHost) => {
  test('an app added later gets the cgroups and limits it would have had at start', () => {
    const atStart = makeHost();
    const expected = cgroupManager(atStart).createPod(UUID, [WEB]);
    const host = makeHost();
    const mgr = cgroupManager(host);
    const empty = mgr.createPod(UUID, []);
    const added = mgr.addApp(empty, WEB);
    // Every app dir before the pod's (removal goes deepest first); otherwise the same.
    expect({ ...added, dirs: [...added.dirs].sort() }).toEqual({ ...expected, dirs: [...expected.dirs].sort() });
    const firstPodDir = added.dirs.findIndex((d) => !d.endsWith('/web'));
    expect(added.dirs.slice(firstPodDir).some((d) => d.endsWith('/web'))).toBe(false);
    const limits = (h: typeof host) => [...h.files].filter(([f]) => f.includes('/web/')).sort();
    expect(limits(host)).toEqual(limits(atStart));
    expect(limits(host).length).toBeGreaterThan(0);
  });

  test('removing it leaves the pod as it was; a busy cgroup is said and kept', () => {
    const host = makeHost();
    const mgr = cgroupManager(host);
    const empty = mgr.createPod(UUID, []);
    const added = mgr.addApp(empty, WEB);
    const [procs] = added.appProcs.web;
    host.files.set(procs, '1234\n');
    expect(() => mgr.removeApp(added, 'web')).toThrow(/cannot remove cgroup .*web: .*still in it/);
    host.files.set(procs, '');
    expect(mgr.removeApp(added, 'web')).toEqual(empty);
    for (const p of added.appProcs.web) expect(host.exists(p.replace(/\/cgroup\.procs$/, ''))).toBe(false);
  });

  test('a name that is not a plain path component is refused before anything is made', () => {
    const host = makeHost();
    const mgr = cgroupManager(host);
    const empty = mgr.createPod(UUID, []);
    const calls = host.calls.length;
    for (const name of ['../x', 'a/b', '..']) expect(() => mgr.addApp(empty, { name })).toThrow(RktError);
    expect(host.calls.length).toBe(calls);
  });
});
