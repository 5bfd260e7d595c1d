// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'image-cat-manifest',
  summary: '',
  usage: 'image-cat-manifest',
  flags: [],
  async run() { return fail('image-cat-manifest: not implemented yet'); },
};
