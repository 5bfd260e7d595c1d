/** `rkt man`: the rkt(1) manual page in roff, generated from the command tree as --help is. */
import type { Command } from './command.js';
import { fullTree } from './help.js';
import { flagTerm, usageLine, visibleFlags, walk, RktCommand } from './tree.js';
import { RKT_VERSION } from '../version.js';
import { toStdout } from '../util/log.js';

/** Escapes text for roff: backslashes, hyphens, and a leading dot or quote. */
function esc(s: string): string {
  return s.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/, '\\&$1');
}

function flagList(specs: ReturnType<typeof visibleFlags>): string[] {
  return specs.flatMap((s) => ['.TP', `.B ${esc(flagTerm(s))}`, esc(s.help)]);
}

export function manPage(root: RktCommand): string {
  const out = [
    `.TH RKT 1 "" "rkt ${esc(RKT_VERSION)}" "rkt manual"`,
    '.SH NAME',
    'rkt \\- the application container runner',
    '.SH SYNOPSIS',
    `.B rkt\n${esc('[global flags] COMMAND [flags] [args]')}`,
    '.SH DESCRIPTION',
    esc('rkt fetches, verifies and unpacks signed App Container images (ACIs) and runs their apps in pods: Linux namespaces and cgroups. Flags may be given before or after the command name. rkt exits 254 when it fails itself; "rkt run" otherwise exits with the status of its app.'),
    '.SH GLOBAL FLAGS',
    ...flagList(visibleFlags(root, true)),
    '.SH COMMANDS',
  ];
  for (const cmd of walk(root).filter((c) => c.rkt)) {
    out.push(`.SS ${esc(`rkt ${cmd.path.join(' ')}`)}`, esc(cmd.description()), '.PP', `.B ${esc(usageLine(cmd))}`);
    const flags = visibleFlags(cmd, false);
    if (flags.length > 0) out.push('.PP', 'Flags:', '.RS', ...flagList(flags), '.RE');
  }
  out.push('.SH EXIT STATUS', esc('0 on success; 254 when rkt itself fails (a bad flag, image or pod); "rkt run" passes on the exit status of its app.'),
    '.SH FILES', '.TP', '.B /var/lib/rkt', 'data directory: the image store and the pods',
    '.TP', '.B /etc/rkt', 'local configuration: net.d, trustedkeys, limits.d',
    '.SH SEE ALSO', esc('rkt help COMMAND; rkt completion bash'));
  return `${out.join('\n')}\n`;
}

export const command: Command = {
  name: 'man',
  summary: 'Output the rkt(1) manual page (roff)',
  usage: 'man',
  flags: [],
  async run({ commands }) {
    toStdout(manPage(await fullTree(commands)));
    return 0;
  },
};
