import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { decompressor, detectCompression, sniffAndDecompress, type Compression } from '../../../src/image/compression.js';
import { extractAci } from '../../../src/image/extract.js';
import { RktError } from '../../../src/util/errors.js';

let tmp: string;
let plain: Buffer;

beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-compression-'));
  const p = pack();
  p.entry({ name: 'manifest' }, '{"acKind":"ImageManifest"}');
  p.entry({ name: 'rootfs', type: 'directory' });
  // Incompressible data well past one pipe buffer, so streaming and backpressure are exercised.
  p.entry({ name: 'rootfs/blob' }, crypto.randomBytes(300 * 1024));
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  plain = Buffer.concat(chunks);
});

afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Compresses with the system tool (gzip, bzip2, xz or zstd). */
function compress(kind: Exclude<Compression, 'none'>, data: Buffer): Buffer {
  return execFileSync(kind, ['-c'], { input: data, maxBuffer: 64 * 1024 * 1024 });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Feeds `data` in small chunks, as a network download would. */
function trickle(data: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += 1000) chunks.push(data.subarray(i, i + 1000));
  return Readable.from(chunks);
}

describe('detectCompression', () => {
  test('each magic', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0x00]))).toBe('gzip');
    expect(detectCompression(Buffer.from('BZh91AY'))).toBe('bzip2');
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00]))).toBe('xz');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00]))).toBe('zstd');
    expect(detectCompression(plain)).toBe('none');
  });

  test('partial magic is not enough', () => {
    expect(detectCompression(Buffer.alloc(0))).toBe('none');
    expect(detectCompression(Buffer.from([0x1f]))).toBe('none');
    expect(detectCompression(Buffer.from('BZ'))).toBe('none');
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a]))).toBe('none');
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x01]))).toBe('none');
  });

  test('real tool output is recognised', () => {
    for (const kind of ['gzip', 'bzip2', 'xz', 'zstd'] as const) expect(detectCompression(compress(kind, plain))).toBe(kind);
  });
});

