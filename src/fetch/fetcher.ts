/**
 * Resolving an IMAGE argument (file, URL, appc name or image ID) to a stored image, under
 * rkt's pull policies:
 *   new     the store first; fetch only what is missing (run and prepare)
 *   update  go remote, honouring the stored ETag and max-age (fetch)
 *   never   the store only
 * Local files are imported whatever the policy, but a file already imported and unchanged
 * (same dev, inode, size, mtime, ctime) is not read again. Dependencies are fetched too,
 * and the image's tree is rendered, so a pod can use it at once.
 * Heavy modules (HTTP, OpenPGP, tar) load only when something must be fetched.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { GlobalOptions } from '../options.js';
import { classifyImageArg, formatAppcName } from '../image/imageref.js';
import { formatDockerRef, type DockerRef } from '../image/docker/reference.js';
import { ImageStore, bestMatches, findDependency, labelRecord, type ImageInfo, type FileStamp } from '../store/imagestore.js';
import { newestFirst } from '../store/match.js';
import type { ImportRequest } from '../store/import.js';
import type { FetchLimits } from '../image/limits.js';
import type { KeyStore } from '../trust/keystore.js';
import { RktError, errorMessage, fail } from '../util/errors.js';
import { imageDebug, imageInfo, info, warn } from '../util/log.js';

export type PullPolicy = 'new' | 'update' | 'never';

export interface FetchOptions {
  globals: GlobalOptions;
  pullPolicy: PullPolicy;
  /** --signature: the detached signature of a local file image. */
  signatureFile?: string;
  /** Port of the discovery server (tests run it on 127.0.0.1 with an unprivileged port). */
  discoveryPort?: number;
}

/** --pull-policy with rkt's deprecated aliases --store-only (never) and --no-store (update). */
export function pullPolicyFrom(raw: string | undefined, storeOnly: boolean, noStore: boolean, dflt: PullPolicy): PullPolicy {
  if (storeOnly) return 'never';
  if (noStore) return 'update';
  const p = raw ?? dflt;
  if (p !== 'new' && p !== 'update' && p !== 'never') fail(`invalid --pull-policy "${p}": use new, update or never`);
  return p;
}

function isFile(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
}

/** rkt's rule: the signature of x.aci is x.aci.asc, also for a URL without the suffix. */
function signatureUrl(aciUrl: string): string {
  return `${aciUrl.replace(/\.aci$/, '')}.aci.asc`;
}

class Fetcher {
  readonly store: ImageStore;
  private keystoreP: Promise<KeyStore> | undefined;

  constructor(private readonly opts: FetchOptions) {
    this.store = new ImageStore(opts.globals.dir);
  }

  private get secure(): boolean { return !this.opts.globals.insecure.has('image'); }

  private get httpOpts(): { insecureHttp: boolean; insecureTls: boolean; timeouts?: FetchLimits } {
    const { insecure, limits } = this.opts.globals;
    return { insecureHttp: insecure.has('http'), insecureTls: insecure.has('tls'), timeouts: limits };
  }

  private keystore(): Promise<KeyStore> {
    const { systemConfig, localConfig, userConfig } = this.opts.globals;
    this.keystoreP ??= import('../trust/keystore.js').then(({ KeyStore }) => new KeyStore({ systemConfig, localConfig, userConfig }));
    return this.keystoreP;
  }

  private async importFrom(input: Readable, req: Omit<ImportRequest, 'verify'> & { signature?: Buffer }): Promise<ImageInfo> {
    const { importAci } = await import('../store/import.js');
    const verify = req.signature ? { signature: req.signature, keystore: await this.keystore() } : undefined;
    return importAci(this.store, input, { ...req, verify, limits: this.opts.globals.limits });
  }

  async fetch(arg: string): Promise<ImageInfo> {
    const ref = classifyImageArg(arg, isFile);
    // What a killed rkt left in cas/tmp goes first (owners that are alive keep theirs).
    this.store.removeStaleStaging();
    let image: ImageInfo;
    switch (ref.kind) {
      case 'hash': image = this.store.resolve(ref.id); break;
      case 'path': image = await this.fromFile(ref.path); break;
      case 'url': image = await this.fromUrl(ref.url); break;
      case 'name': image = await this.fromName(ref.name, ref.labels, this.opts.pullPolicy); break;
      case 'docker': image = await this.fromDocker(ref.ref); break;
    }
    await this.fetchDependencies(image, new Set([image.id]));
    // Trees are root's (cas/tree is 0700): a group rkt member's fetch leaves rendering to the first run.
    if (process.getuid?.() === 0) await this.store.treeRootfs(image.id);
    return this.store.get(image.id) ?? image;
  }

