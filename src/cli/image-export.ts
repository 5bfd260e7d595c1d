// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'image-export',
  summary: '',
  usage: 'image-export',
  flags: [],
  async run() { return fail('image-export: not implemented yet'); },
};
