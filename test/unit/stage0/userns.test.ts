import { describe, expect, test } from '@jest/globals';
import {
  allocateRange, checkIdsInRange, formatRange, hostReserved, liveRanges, overlaps, parseRange, pickRange, podRanges, probeIdmap,
  RANGE_COUNT, RANGE_END, RANGE_FILE, RANGE_FIRST, readPodRange, UidRange,
} from '../../../src/stage0/userns.js';
import { RktError } from '../../../src/util/errors.js';
import { FakeHost } from '../../helpers/fake-host.js';

const DATA = '/var/lib/rkt';
const UUID = '11111111-2222-3333-4444-555555555555';
const POD = `${DATA}/pods/prepare/${UUID}`;
const BLOCKS = Math.floor((RANGE_END - RANGE_FIRST) / RANGE_COUNT);

/** A fake host with a data dir holding other pods' records, by state. */
function hostWith(pods: Array<[string, string, string]> = []): FakeHost {
  const h = new FakeHost();
  h.mkdirp(POD);
  for (const [state, uuid, record] of pods) {
    h.mkdirp(`${DATA}/pods/${state}/${uuid}`);
    h.files.set(`${DATA}/pods/${state}/${uuid}/${RANGE_FILE}`, record);
  }
  return h;
}

function oneLineError(fn: () => unknown): RktError {
  try { fn(); } catch (e) {
    expect(e).toBeInstanceOf(RktError);
    expect((e as RktError).message).not.toContain('\n');
    expect((e as RktError).exitCode).toBe(254);
    return e as RktError;
  }
  throw new Error('expected a failure');
}

describe('range records', () => {
  test('BASE:COUNT round-trips; anything else is not a range', () => {
    expect(formatRange({ base: 524288, count: 65536 })).toBe('524288:65536');
    expect(parseRange('524288:65536\n')).toEqual({ base: 524288, count: 65536 });
    for (const bad of ['', '524288', '524288:0', 'a:b', '-1:10', '4294967295:2', '1:2:3']) expect(parseRange(bad)).toBeUndefined();
  });

  test('overlap is half-open: adjacent blocks do not overlap', () => {
    expect(overlaps({ base: 0, count: 10 }, { base: 10, count: 10 })).toBe(false);
    expect(overlaps({ base: 0, count: 11 }, { base: 10, count: 10 })).toBe(true);
    expect(overlaps({ base: 5, count: 1 }, { base: 0, count: 10 })).toBe(true);
  });

  test('readPodRange reads the pod dir record', () => {
    const h = hostWith([['run', 'a', '655360:65536\n']]);
    expect(readPodRange(h, `${DATA}/pods/run/a`)).toEqual({ base: 655360, count: 65536 });
    expect(readPodRange(h, POD)).toBeUndefined();
  });

  test('podRanges: pods that may still run count, exited and garbage ones and the pod itself do not', () => {
    const h = hostWith([
      ['embryo', 'e', '589824:65536'], ['prepare', 'p', '655360:65536'], ['prepared', 'd', '720896:65536'], ['run', 'r', '786432:65536'],
      ['exited-garbage', 'x', '851968:65536'], ['garbage', 'g', '917504:65536'], ['run', 'broken', 'garbage text'],
      ['prepare', UUID, '983040:65536'],
    ]);
    expect(podRanges(h, DATA, UUID).map((r) => r.base).sort()).toEqual([589824, 655360, 720896, 786432]);
  });
});

describe('hostReserved', () => {
  test('host users and groups (one id each) and subuid/subgid grants are reserved', () => {
    const h = new FakeHost();
    h.files.set('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nfred:x:600000:600000::/home/fred:/bin/sh\n');
    h.files.set('/etc/group', 'root:x:0:\nstaff:x:700000:\n');
    h.files.set('/etc/subuid', '# comment\nfred:1048576:65536\n');
    h.files.set('/etc/subgid', 'fred:2097152:131072\nbroken line\n');
    expect(hostReserved(h)).toEqual([
      { base: 0, count: 1 }, { base: 600000, count: 1 }, { base: 0, count: 1 }, { base: 700000, count: 1 },
      { base: 1048576, count: 65536 }, { base: 2097152, count: 131072 },
    ]);
  });
});

