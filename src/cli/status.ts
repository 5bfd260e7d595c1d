// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'status',
  summary: '',
  usage: 'status',
  flags: [],
  async run() { return fail('status: not implemented yet'); },
};
