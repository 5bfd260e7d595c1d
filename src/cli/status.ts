import fs from 'node:fs';
import path from 'node:path';
import type { Command } from './command.js';
import { flagString } from './flags.js';
import { realHost } from '../host/real.js';
import { fail } from '../util/errors.js';
import { parseDurationMs } from '../util/duration.js';
import { podState, refind } from '../stage0/pod.js';
import { summarize, networksText, PodSummary } from '../stage0/podinfo.js';
import { CGROUPS_FILE } from '../stage0/start.js';
import { cgroupManager, PodCgroups } from '../cgroups/cgroups.js';
import { podsFromArgs, UUID_FILE_FLAG } from './pod-args.js';

function oomChecker(podDir: string): (app: string) => boolean {
  let cg: PodCgroups | undefined;
  try { cg = JSON.parse(fs.readFileSync(path.join(podDir, CGROUPS_FILE), 'utf8')) as PodCgroups; } catch { return () => false; }
  const mgr = cgroupManager(realHost);
  return (app) => mgr.wasOomKilled(cg!, app);
}

function iso(d: Date | undefined): string { return d ? d.toISOString() : ''; }

function text(s: PodSummary): string {
  const lines = [`state=${s.state}`, `created=${iso(s.created)}`, `started=${iso(s.started)}`, `networks=${networksText(s.networks)}`, `pid=${s.pid ?? -1}`, `exited=${s.state !== 'running' && s.started !== undefined}`];
  for (const a of s.apps) if (a.exitCode !== undefined) lines.push(`app-${a.name}=${a.exitCode}`);
  const oom = s.apps.filter((a) => a.oomKilled).map((a) => a.name);
  if (oom.length > 0) lines.push(`oom-killed=${oom.join(',')}`);
  return `${lines.join('\n')}\n`;
}

function json(s: PodSummary, pretty: boolean): string {
  const out = {
    name: s.uuid,
    state: s.state,
    networks: s.networks,
    app_names: s.apps.map((a) => a.name),
    apps: s.apps.map((a) => ({ name: a.name, image_name: a.imageName, image_id: a.imageId, exit_code: a.exitCode, oom_killed: a.oomKilled ?? false })),
    pid: s.pid ?? -1,
    created_at: s.created?.getTime(),
    started_at: s.started?.getTime(),
    exited_at: s.exitedAt?.getTime(),
  };
  return `${JSON.stringify(out, null, pretty ? 2 : undefined)}\n`;
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
    process.stdout.write(format ? json(summary, format === 'json-pretty') : text(summary));
    return 0;
  },
};
