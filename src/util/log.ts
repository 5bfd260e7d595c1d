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

/**
 * The image layer's lines, as rkt printed them: prefix "image", whatever the command.
 * imageInfo always (rkt's warnings and notices); imageDebug only with --debug (rkt's
 * "diagnostic" lines such as "using image from file ..." and "remote fetching from URL ...").
 */
export function imageInfo(msg: string): void { process.stderr.write(`image: ${msg}\n`); }
export function imageDebug(msg: string): void { if (debugOn) process.stderr.write(`image: ${msg}\n`); }
