// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'image-gc',
  summary: '',
  usage: 'image-gc',
  flags: [],
  async run() { return fail('image-gc: not implemented yet'); },
};
