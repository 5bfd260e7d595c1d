import type { Command } from './command.js';
import { buildProgram, formatHelp, loadAll, locate, RktCommand, type CommandTable } from './tree.js';
import { fail } from '../util/errors.js';
import { toStdout } from '../util/log.js';

/** The tree with every module loaded, and the command at `path` in it. */
export async function fullTree(commands: CommandTable, path: string[] = []): Promise<RktCommand> {
  let cmd = buildProgram(await loadAll(commands), commands).root;
  for (const name of path) cmd = cmd.commands.find((c) => c.name() === name) as RktCommand;
  return cmd;
}

export const command: Command = {
  name: 'help',
  summary: 'Help about any command',
  usage: 'help [COMMAND [SUBCOMMAND]]',
  flags: [],
  ownGrammar: true,
  async run({ rawArgs, commands }) {
    const words = rawArgs.filter((a) => !a.startsWith('-'));
    const { path } = locate(words, commands);
    if (words.length > path.length) {
      const where = ['rkt', ...path].join(' ');
      fail(`unknown command "${words[path.length]}" for "${where}": run "${where === 'rkt' ? 'rkt help' : `rkt help ${path.join(' ')}`}" for the list`);
    }
    toStdout(formatHelp(await fullTree(commands, path)));
    return 0;
  },
};
