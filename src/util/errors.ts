/** rkt's own failures exit 254; apps' statuses pass through unchanged. */
export const RKT_FAILURE = 254;

/** An error meant for the user: one line that names the problem and the fix. */
export class RktError extends Error {
  constructor(message: string, readonly exitCode: number = RKT_FAILURE) {
    super(message);
    this.name = 'RktError';
  }
}

export function fail(message: string, exitCode: number = RKT_FAILURE): never {
  throw new RktError(message, exitCode);
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
