/**
 * The options every layer takes (stage0, the store, the fetcher, net). Only cli/ reads
 * flags; it builds these (cli/globals.ts) and the layers below never import cli/.
 */
import type { FetchLimits } from './image/limits.js';

export type InsecureOption = 'image' | 'tls' | 'http' | 'pubkey' | 'capabilities' | 'paths' | 'seccomp';

export interface GlobalOptions {
  /** Data dir, absolute with symlinks resolved (default /var/lib/rkt). */
  dir: string;
  localConfig: string;
  systemConfig: string;
  userConfig: string | undefined;
  insecure: Set<InsecureOption>;
  debug: boolean;
  trustKeysFromHttps: boolean;
  /** Timeouts and sizes a fetch may not exceed (src/image/limits.ts); defaults when absent. */
  limits?: FetchLimits;
}
