// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'rm',
  summary: '',
  usage: 'rm',
  flags: [],
  async run() { return fail('rm: not implemented yet'); },
};