describe('liveRanges', () => {
  test("the outside ranges of live processes' uid and gid maps; the host identity map and non-pids are ignored", () => {
    const h = new FakeHost();
    h.files.set('/proc/1/uid_map', '         0          0 4294967295\n');
    h.files.set('/proc/1/gid_map', '         0          0 4294967295\n');
    h.files.set('/proc/42/uid_map', '         0    1048576      65536\n');
    h.files.set('/proc/42/gid_map', '         0    2097152      65536\n      65536       1000          1\n');
    h.files.set('/proc/self/uid_map', '0 9999999 1\n');
    expect(liveRanges(h)).toEqual([{ base: 1048576, count: 65536 }, { base: 2097152, count: 65536 }, { base: 1000, count: 1 }]);
  });

  test('allocateRange never picks a range a live process of another runtime or data dir is in', () => {
    const h = hostWith();
    h.files.set('/proc/77/uid_map', `0 ${RANGE_FIRST} ${RANGE_COUNT}\n`);
    expect(allocateRange(h, DATA, UUID, POD, () => 0).base).toBe(RANGE_FIRST + RANGE_COUNT);
  });
});

describe('pickRange', () => {
  test('a 65536-aligned block of 65536 ids inside the container range, where the random index points', () => {
    expect(pickRange([], () => 0)).toEqual({ base: RANGE_FIRST, count: RANGE_COUNT });
    expect(pickRange([], () => 5)).toEqual({ base: RANGE_FIRST + 5 * RANGE_COUNT, count: RANGE_COUNT });
    const last = pickRange([], () => BLOCKS - 1)!;
    expect(last.base + last.count).toBeLessThanOrEqual(RANGE_END);
  });

  test('skips taken blocks (any overlap) and wraps around', () => {
    const taken: UidRange[] = [{ base: RANGE_FIRST + 3 * RANGE_COUNT + 7, count: 1 }, { base: RANGE_FIRST + 4 * RANGE_COUNT, count: RANGE_COUNT }];
    expect(pickRange(taken, () => 3)!.base).toBe(RANGE_FIRST + 5 * RANGE_COUNT);
    const allButFirst: UidRange[] = [{ base: RANGE_FIRST + RANGE_COUNT, count: RANGE_END }];
    expect(pickRange(allButFirst, () => 10)!.base).toBe(RANGE_FIRST);
  });

  test('nothing free: undefined', () => {
    expect(pickRange([{ base: 0, count: RANGE_END }], () => 0)).toBeUndefined();
  });
});

describe('allocateRange', () => {
  test('records the chosen range in the pod dir and avoids live pods and host grants', () => {
    const h = hostWith([['run', 'other', `${RANGE_FIRST}:${RANGE_COUNT}`]]);
    h.files.set('/etc/subuid', `fred:${RANGE_FIRST + RANGE_COUNT}:${RANGE_COUNT}\n`);
    const r = allocateRange(h, DATA, UUID, POD, () => 0);
    expect(r).toEqual({ base: RANGE_FIRST + 2 * RANGE_COUNT, count: RANGE_COUNT });
    expect(h.files.get(`${POD}/${RANGE_FILE}`)).toBe(`${r.base}:${r.count}\n`);
  });

  test('a concurrent pod that recorded the same range first makes this one pick again', () => {
    const h = hostWith();
    // Another `rkt run` writes the same choice between our write and our check.
    const write = h.writeFile.bind(h);
    let raced = false;
    h.writeFile = (p: string, d: string) => {
      write(p, d);
      if (!raced) {
        raced = true;
        h.mkdirp(`${DATA}/pods/prepare/rival`);
        h.files.set(`${DATA}/pods/prepare/rival/${RANGE_FILE}`, d);
      }
    };
    const r = allocateRange(h, DATA, UUID, POD, () => 0);
    expect(r.base).toBe(RANGE_FIRST + RANGE_COUNT);
    expect(h.files.get(`${POD}/${RANGE_FILE}`)).toBe(`${r.base}:${r.count}\n`);
    expect(h.calls.filter((c) => c.startsWith(`write ${POD}/${RANGE_FILE}`))).toHaveLength(2);
  });

  test('two pods allocated one after the other get disjoint ranges whatever the random draw', () => {
    const h = hostWith();
    const a = allocateRange(h, DATA, 'a', `${DATA}/pods/prepare/a`, () => 7);
    h.mkdirp(`${DATA}/pods/prepare/a`);
    const b = allocateRange(h, DATA, 'b', `${DATA}/pods/prepare/b`, () => 7);
    expect(overlaps(a, b)).toBe(false);
  });

  test('no free range: one clear error', () => {
    const h = hostWith();
    h.files.set('/etc/subuid', `big:0:${RANGE_END}\n`);
    expect(oneLineError(() => allocateRange(h, DATA, UUID, POD, () => 0)).message)
      .toBe('--private-users: no free range of 65536 host uids is left for this pod: remove stopped pods (rkt gc) and retry');
  });
});

