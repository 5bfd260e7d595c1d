// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'trust',
  summary: '',
  usage: 'trust',
  flags: [],
  async run() { return fail('trust: not implemented yet'); },
};
