// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'image-rm',
  summary: '',
  usage: 'image-rm',
  flags: [],
  async run() { return fail('image-rm: not implemented yet'); },
};
