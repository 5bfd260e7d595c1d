// PLACEHOLDER: replaced by the real implementation.
import type { Command } from './command.js';
import { fail } from '../util/errors.js';

export const command: Command = {
  name: 'image-render',
  summary: '',
  usage: 'image-render',
  flags: [],
  async run() { return fail('image-render: not implemented yet'); },
};
