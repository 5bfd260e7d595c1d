/** appc name types (spec/types.md): AC Identifier (image and label names) and AC Name (app, volume, port names). */
import { fail } from '../util/errors.js';

/*
 * The spec quotes a regular expression, but appc's own validator (which rkt and actool use)
 * checks only two things: every character is allowed, and the first and last are
 * alphanumeric. So `shorthash--29` and `a..b` are valid; we follow the validator.
 */
const AC_IDENTIFIER = /^[a-z0-9]([a-z0-9._~/-]*[a-z0-9])?$/;
const AC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export const AC_IDENTIFIER_RULE = 'lower case alphanumerics and -._~/, starting and ending with an alphanumeric';
export const AC_NAME_RULE = 'lower case alphanumerics and -, starting and ending with an alphanumeric';

export function isACIdentifier(s: unknown): s is string {
  return typeof s === 'string' && AC_IDENTIFIER.test(s);
}

export function isACName(s: unknown): s is string {
  return typeof s === 'string' && AC_NAME.test(s);
}

/** The problem text for a bad identifier, e.g. `"Bad_Name" is not a valid AC identifier (...)`. */
export function notACIdentifier(s: unknown): string {
  return `${JSON.stringify(s)} is not a valid AC identifier (${AC_IDENTIFIER_RULE})`;
}

export function notACName(s: unknown): string {
  return `${JSON.stringify(s)} is not a valid AC name (${AC_NAME_RULE})`;
}

/** Lower-cases `s` and turns every run of other characters into one '-', so the result is an ACName. */
export function sanitizeACName(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * The default app name for an image (rkt's ImageNameToAppName): its last path element as an
 * ACName, e.g. `coreos.com/etcd` → `etcd`, `example.com/my_app.v2` → `my-app-v2`.
 */
export function appNameFromImageName(name: string): string {
  const last = name.split('/').pop() ?? '';
  const appName = sanitizeACName(last);
  if (appName === '') {
    fail(`cannot derive an app name from image name ${JSON.stringify(name)}: give one with --name`);
  }
  return appName;
}
