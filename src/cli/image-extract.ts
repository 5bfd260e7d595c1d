// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'image-extract',
  summary: '',
  usage: 'image-extract',
  flags: [],
  async run() { return fail('image-extract: not implemented yet'); },
};
