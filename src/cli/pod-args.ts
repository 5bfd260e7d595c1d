/** UUID arguments shared by stop, rm, status and cat-manifest: UUIDs/prefixes or --uuid-file. */
import type { ParsedFlags, FlagSpec } from './flags.js';
import { flagString } from './flags.js';
import { errorMessage, fail } from '../util/errors.js';
import { findPod, uuidFromFile, Pod } from '../stage0/pod.js';

export const UUID_FILE_FLAG: FlagSpec = { name: 'uuid-file', kind: 'string', help: 'read the pod UUID from this file' };

function podRefs(parsed: ParsedFlags): string[] {
  const file = flagString(parsed.values, 'uuid-file');
  const refs = [...parsed.positionals];
  if (file !== undefined) refs.push(uuidFromFile(file));
  if (refs.length === 0) fail('no pod given: pass a UUID (or unambiguous prefix) or --uuid-file=FILE');
  return refs;
}

export function podsFromArgs(dataDir: string, parsed: ParsedFlags, one = false): Pod[] {
  const refs = podRefs(parsed);
  if (one && refs.length > 1) fail('give exactly one pod UUID');
  return refs.map((r) => findPod(dataDir, r));
}

/**
 * Each argument resolved on its own (stop, rm): one unknown UUID must not keep the
 * others from being handled. Only a missing argument or unreadable --uuid-file throws.
 */
export function eachPodFromArgs(dataDir: string, parsed: ParsedFlags): Array<{ ref: string; pod?: Pod; error?: string }> {
  return podRefs(parsed).map((ref) => {
    try { return { ref, pod: findPod(dataDir, ref) }; } catch (e) { return { ref, error: errorMessage(e) }; }
  });
}
