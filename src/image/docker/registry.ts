/**
 * A Docker Registry HTTP API v2 client on rkt's HTTP layer (../http.ts: node-fetch, the
 * --insecure-options rules on every redirect, the connect and stall timeouts).
 *   - The API root `/v2/` is asked first: it says whether the registry wants a token
 *     (`WWW-Authenticate: Bearer realm=...,service=...`) or basic auth. With
 *     --insecure-options=http the registry is spoken to in plain HTTP.
 *   - A bearer token for `repository:NAME:pull` is fetched from the realm, with the
 *     credentials if there are any (anonymous otherwise), and sent with every request.
 *   - Blob requests follow redirects to storage; the Authorization header is dropped when
 *     a redirect leaves the registry's host (http.ts).
 * Manifests are read into memory, at most MAX_DOCUMENT bytes; blobs are streamed.
 */
import { Readable } from 'node:stream';
import { HttpStatusError, httpGet, httpGetBuffer, type HttpOptions, type HttpResponse } from '../http.js';
import { RktError, errorMessage, fail } from '../../util/errors.js';
import type { Credentials } from './auth.js';

/** Manifests, indexes and configs are small; a larger one is a hostile or broken registry. */
export const MAX_DOCUMENT = 4 * 1024 * 1024;

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

const ACCEPT = [MEDIA.dockerManifest, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.ociIndex].join(', ');

export interface RegistryOptions extends HttpOptions {
  credentials?: Credentials;
}

export interface Document {
  body: Buffer;
  /** Content-Type as served (the body's own mediaType field is checked by the caller). */
  contentType: string;
}

