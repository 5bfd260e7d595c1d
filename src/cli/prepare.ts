// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'prepare',
  summary: '',
  usage: 'prepare',
  flags: [],
  async run() { return fail('prepare: not implemented yet'); },
};
