import fs from 'node:fs';
import path from 'node:path';
import type { Command } from './command.js';
import { flagString } from './flags.js';
import { realHost } from '../host/real.js';
import { fail } from '../util/errors.js';
import { parseWaitMs } from '../util/duration.js';
import { readHolder, type Pod } from '../stage0/pod.js';
import { waitFinished, waitReady, type WaitOutcome } from '../stage0/wait.js';
import { summarize, networksText, PodSummary } from '../stage0/podinfo.js';
import { CGROUPS_FILE } from '../pod-layout.js';
import { cgroupManager, PodCgroups } from '../cgroups/cgroups.js';
import { podsFromArgs, UUID_FILE_FLAG } from './pod-args.js';
import { marshal, podV1 } from './api-v1.js';
import { goTime } from '../util/table.js';
import { toStdout } from '../util/log.js';

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

/** The pod a wait ended with, or one line saying why it did not get there. */
function waited(w: WaitOutcome, flag: string, what: string): Pod {
  if (w.ok) return w.pod;
  if (w.reason === 'gone') fail(`pod ${w.pod.uuid} was removed while waiting for it to be ${what}`);
  if (w.reason === 'never ready') fail(`pod ${w.pod.uuid} is ${w.state} and never became ready: see its apps' exit statuses with rkt status`);
  return fail(what === 'ready' ? `pod ${w.pod.uuid} is ${w.state} but not ready after ${flag}` : `pod ${w.pod.uuid} is still ${w.state} after ${flag}`);
}

export const command: Command = {
  name: 'status',
  summary: 'Check the status of a rkt pod',
  usage: 'status [--wait[=bool|DURATION]] [--wait-ready[=bool|DURATION]] [--format=json|json-pretty] UUID | --uuid-file=FILE',
  flags: [
    UUID_FILE_FLAG,
    { name: 'wait', kind: 'string', optionalValue: true, noValue: 'true', help: 'wait for the pod to finish: true (for ever), false, or at most a duration like 10s' },
    { name: 'wait-ready', kind: 'string', optionalValue: true, noValue: 'true', help: 'wait until the pod is ready (every app started, or said READY=1 if it speaks sd_notify): true, false or a duration' },
    { name: 'format', kind: 'string', help: 'json or json-pretty' },
  ],
  async run({ globals, parsed }) {
    const flag = (name: string) => {
      const v = flagString(parsed.values, name);
      return { text: v, ms: v === undefined ? 0 : parseWaitMs(v, name) };
    };
    // Both parsed before any wait: a bad second flag must not cost the first one's wait.
    const ready = flag('wait-ready');
    const finished = flag('wait');
    let [pod] = podsFromArgs(globals.dir, parsed, true);
    if (ready.ms > 0) pod = waited(await waitReady(realHost, globals.dir, pod, ready.ms), `--wait-ready=${ready.text}`, 'ready');
    if (finished.ms > 0) pod = waited(await waitFinished(realHost, globals.dir, pod, finished.ms), `--wait=${finished.text}`, 'finished');
    const summary = summarize(realHost, pod, { oom: oomChecker(pod.dir), exitedAt: true });
    const format = flagString(parsed.values, 'format');
    if (format && format !== 'json' && format !== 'json-pretty') fail(`invalid --format "${format}": use json or json-pretty`);
    toStdout(format ? marshal(podV1(pod, summary), format === 'json-pretty') : statusText(pod, summary));
    return 0;
  },
};
