/**
 * HTTP(S) client for fetching images, signatures, keys and discovery pages.
 * Enforces rkt's --insecure-options=http/tls rules, including on redirects,
 * and turns network failures into one-line RktErrors. Every request has a connect and a
 * stall timeout (src/image/limits.ts), so no server can keep rkt waiting for ever.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import { PassThrough, Readable, Transform } from 'node:stream';
import fetch, { FetchError, type Response } from 'node-fetch';
import fs from 'node:fs';
import { RktError, fail } from '../util/errors.js';
import { warn } from '../util/log.js';
import { DEFAULT_LIMITS, connectTimeoutError, stallTimeoutError, type FetchLimitError } from './limits.js';

export interface HttpOptions {
  /** --insecure-options=http: allow plain http:// */
  insecureHttp: boolean;
  /** --insecure-options=tls: accept any certificate */
  insecureTls: boolean;
  headers?: Record<string, string>;
  /** --http-connect-timeout and --http-stall-timeout; 30 s and 60 s when absent. */
  timeouts?: Timeouts;
  /** GET unless said (a registry asks for a manifest's digest with HEAD). */
  method?: 'GET' | 'HEAD';
}

export interface Timeouts {
  connectTimeoutMs: number;
  stallTimeoutMs: number;
}

export interface HttpResponse {
  status: number;
  /** final, after redirects */
  url: string;
  notModified: boolean;
  body: Readable | undefined;
  etag?: string;
  /** from Cache-Control max-age, 0 for no-cache/no-store */
  maxAgeSeconds?: number;
  contentLength?: number;
  /** A response header (the last response, after redirects), or null. */
  header(name: string): string | null;
}

/** A non-2xx/304 answer; discovery needs the status to decide whether to walk up, a registry the challenge. */
export class HttpStatusError extends RktError {
  constructor(readonly status: number, readonly url: string, readonly wwwAuthenticate?: string) {
    super(`bad HTTP status code: ${status} fetching ${url}`);
  }
}

/** A signature request answered with 202 Accepted: the server asks to fetch it after the image (rkt's deferred signature). */
export class SignatureDeferred extends RktError {
  constructor(url: string) {
    super(`the server deferred the signature at ${url} (202 Accepted)`);
  }
}

const MAX_REDIRECTS = 10;
const MAX_BUFFER = 16 * 1024 * 1024;

/**
 * Watches the sockets of one request: the connection (TCP, and TLS for https) must be up
 * within the connect timeout, and then a byte must arrive at least every stall timeout
 * while rkt is reading (a socket paused because rkt's own pipeline is busy does not
 * count). When a limit trips, the socket is destroyed and `fault` says why.
 */
class Watchdog {
  fault: FetchLimitError | undefined;

  constructor(private readonly url: string, private readonly t: Timeouts) {}

  guard(socket: net.Socket): void {
    const { connectTimeoutMs, stallTimeoutMs } = this.t;
    const started = Date.now();
    let connected = false;
    let lastProgress = started;
    let lastRead = 0;
    socket.once(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => {
      connected = true;
      lastProgress = Date.now();
    });
    const tick = Math.max(20, Math.min(1000, Math.floor(Math.min(connectTimeoutMs, stallTimeoutMs) / 4)));
    const timer = setInterval(() => {
      const now = Date.now();
      if (!connected) {
        if (now - started >= connectTimeoutMs) this.trip(socket, connectTimeoutError(this.url, connectTimeoutMs));
      } else if (socket.bytesRead !== lastRead || socket.isPaused()) {
        lastRead = socket.bytesRead;
        lastProgress = now;
      } else if (now - lastProgress >= stallTimeoutMs) {
        this.trip(socket, stallTimeoutError(this.url, stallTimeoutMs, lastRead > 0));
      }
    }, tick);
    timer.unref();
    socket.once('close', () => clearInterval(timer));
  }

  private trip(socket: net.Socket, err: FetchLimitError): void {
    this.fault ??= err;
    socket.destroy(err);
  }
}

/**
 * Where dist/preload.cjs leaves the NODE_EXTRA_CA_CERTS that bin/rkt kept from Node's start:
 * Node reads and parses that file on every start (~40 ms), and only a fetch over TLS needs it.
 */
export const DEFERRED_EXTRA_CA = Symbol.for('rkt.deferredExtraCaCerts');
let withExtraCa: { file: string; cas: string[] } | undefined;