describe('sniffAndDecompress', () => {
  test.each(['gzip', 'bzip2', 'xz', 'zstd'] as const)('%s round trip', async (kind) => {
    const { kind: found, stream } = await sniffAndDecompress(trickle(compress(kind, plain)), { zstd: true });
    expect(found).toBe(kind);
    expect((await readAll(stream)).equals(plain)).toBe(true);
  });

  test('an uncompressed tar passes through with its first bytes intact', async () => {
    const { kind, stream } = await sniffAndDecompress(trickle(plain));
    expect(kind).toBe('none');
    expect((await readAll(stream)).equals(plain)).toBe(true);
  });

  test('input shorter than any magic is kept', async () => {
    for (const data of [Buffer.alloc(0), Buffer.from('abc')]) {
      const { kind, stream } = await sniffAndDecompress(Readable.from(data.length ? [data] : []));
      expect(kind).toBe('none');
      expect((await readAll(stream)).equals(data)).toBe(true);
    }
  });

  test('by magic, not by file name', async () => {
    const cases: Array<[string, Buffer, Compression]> = [
      ['image.aci.gz', compress('xz', plain), 'xz'],
      ['image.tar.xz', compress('gzip', plain), 'gzip'],
      ['image.tar.bz2', plain, 'none'],
      ['image.aci', compress('bzip2', plain), 'bzip2'],
    ];
    for (const [name, data, expected] of cases) {
      const file = path.join(tmp, name);
      fs.writeFileSync(file, data);
      const { kind, stream } = await sniffAndDecompress(fs.createReadStream(file));
      expect(kind).toBe(expected);
      expect((await readAll(stream)).equals(plain)).toBe(true);
    }
  });

  test('zstd only where asked for (Docker layers): an ACI in zstd is refused by name', async () => {
    await expect(sniffAndDecompress(trickle(compress('zstd', plain)))).rejects.toThrow('the image is zstd-compressed, which an ACI cannot be');
  });

  test('a zstd frame asking for a window over 128 MiB is refused, not given the memory', async () => {
    const big = execFileSync('zstd', ['-q', '-c', '--long=29'], { input: crypto.randomBytes(1024 * 1024), maxBuffer: 16 * 1024 * 1024 });
    const { stream } = await sniffAndDecompress(trickle(big), { zstd: true });
    await expect(readAll(stream)).rejects.toThrow(/cannot decompress zstd image: the data is corrupt or truncated \(.*(memory|Window size)/);
  });

  test('a zstd bomb is decompressed only as far as it is read (the tool stalls on the pipe and is killed)', async () => {
    // 4 GiB of zeros in a few hundred KiB; reading 8 MiB of it and stopping must end the tool.
    const bomb = execFileSync('sh', ['-c', 'head -c 4294967296 /dev/zero | zstd -q -c -1'], { maxBuffer: 16 * 1024 * 1024 });
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const { stream } = await sniffAndDecompress(Readable.from([bomb]), { zstd: true });
    let got = 0;
    for await (const c of stream) {
      got += (c as Buffer).length;
      if (got >= 8 * 1024 * 1024) break; // leaves the loop: the stream is destroyed
    }
    expect(got).toBeLessThan(64 * 1024 * 1024);
    expect(stream.destroyed).toBe(true);
  });

  test.each(['gzip', 'bzip2', 'xz', 'zstd'] as const)('truncated %s data is an error, never a short stream', async (kind) => {
    const data = compress(kind, plain);
    const { stream } = await sniffAndDecompress(trickle(data.subarray(0, Math.floor(data.length / 2))), { zstd: true });
    await expect(readAll(stream)).rejects.toThrow(`cannot decompress ${kind} image: the data is corrupt or truncated`);
  });

  test.each(['gzip', 'bzip2', 'xz', 'zstd'] as const)('corrupt %s data is an error', async (kind) => {
    const data = Buffer.from(compress(kind, plain));
    for (let i = 64; i < data.length - 64; i += 997) data[i] ^= 0x55;
    const { stream } = await sniffAndDecompress(trickle(data), { zstd: true });
    const err = await readAll(stream).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RktError);
    expect((err as Error).message).toMatch(new RegExp(`^cannot decompress ${kind} image: the data is corrupt or truncated \\(.+\\)$`));
  });

  test('an error of the input reaches the decompressed stream', async () => {
    const input = new PassThrough();
    input.write(compress('gzip', plain).subarray(0, 100));
    const { stream } = await sniffAndDecompress(input);
    const read = readAll(stream);
    input.destroy(new Error('connection reset'));
    await expect(read).rejects.toThrow();
  });

  test('a compressed ACI extracts end to end, and a corrupt one fails extraction with the decompressor error', async () => {
    const { stream } = await sniffAndDecompress(trickle(compress('xz', plain)));
    const r = await extractAci(stream, path.join(tmp, 'ok'), { asRoot: false });
    expect(r.manifest.toString()).toBe('{"acKind":"ImageManifest"}');
    expect(fs.statSync(path.join(tmp, 'ok/rootfs/blob')).size).toBe(300 * 1024);

    const data = compress('xz', plain);
    const cut = await sniffAndDecompress(trickle(data.subarray(0, data.length - 100)));
    await expect(extractAci(cut.stream, path.join(tmp, 'bad'), { asRoot: false }))
      .rejects.toThrow('cannot decompress xz image: the data is corrupt or truncated');
  });
});

describe('decompressor', () => {
  test("'none' is a pass-through", async () => {
    const d = decompressor('none');
    d.end(plain);
    expect((await readAll(d)).equals(plain)).toBe(true);
  });

  test.each([['xz', 'xz-utils'], ['bzip2', 'bzip2'], ['zstd', 'zstd']] as const)('a missing %s tool says which package to install', async (kind, pkg) => {
    const oldPath = process.env.PATH;
    process.env.PATH = path.join(tmp, 'empty-bin');
    let d;
    try {
      d = decompressor(kind);
    } finally {
      process.env.PATH = oldPath;
    }
    d.end(compress(kind, plain));
    await expect(readAll(d)).rejects.toThrow(`cannot decompress ${kind} image: install ${pkg}`);
  });
});

describe('sniffAndDecompress on a source destroyed without an error', () => {
  test('rejects instead of waiting forever', async () => {
    const { Readable } = await import('node:stream');
    const { sniffAndDecompress } = await import('../../../src/image/compression.js');
    const src = new Readable({ read() { /* never produces */ } });
    const p = sniffAndDecompress(src);
    src.destroy();
    await expect(p).rejects.toThrow(/closed before/);
  });
});
