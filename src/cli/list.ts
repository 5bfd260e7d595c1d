// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'list',
  summary: '',
  usage: 'list',
  flags: [],
  async run() { return fail('list: not implemented yet'); },
};