/** The CAs an https fetch trusts when NODE_EXTRA_CA_CERTS was deferred: Node's own and the file's, as Node would. */
export function deferredCaCerts(): string[] | undefined {
  const file = (globalThis as Record<symbol, unknown>)[DEFERRED_EXTRA_CA];
  if (typeof file !== 'string' || file === '') return undefined;
  if (withExtraCa?.file !== file) {
    let extra: string[] = [];
    try {
      extra = fs.readFileSync(file, 'latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    } catch (e) {
      // As Node does: a warning, and the default CAs.
      warn(`ignoring extra certs from ${file} (NODE_EXTRA_CA_CERTS): ${(e as Error).message}`);
    }
    withExtraCa = { file, cas: [...tls.rootCertificates, ...extra] };
  }
  return withExtraCa.cas;
}

/** keepAlive off and one agent per request: each download closes its socket, so nothing lingers. */
function watchedAgent(url: URL, opts: HttpOptions, dog: Watchdog): http.Agent {
  const agent = url.protocol === 'http:' ? new http.Agent() : new https.Agent({ rejectUnauthorized: !opts.insecureTls, ca: deferredCaCerts() });
  const create = agent.createConnection as (...args: unknown[]) => net.Socket | undefined;
  agent.createConnection = ((...args: unknown[]) => {
    const socket = create.apply(agent, args);
    if (socket) dog.guard(socket);
    return socket;
  }) as typeof agent.createConnection;
  return agent;
}

/** The response body, with the watchdog's reason in place of the socket's bare error. */
function watchedBody(body: Readable, dog: Watchdog): Readable {
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  // The error stays on `out` for its reader, who may come later (after the signature is fetched).
  out.on('error', () => {});
  body.on('error', (err) => out.destroy(dog.fault ?? err));
  out.on('close', () => body.destroy());
  body.pipe(out);
  return out;
}

// Verification failures that a self-signed or private-CA server causes.
const UNTRUSTED_CERT = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

const CONNECT_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by the server',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/** An absolute http(s) URL; `base` resolves relative redirect targets. */
function parseUrl(raw: string, base?: URL): URL {
  let u: URL;
  try {
    u = new URL(raw, base);
  } catch {
    fail(`invalid URL "${raw}": expected http:// or https://`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    fail(`unsupported URL scheme "${u.protocol}" in ${raw}: only http and https can be fetched`);
  }
  return u;
}

/** The reason in a system or OpenSSL error message, on one line. */
function shortReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const reason = message.replace(/^request to \S+ failed, reason: /, '');
  // OpenSSL: "... error:0A00010B:SSL routines:ssl3_get_record:wrong version number:file:line:"
  const ssl = /error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)/.exec(reason);
  return (ssl ? ssl[1] : reason).replace(/\s+/g, ' ').trim();
}

function networkError(err: unknown, url: URL): RktError {
  const code = err instanceof FetchError ? err.code ?? '' : '';
  const reason = shortReason(err);
  if (UNTRUSTED_CERT.has(code)) {
    return new RktError(`TLS certificate of ${url.host} is not trusted (${reason}): use --insecure-options=tls to accept it`);
  }
  if (/^(CERT_|ERR_TLS_|ERR_SSL_|EPROTO$)/.test(code)) {
    // An https request to a plain HTTP port fails this way.
    const hint = reason === 'wrong version number' ? ': if the server speaks plain HTTP only, use --insecure-options=http' : '';
    return new RktError(`TLS handshake with ${url.host} failed (${reason})${hint}`);
  }
  const what = CONNECT_ERRORS[code];
  if (what) return new RktError(`cannot fetch ${url.href}: ${what} (${code})`);
  return new RktError(`cannot fetch ${url.href}: ${reason}`);
}

