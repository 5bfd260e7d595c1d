import { describe, expect, test } from '@jest/globals';
import { parseRunArgs, RUN_POD_FLAGS } from '../../../src/cli/run-args.js';
import { podSpecFrom } from '../../../src/cli/pod-spec.js';
import { RktError } from '../../../src/util/errors.js';

const spec = (argv: string[]) => podSpecFrom(parseRunArgs(argv, RUN_POD_FLAGS));
function errorOf(argv: string[]): string {
  try { spec(argv); } catch (e) { expect(e).toBeInstanceOf(RktError); return (e as Error).message; }
  throw new Error(`expected ${JSON.stringify(argv)} to be rejected`);
}

describe('podSpecFrom: rkt run flags as stage0 options', () => {
  test('pod and app flags become typed values', () => {
    const s = spec([
      '--net=host', '--port=http:8080', '--volume=data,kind=host,source=/srv', '--mount=volume=data,target=/data', '--set-env=A=1',
      '--pull-policy=never', '--no-overlay', '--private-users', '--hostname=web', '--stop-timeout=30s',
      'IMG', '--exec=/bin/sh', '--name=web', '--environment=B=2', '--supplementary-gids=10,20', '--pids-limit=64',
      '--memory=64M', '--caps-retain=CAP_NET_BIND_SERVICE', '--readonly-rootfs', '--user-label=team=x', '--', '-c', 'true',
    ]);
    expect(s.start).toMatchObject({ net: { kind: 'host' }, hostname: 'web', stopTimeoutMs: 30_000 });
    expect(s.ports).toEqual([{ name: 'http', hostPort: 8080 }]);
    expect(s.volumes).toEqual([expect.objectContaining({ name: 'data', kind: 'host', source: '/srv' })]);
    expect(s.podMounts).toEqual([{ volume: 'data', target: '/data' }]);
    expect([...s.setEnv]).toEqual([['A', '1']]);
    expect(s).toMatchObject({ pullPolicy: 'never', overlay: false, privateUsers: true });
    expect(s.apps).toHaveLength(1);
    const a = s.apps[0];
    expect(a).toMatchObject({ image: 'IMG', exec: '/bin/sh', name: 'web', args: ['-c', 'true'], supplementaryGids: [10, 20], pidsLimit: 64, readOnlyRootfs: true, userLabels: { team: 'x' } });
    expect([...a.environment]).toEqual([['B', '2']]);
    expect(a.resources).toMatchObject({ memory: '64M', capsRetain: ['CAP_NET_BIND_SERVICE'] });
  });

  test.each([
    ['a bad --pids-limit', ['IMG', '--pids-limit=0'], /invalid --pids-limit "0"/],
    ['a bad --environment', ['IMG', '--environment=NOEQ'], /invalid --environment "NOEQ"/],
    ['a bad --user-annotation', ['IMG', '--user-annotation==v'], /invalid --user-annotation "=v"/],
    ['a bad --supplementary-gids', ['IMG', '--supplementary-gids=a'], /invalid --supplementary-gids "a"/],
    ['a volume given twice', ['--volume=v,kind=empty', '--volume=v,kind=empty', 'IMG'], /a volume name is given twice/],
    ['a bad --port', ['--port=http', 'IMG'], /bad --port "http"/],
    ['a bad --pull-policy', ['--pull-policy=sometimes', 'IMG'], /invalid --pull-policy "sometimes"/],
    ['a stage1 image', ['--stage1-path=/x', 'IMG'], /--stage1-path is not supported/],
    ['no image', [], /no image given/],
    ['images with --pod-manifest', ['--pod-manifest=/m.json', 'IMG'], /conflicting flags set with --pod-manifest/],
    ['a bad --hostname', ['--hostname=-x', 'IMG'], /invalid --hostname/],
  ] as Array<[string, string[], RegExp]>)('%s is refused before anything is fetched', (_what, argv, problem) => {
    expect(errorOf(argv)).toMatch(problem);
  });
});
