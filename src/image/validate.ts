/**
 * Small helpers to check parsed JSON field by field. A FieldError carries the JSON path of
 * the bad field (e.g. `app.ports[1].port`), so callers can prefix it ("bad image manifest: ").
 * Absent and `null` fields are treated alike: Go tools write `null` for empty lists.
 */
import { RktError } from '../util/errors.js';

export class FieldError extends RktError {
  constructor(readonly path: string, readonly problem: string) {
    super(path ? `${path}: ${problem}` : problem);
    this.name = 'FieldError';
  }
}

export function bad(path: string, problem: string): never {
  throw new FieldError(path, problem);
}

/** Runs `check` and turns a FieldError into one line `<what>: <path>: <problem>`. */
export function withPrefix<T>(what: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof FieldError) throw new RktError(`${what}: ${e.message}`);
    throw e;
  }
}

export const quote = (v: unknown): string => JSON.stringify(v) ?? String(v);

export const key = (path: string, name: string): string => (path ? `${path}.${name}` : name);
export const index = (path: string, i: number): string => `${path}[${i}]`;

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${quote(v)}`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asObject(v: unknown, path: string): Record<string, unknown> {
  if (!isPlainObject(v)) bad(path, `must be an object, got ${kindOf(v)}`);
  return v;
}

/** The field's value, or undefined when it is absent or null. */
export function opt(obj: Record<string, unknown>, name: string): unknown {
  const v = obj[name];
  return v === null ? undefined : v;
}

export function req(obj: Record<string, unknown>, name: string, path: string): unknown {
  const v = opt(obj, name);
  if (v === undefined) bad(key(path, name), 'is required');
  return v;
}

export function asArray(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) bad(path, `must be a list, got ${kindOf(v)}`);
  return v;
}

export function asString(v: unknown, path: string): string {
  if (typeof v !== 'string') bad(path, `must be a string, got ${kindOf(v)}`);
  return v;
}

export function asBool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') bad(path, `must be true or false, got ${kindOf(v)}`);
  return v;
}

export function asInt(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in ${min}..${max}`;
    bad(path, `must be ${range}, got ${kindOf(v)}`);
  }
  return v;
}

export function asAbsolutePath(v: unknown, path: string): string {
  const s = asString(v, path);
  if (!s.startsWith('/')) bad(path, `must be an absolute path, got ${quote(s)}`);
  return s;
}

/** A JSON object whose values are all strings (userAnnotations, userLabels, sysctl). */
export function asStringMap(v: unknown, path: string): Record<string, string> {
  const obj = asObject(v, path);
  for (const [k, val] of Object.entries(obj)) asString(val, key(path, k));
  return obj as Record<string, string>;
}

/** `check(value)` for an optional field, or undefined when it is absent. */
export function optField<T>(
  obj: Record<string, unknown>, name: string, path: string, check: (v: unknown, path: string) => T,
): T | undefined {
  const v = opt(obj, name);
  return v === undefined ? undefined : check(v, key(path, name));
}

/** A checker for a list whose items `check` validates. */
export function listOf<T>(check: (v: unknown, path: string) => T): (v: unknown, path: string) => T[] {
  return (v, path) => asArray(v, path).map((item, i) => check(item, index(path, i)));
}

/** The object without its undefined fields, so optional fields stay absent. */
export function compact<T extends object>(obj: T): T {
  for (const k of Object.keys(obj) as (keyof T)[]) if (obj[k] === undefined) delete obj[k];
  return obj;
}
