// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'fetch',
  summary: '',
  usage: 'fetch',
  flags: [],
  async run() { return fail('fetch: not implemented yet'); },
};
