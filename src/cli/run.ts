// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'run',
  summary: '',
  usage: 'run',
  flags: [],
  async run() { return fail('run: not implemented yet'); },
};
