/** rkt image list: the images in the local store. */
import type { Command } from './command.js';
import { flagBool, flagString } from './flags.js';
import { ImageStore, displayName, shortId, type ImageInfo } from '../store/imagestore.js';
import { fail } from '../util/errors.js';
import { goTime, humanTime, iBytes, tabulate } from '../util/table.js';
import { toStdout } from '../util/log.js';

const FIELDS: Record<string, { header: string; value: (i: ImageInfo, full: boolean, now: number) => string }> = {
  id: { header: 'ID', value: (i, full) => (full ? i.id : shortId(i.id, 12)) },
  name: { header: 'NAME', value: (i) => displayName(i) },
  importtime: { header: 'IMPORT TIME', value: (i, full, now) => showTime(i.importTime, full, now) },
  lastused: { header: 'LAST USED', value: (i, full, now) => showTime(i.lastUsed, full, now) },
  size: { header: 'SIZE', value: (i, full) => (full ? String(totalSize(i)) : iBytes(totalSize(i))) },
  latest: { header: 'LATEST', value: (i) => String(i.latest) },
};
const SORTABLE: Record<string, (i: ImageInfo) => string | number> = {
  id: (i) => i.id, name: (i) => displayName(i), importtime: (i) => i.importTime, lastused: (i) => i.lastUsed, size: totalSize, latest: (i) => Number(i.latest),
};

function totalSize(i: ImageInfo): number {
  return i.size + (i.treeSize ?? 0);
}

/** go-humanize IBytes: "500 B", "1.5 KiB", "79 MiB". */
function showTime(iso: string, full: boolean, now: number): string {
  return full ? goTime(new Date(iso)) : humanTime(Date.parse(iso), now);
}

/** Columns aligned as Go's tabwriter does with tab padding (tab width 8). */
function jsonList(images: ImageInfo[], pretty: boolean): string {
  const ns = (iso: string): string => `${BigInt(Date.parse(iso)) * 1_000_000n}#ns`;
  const entries = images.map((i) => ({ id: i.id, name: i.name, import_time: ns(i.importTime), last_used_time: ns(i.lastUsed), size: totalSize(i) }));
  return JSON.stringify(entries, null, pretty ? 4 : undefined).replace(/"(\d+)#ns"/g, '$1');
}

function fieldList(raw: string | undefined, allowed: Record<string, unknown>, flag: string): string[] {
  if (raw === undefined) return [];
  const out: string[] = [];
  for (const f of raw.split(',').map((s) => s.trim().toLowerCase())) {
    if (!(f in allowed)) fail(`unknown field "${f}" in --${flag}: use ${Object.keys(allowed).join(',')}`);
    if (out.includes(f)) fail(`field "${f}" is given twice in --${flag}`);
    out.push(f);
  }
  return out;
}

export const command: Command = {
  name: 'image-list',
  summary: 'List images in the local store',
  usage: 'image list [--fields=id,name,importtime,lastused,size,latest] [--sort=importtime] [--order=asc|desc] [--full] [--no-legend] [--format=json|json-pretty]',
  flags: [
    { name: 'fields', kind: 'string', help: 'comma-separated columns: id,name,importtime,lastused,size,latest' },
    { name: 'sort', kind: 'string', help: 'comma-separated sort keys (default importtime)' },
    { name: 'order', kind: 'string', help: 'asc (default) or desc' },
    { name: 'full', kind: 'bool', help: 'full image IDs, exact times and sizes' },
    { name: 'no-legend', kind: 'bool', help: 'do not print the header line' },
    { name: 'format', kind: 'string', help: 'json or json-pretty instead of a table' },
  ],
  async run({ globals, parsed }) {
    const v = parsed.values;
    const fields = fieldList(flagString(v, 'fields') ?? 'id,name,importtime,lastused,size,latest', FIELDS, 'fields');
    const sortKeys = fieldList(flagString(v, 'sort') ?? 'importtime', SORTABLE, 'sort');
    const order = flagString(v, 'order') ?? 'asc';
    if (order !== 'asc' && order !== 'desc') fail(`invalid --order "${order}": use asc or desc`);
    const format = flagString(v, 'format');
    if (format !== undefined && format !== 'json' && format !== 'json-pretty') fail(`invalid --format "${format}": use json or json-pretty`);

    const sign = order === 'asc' ? 1 : -1;
    const images = new ImageStore(globals.dir).list().sort((a, b) => {
      for (const k of sortKeys) {
        const x = SORTABLE[k](a);
        const y = SORTABLE[k](b);
        if (x !== y) return (x < y ? -1 : 1) * sign;
      }
      return 0;
    });

    if (format) {
      toStdout(`${jsonList(images, format === 'json-pretty')}\n`);
      return 0;
    }
    const full = flagBool(v, 'full');
    const now = Date.now();
    const rows = images.map((i) => fields.map((f) => FIELDS[f].value(i, full, now)));
    if (!flagBool(v, 'no-legend')) rows.unshift(fields.map((f) => FIELDS[f].header));
    toStdout(tabulate(rows));
    return 0;
  },
};
