// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'gc',
  summary: '',
  usage: 'gc',
  flags: [],
  async run() { return fail('gc: not implemented yet'); },
};
