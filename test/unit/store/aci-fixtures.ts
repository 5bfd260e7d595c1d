/** Test ACIs, keys, trust stores and a 127.0.0.1 HTTP server for the image store tests. */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import * as openpgp from 'openpgp';
import { pack } from 'tar-stream';
import type { GlobalOptions, InsecureOption } from '../../../src/cli/globals.js';

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `rkt-${tag}-`));
}

export interface Entry {
  path: string;
  type?: 'file' | 'directory' | 'symlink';
  content?: string | Buffer;
  mode?: number;
  linkname?: string;
}

export interface ManifestOptions {
  version?: string;
  labels?: Record<string, string>;
  dependencies?: Array<{ imageName: string; imageID?: string; labels?: Array<{ name: string; value: string }> }>;
  pathWhitelist?: string[];
}

export function manifestFor(name: string, opts: ManifestOptions = {}): Record<string, unknown> {
  const labels = { ...(opts.version === '' ? {} : { version: opts.version ?? '1.0.0' }), os: 'linux', arch: 'amd64', ...opts.labels };
  return {
    acKind: 'ImageManifest',
    acVersion: '0.8.11',
    name,
    labels: Object.entries(labels).map(([n, value]) => ({ name: n, value })),
    app: { exec: ['/bin/app'], user: '0', group: '0' },
    ...(opts.dependencies ? { dependencies: opts.dependencies } : {}),
    ...(opts.pathWhitelist ? { pathWhitelist: opts.pathWhitelist } : {}),
  };
}

const MTIME = new Date('2020-01-01T00:00:00Z');

/** An uncompressed ACI: manifest, rootfs/, then the entries under rootfs/. */
export async function buildTar(manifest: Record<string, unknown> | string, entries: Entry[] = [{ path: 'hello.txt', content: 'hello\n' }]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((resolve, reject) => { p.on('end', resolve); p.on('error', reject); });
  const text = typeof manifest === 'string' ? manifest : JSON.stringify(manifest);
  p.entry({ name: 'manifest', mode: 0o644, mtime: MTIME }, text);
  p.entry({ name: 'rootfs', type: 'directory', mode: 0o755, mtime: MTIME });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: `rootfs/${e.path}`, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: MTIME, linkname: e.linkname };
    if (type === 'file') p.entry(header, e.content ?? '');
    else p.entry(header);
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export type Kind = 'none' | 'gzip' | 'bzip2' | 'xz';

export function compress(tar: Buffer, kind: Kind): Buffer {
  switch (kind) {
    case 'none': return tar;
    case 'gzip': return zlib.gzipSync(tar);
    case 'bzip2': return execFileSync('bzip2', ['-c'], { input: tar });
    case 'xz': return execFileSync('xz', ['-c'], { input: tar });
  }
}

export function idOf(tar: Buffer): string {
  return `sha512-${crypto.createHash('sha512').update(tar).digest('hex')}`;
}

export interface Key { privateKey: openpgp.PrivateKey; armored: string; fingerprint: string }

export async function makeKey(name: string): Promise<Key> {
  const { privateKey } = await openpgp.generateKey({ type: 'curve25519', userIDs: [{ name, email: 'signer@example.com' }], format: 'object' });
  return { privateKey, armored: privateKey.toPublic().armor(), fingerprint: privateKey.getFingerprint().toLowerCase() };
}

export async function sign(key: Key, data: Buffer): Promise<Buffer> {
  const message = await openpgp.createMessage({ binary: new Uint8Array(data) });
  return Buffer.from(await openpgp.sign({ message, signingKeys: key.privateKey, detached: true }) as string);
}

/** Trusts `key` in a config dir, for a name prefix or (prefix "root") for every image. */
export function trustKey(configDir: string, prefix: string, key: Key): void {
  const dir = prefix === 'root'
    ? path.join(configDir, 'trustedkeys', 'root.d')
    : path.join(configDir, 'trustedkeys', 'prefix.d', prefix);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, key.fingerprint), key.armored);
}

/** Global options for a test root: data in root/data, trust in root/etc and root/usr. */
export function globalsFor(root: string, insecure: InsecureOption[] = []): GlobalOptions {
  return {
    dir: path.join(root, 'data'),
    localConfig: path.join(root, 'etc'),
    systemConfig: path.join(root, 'usr'),
    userConfig: undefined,
    insecure: new Set(insecure),
    debug: false,
    trustKeysFromHttps: false,
  };
}

/** Writes `file` (and `file.asc` when a key is given). */
export async function writeAci(file: string, aci: Buffer, key?: Key): Promise<string> {
  fs.writeFileSync(file, aci);
  if (key) fs.writeFileSync(`${file}.asc`, await sign(key, aci));
  return file;
}

/** `first`: statuses answered (with an empty body) to the first requests, one each, before the route itself. */
export interface Route { body: Buffer | string; headers?: Record<string, string>; status?: number; first?: number[] }

/** A 127.0.0.1 server for a table of paths; answers If-None-Match with 304 when the ETag matches. */
export class TestServer {
  readonly routes = new Map<string, Route>();
  readonly requests: Array<{ path: string; headers: http.IncomingHttpHeaders }> = [];
  private server = http.createServer((req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    this.requests.push({ path: req.url ?? '/', headers: req.headers });
    const route = this.routes.get(p);
    if (!route) return void res.writeHead(404).end('not found');
    const early = route.first?.shift();
    if (early !== undefined) return void res.writeHead(early).end();
    const etag = route.headers?.ETag;
    if (etag && req.headers['if-none-match'] === etag) return void res.writeHead(304, route.headers).end();
    res.writeHead(route.status ?? 200, route.headers).end(route.body);
  });
  base = '';
  port = 0;

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    this.base = `http://127.0.0.1:${this.port}`;
    return this;
  }

  hits(p: string): number {
    return this.requests.filter((r) => r.path.split('?')[0] === p).length;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Collects what is written to stdout and stderr while `fn` runs. */
export async function capture<T>(fn: () => Promise<T>): Promise<{ result?: T; error?: unknown; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string | Uint8Array) => { stdout += c.toString(); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => { stderr += c.toString(); return true; }) as typeof process.stderr.write;
  try {
    return { result: await fn(), stdout, stderr };
  } catch (error) {
    return { error, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}
