import fs from 'node:fs';
import { whenBuilt } from './stdio.js';

/** stderr lines are prefixed with the command name, as rkt does ("fetch: ..."). */
let prefix = 'rkt';
let debugOn = false;

export function setLogPrefix(p: string): void { prefix = p; }
export function setDebug(on: boolean): void { debugOn = on; }
export function logPrefix(): string { return prefix; }
export function isDebug(): boolean { return debugOn; }

/** process.stdout and process.stderr, once something has used them. */
const streams: { stdout?: NodeJS.WriteStream; stderr?: NodeJS.WriteStream } = {};
whenBuilt('stdout', (s) => { streams.stdout = s; });
whenBuilt('stderr', (s) => { streams.stderr = s; });

/**
 * Text to stdout or stderr. Straight to fd 1 or 2 while the stream has not been built (see
 * util/stdio.ts; building one costs a few ms, a terminal's or a pipe's loads net): as the
 * stream itself on Linux, that blocks until written; a non-blocking fd that is full (EAGAIN)
 * gets the rest through the stream, which waits for it. A reader that went away (EPIPE) is
 * no error of ours. Once the stream exists, through it, as whatever else writes there (and
 * what watches it) expects.
 */
function writeOut(name: 'stdout' | 'stderr', text: string): void {
  const stream = streams[name];
  if (stream) {
    stream.write(text);
    return;
  }
  let buf = Buffer.from(text);
  try {
    while (buf.length > 0) buf = buf.subarray(fs.writeSync(name === 'stdout' ? 1 : 2, buf));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN') process[name].write(buf);
    // EBADF: closed (as stderr after a hand-off; see cli.ts).
    else if (code !== 'EPIPE' && code !== 'EBADF') throw e;
  }
}

/** A command's output. */
export function toStdout(text: string): void { writeOut('stdout', text); }
export function toStderr(text: string): void { writeOut('stderr', text); }

export function info(msg: string): void { toStderr(`${prefix}: ${msg}\n`); }
export function warn(msg: string): void { toStderr(`${prefix}: warning: ${msg}\n`); }
export function debug(msg: string): void { if (debugOn) toStderr(`${prefix}: ${msg}\n`); }

/**
 * The image layer's lines, as rkt printed them: prefix "image", whatever the command.
 * imageInfo always (rkt's warnings and notices); imageDebug only with --debug (rkt's
 * "diagnostic" lines such as "using image from file ..." and "remote fetching from URL ...").
 */
export function imageInfo(msg: string): void { toStderr(`image: ${msg}\n`); }
export function imageDebug(msg: string): void { if (debugOn) toStderr(`image: ${msg}\n`); }
