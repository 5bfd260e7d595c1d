// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'image-list',
  summary: '',
  usage: 'image-list',
  flags: [],
  async run() { return fail('image-list: not implemented yet'); },
};
