/**
 * Docker registries and images for the docker:// tests: OCI image layouts written here
 * (layers made with tar-stream), Debian's docker-registry started on 127.0.0.1 with a
 * config this file writes (plain HTTP, or TLS with htpasswd), and skopeo to push.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { BUSYBOX_ACI } from './rkt.js';

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  body?: string | Buffer;
  mode?: number;
  linkname?: string;
  uid?: number;
  gid?: number;
}

/** A gzipped (or, with `compression` zstd, zstd-compressed) layer tar of the entries, in order. */
export async function layer(entries: TarEntry[], compression: 'gzip' | 'zstd' = 'gzip'): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const gz = zlib.createGzip({ level: 1 });
  gz.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => { gz.on('end', resolve); gz.on('error', reject); });
  p.pipe(gz);
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, linkname: e.linkname, mtime: new Date(1e12) };
    if (type === 'file') p.entry(header, e.body ?? '');
    else p.entry(header);
  }
  p.finalize();
  await done;
  const gzipped = Buffer.concat(chunks);
  return compression === 'gzip' ? gzipped : execFileSync('zstd', ['-q', '-c'], { input: zlib.gunzipSync(gzipped), maxBuffer: 256 * 1024 * 1024 });
}

/** The digest of a layer's uncompressed tar (its diff ID), streamed through the tool for zstd (a bomb may be large). */
function diffId(l: Buffer): string {
  if (l[0] === 0x1f) return sha256(zlib.gunzipSync(l));
  const out = execFileSync('sh', ['-c', 'zstd -dcq | sha256sum'], { input: l, encoding: 'utf8' });
  return `sha256:${out.split(' ')[0]}`;
}

/** The busybox test image's rootfs as layer entries (names without "rootfs/"). */
export async function busyboxEntries(): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  const x = extract();
  x.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c) => { chunks.push(c as Buffer); });
    stream.on('end', () => {
      if (h.name.startsWith('rootfs/') && h.name !== 'rootfs/') {
        const type = h.type === 'directory' || h.type === 'symlink' || h.type === 'link' ? h.type : 'file';
        out.push({ name: h.name.slice('rootfs/'.length), type, mode: h.mode, linkname: h.linkname?.replace(/^rootfs\//, ''), body: Buffer.concat(chunks) });
      }
      next();
    });
  });
  const raw = fs.readFileSync(BUSYBOX_ACI);
  const tar = raw[0] === 0x1f ? zlib.gunzipSync(raw) : raw;
  await new Promise<void>((resolve, reject) => { x.on('finish', resolve); x.on('error', reject); x.end(tar); });
  return out;
}

export const sha256 = (b: Buffer | string): string => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

export interface ImageSpec {
  /** gzip or zstd layers (the media type follows the magic). */
  layers: Buffer[];
  /** The config's "config" object (Entrypoint, Cmd, Env, User, ...). */
  config: Record<string, unknown>;
  architecture?: string;
}

function putBlob(dir: string, body: Buffer | string): { digest: string; size: number } {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const digest = sha256(buf);
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'blobs', 'sha256', digest.slice(7)), buf);
  return { digest, size: buf.length };
}

/** Writes the image's blobs and manifest into an OCI layout; returns the manifest's descriptor. */
function putImage(dir: string, img: ImageSpec): { mediaType: string; digest: string; size: number; platform: { os: string; architecture: string } } {
  const architecture = img.architecture ?? 'amd64';
  const diffIds = img.layers.map(diffId);
  const config = putBlob(dir, JSON.stringify({
    created: '2024-05-01T10:20:30Z', architecture, os: 'linux', config: img.config,
    rootfs: { type: 'layers', diff_ids: diffIds },
  }));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: img.layers.map((l) => ({ mediaType: l[0] === 0x1f ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar+zstd', ...putBlob(dir, l) })),
  });
  return { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...putBlob(dir, manifest), platform: { os: 'linux', architecture } };
}

/** An OCI layout at `dir` holding one image (or, with several, an index of them) as `tag`. */
export function ociLayout(dir: string, tag: string, images: ImageSpec[]): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const descs = images.map((img) => putImage(dir, img));
  let top: { mediaType: string; digest: string; size: number };
  if (descs.length === 1) {
    top = descs[0];
  } else {
    const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: descs });
    top = { mediaType: 'application/vnd.oci.image.index.v1+json', ...putBlob(dir, index) };
  }
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
  return top.digest;
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface Registry {
  host: string;
  /** The access log: one line a request the registry answered. */
  log(): string;
  /** Blob GETs the registry served so far for `repo` (not HEADs). */
  blobGets(repo: string): number;
  /**
   * The log once every request made before the call is in it: the registry writes an access
   * line after it answered, so a client may exit before its last line is written (and a
   * spawnSync'd client's lines are read only when the event loop runs again). A marker
   * request is made and waited for.
   */
  settledLog(): Promise<string>;
  stop(): Promise<void>;
}

/** Debian's docker-registry on 127.0.0.1:PORT with its own storage under `dir`. */
export async function startRegistry(dir: string, opts: { tls?: { cert: string; key: string }; htpasswd?: string } = {}): Promise<Registry> {
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:', '  level: info', '  accesslog:', '    disabled: false',
    'storage:', `  filesystem:`, `    rootdirectory: ${path.join(dir, 'data')}`, '  delete:', '    enabled: true',
    'http:', `  addr: 127.0.0.1:${port}`, `  secret: test-${crypto.randomBytes(8).toString('hex')}`,
  ];
  if (opts.tls) lines.push('  tls:', `    certificate: ${opts.tls.cert}`, `    key: ${opts.tls.key}`);
  if (opts.htpasswd) {
    const file = path.join(dir, 'htpasswd');
    fs.writeFileSync(file, opts.htpasswd);
    lines.push('auth:', '  htpasswd:', '    realm: test-realm', `    path: ${file}`);
  }
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(config, `${lines.join('\n')}\n`);
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  // stdout is the access log (one line a request); stderr the registry's own log, which
  // names each request again. Two pipes are read in no set order, so only the access log
  // is the request log (a line of the other could come in late after a marker).
  let access = '';
  let out = '';
  child.stdout!.on('data', (d) => { access += d; out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const host = `127.0.0.1:${port}`;
  // Ready when it accepts a connection.
  const until = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null || Date.now() > until) throw new Error(`docker-registry did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    log: () => access,
    blobGets: (repo) => access.split('\n').filter((l) => l.includes(`"GET /v2/${repo}/blobs/`)).length,
    settledLog: async () => {
      const marker = `/v2/marker/m${crypto.randomBytes(6).toString('hex')}/manifests/x`;
      await new Promise<void>((resolve) => {
        const get = opts.tls ? https.get : http.get;
        get({ host: '127.0.0.1', port, path: marker, rejectUnauthorized: false }, (res) => { res.resume(); res.on('end', resolve); })
          .on('error', () => resolve());
      });
      const until = Date.now() + 10_000;
      while (!access.includes(marker) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      if (!access.includes(marker)) throw new Error('the registry did not log the marker request');
      return access;
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** skopeo copy of an OCI layout to the registry (all platforms of an index; TLS certificates are not checked). */
export function push(layout: string, tag: string, dest: string, opts: { creds?: string } = {}): void {
  const args = ['copy', '--quiet', '--all', '--dest-tls-verify=false'];
  if (opts.creds) args.push(`--dest-creds=${opts.creds}`);
  args.push(`oci:${layout}:${tag}`, `docker://${dest}`);
  const r = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr || r.error?.message}`);
}
