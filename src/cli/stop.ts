// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'stop',
  summary: '',
  usage: 'stop',
  flags: [],
  async run() { return fail('stop: not implemented yet'); },
};
