/**
 * `docker://` images: resolve the reference at the registry, download what the store lacks,
 * and import the squashed conversion like any ACI.
 *   1. The store first, as the pull policy allows: a digest reference is content-addressed
 *      and never asked for again; a tag is reused under `new`, and under `update` when a
 *      HEAD of the manifest reports the digest recorded at the last fetch.
 *   2. The manifest (an index picks this host's platform), then the config: each read
 *      whole, size-capped and checked against its digest.
 *   3. The layers the layer cache lacks, a few at a time and the top one first, each hashed
 *      as it streams into this fetch's staging dir; the bytes count against --max-download-size.
 *   4. The conversion (convert.ts) streams into importAci, which hashes, stores and unpacks
 *      it; it starts on the top layer as soon as that one is complete. Only then do the new layers move into the layer cache; on any failure the
 *      staging dir goes, and nothing of the fetch is left in the store.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { GlobalOptions } from '../../cli/globals.js';
import type { FetchLimits } from '../limits.js';
import { DEFAULT_LIMITS, FetchLimitError, sizeLimitError, sizeLimits, type SizeLimit } from '../limits.js';
import type { HttpResponse } from '../http.js';
import type { ImageInfo, ImageStore, DockerSource } from '../../store/imagestore.js';
import { RktError, errorMessage, fail } from '../../util/errors.js';
import { info } from '../../util/log.js';
import { registryCredentials } from './auth.js';
import { buildAciManifest } from './appmanifest.js';
import { squashAndRender, type LayerFile } from './convert.js';
import type { RenderedSource } from '../../store/import.js';
import { checkDigest, digestOf, formatPlatform, hostPlatform, parseConfig, parseDocument, pickPlatform, type Descriptor } from './manifest.js';
import { MAX_DOCUMENT, RegistryClient } from './registry.js';
import { formatDockerRef, type DockerRef } from './reference.js';
import { LayerProgress } from './progress.js';

export interface DockerFetchOptions {
  insecureHttp: boolean;
  insecureTls: boolean;
  timeouts?: FetchLimits;
  pullPolicy: 'new' | 'update' | 'never';
  globals: GlobalOptions;
}

interface Downloads {
  /** Bottom first; `ready` settles when a downloaded layer is complete and checked. */
  files: LayerFile[];
  /** The layers this fetch downloads (they join the cache when the image is stored). */
  fetched: LayerFile[];
  /** Waits for the downloads; stops those still running if the fetch ended early. */
  finish(): Promise<void>;
}

/** Layers downloaded at once: enough to fill a link, few enough not to thrash a small disk. */
const PARALLEL_LAYERS = 3;

export async function fetchDockerImage(store: ImageStore, ref: DockerRef, opts: DockerFetchOptions): Promise<ImageInfo> {
  const shown = formatDockerRef(ref);
  try {
    return await new DockerFetch(store, ref, shown, opts).run();
  } catch (e) {
    const message = `cannot fetch image ${shown}: ${errorMessage(e)}`;
    throw e instanceof FetchLimitError ? new FetchLimitError(message) : new RktError(message);
  }
}

class DockerFetch {
  private readonly client: RegistryClient;

  constructor(private readonly store: ImageStore, private readonly ref: DockerRef, private readonly shown: string, private readonly opts: DockerFetchOptions) {
    const { systemConfig, localConfig, userConfig } = opts.globals;
    this.client = new RegistryClient(ref.registry, ref.repository, {
      insecureHttp: opts.insecureHttp,
      insecureTls: opts.insecureTls,
      timeouts: opts.timeouts,
      credentials: registryCredentials({ systemConfig, localConfig, userConfig }, ref.registry),
    });
  }

  /** The newest stored image fetched by this reference (or, for a digest, with that digest). */
  private stored(): ImageInfo | undefined {
    return this.store.dockerImages(this.shown)[0];
  }

  private reuse(image: ImageInfo, refreshed: boolean): ImageInfo {
    info(`using image from local store for ${this.shown}`);
    if (!refreshed) return image;
    const again = { ...image, source: { ...image.source, downloadTime: new Date().toISOString() } };
    this.store.writeInfo(again);
    return again;
  }