/** max-age in seconds; 0 when the response must not be reused; undefined when not stated. */
function parseMaxAge(cacheControl: string | null): number | undefined {
  if (!cacheControl) return undefined;
  let maxAge: number | undefined;
  for (const directive of cacheControl.split(',')) {
    const [key, value = ''] = directive.trim().toLowerCase().split('=', 2);
    if (key === 'no-cache' || key === 'no-store') return 0;
    const seconds = value.replace(/"/g, '');
    if (key === 'max-age' && /^\d+$/.test(seconds)) maxAge = Number(seconds);
  }
  return maxAge;
}

async function request(url: URL, headers: Record<string, string>, opts: HttpOptions): Promise<{ res: Response; dog: Watchdog }> {
  const dog = new Watchdog(url.href, opts.timeouts ?? DEFAULT_LIMITS);
  const agent = watchedAgent(url, opts, dog);
  try {
    // compress off: signatures cover the bytes as served, so no transparent decoding.
    return { res: await fetch(url.href, { method: opts.method ?? 'GET', headers, agent, redirect: 'manual', compress: false }), dog };
  } catch (err) {
    throw dog.fault ?? networkError(err, url);
  }
}

function discard(res: Response): void {
  (res.body as Readable | null)?.destroy();
}

/** GET url, following up to 10 redirects; never downgrades to plain HTTP unless allowed. */
export async function httpGet(url: string, opts: HttpOptions & { etag?: string; deferrable?: boolean }): Promise<HttpResponse> {
  let current = parseUrl(url);
  if (current.protocol === 'http:' && !opts.insecureHttp) {
    fail(`refusing plain HTTP for ${url}: use https or --insecure-options=http`);
  }
  let callerHeaders = { ...opts.headers };
  const conditional: Record<string, string> = opts.etag ? { 'If-None-Match': opts.etag } : {};

  for (let redirects = 0; ; redirects++) {
    const { res, dog } = await request(current, { ...callerHeaders, ...conditional }, opts);
    const location = res.headers.get('location');
    if ([301, 302, 303, 307, 308].includes(res.status) && location) {
      discard(res);
      if (redirects === MAX_REDIRECTS) fail(`too many redirects (more than ${MAX_REDIRECTS}) fetching ${url}`);
      const next = parseUrl(location, current);
      if (next.protocol === 'http:' && !opts.insecureHttp) {
        fail(`refusing plain HTTP for ${next.href} (redirected from ${current.href}): use https or --insecure-options=http`);
      }
      // Caller headers may carry credentials for this host only (auth.d is per domain).
      if (next.host !== current.host) callerHeaders = {};
      current = next;
      continue;
    }

    const common = {
      status: res.status,
      url: current.href,
      etag: res.headers.get('etag') ?? undefined,
      maxAgeSeconds: parseMaxAge(res.headers.get('cache-control')),
      header: (name: string) => res.headers.get(name),
    };
    if (res.status === 304) {
      discard(res);
      return { ...common, notModified: true, body: undefined };
    }
    if (res.status === 202 && opts.deferrable) {
      discard(res);
      throw new SignatureDeferred(current.href);
    }
    if (res.status < 200 || res.status > 299) {
      discard(res);
      throw new HttpStatusError(res.status, current.href, res.headers.get('www-authenticate') ?? undefined);
    }
    const length = res.headers.get('content-length');
    return {
      ...common,
      notModified: false,
      body: watchedBody(res.body as Readable, dog),
      contentLength: length !== null && /^\d+$/.test(length) ? Number(length) : undefined,
    };
  }
}

/** GET a small resource (key, signature, discovery page) into memory, at most 16 MiB. */
export async function httpGetBuffer(url: string, opts: HttpOptions & { deferrable?: boolean }): Promise<Buffer> {
  const res = await httpGet(url, opts);
  const tooBig = `response from ${res.url} is larger than ${MAX_BUFFER / 1024 / 1024} MiB: this is not a key, signature or discovery page`;
  if (!res.body) fail(`empty response from ${res.url}`);
  if (res.contentLength !== undefined && res.contentLength > MAX_BUFFER) {
    res.body.destroy();
    fail(tooBig);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      total += chunk.length;
      if (total > MAX_BUFFER) fail(tooBig);
      chunks.push(chunk);
    }
  } catch (err) {
    res.body.destroy();
    if (err instanceof RktError) throw err;
    throw networkError(err, new URL(res.url));
  }
  return Buffer.concat(chunks);
}

function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${n} B`;
}

const BAR_WIDTH = 20;
const REDRAW_MS = 100;

function progressLine(label: string, done: number, total: number | undefined): string {
  if (!total) return `${label}: ${formatBytes(done)}`;
  const filled = Math.min(BAR_WIDTH, Math.floor((done / total) * BAR_WIDTH));
  const bar = filled >= BAR_WIDTH ? '='.repeat(BAR_WIDTH) : '='.repeat(filled) + '>' + ' '.repeat(BAR_WIDTH - filled - 1);
  return `${label}: [${bar}] ${formatBytes(done)}/${formatBytes(total)}`;
}

/** Pass-through that draws a progress bar on stderr when it is a terminal. */
export function progressStream(total: number | undefined, label: string): Transform {
  const stderr = process.stderr;
  if (!stderr.isTTY) return new PassThrough();

  let done = 0;
  let lastDraw = 0;
  let drawn = false;
  const clear = (): void => {
    if (drawn) stderr.write('\r\x1b[K');
    drawn = false;
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      const now = Date.now();
      if (now - lastDraw >= REDRAW_MS) {
        lastDraw = now;
        drawn = true;
        stderr.write(`\r\x1b[K${progressLine(label, done, total)}`);
      }
      callback(null, chunk);
    },
    flush(callback) {
      clear();
      callback();
    },
    destroy(err, callback) {
      clear();
      callback(err);
    },
  });
}
