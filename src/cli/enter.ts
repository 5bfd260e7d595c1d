// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'enter',
  summary: '',
  usage: 'enter',
  flags: [],
  async run() { return fail('enter: not implemented yet'); },
};
