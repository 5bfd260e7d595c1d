// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'run-prepared',
  summary: '',
  usage: 'run-prepared',
  flags: [],
  async run() { return fail('run-prepared: not implemented yet'); },
};
