import fs from 'node:fs';
import path from 'node:path';
import type { Command } from './command.js';
import { flagBool } from './flags.js';
import { fail } from '../util/errors.js';
import { podsFromArgs, UUID_FILE_FLAG } from './pod-args.js';
import { POD_MANIFEST_FILE } from '../pod-layout.js';
import { toStdout } from '../util/log.js';

export const command: Command = {
  name: 'cat-manifest',
  summary: 'Inspect and print the pod manifest',
  usage: 'cat-manifest [--pretty-print=true] UUID | --uuid-file=FILE',
  flags: [UUID_FILE_FLAG, { name: 'pretty-print', kind: 'bool', help: 'apply indent to format the output (default true)' }],
  async run({ globals, parsed }) {
    const [pod] = podsFromArgs(globals.dir, parsed, true);
    let text: string;
    try { text = fs.readFileSync(path.join(pod.dir, POD_MANIFEST_FILE), 'utf8'); } catch { return fail(`pod ${pod.uuid} has no manifest yet (it is still being prepared)`); }
    const pretty = flagBool(parsed.values, 'pretty-print', true);
    toStdout(`${pretty ? JSON.stringify(JSON.parse(text), null, 2) : text}\n`);
    return 0;
  },
};
