import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { extractAci, type ExtractOptions } from '../../../src/image/extract.js';
import { RktError } from '../../../src/util/errors.js';

type Entry = Parameters<ReturnType<typeof pack>['entry']>[0];

const isRoot = process.getuid?.() === 0;
const rootTest = isRoot || process.env.CI === 'true' ? test : test.skip; // under CI, not being root fails
const MTIME = new Date('2016-03-04T05:06:07Z');

let tmp: string;
let target: string;
/** A directory beside the target that no archive may touch. */
let sentinel: string;
let before: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-extract-'));
  target = path.join(tmp, 'target');
  sentinel = path.join(tmp, 'sentinel');
  fs.mkdirSync(path.join(sentinel, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(sentinel, 'victim'), 'original');
  fs.chmodSync(path.join(sentinel, 'victim'), 0o600);
  fs.chmodSync(sentinel, 0o700);
  fs.utimesSync(sentinel, MTIME, MTIME);
  before = snapshot(tmp);
});

afterEach(() => {
  makeWritable(tmp);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Everything beside the target: names, types, modes, sizes, mtimes and contents
 *  (the temp dir's own mtime changes whenever the target is made). */
function snapshot(dir: string): string {
  const out: string[] = [fs.readdirSync(dir).filter((n) => n !== 'target').sort().join(' ')];
  const walk = (p: string, rel: string): void => {
    const st = fs.lstatSync(p);
    const content = st.isFile() ? fs.readFileSync(p, 'utf8') : st.isSymbolicLink() ? fs.readlinkSync(p) : '';
    out.push(`${rel} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${st.uid} ${content}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n), `${rel}/${n}`);
  };
  walk(path.join(dir, 'sentinel'), 'sentinel');
  return out.join('\n');
}

function makeWritable(dir: string): void {
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) return;
  fs.chmodSync(dir, 0o755);
  for (const n of fs.readdirSync(dir)) makeWritable(path.join(dir, n));
}

async function tarOf(entries: Array<[Entry, (string | Buffer)?]>): Promise<Buffer> {
  const p = pack();
  for (const [header, body] of entries) {
    if (body === undefined) p.entry({ mtime: MTIME, ...header });
    else p.entry({ mtime: MTIME, ...header }, body);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A minimal valid ACI plus `extra` entries. */
function aci(...extra: Array<[Entry, (string | Buffer)?]>): Promise<Buffer> {
  return tarOf([
    [{ name: 'manifest' }, '{"acKind":"ImageManifest"}'],
    [{ name: 'rootfs', type: 'directory', mode: 0o755 }],
    ...extra,
  ]);
}

function extract(buf: Buffer, opts: Partial<ExtractOptions> = {}, into = target) {
  return extractAci(Readable.from([buf]), into, { asRoot: false, ...opts });
}

/** The archive is refused with `message`, and nothing outside the target changed.
 *  The target is removed afterwards, as a caller drops its staging dir. */
async function expectRejected(buf: Buffer, message: string | RegExp, opts: Partial<ExtractOptions> = {}): Promise<void> {
  const err = await extract(buf, opts).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RktError);
  expect((err as Error).message).toMatch(message);
  expect((err as Error).message).not.toContain('\n');
  expect(snapshot(tmp)).toBe(before);
  fs.rmSync(target, { recursive: true, force: true });
}

// Raw tar blocks, for headers tar-stream's pack() would never write.
function rawHeader(name: string, size: number, typeflag = '0', linkname = ''): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100);
  b.write('0000644\0', 100);
  b.write('0000000\0', 108);
  b.write('0000000\0', 116);
  b.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  b.write(`${Math.floor(MTIME.getTime() / 1000).toString(8).padStart(11, '0')}\0`, 136);
  b.write(typeflag, 156);
  b.write(linkname, 157, 100);
  b.write('ustar\0', 257);
  b.write('00', 263);
  return checksummed(b);
}

function checksummed(b: Buffer): Buffer {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return b;
}

function data(content: string): Buffer {
  const b = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  b.write(content);
  return b;
}

/** One PAX extended-header record: "<length> <key>=<value>\\n", the length counting itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let n = body.length;
  while (String(n).length + body.length !== n) n++;
  return `${n}${body}`;
}

function rawTar(...blocks: Buffer[]): Buffer {
  const manifest = '{"acKind":"ImageManifest"}';
  return Buffer.concat([rawHeader('manifest', manifest.length), data(manifest), ...blocks, Buffer.alloc(1024)]);
}

/** Offset of the header block of entry `name` in a ustar archive. */
function headerOffset(buf: Buffer, name: string): number {
  for (let off = 0; off < buf.length; off += 512) {
    if (buf.toString('utf8', off, off + 100).replace(/\0.*$/s, '') === name) return off;
  }
  throw new Error(`no header ${name}`);
}

describe('attacks (each must be refused without touching anything outside the target)', () => {
  test('absolute path', async () => {
    await expectRejected(await aci([{ name: `${sentinel}/pwned` }, 'x']), /^bad ACI: entry ".*\/pwned" has an absolute path$/);
  });

  test('".." traversal', async () => {
    await expectRejected(await aci([{ name: 'rootfs/../../sentinel/pwned' }, 'x']),
      'bad ACI: entry "rootfs/../../sentinel/pwned" has a ".." component');
  });

  test('symlink, then a file written through it (same name)', async () => {
    const buf = await aci(
      [{ name: 'rootfs/f', type: 'symlink', linkname: path.join(sentinel, 'victim') }],
      [{ name: 'rootfs/f' }, 'pwned'],
    );
    await expectRejected(buf, 'bad ACI: duplicate entry "rootfs/f"');
  });

  test('symlink to a dir, then a file written through it', async () => {
    const buf = await aci(
      [{ name: 'rootfs/d', type: 'symlink', linkname: sentinel }],
      [{ name: 'rootfs/d/pwned' }, 'x'],
    );
    await expectRejected(buf, 'bad ACI: entry "rootfs/d/pwned" has a symlink in its path ("rootfs/d")');
  });

  test('symlinked parent dir deeper in the chain (relative link)', async () => {
    const buf = await aci(
      [{ name: 'rootfs/x', type: 'directory' }],
      [{ name: 'rootfs/x/up', type: 'symlink', linkname: '../../../sentinel' }],
      [{ name: 'rootfs/x/up/sub/pwned' }, 'x'],
    );
    await expectRejected(buf, 'has a symlink in its path ("rootfs/x/up")');
  });

  test('a symlink already in the target is not written through', async () => {
    const plant = (): void => {
      fs.mkdirSync(path.join(target, 'rootfs'), { recursive: true });
      fs.symlinkSync(path.join(sentinel, 'victim'), path.join(target, 'rootfs/f'));
      fs.symlinkSync(sentinel, path.join(target, 'rootfs/d'));
    };
    plant();
    await expectRejected(await tarOf([[{ name: 'rootfs/f' }, 'pwned']]), 'bad ACI: entry "rootfs/f" clashes with an existing path ("rootfs/f")');
    plant();
    await expectRejected(await aci([{ name: 'rootfs/d/pwned' }, 'x']), 'has a symlink in its path ("rootfs/d")');
    plant();
    await expectRejected(await aci([{ name: 'rootfs/d/pwned' }, 'x']), 'has a symlink in its path ("rootfs/d")', { overwrite: true });
  });

  test('overwrite: a directory replaced by a symlink is no longer trusted', async () => {
    // rootfs/a is first a real directory (implied by rootfs/a/f), then replaced by a symlink.
    const write = await aci(
      [{ name: 'rootfs/a/f' }, 'x'],
      [{ name: 'rootfs/a', type: 'symlink', linkname: sentinel }],
      [{ name: 'rootfs/a/pwned' }, 'x'],
    );
    await expectRejected(write, 'bad ACI: entry "rootfs/a/pwned" has a symlink in its path ("rootfs/a")', { overwrite: true });
    // The implied directory's final chmod must not land on the symlink's target either.
    await extract(await aci([{ name: 'rootfs/a/f' }, 'x'], [{ name: 'rootfs/a', type: 'symlink', linkname: sentinel }]),
      { overwrite: true });
    expect(fs.readlinkSync(path.join(target, 'rootfs/a'))).toBe(sentinel);
    expect(snapshot(tmp)).toBe(before);
  });

  test('hard link to outside rootfs', async () => {
    for (const linkname of ['../../sentinel/victim', path.join(sentinel, 'victim'), 'manifest', 'rootfs/../manifest', 'rootfs']) {
      await expectRejected(await aci([{ name: 'rootfs/h', type: 'link', linkname }]),
        `bad ACI: hard link "rootfs/h" points outside rootfs/ (${JSON.stringify(linkname)})`);
    }
  });

  test('hard link to an absent file, a directory, or a file behind a replaced directory', async () => {
    await expectRejected(await aci([{ name: 'rootfs/h', type: 'link', linkname: 'rootfs/nothere' }]),
      'bad ACI: hard link "rootfs/h" points to "rootfs/nothere", which is not a file extracted earlier from this archive');
    await expectRejected(await aci([{ name: 'rootfs/d', type: 'directory' }], [{ name: 'rootfs/h', type: 'link', linkname: 'rootfs/d' }]),
      'points to "rootfs/d", which is not a file');
    fs.writeFileSync(path.join(sentinel, 'f'), 'host file');
    before = snapshot(tmp);
    const behind = await aci(
      [{ name: 'rootfs/d/f' }, 'x'],
      [{ name: 'rootfs/d', type: 'symlink', linkname: sentinel }],
      [{ name: 'rootfs/h', type: 'link', linkname: 'rootfs/d/f' }],
    );
    await expectRejected(behind, 'points to "rootfs/d/f", which is not a file', { overwrite: true });
    expect(fs.existsSync(path.join(target, 'rootfs/h'))).toBe(false);
  });

  test('entry outside rootfs/', async () => {
    await expectRejected(await aci([{ name: 'etc/passwd' }, 'x']), 'bad ACI: entry "etc/passwd" is outside rootfs/');
    await expectRejected(await aci([{ name: 'evil' }, 'x']), 'bad ACI: entry "evil" is outside rootfs/');
    await expectRejected(await aci([{ name: 'rootfs', type: 'symlink', linkname: sentinel }]), 'duplicate entry "rootfs"');
    await expectRejected(await tarOf([[{ name: 'manifest' }, '{}'], [{ name: 'rootfs', type: 'symlink', linkname: sentinel }]]),
      'bad ACI: entry "rootfs" must be a directory');
  });

  test('duplicate entry', async () => {
    await expectRejected(await aci([{ name: 'rootfs/a' }, '1'], [{ name: 'rootfs/a' }, '2']), 'bad ACI: duplicate entry "rootfs/a"');
    await expectRejected(await aci([{ name: 'rootfs/a' }, '1'], [{ name: './rootfs//a' }, '2']), 'bad ACI: duplicate entry "./rootfs//a"');
    await expectRejected(await aci([{ name: 'manifest' }, '{}']), 'bad ACI: duplicate entry "manifest"');
  });

  test('device node as non-root', async () => {
    for (const type of ['character-device', 'block-device', 'fifo'] as const) {
      await expectRejected(await aci([{ name: 'rootfs/dev/x', type, devmajor: 1, devminor: 3 }]),
        'bad ACI: entry "rootfs/dev/x" is a device node or fifo: extract the image as root');
    }
  });

  test('truncated archive', async () => {
    const buf = await aci([{ name: 'rootfs/big' }, Buffer.alloc(5000, 1)]);
    const cut = headerOffset(buf, 'rootfs/big') + 512 + 2000;
    await expectRejected(buf.subarray(0, cut), 'bad ACI: the archive is truncated in entry "rootfs/big"');
    await expectRejected(buf.subarray(0, headerOffset(buf, 'rootfs/big') + 100), 'bad ACI: the archive is truncated after entry "rootfs"');
  });

  test('corrupt header checksum', async () => {
    const buf = await aci([{ name: 'rootfs/a' }, 'x']);
    buf[headerOffset(buf, 'rootfs/a') + 7] ^= 0x01; // name now "rootfs/`"
    await expectRejected(buf, 'bad ACI: corrupt tar header (checksum mismatch) after entry "rootfs"');
    await expectRejected(Buffer.alloc(2048, 0x41), 'bad ACI: corrupt tar header (checksum mismatch) at the start of the archive');
  });

  test('huge size field (base-256, beyond safe integers)', async () => {
    const h = rawHeader('rootfs/huge', 0);
    h.fill(0, 124, 136);
    h[124] = 0x80;
    h[128] = 0x40; // 2^62
    await expectRejected(rawTar(checksummed(h), data('x')), 'bad ACI: entry "rootfs/huge" has an invalid size');
    // A plausible but absent 8 GiB body is a truncated archive.
    await expectRejected(rawTar(rawHeader('rootfs/big', 0o77777777777), data('x')), 'truncated in entry "rootfs/big"');
  });

  test('negative or non-numeric size field', async () => {
    const negative = rawHeader('rootfs/neg', 0);
    negative.fill(0xff, 124, 136);
    negative[135] = 0xfe; // -1 in base-256 two's complement
    await expectRejected(rawTar(checksummed(negative)), 'bad ACI: tar header with an invalid size after entry "manifest"');
    const garbage = rawHeader('rootfs/nan', 0);
    garbage.write('zzzzzzzzzzz\0', 124);
    await expectRejected(rawTar(checksummed(garbage)), 'bad ACI: tar header with an invalid size after entry "manifest"');
    const paxSize = paxRecord('size', '99999999999999999999');
    await expectRejected(rawTar(rawHeader('PaxHeader', paxSize.length, 'x'), data(paxSize), rawHeader('rootfs/p', 1), data('x')),
      'bad ACI: entry "rootfs/p" has an invalid size');
  });

  test('long names (PAX and GNU) still get the ".." check', async () => {
    const prefixed = `rootfs/${'a'.repeat(90)}/../../../sentinel/pwned`; // fits the ustar prefix field
    const ustar = await aci([{ name: prefixed }, 'x']);
    expect(ustar[headerOffset(ustar, 'rootfs') + 512 + 345]).not.toBe(0);
    await expectRejected(ustar, `bad ACI: entry "${prefixed}" has a ".." component`);
    const long = `rootfs/${'a'.repeat(160)}/../../../sentinel/pwned`;
    const pax = await aci([{ name: long }, 'x']);
    expect(String.fromCharCode(pax[headerOffset(pax, 'rootfs') + 512 + 156] as number)).toBe('x'); // a PAX header was used
    await expectRejected(pax, `bad ACI: entry "${long}" has a ".." component`);
    const gnu = rawTar(rawHeader('././@LongLink', long.length + 1, 'L'), data(`${long}\0`), rawHeader('rootfs/short', 1), data('x'));
    await expectRejected(gnu, `bad ACI: entry "${long}" has a ".." component`);
    const paxLink = `rootfs/${'b'.repeat(160)}/../../../../sentinel/victim`;
    await expectRejected(await aci([{ name: 'rootfs/h', type: 'link', linkname: paxLink }]), 'points outside rootfs/');
  });

  test('missing manifest, or a manifest that is not a file', async () => {
    await expectRejected(await tarOf([[{ name: 'rootfs', type: 'directory' }], [{ name: 'rootfs/a' }, 'x']]), 'bad ACI: no manifest');
    await expectRejected(await tarOf([[{ name: 'manifest', type: 'symlink', linkname: path.join(sentinel, 'victim') }]]),
      'bad ACI: entry "manifest" is not a regular file');
  });

  test('unsupported entry types and NUL bytes in names', async () => {
    await expectRejected(rawTar(rawHeader('rootfs/sparse', 0, 'S')), 'bad ACI: entry "rootfs/sparse" has an unsupported tar entry type');
    const nul = paxRecord('path', 'rootfs/a\0/x');
    await expectRejected(rawTar(rawHeader('PaxHeader', nul.length, 'x'), data(nul), rawHeader('rootfs/a', 0)),
      'has a NUL byte in its name');
  });
});

describe('preservation', () => {
  test('modes, including implicit parents, read-only dirs and umask', async () => {
    const old = process.umask(0o077);
    try {
      await extract(await aci(
        [{ name: 'rootfs/bin/tool', mode: 0o751 }, '#!/bin/sh'],
        [{ name: 'rootfs/etc/', type: 'directory', mode: 0o750 }],
        [{ name: 'rootfs/etc/conf', mode: 0o640 }, 'c'],
        [{ name: 'rootfs/ro', type: 'directory', mode: 0o555 }],
        [{ name: 'rootfs/ro/f', mode: 0o444 }, 'r'],
        [{ name: 'rootfs/tmp', type: 'directory', mode: 0o1777 }],
        [{ name: 'rootfs/empty', mode: 0o600 }, ''],
      ));
    } finally {
      process.umask(old);
    }
    const mode = (p: string): string => (fs.statSync(path.join(target, p)).mode & 0o7777).toString(8);
    expect(mode('rootfs/bin')).toBe('755'); // implied by rootfs/bin/tool
    expect(mode('rootfs/bin/tool')).toBe('751');
    expect(mode('rootfs/etc')).toBe('750');
    expect(mode('rootfs/etc/conf')).toBe('640');
    expect(mode('rootfs/ro')).toBe('555');
    expect(mode('rootfs/ro/f')).toBe('444');
    expect(mode('rootfs/tmp')).toBe('1777');
    expect(mode('manifest')).toBe('644');
    expect(fs.readFileSync(path.join(target, 'rootfs/ro/f'), 'utf8')).toBe('r');
    expect(mode('rootfs/empty')).toBe('600');
    expect(fs.statSync(path.join(target, 'rootfs/empty')).size).toBe(0);
  });

  test('setuid, setgid and sticky bits survive chown', async () => {
    await extract(await aci(
      [{ name: 'rootfs/su', mode: 0o4755, uid: 1000, gid: 1000 }, 'x'],
      [{ name: 'rootfs/sg', mode: 0o2711, uid: 1000, gid: 50 }, 'x'],
      [{ name: 'rootfs/st', type: 'directory', mode: 0o1777, uid: 1000 }],
    ), { asRoot: isRoot });
    expect(fs.statSync(path.join(target, 'rootfs/su')).mode & 0o7777).toBe(0o4755);
    if (isRoot) expect(fs.statSync(path.join(target, 'rootfs/sg')).mode & 0o7777).toBe(0o2711);
    expect(fs.statSync(path.join(target, 'rootfs/st')).mode & 0o7777).toBe(0o1777);
  });

  rootTest('owners are the archive\'s below a setgid parent of another group (the data dir\'s rkt group)', async () => {
    const parent = path.join(tmp, 'setgid');
    fs.mkdirSync(parent);
    fs.chownSync(parent, 0, 4242);
    fs.chmodSync(parent, 0o2770);
    const into = path.join(parent, 'target');
    await extract(await aci(
      [{ name: 'rootfs/bin', type: 'directory', uid: 0, gid: 0 }],
      [{ name: 'rootfs/bin/busybox', mode: 0o755, uid: 0, gid: 0 }, 'x'],
      [{ name: 'rootfs/bin/[', type: 'symlink', linkname: 'busybox', uid: 0, gid: 0 }],
    ), { asRoot: true }, into);
    for (const p of ['rootfs/bin', 'rootfs/bin/busybox', 'rootfs/bin/[']) expect([p, fs.lstatSync(path.join(into, p)).gid]).toEqual([p, 0]);
  });

  rootTest('owners (as root)', async () => {
    await extract(await aci(
      [{ name: 'rootfs/d', type: 'directory', uid: 1234, gid: 5678 }],
      [{ name: 'rootfs/d/f', uid: 4321, gid: 8765 }, 'x'],
      [{ name: 'rootfs/l', type: 'symlink', linkname: 'd/f', uid: 42, gid: 43 }],
    ), { asRoot: true });
    const owner = (p: string): [number, number] => {
      const st = fs.lstatSync(path.join(target, p));
      return [st.uid, st.gid];
    };
    expect(owner('rootfs/d')).toEqual([1234, 5678]);
    expect(owner('rootfs/d/f')).toEqual([4321, 8765]);
    expect(owner('rootfs/l')).toEqual([42, 43]);
  });

  test('owners are not applied without asRoot', async () => {
    await extract(await aci([{ name: 'rootfs/f', uid: 1234, gid: 5678 }, 'x']));
    expect(fs.statSync(path.join(target, 'rootfs/f')).uid).toBe(process.getuid?.());
  });

  test('PAX uid, gid and mtime records win over the ustar fields', async () => {
    const pax = paxRecord('uid', '3000000') + paxRecord('gid', '3000001') + paxRecord('mtime', '1500000000.5');
    await extract(rawTar(rawHeader('PaxHeader', pax.length, 'x'), data(pax), rawHeader('rootfs/f', 1), data('x')), { asRoot: isRoot });
    const st = fs.statSync(path.join(target, 'rootfs/f'));
    expect(st.mtimeMs).toBe(1500000000500);
    if (isRoot) expect([st.uid, st.gid]).toEqual([3000000, 3000001]);
  });

  test('mtimes of files, directories (after their contents) and symlinks', async () => {
    const t1 = new Date('2001-01-01T00:00:00Z');
    const t2 = new Date('2002-02-02T00:00:00Z');
    const t3 = new Date('2003-03-03T00:00:00Z');
    await extract(await aci(
      [{ name: 'rootfs/d', type: 'directory', mtime: t1 }],
      [{ name: 'rootfs/d/f', mtime: t2 }, 'x'],
      [{ name: 'rootfs/d/l', type: 'symlink', linkname: '/nowhere', mtime: t3 }],
    ));
    expect(fs.statSync(path.join(target, 'rootfs/d')).mtime).toEqual(t1);
    expect(fs.statSync(path.join(target, 'rootfs/d/f')).mtime).toEqual(t2);
    expect(fs.lstatSync(path.join(target, 'rootfs/d/l')).mtime).toEqual(t3);
  });

  test('symlinks keep their target text and are never followed', async () => {
    await extract(await aci(
      [{ name: 'rootfs/abs', type: 'symlink', linkname: path.join(sentinel, 'victim') }],
      [{ name: 'rootfs/rel', type: 'symlink', linkname: '../../../sentinel' }],
      [{ name: 'rootfs/dangling', type: 'symlink', linkname: 'no/such/file' }],
    ));
    expect(fs.readlinkSync(path.join(target, 'rootfs/abs'))).toBe(path.join(sentinel, 'victim'));
    expect(fs.readlinkSync(path.join(target, 'rootfs/rel'))).toBe('../../../sentinel');
    expect(fs.readlinkSync(path.join(target, 'rootfs/dangling'))).toBe('no/such/file');
    expect(snapshot(tmp)).toBe(before);
  });

  test('hard links inside rootfs share the inode', async () => {
    const r = await extract(await aci(
      [{ name: 'rootfs/bin/busybox', mode: 0o755 }, 'BB'],
      [{ name: 'rootfs/bin/sh', type: 'link', linkname: 'rootfs/bin/busybox' }],
      [{ name: 'rootfs/sbin/init', type: 'link', linkname: './rootfs/bin/busybox' }],
      [{ name: 'rootfs/sym', type: 'symlink', linkname: path.join(sentinel, 'victim') }],
      [{ name: 'rootfs/hardsym', type: 'link', linkname: 'rootfs/sym' }],
    ));
    const a = fs.statSync(path.join(target, 'rootfs/bin/busybox'));
    expect(fs.statSync(path.join(target, 'rootfs/bin/sh')).ino).toBe(a.ino);
    expect(fs.statSync(path.join(target, 'rootfs/sbin/init')).ino).toBe(a.ino);
    expect(a.nlink).toBe(3);
    // A hard link to a symlink is that symlink (link(2) does not follow it).
    expect(fs.readlinkSync(path.join(target, 'rootfs/hardsym'))).toBe(path.join(sentinel, 'victim'));
    expect(r.files).toBe(5); // implied directories are not entries
    expect(snapshot(tmp)).toBe(before);
  });

  rootTest('device nodes and fifos as root', async () => {
    await extract(await aci(
      [{ name: 'rootfs/dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666, uid: 7, gid: 8 }],
      [{ name: 'rootfs/dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660 }],
      [{ name: 'rootfs/run/fifo', type: 'fifo', mode: 0o600 }],
    ), { asRoot: true });
    const nul = fs.lstatSync(path.join(target, 'rootfs/dev/null'));
    expect(nul.isCharacterDevice()).toBe(true);
    expect(nul.rdev).toBe((1 << 8) | 3);
    expect(nul.mode & 0o7777).toBe(0o666);
    expect([nul.uid, nul.gid]).toEqual([7, 8]);
    expect(nul.mtime).toEqual(MTIME);
    const loop = fs.lstatSync(path.join(target, 'rootfs/dev/loop9'));
    expect(loop.isBlockDevice()).toBe(true);
    expect(loop.rdev).toBe((7 << 8) | 9);
    expect(fs.lstatSync(path.join(target, 'rootfs/run/fifo')).isFIFO()).toBe(true);
  });

  test('overwrite layering: later files replace earlier ones; a symlink-to-dir is replaced, not followed', async () => {
    const lower = await aci(
      [{ name: 'rootfs/etc/conf' }, 'old'],
      [{ name: 'rootfs/lib', type: 'symlink', linkname: sentinel }],
      [{ name: 'rootfs/f', type: 'symlink', linkname: path.join(sentinel, 'victim') }],
      [{ name: 'rootfs/d/inner' }, 'x'],
      [{ name: 'rootfs/keep' }, 'kept'],
    );
    const upper = await aci(
      [{ name: 'rootfs/etc/conf' }, 'new'],
      [{ name: 'rootfs/lib', type: 'directory', mode: 0o755 }],
      [{ name: 'rootfs/lib/libc.so' }, 'libc'],
      [{ name: 'rootfs/f' }, 'file now'],
      [{ name: 'rootfs/d' }, 'dir replaced by a file'],
    );
    await extract(lower);
    await expectRejected(upper, 'clashes with an existing path'); // only with overwrite
    await extract(lower);
    await extract(upper, { overwrite: true });
    const read = (p: string): string => fs.readFileSync(path.join(target, p), 'utf8');
    expect(read('rootfs/etc/conf')).toBe('new');
    expect(fs.lstatSync(path.join(target, 'rootfs/lib')).isDirectory()).toBe(true);
    expect(read('rootfs/lib/libc.so')).toBe('libc');
    expect(fs.lstatSync(path.join(target, 'rootfs/f')).isFile()).toBe(true);
    expect(read('rootfs/f')).toBe('file now');
    expect(read('rootfs/d')).toBe('dir replaced by a file');
    expect(read('rootfs/keep')).toBe('kept');
    expect(snapshot(tmp)).toBe(before);
  });

  test('pathFilter gets rootfs-relative paths and skips entries; kept entries get their parents', async () => {
    const seen: string[] = [];
    const keep = new Set(['bin', 'bin/sh', 'usr/bin/env']);
    const r = await extract(await aci(
      [{ name: 'rootfs/bin', type: 'directory', mode: 0o700 }],
      [{ name: 'rootfs/bin/sh' }, 'sh'],
      [{ name: 'rootfs/etc/passwd' }, 'p'],
      [{ name: 'rootfs/usr/', type: 'directory', mode: 0o700 }],
      [{ name: 'rootfs/usr/bin/env' }, 'env'],
    ), { pathFilter: (p) => { seen.push(p); return keep.has(p); } });
    expect(seen).toEqual(['bin', 'bin/sh', 'etc/passwd', 'usr', 'usr/bin/env']);
    expect(fs.readdirSync(path.join(target, 'rootfs')).sort()).toEqual(['bin', 'usr']);
    expect(fs.statSync(path.join(target, 'rootfs/bin')).mode & 0o7777).toBe(0o700);
    expect(fs.statSync(path.join(target, 'rootfs/usr')).mode & 0o7777).toBe(0o755); // skipped entry, implied dir
    expect(fs.readFileSync(path.join(target, 'rootfs/usr/bin/env'), 'utf8')).toBe('env');
    expect(r.files).toBe(3);
  });

  test('rootfsOnly writes rootfs content into the target and no manifest file', async () => {
    const r = await extract(await tarOf([
      [{ name: 'rootfs/etc/hostname' }, 'h'],
      [{ name: 'rootfs', type: 'directory', mode: 0o750 }],
      [{ name: 'manifest' }, '{"m":1}'],
    ]), { rootfsOnly: true });
    expect(r.manifest.toString()).toBe('{"m":1}');
    expect(fs.readdirSync(target)).toEqual(['etc']);
    expect(fs.readFileSync(path.join(target, 'etc/hostname'), 'utf8')).toBe('h');
    expect(fs.statSync(target).mode & 0o7777).toBe(0o750);
  });

  test('an archive made by GNU tar from a layout dir ("./" names) extracts', async () => {
    const layout = path.join(tmp, 'layout');
    fs.mkdirSync(path.join(layout, 'rootfs/bin'), { recursive: true });
    fs.writeFileSync(path.join(layout, 'manifest'), '{"gnu":true}');
    fs.writeFileSync(path.join(layout, 'rootfs/bin/app'), 'app');
    fs.chmodSync(path.join(layout, 'rootfs/bin/app'), 0o755);
    fs.symlinkSync('bin/app', path.join(layout, 'rootfs/app'));
    fs.linkSync(path.join(layout, 'rootfs/bin/app'), path.join(layout, 'rootfs/hard'));
    const buf = execFileSync('tar', ['-C', layout, '--format=gnu', '-cf', '-', '.']);
    const r = await extract(buf);
    expect(r.manifest.toString()).toBe('{"gnu":true}');
    expect(fs.readFileSync(path.join(target, 'manifest'), 'utf8')).toBe('{"gnu":true}');
    expect(fs.readFileSync(path.join(target, 'rootfs/bin/app'), 'utf8')).toBe('app');
    expect(fs.readlinkSync(path.join(target, 'rootfs/app'))).toBe('bin/app');
    expect(fs.statSync(path.join(target, 'rootfs/hard')).ino).toBe(fs.statSync(path.join(target, 'rootfs/bin/app')).ino);
    expect(fs.statSync(path.join(target, 'rootfs/bin/app')).mode & 0o777).toBe(0o755);
  });

  test('a missing rootfs/ entry still gives a rootfs directory', async () => {
    const r = await extract(await tarOf([[{ name: 'manifest' }, '{}']]));
    expect(r).toEqual({ manifest: Buffer.from('{}'), files: 0 });
    expect(fs.statSync(path.join(target, 'rootfs')).mode & 0o7777).toBe(0o755);
  });
});
