import fs from 'node:fs';
import path from 'node:path';
import type { Command } from './command.js';
import { flagString } from './flags.js';
import { realHost } from '../host/real.js';
import { fail } from '../util/errors.js';
import { parseDurationMs } from '../util/duration.js';
import { podState, readHolder, refind, type Pod } from '../stage0/pod.js';
import { summarize, networksText, PodSummary } from '../stage0/podinfo.js';
import { CGROUPS_FILE } from '../pod-layout.js';
import { cgroupManager, PodCgroups } from '../cgroups/cgroups.js';
import { podsFromArgs, UUID_FILE_FLAG } from './pod-args.js';
import { marshal, podV1 } from './api-v1.js';
import { goTime } from '../util/table.js';

function oomChecker(podDir: string): (app: string) => boolean {
  let cg: PodCgroups | undefined;
  try { cg = JSON.parse(fs.readFileSync(path.join(podDir, CGROUPS_FILE), 'utf8')) as PodCgroups; } catch { return () => false; }
  const mgr = cgroupManager(realHost);
  return (app) => mgr.wasOomKilled(cg!, app);
}

/** rkt's key=value status: times in rkt's layout, pid and exited only once the pod ran. */
export function statusText(pod: Pod, s: PodSummary): string {
  const lines = [`state=${s.state}`];
  if (s.created) lines.push(`created=${goTime(s.created)}`);
  if (s.started) lines.push(`started=${goTime(s.started)}`);
  if (s.state === 'running') lines.push(`networks=${networksText(s.networks)}`);
  if (s.state === 'running' || s.state === 'exited' || s.state === 'exited garbage') {
    const pid = s.pid ?? readHolder(pod.dir)?.pid;
    if (pid !== undefined) lines.push(`pid=${pid}`);
    lines.push(`exited=${s.state !== 'running'}`);
    if (s.state !== 'running') for (const a of s.apps) if (a.exitCode !== undefined) lines.push(`app-${a.name}=${a.exitCode}`);
  }
  const oom = s.apps.filter((a) => a.oomKilled).map((a) => a.name);
  if (oom.length > 0) lines.push(`oom-killed=${oom.join(',')}`);
  const killed = s.apps.filter((a) => a.stopKilled).map((a) => a.name);
  if (killed.length > 0) lines.push(`stop-killed=${killed.join(',')}`);
  return `${lines.join('\n')}\n`;
}

export const command: Command = {
  name: 'status',
  summary: 'Check the status of a rkt pod',
  usage: 'status [--wait[=DURATION]] [--format=json|json-pretty] UUID | --uuid-file=FILE',
  flags: [
    UUID_FILE_FLAG,
    { name: 'wait', kind: 'string', optionalValue: true, noValue: 'true', help: 'wait for the pod to exit (true, or a duration like 10s)' },
    { name: 'format', kind: 'string', help: 'json or json-pretty' },
  ],
  async run({ globals, parsed }) {
    let [pod] = podsFromArgs(globals.dir, parsed, true);
    const waitFlag = flagString(parsed.values, 'wait');
    if (waitFlag !== undefined && waitFlag !== 'false') {
      const limit = waitFlag === 'true' ? Infinity : parseDurationMs(waitFlag, 'wait');
      const until = Date.now() + limit;
      while (podState(realHost, pod) === 'running' || podState(realHost, pod) === 'preparing') {
        if (Date.now() > until) fail(`pod ${pod.uuid} is still running after --wait=${waitFlag}`);
        await new Promise((r) => setTimeout(r, 50));
        pod = refind(globals.dir, pod.uuid) ?? pod;
      }
    }
    const summary = summarize(realHost, pod, { oom: oomChecker(pod.dir), exitedAt: true });
    const format = flagString(parsed.values, 'format');
    if (format && format !== 'json' && format !== 'json-pretty') fail(`invalid --format "${format}": use json or json-pretty`);
    process.stdout.write(format ? marshal(podV1(pod, summary), format === 'json-pretty') : statusText(pod, summary));
    return 0;
  },
};
