// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'cat-manifest',
  summary: '',
  usage: 'cat-manifest',
  flags: [],
  async run() { return fail('cat-manifest: not implemented yet'); },
};