describe('checkIdsInRange', () => {
  const app = (over: object = {}) => ({ name: 'web', uid: 0, gid: 0, supplementaryGids: [], ...over });
  test('ids inside the map pass', () => {
    expect(() => checkIdsInRange([app({ uid: 65535, gid: 1000, supplementaryGids: [5, 65535] })], [{ name: 'v', kind: 'empty', uid: 1, gid: 2 }], 65536)).not.toThrow();
  });
  test.each([
    [[app({ uid: 65536 })], [], 'app "web" uses uid 65536, outside the pod\'s 65536 ids (0-65535)'],
    [[app({ gid: 70000 })], [], 'app "web" uses gid 70000'],
    [[app({ supplementaryGids: [1, 100000] })], [], 'app "web" uses supplementary gid 100000'],
    [[app()], [{ name: 'v', kind: 'empty', uid: 65536, gid: 0 }], 'volume "v" has uid=65536'],
  ])('%j %j: fails', (apps, vols, msg) => {
    expect(oneLineError(() => checkIdsInRange(apps, vols, 65536)).message).toContain(msg);
  });
});

describe('probeIdmap', () => {
  test('asks the helper to probe every path, with the container range', async () => {
    const h = new FakeHost();
    await probeIdmap(h, '/opt/rkt/dist/stage1/rkt-idmap', ['/var/lib/rkt/cas/tree/x/rootfs', '+/srv/data']);
    expect(h.execCalls.map((c) => [c.file, ...c.args])).toEqual([
      ['/opt/rkt/dist/stage1/rkt-idmap', 'probe', String(RANGE_FIRST), String(RANGE_COUNT), '/var/lib/rkt/cas/tree/x/rootfs', '+/srv/data'],
    ]);
  });

  test("a refusal is one line that names the helper's reason and the way out", async () => {
    const h = new FakeHost();
    h.execHandler = () => ({ code: 1, stdout: 'cannot idmap /srv/nfs: Invalid argument\n', stderr: '' });
    await expect(probeIdmap(h, '/x/rkt-idmap', ['/srv/nfs'])).rejects.toThrow(
      /^--private-users: this kernel or filesystem cannot make the idmapped mounts it needs \(cannot idmap \/srv\/nfs: Invalid argument\): run without --private-users/,
    );
    await expect(probeIdmap(h, '/x/rkt-idmap', ['/srv/nfs'])).rejects.toBeInstanceOf(RktError);
  });
});

describe('the idmap volume option', () => {
  test('kind=host takes idmap=true|false; absent, the volume has no idmap key (appc manifests stay as they were)', async () => {
    const { parseVolume } = await import('../../../src/stage0/volumes.js');
    expect(parseVolume('d,kind=host,source=/x,idmap=false')).toEqual({ name: 'd', kind: 'host', source: '/x', readOnly: undefined, recursive: true, idmap: false });
    expect(parseVolume('d,kind=host,source=/x,idmap=true').idmap).toBe(true);
    expect('idmap' in parseVolume('d,kind=host,source=/x')).toBe(false);
    expect(oneLineError(() => parseVolume('d,kind=host,source=/x,idmap=no')).message).toBe('invalid idmap "no": use true or false');
  });
});
