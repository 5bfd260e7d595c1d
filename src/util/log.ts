/** stderr lines are prefixed with the command name, as rkt does ("fetch: ..."). */
let prefix = 'rkt';
let debugOn = false;

export function setLogPrefix(p: string): void { prefix = p; }
export function setDebug(on: boolean): void { debugOn = on; }
export function logPrefix(): string { return prefix; }
export function isDebug(): boolean { return debugOn; }

export function info(msg: string): void { process.stderr.write(`${prefix}: ${msg}\n`); }
export function warn(msg: string): void { process.stderr.write(`${prefix}: warning: ${msg}\n`); }
export function debug(msg: string): void { if (debugOn) process.stderr.write(`${prefix}: ${msg}\n`); }