/** Parses `Bearer realm="x",service="y"` into its scheme and parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  const params: Record<string, string> = {};
  if (!m) return { scheme: '', params };
  for (const p of m[2].matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[p[1].toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { scheme: m[1].toLowerCase(), params };
}

export class RegistryClient {
  private base: string | undefined;
  private auth: string | undefined;
  private challenge: { scheme: string; params: Record<string, string> } | undefined;

  constructor(readonly registry: string, readonly repository: string, private readonly opts: RegistryOptions) {}

  /** GET /v2/: which scheme the registry speaks and which authentication it wants. */
  private async connect(): Promise<string> {
    if (this.base) return this.base;
    const probe = async (base: string): Promise<void> => {
      try {
        const res = await httpGet(`${base}/v2/`, this.httpOpts({}));
        res.body?.destroy();
      } catch (e) {
        if (e instanceof HttpStatusError && e.status === 401) {
          this.challenge = parseChallenge(e.wwwAuthenticate ?? '');
          return;
        }
        if (e instanceof HttpStatusError) {
          const hint = e.status === 400 && base.startsWith('http:') ? ': if it speaks only TLS, leave out --insecure-options=http' : '';
          fail(`${this.registry} is not a Docker registry: ${base}/v2/ answered HTTP ${e.status}${hint}`);
        }
        throw e;
      }
    };
    // --insecure-options=http names a registry without TLS: it is asked in plain HTTP only
    // (a TLS attempt first could hang on a server that never answers the handshake).
    const base = `${this.opts.insecureHttp ? 'http' : 'https'}://${this.registry}`;
    await probe(base);
    this.base = base;
    return this.base;
  }

  private httpOpts(headers: Record<string, string>, method: 'GET' | 'HEAD' = 'GET'): HttpOptions {
    const { insecureHttp, insecureTls, timeouts } = this.opts;
    return { insecureHttp, insecureTls, timeouts, headers, method };
  }

  /** Gets a token (Bearer) or builds the Basic header from the challenge. */
  private async authenticate(): Promise<void> {
    const creds = this.opts.credentials;
    const challenge = this.challenge;
    if (!challenge) return;
    if (challenge.scheme === 'basic') {
      if (!creds) this.refused(false);
      this.auth = `Basic ${Buffer.from(`${creds!.user}:${creds!.password}`).toString('base64')}`;
      return;
    }
    if (challenge.scheme !== 'bearer') fail(`${this.registry} asks for "${challenge.scheme}" authentication, which rkt does not speak (Bearer and Basic only)`);
    const realm = challenge.params.realm;
    if (!realm) fail(`${this.registry} asks for a bearer token but names no realm to get it from`);
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', `repository:${this.repository}:pull`);
    const headers: Record<string, string> = creds ? { Authorization: `Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}` } : {};
    let body: Buffer;
    try {
      body = await httpGetBuffer(url.href, this.httpOpts(headers));
    } catch (e) {
      if (e instanceof HttpStatusError && (e.status === 401 || e.status === 403)) this.refused(!!creds);
      throw e;
    }
    let token: unknown;
    try {
      const json = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = json.token ?? json.access_token;
    } catch { /* reported below */ }
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) fail(`the token server ${url.origin} of ${this.registry} gave no usable token`);
    this.auth = `Bearer ${token}`;
  }

  private refused(hadCredentials: boolean): never {
    return fail(hadCredentials
      ? `${this.registry} refused the configured credentials for ${this.repository} (HTTP 401): check them in docker.d or ~/.docker/config.json`
      : `${this.registry} requires authentication for ${this.repository} (HTTP 401): add credentials in docker.d of the rkt config dir (rktKind "dockerAuth") or ~/.docker/config.json`);
  }

  /** One request with the current credentials; on 401 it authenticates (once) and retries. */
  private async request(pathname: string, headers: Record<string, string>, method: 'GET' | 'HEAD' = 'GET'): Promise<HttpResponse> {
    const base = await this.connect();
    if (!this.auth && this.challenge) await this.authenticate();
    for (let attempt = 0; ; attempt++) {
      const all = this.auth ? { ...headers, Authorization: this.auth } : headers;
      try {
        return await httpGet(`${base}${pathname}`, this.httpOpts(all, method));
      } catch (e) {
        if (!(e instanceof HttpStatusError)) throw e;
        if (e.status === 401 && attempt === 0 && e.wwwAuthenticate) {
          // A token for another scope, or an expired one: ask again with what the registry says now.
          this.challenge = parseChallenge(e.wwwAuthenticate);
          await this.authenticate();
          continue;
        }
        if (e.status === 401 || e.status === 403) this.refused(!!this.opts.credentials);
        throw e;
      }
    }
  }

  /** A manifest or index by tag or digest, read whole (at most MAX_DOCUMENT bytes). */
  async manifest(reference: string): Promise<Document> {
    let res: HttpResponse;
    try {
      res = await this.request(`/v2/${this.repository}/manifests/${reference}`, { Accept: ACCEPT });
    } catch (e) {
      if (e instanceof HttpStatusError && e.status === 404) {
        fail(`${this.repository}:${reference} is not on ${this.registry} (manifest unknown, HTTP 404): check the name and the tag`);
      }
      throw e;
    }
    const body = await readLimited(res, `the manifest of ${this.repository}:${reference}`);
    return { body, contentType: (res.header('content-type') ?? '').split(';')[0].trim() };
  }

  /** The digest the registry reports for a tag, without the manifest (HEAD); undefined if it says none. */
  async manifestDigest(reference: string): Promise<string | undefined> {
    const res = await this.request(`/v2/${this.repository}/manifests/${reference}`, { Accept: ACCEPT }, 'HEAD');
    res.body?.destroy();
    return res.header('docker-content-digest') ?? undefined;
  }

  /** A blob's body as it streams (the caller checks its digest and size). */
  async blob(digest: string): Promise<HttpResponse> {
    try {
      return await this.request(`/v2/${this.repository}/blobs/${digest}`, {});
    } catch (e) {
      if (e instanceof HttpStatusError && e.status === 404) fail(`blob ${digest} of ${this.repository} is not on ${this.registry} (HTTP 404)`);
      throw e;
    }
  }

  /** A small blob (the image config), read whole. */
  async smallBlob(digest: string, what: string): Promise<Buffer> {
    return readLimited(await this.blob(digest), what);
  }
}

async function readLimited(res: HttpResponse, what: string): Promise<Buffer> {
  const tooBig = (): never => fail(`${what} is larger than ${MAX_DOCUMENT / 1024 / 1024} MiB: refusing it (a manifest or config is a few KiB)`);
  const body = res.body ?? Readable.from([]);
  if (res.contentLength !== undefined && res.contentLength > MAX_DOCUMENT) {
    body.destroy();
    tooBig();
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MAX_DOCUMENT) tooBig();
      chunks.push(chunk);
    }
  } catch (e) {
    body.destroy();
    if (e instanceof RktError) throw e;
    fail(`reading ${what} failed: ${errorMessage(e)}`);
  }
  return Buffer.concat(chunks);
}