  async run(): Promise<ImageInfo> {
    const stored = this.stored();
    if (stored && (this.ref.digest || this.opts.pullPolicy !== 'update')) return this.reuse(stored, false);
    if (this.opts.pullPolicy === 'never') {
      fail(`it is not in the local store and --pull-policy=never forbids fetching it: fetch it first with "rkt fetch --insecure-options=image ${this.shown}"`);
    }
    const reference = this.ref.digest ?? this.ref.tag ?? 'latest';
    if (stored) {
      // A HEAD costs no manifest: the same digest means the same image.
      const digest = await this.client.manifestDigest(reference);
      if (digest && digest === stored.source?.docker?.digest) return this.reuse(stored, true);
    }
    info(`remote fetching from ${this.shown}`);

    const top = await this.client.manifest(reference);
    const algorithm = this.ref.digest?.split(':')[0] ?? 'sha256';
    const topDigest = this.ref.digest ?? digestOf(top.body, algorithm);
    if (this.ref.digest) checkDigest(top.body, this.ref.digest, `the manifest of ${this.ref.repository}@${this.ref.digest}`);
    let doc = parseDocument(top.body, top.contentType, `the manifest of ${this.ref.repository}:${reference}`);
    let manifestDigest = topDigest;
    if (doc.kind === 'index') {
      const pick = pickPlatform(doc.manifests, `the manifest list of ${this.ref.repository}:${reference}`);
      if (pick.size > MAX_DOCUMENT) fail(`the ${formatPlatform(pick.platform)} manifest is ${pick.size} bytes: refusing it (over ${MAX_DOCUMENT / 1024 / 1024} MiB)`);
      const what = `the ${formatPlatform(pick.platform)} manifest ${pick.digest}`;
      const inner = await this.client.manifest(pick.digest);
      checkDigest(inner.body, pick.digest, what);
      doc = parseDocument(inner.body, inner.contentType, what);
      if (doc.kind === 'index') fail(`${what} is an index inside an index: refusing it`);
      manifestDigest = pick.digest;
    }

    if (doc.config.size > MAX_DOCUMENT) fail(`its config is ${doc.config.size} bytes: refusing it (over ${MAX_DOCUMENT / 1024 / 1024} MiB)`);
    const configBody = await this.client.smallBlob(doc.config.digest, `the config ${doc.config.digest}`);
    checkDigest(configBody, doc.config.digest, `the config ${doc.config.digest}`);
    const config = parseConfig(configBody, `the config ${doc.config.digest}`);
    const host = hostPlatform();
    if ((config.os && config.os !== host.os) || (config.architecture && config.architecture !== host.architecture)) {
      fail(`it is built for ${formatPlatform(config)} only and this host is ${formatPlatform(host)}`);
    }

    const limits = sizeLimits(this.opts.globals.limits, this.store.dir);
    this.store.ensureLayout();
    this.store.removeStaleStaging();
    const stage = this.store.staging();
    fs.mkdirSync(stage, { mode: 0o700 });
    let downloads: Downloads | undefined;
    try {
      downloads = this.startLayers(doc.layers, stage, limits.download);
      const { files, fetched } = downloads;
      const source: DockerSource = { ref: this.shown, digest: topDigest, manifestDigest, layers: doc.layers.map((l) => l.digest) };
      const convertInfo = { ref: this.ref, config, configDigest: doc.config.digest, manifestDigest };
      const expanded = { bytes: limits.expanded.bytes, error: () => sizeLimitError(this.shown, limits.expanded, 'expanded') };
      // The conversion renders the tree itself; the import hashes and stores the ACI tar.
      const aci: RenderedSource = (render) => squashAndRender(files, (captured) => buildAciManifest(convertInfo, captured, this.shown), expanded, render);
      const { importAci } = await import('../../store/import.js');
      const image = await importAci(this.store, aci, {
        label: this.shown,
        source: { url: this.shown, downloadTime: new Date().toISOString(), docker: source },
        latest: this.ref.tag === 'latest',
        // The download limit was applied to the layers as served; the ACI is made here.
        limits: { ...(this.opts.globals.limits ?? DEFAULT_LIMITS), maxDownloadBytes: Number.MAX_SAFE_INTEGER },
      });
      await downloads.finish();
      this.cacheLayers(fetched);
      return image;
    } finally {
      // No download may still write into the staging dir when it goes.
      await downloads?.finish();
      fs.rmSync(stage, { recursive: true, force: true });
    }
  }