  private async fromFile(file: string): Promise<ImageInfo> {
    const abs = path.resolve(file);
    imageDebug(`using image from file ${abs}`);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch (e) {
      return fail(`cannot open image file "${file}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(e)}`);
    }
    const stamp: FileStamp = { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
    const known = this.store.imageForFile(stamp);
    if (known && (await this.stillTrusted(known))) return known;

    let signature: Buffer | undefined;
    if (this.secure) {
      const sigFile = this.opts.signatureFile ?? `${abs}.asc`;
      try {
        signature = fs.readFileSync(sigFile);
      } catch (e) {
        const { noSignatureError } = await import('../trust/verify.js');
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw noSignatureError(file, sigFile);
        throw new RktError(`error opening signature file: ${sigFile}: ${errorMessage(e)}`);
      }
    }
    // 1 MiB reads: fewer, larger chunks through the verifier, blob and decompressor.
    const imported = await this.importFrom(fs.createReadStream(abs, { highWaterMark: 1024 * 1024 }), {
      label: file, signature, source: { path: abs, fileStat: stamp }, latest: false,
    });
    this.store.rememberFile(stamp, imported.id);
    return imported;
  }

  /** A file's image reused without reading the file again: its signer must still be trusted. */
  private async stillTrusted(image: ImageInfo): Promise<boolean> {
    if (!this.secure) return true;
    if (!image.signer) return false; // imported with --insecure-options=image: verify it now
    if ((await this.keystore()).trustedFingerprints(image.name).has(image.signer)) return true;
    const { assertTrustedFor } = await import('../trust/verify.js');
    await assertTrustedFor(image.name, { fingerprint: image.signer, identities: [] }, await this.keystore());
    return true;
  }

  private storedForUrl(url: string): ImageInfo | undefined {
    return this.store.list()
      .filter((i) => i.source?.url === url)
      .sort((a, b) => newestFirst(a.source?.downloadTime, b.source?.downloadTime))[0];
  }

  private async fromUrl(url: string): Promise<ImageInfo> {
    const stored = this.storedForUrl(url);
    if (stored && this.opts.pullPolicy !== 'update') {
      imageDebug(`using image from local store for url ${url}`);
      return stored;
    }
    if (this.opts.pullPolicy === 'never') {
      fail(`unable to fetch image from URL "${url}" with --pull-policy=never: not in the local store; fetch it first with "rkt fetch"`);
    }
    imageDebug(`remote fetching from URL "${url}"`);
    // As rkt: an http:// URL given by the user is fetched as such (its signature still
    // protects it); --insecure-options=http governs discovery and https->http redirects.
    const http = url.startsWith('http://') ? { ...this.httpOpts, insecureHttp: true } : this.httpOpts;
    return this.download(url, signatureUrl(url), { stored, label: url, latest: false }, http);
  }

  /**
   * GET an ACI (and its signature) unless the stored copy is fresh or the server says 304.
   * The signature comes first, as with rkt; a server that answers it with 202 Accepted
   * defers it: the image is downloaded into the store's staging, then the signature is
   * asked for again, and the image is verified and imported from the staged file.
   */
  private async download(
    aciUrl: string,
    ascUrl: string,
    req: { stored?: ImageInfo; label: string; latest: boolean; expected?: { name: string; labels: Record<string, string> } },
    http = this.httpOpts,
  ): Promise<ImageInfo> {
    const { stored } = req;
    const src = stored?.source;
    if (stored && src?.maxAgeSeconds && src.downloadTime && Date.now() < Date.parse(src.downloadTime) + src.maxAgeSeconds * 1000) {
      imageDebug(`image for ${aciUrl} isn't expired, not fetching.`);
      return stored;
    }
    // node:stream (and what it loads) only when something is downloaded: not on the run path.
    const { pipeline } = await import('node:stream');
    const { progressStream } = await import('../image/http.js');
    const { PartialDownload } = await import('../store/partial.js');
    const { sizeLimits, sizeLimitError, SizeLimitError } = await import('../image/limits.js');
    imageDebug(`fetching image from ${aciUrl}`);
    this.store.ensureLayout();
    const partial = new PartialDownload(this.store.tmpDir, aciUrl, (suffix) => this.store.staging(suffix));
    let raw: Readable | undefined;
    try {
      const { res, kept } = await this.requestImage(aciUrl, partial, http, stored ? src?.etag : undefined);
      const downloadTime = new Date().toISOString();
      if (res.notModified && stored) {
        partial.remove(); // kept bytes of the copy the store already holds
        imageDebug(`using image from local store for url ${aciUrl}`);
        const refreshed = { ...stored, source: { ...src, etag: res.etag ?? src?.etag, maxAgeSeconds: res.maxAgeSeconds, downloadTime } };
        this.store.writeInfo(refreshed);
        return refreshed;
      }
      if (!res.body) fail(`empty response from ${res.url}`);
      raw = res.body;
      const before = kept?.bytes ?? 0;
      const total = res.contentLength === undefined ? undefined : before + res.contentLength;
      const { download: downloadLimit } = sizeLimits(this.opts.globals.limits, this.store.dir);
      // A server that announces too much is refused before anything is written.
      if (total !== undefined && total > downloadLimit.bytes) {
        raw.destroy();
        partial.remove();
        throw sizeLimitError(aciUrl, downloadLimit, 'download');
      }
      // Each chunk goes into the partial file as it comes; a dropped connection leaves it for
      // the next fetch. Watched from now on: the connection may drop while the signature is
      // fetched, before anyone reads `received`. The error then stays on it (destroyed,
      // errored) for the pipeline below to report; without this listener it would be thrown
      // as an uncaught exception.
      let connectionLost = false;
      const received = partial.keeper();
      received.on('error', () => {});
      raw.on('error', (e) => { connectionLost = true; received.destroy(e); });
      raw.pipe(received);
      let signature: Buffer | undefined;
      let deferred = false;
      if (this.secure) {
        try {
          signature = await this.signature(ascUrl, http);
          deferred = signature === undefined;
        } catch (e) {
          raw.destroy();
          partial.remove();
          throw e;
        }
      }
      const body = kept ? partial.resumed(kept.bytes, received) : received;
      const progress = progressStream(total, 'Downloading ACI');
      pipeline(body, progress, () => { /* errors reach the importer (or the staged copy) through `progress` */ });
      const source = { url: aciUrl, etag: res.etag, maxAgeSeconds: res.maxAgeSeconds, downloadTime };
      const request = { label: req.label, expected: req.expected, latest: req.latest, source };
      try {
        const image = await this.importDownload(progress, request, signature, deferred, aciUrl, ascUrl, http, downloadLimit);
        partial.remove();
        return image;
      } catch (e) {
        // Kept only when the connection failed: a bad image or signature is fetched anew.
        if (!connectionLost || e instanceof SizeLimitError) partial.remove();
        throw e;
      }
    } finally {
      // A failed import stops reading `received`, not the connection: close it too.
      raw?.destroy();
      partial.close();
    }
  }

  /**
   * The image's response: the rest of what `partial` kept (206 to Range + If-Range), else
   * the whole image, with the partial started afresh. A server that cannot serve the rest
   * (416), ignores the range or its validator (200), or answers another range than asked
   * is asked again for the whole image; nothing it sent is spliced onto the kept bytes.
   */
  private async requestImage(
    aciUrl: string,
    partial: import('../store/partial.js').PartialDownload,
    http: typeof this.httpOpts,
    etag: string | undefined,
  ): Promise<{ res: import('../image/http.js').HttpResponse; kept?: { bytes: number; validator: string } }> {
    const { httpGet, HttpStatusError } = await import('../image/http.js');
    const { rangeValidator } = await import('../store/partial.js');
    const kept = partial.resumable();
    if (kept) {
      const res = await httpGet(aciUrl, { ...http, etag, headers: { Range: `bytes=${kept.bytes}-`, 'If-Range': kept.validator } })
        .catch((e: unknown) => {
          if (e instanceof HttpStatusError && e.status === 416) return undefined;
          throw e;
        });
      if (res?.status === 206 && isRestOf(res, kept.bytes)) {
        imageDebug(`resuming the download of ${aciUrl} after ${kept.bytes} bytes`);
        return { res, kept };
      }
      if (res?.notModified) return { res };
      let why: string;
      if (!res) {
        why = 'the server cannot serve the rest (416)';
      } else if (res.status === 206) {
        res.body?.destroy();
        why = `the server answered another range (${res.header('content-range') ?? 'no Content-Range'})`;
      } else {
        const unchanged = rangeValidator(res.etag, res.header('last-modified')) === kept.validator;
        why = unchanged ? 'range request unsupported' : 'resource updated';
      }
      imageInfo(`cannot use cached partial download, ${why}.`);
      partial.remove();
      if (res && res.status !== 206) {
        partial.start(rangeValidator(res.etag, res.header('last-modified')));
        return { res };
      }
    }
    const res = await httpGet(aciUrl, { ...http, etag });
    if (res.status === 206) {
      res.body?.destroy();
      fail(`${aciUrl} answered 206 Partial Content to a request for the whole image: the server is broken; fetch the image from another one`);
    }
    if (!res.notModified) partial.start(rangeValidator(res.etag, res.header('last-modified')));
    return { res };
  }

  private async importDownload(
    progress: Readable,
    request: Omit<ImportRequest, 'verify' | 'limits'>,
    signature: Buffer | undefined,
    deferred: boolean,
    aciUrl: string,
    ascUrl: string,
    http: typeof this.httpOpts,
    downloadLimit: import('../image/limits.js').SizeLimit,
  ): Promise<ImageInfo> {
    const { sizeLimitError } = await import('../image/limits.js');
    if (!deferred) return this.importFrom(progress, { ...request, signature });

    imageInfo('server requested deferring the signature download');
    const staged = this.store.staging('.aci');
    try {
      try {
        await stageDownload(progress, staged, downloadLimit.bytes, () => sizeLimitError(aciUrl, downloadLimit, 'download'));
      } catch (e) {
        if (e instanceof RktError) throw e;
        throw new RktError(`error downloading ACI from ${aciUrl}: ${errorMessage(e)}`, undefined, e);
      }
      const again = await this.signature(ascUrl, http);
      if (!again) fail(`error downloading the signature file: server asked to defer the download again (${ascUrl}): the server must serve the signature after the image`);
      return await this.importFrom(fs.createReadStream(staged, { highWaterMark: 1024 * 1024 }), { ...request, signature: again });
    } finally {
      fs.rmSync(staged, { force: true });
    }
  }

  /** The detached signature at ascUrl; undefined when the server defers it (202 Accepted). */
  private async signature(ascUrl: string, http: typeof this.httpOpts): Promise<Buffer | undefined> {
    const { httpGetBuffer, SignatureDeferred } = await import('../image/http.js');
    imageDebug(`downloading signature from ${ascUrl}`);
    try {
      return await httpGetBuffer(ascUrl, { ...http, deferrable: true });
    } catch (e) {
      if (e instanceof SignatureDeferred) return undefined;
      throw new RktError(`error downloading the signature file: ${errorMessage(e)}: publish it at ${ascUrl}, or skip verification with --insecure-options=image`);
    }
  }

  private async fromName(name: string, labels: Record<string, string>, policy: PullPolicy): Promise<ImageInfo> {
    const display = formatAppcName(name, labels);
    if (policy !== 'update') {
      const hit = bestMatches(this.store.list(), name, labels)[0];
      if (hit) {
        imageDebug(`using image from local store for image name ${display}`);
        return hit;
      }
      if (policy === 'never') {
        fail(`unable to fetch image "${display}" with --pull-policy=never: not in the local store; fetch it first with "rkt fetch"`);
      }
    }
    imageDebug(`searching for app image ${display}`);
    const { discoverImage } = await import('../image/discovery.js');
    const found = await discoverImage(name, labels, { ...this.httpOpts, port: this.opts.discoveryPort });
    if (this.secure) await this.trustDiscoveredKeys(name, found.pubkeys);
    const latest = !labels.version;
    let failure: unknown;
    for (const { aci, asc } of found.acis) {
      try {
        imageDebug(`remote fetching from URL "${aci}"`);
        return await this.download(aci, asc, { stored: this.storedForUrl(aci), label: display, latest, expected: { name, labels } });
      } catch (e) {
        failure = e;
      }
    }
    throw failure;
  }

  /** A registry image, converted to an ACI (src/image/docker/). Docker images are never signed. */
  private async fromDocker(ref: DockerRef): Promise<ImageInfo> {
    const shown = formatDockerRef(ref);
    if (this.secure) {
      fail(`cannot verify "${shown}": Docker images carry no signature rkt can check; fetch it without verification with --insecure-options=image`);
    }
    const { fetchDockerImage } = await import('./docker.js');
    return fetchDockerImage(this.store, ref, { ...this.httpOpts, pullPolicy: this.opts.pullPolicy, globals: this.opts.globals });
  }

  /**
   * rkt fetches the keys discovery offers when none is trusted for the name's prefixes.
   * Without --trust-keys-from-https nothing is trusted automatically (no prompt here);
   * the verification then fails naming `rkt trust`.
   */
  private async trustDiscoveredKeys(name: string, pubkeys: string[]): Promise<void> {
    const keystore = await this.keystore();
    if (pubkeys.length === 0 || keystore.hasKeyForPrefixOf(name)) return;
    if (!this.opts.globals.trustKeysFromHttps) {
      info(`no key is trusted for "${name}"; discovery offers ${pubkeys.join(', ')}: trust one with "rkt trust --prefix=${name}" or pass --trust-keys-from-https`);
      return;
    }
    const { httpGetBuffer } = await import('../image/http.js');
    const insecurePubkey = this.opts.globals.insecure.has('pubkey');
    for (const url of pubkeys) {
      if (!url.startsWith('https://') && !insecurePubkey) {
        warn(`not trusting key ${url} automatically: it is not served over https (allow with --insecure-options=pubkey)`);
        continue;
      }
      const armored = (await httpGetBuffer(url, { ...this.httpOpts, insecureHttp: this.httpOpts.insecureHttp || insecurePubkey })).toString('utf8');
      const added = await keystore.addKey(armored, { prefix: name });
      info(`Added key for prefix "${name}" at "${added.path}"`);
    }
  }

  /** Each dependency from the store if there, else by discovery; depth-first. */
  private async fetchDependencies(image: ImageInfo, seen: Set<string>): Promise<void> {
    for (const dep of this.store.manifest(image.id).dependencies ?? []) {
      const labels = labelRecord(dep.labels);
      let found = findDependency(this.store, dep);
      if (found) {
        imageDebug(`using image from local store for image name ${formatAppcName(dep.imageName, labels)}`);
      } else {
        found = await this.fromName(dep.imageName, labels, 'new');
        if (dep.imageID && !found.id.startsWith(dep.imageID)) {
          fail(`dependency "${dep.imageName}" of image "${image.name}" was fetched with ID ${found.id}, but the manifest asks for ${dep.imageID}: the dependency changed; rebuild the image`);
        }
      }
      if (seen.has(found.id)) continue;
      seen.add(found.id);
      await this.fetchDependencies(found, seen);
    }
  }
}

/**
 * A 206 answer that is exactly the rest after `from` bytes: Content-Range
 * `bytes FROM-LAST/TOTAL` with LAST the final byte, and a Content-Length (if any) to match.
 */
function isRestOf(res: import('../image/http.js').HttpResponse, from: number): boolean {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec((res.header('content-range') ?? '').trim());
  if (!m) return false;
  const [first, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (first !== from || last !== total - 1 || last < first) return false;
  return res.contentLength === undefined || res.contentLength === last - first + 1;
}

/** Writes a download to `file` (at most `max` bytes, else `tooBig()`), for a deferred signature. */
async function stageDownload(input: Readable, file: string, max: number, tooBig: () => Error): Promise<void> {
  // Opened here, not by the stream: a stream's open is asynchronous and, when the limit
  // fails the pipeline first, would create the file after the caller removed it.
  const out = fs.createWriteStream(file, { fd: fs.openSync(file, 'wx', 0o600) });
  let total = 0;
  const { Transform } = await import('node:stream');
  const limit = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      cb(total > max ? tooBig() : null, chunk);
    },
  });
  const { pipeline: pipe } = await import('node:stream/promises');
  await pipe(input, limit, out);
}

/** The stored image for an IMAGE argument, fetched and rendered as the pull policy allows. */
export async function fetchImage(arg: string, opts: FetchOptions): Promise<ImageInfo> {
  return new Fetcher(opts).fetch(arg);
}
