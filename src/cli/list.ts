import type { Command } from './command.js';
import { flagBool, flagString } from './flags.js';
import { realHost } from '../host/real.js';
import { fail } from '../util/errors.js';
import { listPods } from '../stage0/pod.js';
import { summarize, networksText, PodSummary } from '../stage0/podinfo.js';
import { tabulate, humanTime, goTime } from '../util/table.js';
import { marshal, podV1 } from './api-v1.js';
import { toStdout } from '../util/log.js';

function rows(pods: PodSummary[], full: boolean): string[][] {
  const out: string[][] = [];
  for (const p of pods) {
    const apps = p.apps.length > 0 ? p.apps : [{ name: '-', imageName: '-', imageId: '' }];
    apps.forEach((a, i) => {
      const first = i === 0;
      const time = (d: Date | undefined) => (d ? (full ? goTime(d) : humanTime(d.getTime(), Date.now())) : '');
      const row = [first ? (full ? p.uuid : p.uuid.slice(0, 8)) : '', a.name, a.imageName ?? ''];
      if (full) row.push(a.imageId ? a.imageId.slice(0, 7 + 12) : '');
      row.push(first ? p.state : '', first ? time(p.created) : '', first ? time(p.started) : '', first ? networksText(p.networks) : '');
      out.push(row);
    });
  }
  return out;
}

export const command: Command = {
  name: 'list',
  summary: 'List pods',
  usage: 'list [--full] [--no-legend] [--format=json|json-pretty]',
  flags: [
    { name: 'full', kind: 'bool', help: 'use long output format' },
    { name: 'no-legend', kind: 'bool', help: 'suppress a legend with the list' },
    { name: 'format', kind: 'string', help: 'json or json-pretty' },
  ],
  async run({ globals, parsed }) {
    const pods = listPods(globals.dir).map((p) => ({ pod: p, summary: summarize(realHost, p) })).sort((a, b) => (a.summary.created?.getTime() ?? 0) - (b.summary.created?.getTime() ?? 0));
    const format = flagString(parsed.values, 'format');
    if (format) {
      if (format !== 'json' && format !== 'json-pretty') fail(`invalid --format "${format}": use json or json-pretty`);
      // rkt marshals a nil slice when there are no pods: `null`.
      const out = pods.length > 0 ? pods.map((p) => podV1(p.pod, p.summary)) : null;
      toStdout(marshal(out, format === 'json-pretty'));
      return 0;
    }
    const full = flagBool(parsed.values, 'full');
    const header = full ? ['UUID', 'APP', 'IMAGE NAME', 'IMAGE ID', 'STATE', 'CREATED', 'STARTED', 'NETWORKS'] : ['UUID', 'APP', 'IMAGE NAME', 'STATE', 'CREATED', 'STARTED', 'NETWORKS'];
    const body = rows(pods.map((p) => p.summary), full);
    const table = flagBool(parsed.values, 'no-legend') ? body : [header, ...body];
    if (table.length > 0) toStdout(tabulate(table));
    return 0;
  },
};