  /**
   * Every layer as a local file: from the cache, or downloaded into `stage`, top layer first
   * (the conversion reads the top first and starts as soon as that one is there). A failed
   * download stops the others and fails every layer still waited for.
   */
  private startLayers(layers: Descriptor[], stage: string, limit: SizeLimit): Downloads {
    const fileOf = (l: Descriptor): string => path.join(stage, l.digest.replace(':', '-'));
    const cached = new Map(layers.map((l) => [l.digest, this.cachedLayer(l)]));
    // Two entries for one digest download once.
    const missing = [...new Map(layers.filter((l) => !cached.get(l.digest)).map((l) => [l.digest, l])).values()];
    const declared = missing.reduce((n, l) => n + l.size, 0);
    if (declared > limit.bytes) throw sizeLimitError(this.shown, limit, 'download');
    if (missing.length < layers.length) info(`${layers.length - missing.length} of ${layers.length} layers from the local layer cache`);

    const waiting = new Map<string, { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void; settled: boolean }>();
    for (const l of missing) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      promise.catch(() => {}); // whoever waits for it gets the rejection; nobody may wait
      const entry = { promise, settled: false, resolve: () => { entry.settled = true; resolve(); }, reject: (e: Error) => { entry.settled = true; reject(e); } };
      waiting.set(l.digest, entry);
    }
    const counter = { bytes: 0 };
    const progress = new LayerProgress();
    const open = new Set<HttpResponse>();
    let failure: Error | undefined;
    const stop = (e: Error): void => {
      failure ??= e;
      for (const res of open) res.body?.destroy(); // the others stop at once
      for (const w of waiting.values()) if (!w.settled) w.reject(failure);
    };
    const queue = [...missing].reverse();
    const worker = async (): Promise<void> => {
      for (let l = queue.shift(); l && !failure; l = queue.shift()) {
        try {
          await this.download(l, fileOf(l), counter, limit, progress, open);
          waiting.get(l.digest)!.resolve();
        } catch (e) {
          stop(e instanceof Error ? e : new Error(String(e)));
        }
      }
    };
    const running = Promise.all(Array.from({ length: Math.min(PARALLEL_LAYERS, missing.length) }, worker)).then(() => progress.done());
    return {
      files: layers.map((l) => ({ digest: l.digest, file: cached.get(l.digest) ?? fileOf(l), ready: waiting.get(l.digest)?.promise })),
      fetched: missing.map((l) => ({ digest: l.digest, file: fileOf(l) })),
      finish: async () => {
        if (!failure && [...waiting.values()].some((w) => !w.settled)) stop(new RktError('the fetch was abandoned'));
        await running;
      },
    };
  }

  /** A cached layer root may use: written by root alone (group rkt may write the cache). */
  private cachedLayer(l: Descriptor): string | undefined {
    const file = this.store.layerPath(l.digest);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st?.isFile() || st.size !== l.size) return undefined;
    if (process.getuid?.() === 0 && (st.uid !== 0 || (st.mode & 0o022) !== 0)) return undefined;
    return file;
  }

  private async download(l: Descriptor, dest: string, counter: { bytes: number }, limit: SizeLimit, progress: LayerProgress, open: Set<HttpResponse>): Promise<void> {
    const what = `layer ${l.digest}`;
    const algorithm = l.digest.split(':')[0];
    if (algorithm !== 'sha256' && algorithm !== 'sha512') fail(`${what} has an unsupported digest algorithm`);
    const res = await this.client.blob(l.digest);
    open.add(res);
    const bar = progress.add(l.digest, l.size);
    const hash = crypto.createHash(algorithm);
    const fd = fs.openSync(dest, 'wx', 0o644);
    let n = 0;
    try {
      try {
        for await (const chunk of (res.body ?? []) as AsyncIterable<Buffer>) {
          n += chunk.length;
          counter.bytes += chunk.length;
          if (n > l.size) fail(`${what} is larger than the ${l.size} bytes the manifest gives it`);
          if (counter.bytes > limit.bytes) throw sizeLimitError(this.shown, limit, 'download');
          hash.update(chunk);
          for (let off = 0; off < chunk.length;) off += fs.writeSync(fd, chunk, off);
          bar.update(n);
        }
      } catch (e) {
        res.body?.destroy();
        if (e instanceof RktError || (e as NodeJS.ErrnoException).syscall) throw e;
        fail(`${what} is truncated: ${n} of ${l.size} bytes arrived (${errorMessage(e)})`);
      }
    } finally {
      fs.closeSync(fd);
      open.delete(res);
    }
    if (n < l.size) fail(`${what} is truncated: ${n} of ${l.size} bytes arrived`);
    const got = `${algorithm}:${hash.digest('hex')}`;
    if (got !== l.digest) fail(`${what} does not match its digest (got ${got}): the registry or something between sent other bytes`);
    bar.finish();
  }

  /** Verified layers join the cache once the image is stored; a failure here costs only the cache. */
  private cacheLayers(fetched: LayerFile[]): void {
    for (const l of fetched) {
      try {
        fs.renameSync(l.file, this.store.layerPath(l.digest));
      } catch {
        // not ours to write (group rkt), or the disk is full: the next fetch downloads it again
      }
    }
  }
}
