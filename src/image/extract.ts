/**
 * Safe ACI extraction: the ONE place where archive entries become files.
 *
 * Rules (each has a regression test in test/unit/image/extract.test.ts):
 * - Names are split into components; absolute names and ".." are refused, never resolved.
 * - Top level holds only `manifest` (a regular file) and `rootfs/`; no name appears twice.
 * - Nothing is written through a symlink: every parent directory is checked with lstat
 *   (and remembered once known to be a real directory), and the last component is
 *   created with O_EXCL|O_NOFOLLOW, symlink(2), link(2) or mknod, none of which follow it.
 * - Hard links may only point at a file that this archive already wrote under rootfs/.
 * - Device nodes and fifos only as root.
 * - Directory modes and mtimes are applied at the end, deepest first, through an fd
 *   opened with O_NOFOLLOW|O_DIRECTORY.
 * Writes use synchronous fs calls per entry: per-file write streams were 4.6x slower.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, type ExtractEvents, type Header } from 'tar-stream';
import { RktError, errorMessage } from '../util/errors.js';

export interface ExtractOptions {
  /** Apply owners and create device nodes (both need root). */
  asRoot: boolean;
  /** Write rootfs/ content straight into the target and do not write the manifest file. */
  rootfsOnly?: boolean;
  /** Layered rendering: entries replace what is already in the target (a symlink in the
   *  way is replaced, never followed). Without it an existing path is an error. */
  overwrite?: boolean;
  /** pathWhitelist: called with the path inside rootfs ("etc/passwd", no leading slash);
   *  false skips the entry. Parents of kept entries are created (0755) when skipped. */
  pathFilter?: (rootfsRelPath: string) => boolean;
}

export interface ExtractResult {
  /** The bytes of the top-level `manifest` entry. */
  manifest: Buffer;
  /** Entries written under rootfs/ (files, directories, links, devices). */
  files: number;
}

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = fs.constants;
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
const MAX_MANIFEST = 16 * 1024 * 1024;
/** Mode of directories the archive implies but does not list. */
const IMPLICIT_DIR_MODE = 0o755;

/** The process umask (from /proc: reading it through process.umask() is deprecated); undefined if unknown. */
function currentUmask(): number | undefined {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? parseInt(m[1], 8) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Extracts an uncompressed ACI tar into `target` (created if missing). On error `tar`
 * is destroyed and the target may hold partial content: callers extract into a
 * staging dir and remove it.
 */
export async function extractAci(tar: Readable, target: string, opts: ExtractOptions): Promise<ExtractResult> {
  fs.mkdirSync(target, { recursive: true });
  const x = new Extraction(fs.realpathSync(target), opts);
  const parser = extract();
  parser.on('entry', (header, stream, next) => x.onEntry(header, stream, next));
  try {
    await pipeline(tar, parser);
    return x.finish();
  } catch (err) {
    throw x.describe(err);
  }
}

/**
 * The extractor driven entry by entry by a caller that parses its own tar (the docker://
 * conversion renders the squashed layers straight into the tree, with the same rules).
 * `onEntry` takes a tar-stream header and body stream as an extract() 'entry' event gives
 * them; `finish` applies the directory modes and returns what extractAci would.
 */
export interface EntryExtractor {
  /** `stream` needs only 'data', 'end' and 'error' events (a node Readable will do). */
  onEntry(header: Header, stream: Readable | ExtractEvents['entry'][1], next: (err?: Error) => void): void;
  finish(): ExtractResult;
}

export function entryExtractor(target: string, opts: ExtractOptions): EntryExtractor {
  fs.mkdirSync(target, { recursive: true });
  const x = new Extraction(fs.realpathSync(target), opts);
  return {
    onEntry: (header, stream, next) => x.onEntry(header, stream as unknown as ExtractEvents['entry'][1], next),
    finish: () => {
      try {
        return x.finish();
      } catch (err) {
        throw x.describe(err);
      }
    },
  };
}

/** Receives one entry's data; end() applies its metadata. */
interface Sink {
  write(chunk: Buffer): void;
  end(): void;
  abort(): void;
}

interface DirMeta {
  mode: number;
  /** Absent for directories the archive only implies. */
  entry?: Meta;
}

interface Meta {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

class Extraction {
  /** Normalised names of all entries so far (duplicate check). */
  private readonly seen = new Set<string>();
  /** Absolute paths known to be real directories (not symlinks). */
  private readonly dirs = new Set<string>();
  /** Directories whose mode (and mtime, owner) are set at the end. */
  private readonly dirMeta = new Map<string, DirMeta>();
  /** Absolute paths of non-directories this archive wrote: the only hard-link targets. */
  private readonly linkable = new Set<string>();
  /**
   * Directories this extraction made (0700, no setgid until finish): what is created in
   * them is owned by this process's uid and gid, so a chown to those is skipped.
   */
  private readonly made = new Set<string>();
  private readonly uid = process.geteuid?.() ?? -1;
  private readonly gid = process.getegid?.() ?? -1;
  private readonly umask = currentUmask();
  private readonly rootfs: string;
  private manifest: Buffer | undefined;
  private files = 0;
  /** For error messages: the entry being written, and the last one finished. */
  private current: string | undefined;
  private last: string | undefined;

  constructor(private readonly target: string, private readonly opts: ExtractOptions) {
    this.dirs.add(target);
    this.rootfs = opts.rootfsOnly ? target : `${target}/rootfs`;
  }

  onEntry(header: Header, stream: ExtractEvents['entry'][1], next: (err?: Error) => void): void {
    this.current = header.name;
    let settled = false;
    let sink: Sink | undefined;
    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      if (err) {
        sink?.abort();
        next(this.describe(err)); // `current` stays set: later parser errors name this entry
        return;
      }
      this.last = this.current;
      this.current = undefined;
      next();
    };
    stream.on('error', settle); // also when we fail first: the parser then destroys the stream
    try {
      sink = this.begin(header);
    } catch (err) {
      settle(err);
      return;
    }
    stream.on('data', (chunk) => {
      if (settled) return;
      try {
        sink?.write(chunk as Buffer);
      } catch (err) {
        settle(err);
      }
    });
    stream.on('end', () => {
      try {
        sink?.end();
        settle();
      } catch (err) {
        settle(err);
      }
    });
  }

  finish(): ExtractResult {
    if (!this.manifest) fail('bad ACI: no manifest');
    if (!this.opts.rootfsOnly) this.ensureDir(this.rootfs, 'rootfs');
    // Deepest first, so a read-only parent never blocks its children.
    const dirs = [...this.dirMeta].sort((a, b) => b[0].length - a[0].length);
    for (const [dir, meta] of dirs) {
      const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        if (meta.entry) this.applyMeta(fd, meta.entry);
        else fs.fchmodSync(fd, meta.mode);
      } finally {
        fs.closeSync(fd);
      }
    }
    return { manifest: this.manifest, files: this.files };
  }

  /** Turns parser, stream and fs errors into one-line RktErrors that name the entry. */
  describe(err: unknown): Error {
    if (err instanceof RktError) return err;
    const msg = errorMessage(err);
    const where = this.current !== undefined ? `in entry ${q(this.current)}`
      : this.last !== undefined ? `after entry ${q(this.last)}` : 'at the start of the archive';
    if (msg === 'Unexpected end of data') return new RktError(`bad ACI: the archive is truncated ${where}`);
    if (msg.startsWith('Invalid tar header. Maybe')) return new RktError(`bad ACI: corrupt tar header (checksum mismatch) ${where}`);
    if (msg === 'Invalid tar header: unknown format.') return new RktError(`bad ACI: not a tar header (unknown format) ${where}`);
    if (msg === 'Invalid header') return new RktError(`bad ACI: tar header with an invalid size ${where}`);
    if (msg === 'Header exceeds max size') return new RktError(`bad ACI: oversized PAX or long-name header ${where}`);
    if ((err as NodeJS.ErrnoException).syscall) return new RktError(`cannot extract ACI ${where}: ${msg}`, undefined, err);
    return new RktError(`cannot read ACI ${where}: ${msg}`);
  }

  private begin(h: Header): Sink | undefined {
    const name = h.name;
    const why = unsafe(name);
    if (why) fail(`bad ACI: entry ${q(name)} has ${why}`);
    const parts = components(name);
    if (parts.length === 0) {
      // "./": the archive's own root, as `tar -C dir .` writes it.
      if (h.type !== 'directory') fail(`bad ACI: entry ${q(name)} is not a directory`);
      return undefined;
    }
    const key = parts.join('/');
    if (this.seen.has(key)) fail(`bad ACI: duplicate entry ${q(name)}`);
    this.seen.add(key);

    if (key === 'manifest') return this.manifestEntry(h);
    if (parts[0] !== 'rootfs') fail(`bad ACI: entry ${q(name)} is outside rootfs/`);
    if (parts.length === 1 && h.type !== 'directory') fail(`bad ACI: entry ${q(name)} must be a directory`);
    if (parts.length > 1 && this.opts.pathFilter && !this.opts.pathFilter(parts.slice(1).join('/'))) return undefined;

    const dest = this.destOf(parts);
    const meta = this.meta(h);
    this.checkParents(dest, name);
    if (parts.length > 1) this.files++;
    switch (h.type) {
      case 'directory':
        this.makeDir(dest, name, meta);
        return undefined;
      case 'file':
      case 'contiguous-file':
        return this.fileSink(dest, name, meta);
      case 'symlink':
        this.symlink(dest, name, h, meta);
        return undefined;
      case 'link':
        this.hardLink(dest, name, h);
        return undefined;
      case 'character-device':
      case 'block-device':
      case 'fifo':
        this.device(dest, name, h, meta);
        return undefined;
      default:
        return fail(`bad ACI: entry ${q(name)} has an unsupported tar entry type`);
    }
  }

  private manifestEntry(h: Header): Sink {
    if (h.type !== 'file' && h.type !== 'contiguous-file') fail('bad ACI: entry "manifest" is not a regular file');
    const meta = this.meta(h);
    if (h.size > MAX_MANIFEST) fail(`bad ACI: the manifest is larger than ${MAX_MANIFEST} bytes`);
    const file = this.opts.rootfsOnly ? undefined : this.fileSink(`${this.target}/manifest`, h.name, meta);
    const chunks: Buffer[] = [];
    return {
      write: (chunk) => {
        chunks.push(chunk);
        file?.write(chunk);
      },
      end: () => {
        file?.end();
        this.manifest = Buffer.concat(chunks);
      },
      abort: () => file?.abort(),
    };
  }

  /** The checked numeric fields of a header (PAX records win over the ustar fields). */
  private meta(h: Header): Meta {
    const pax = (h.pax ?? {}) as Record<string, string | undefined>;
    const num = (paxValue: string | undefined, value: number): number =>
      paxValue !== undefined ? Number(paxValue) : value;
    const size = h.size;
    const mode = h.mode;
    const uid = num(pax.uid, h.uid);
    const gid = num(pax.gid, h.gid);
    const mtime = pax.mtime !== undefined ? new Date(Number(pax.mtime) * 1000) : h.mtime;
    const bad = (field: string): never => fail(`bad ACI: entry ${q(h.name)} has an invalid ${field}`);
    if (!Number.isSafeInteger(size) || size < 0) bad('size');
    if (!Number.isInteger(mode) || mode < 0) bad('mode');
    if (!isId(uid)) bad('uid');
    if (!isId(gid)) bad('gid');
    if (Number.isNaN(mtime.getTime())) bad('mtime');
    return { mode: mode & 0o7777, uid, gid, mtime };
  }

  private destOf(parts: string[]): string {
    return parts.length === 1 && parts[0] === 'rootfs' ? this.rootfs : `${this.rootfs}/${parts.slice(1).join('/')}`;
  }

  /**
   * Makes sure every directory between the target and `dest` is a real directory,
   * creating missing ones; a symlink or file there is an error.
   */
  private checkParents(dest: string, name: string): void {
    const unknown: string[] = [];
    // Walk up to the nearest directory already known (at the latest the target), then check downwards.
    let end = dest.lastIndexOf('/');
    while (end > this.target.length && !this.dirs.has(dest.slice(0, end))) {
      unknown.push(dest.slice(0, end));
      end = dest.lastIndexOf('/', end - 1);
    }
    for (let i = unknown.length - 1; i >= 0; i--) this.ensureDir(unknown[i] as string, name);
  }

  /** `dir` must be a real directory; creates it (0755 at the end) if missing. */
  private ensureDir(dir: string, name: string): void {
    const st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!st) {
      fs.mkdirSync(dir, 0o700);
      this.noteMade(dir);
      this.dirMeta.set(dir, { mode: IMPLICIT_DIR_MODE });
    } else if (!st.isDirectory()) {
      const what = st.isSymbolicLink() ? 'a symlink' : 'a non-directory';
      fail(`bad ACI: entry ${q(name)} has ${what} in its path (${q(dir.slice(this.target.length + 1))})`);
    }
    this.dirs.add(dir);
  }

  private makeDir(dest: string, name: string, meta: Meta): void {
    const st = fs.lstatSync(dest, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) {
      this.clash(dest, name); // overwrite: a symlink to a dir is replaced, not followed
      fs.unlinkSync(dest);
    }
    if (!st || !st.isDirectory()) {
      fs.mkdirSync(dest, 0o700);
      this.noteMade(dest);
    }
    this.dirs.add(dest);
    this.dirMeta.set(dest, { mode: meta.mode, entry: meta });
  }

  private fileSink(dest: string, name: string, meta: Meta): Sink {
    // A plain mode the umask leaves intact is given at creation, which saves the fchmod
    // (the file is in a directory only root can enter until the extraction ends; setuid
    // and setgid bits still come after the chown, which would clear them).
    const plain = (meta.mode & 0o7000) === 0 && this.umask !== undefined && (meta.mode & ~this.umask) === meta.mode;
    const fd = this.place(dest, name, () => fs.openSync(dest, CREATE_FLAGS, plain ? meta.mode : 0o600));
    let open = true;
    const close = (): void => {
      if (open) fs.closeSync(fd);
      open = false;
    };
    return {
      write: (chunk) => {
        try {
          for (let off = 0; off < chunk.length;) off += fs.writeSync(fd, chunk, off);
        } catch (e) {
          (e as NodeJS.ErrnoException).path ??= dest; // fd writes name no file; ENOSPC must say where
          throw e;
        }
      },
      end: () => {
        try {
          this.applyMeta(fd, meta, this.ownedAsWanted(dest, meta), plain);
        } finally {
          close();
        }
        this.linkable.add(dest);
      },
      abort: close,
    };
  }

  private symlink(dest: string, name: string, h: Header, meta: Meta): void {
    if (!h.linkname || h.linkname.includes('\0')) fail(`bad ACI: symlink ${q(name)} has no valid target`);
    // The target text is kept as is: it only matters if we follow it, and we never do.
    this.place(dest, name, () => fs.symlinkSync(h.linkname, dest));
    if (this.opts.asRoot && !this.ownedAsWanted(dest, meta)) fs.lchownSync(dest, meta.uid, meta.gid);
    fs.lutimesSync(dest, meta.mtime, meta.mtime);
    this.linkable.add(dest);
  }

  private hardLink(dest: string, name: string, h: Header): void {
    const linkname = h.linkname ?? '';
    const parts = components(linkname);
    if (unsafe(linkname) || parts.length < 2 || parts[0] !== 'rootfs') {
      fail(`bad ACI: hard link ${q(name)} points outside rootfs/ (${q(linkname)})`);
    }
    // Only files written by this extraction, whose parent chain we checked; `forget`
    // drops them when a directory above them is replaced.
    const src = this.destOf(parts);
    if (!this.linkable.has(src)) {
      fail(`bad ACI: hard link ${q(name)} points to ${q(linkname)}, which is not a file extracted earlier from this archive`);
    }
    // link(2) does not follow a symlink at `src`: the new name is the symlink itself.
    this.place(dest, name, () => fs.linkSync(src, dest));
    this.linkable.add(dest);
  }

  private device(dest: string, name: string, h: Header, meta: Meta): void {
    if (!this.opts.asRoot) fail(`bad ACI: entry ${q(name)} is a device node or fifo: extract the image as root`);
    // Node has no mknod(2); coreutils' mknod does not follow a symlink at `dest`.
    const args = h.type === 'fifo' ? [dest, 'p']
      : [dest, h.type === 'block-device' ? 'b' : 'c', String(h.devmajor), String(h.devminor)];
    this.place(dest, name, () => {
      const r = spawnSync('mknod', args, { encoding: 'utf8' });
      if (r.status !== 0) {
        const err = new Error(r.error?.message ?? r.stderr.trim()) as NodeJS.ErrnoException;
        if (fs.lstatSync(dest, { throwIfNoEntry: false })) err.code = 'EEXIST';
        err.syscall = 'mknod';
        throw err;
      }
    });
    fs.lchownSync(dest, meta.uid, meta.gid);
    fs.chmodSync(dest, meta.mode); // `dest` is the node just made; chown may clear mode bits
    fs.lutimesSync(dest, meta.mtime, meta.mtime);
    this.linkable.add(dest);
  }

  /** Runs `create`; if the path exists, replaces it in overwrite mode, else errors. */
  private place<T>(dest: string, name: string, create: () => T): T {
    try {
      return create();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    this.clash(dest, name);
    const st = fs.lstatSync(dest);
    if (st.isDirectory()) {
      fs.rmSync(dest, { recursive: true }); // rm never follows symlinks inside
      this.forget(dest);
    } else {
      fs.unlinkSync(dest);
    }
    return create();
  }

  /** An existing path is only replaced in overwrite mode. */
  private clash(dest: string, name: string): void {
    if (!this.opts.overwrite) {
      fail(`bad ACI: entry ${q(name)} clashes with an existing path (${q(dest.slice(this.target.length + 1))})`);
    }
  }

  /** Drops what we knew about a directory tree that was just removed. */
  private forget(dir: string): void {
    const inside = (p: string): boolean => p === dir || p.startsWith(`${dir}/`);
    for (const p of this.dirs) if (inside(p)) this.dirs.delete(p);
    for (const p of this.dirMeta.keys()) if (inside(p)) this.dirMeta.delete(p);
    for (const p of this.linkable) if (inside(p)) this.linkable.delete(p);
  }

  /**
   * True if `path`, just created, already has the owner the entry asks for: it was made
   * in a directory of this extraction (no setgid there) by a process of that uid and gid.
   */
  /**
   * Remembers a directory just made, unless it came out setgid or of another group: below a
   * setgid parent (the data dir's rkt group) new entries take the directory's group, not ours.
   */
  private noteMade(dir: string): void {
    const st = fs.lstatSync(dir);
    if (st.gid === this.gid && (st.mode & 0o2000) === 0) this.made.add(dir);
  }

  private ownedAsWanted(path: string, meta: Meta): boolean {
    return meta.uid === this.uid && meta.gid === this.gid && this.made.has(path.slice(0, path.lastIndexOf('/')));
  }

  /** chown before chmod: chown clears setuid/setgid. */
  private applyMeta(fd: number, meta: Meta, owned = false, moded = false): void {
    if (this.opts.asRoot && !owned) fs.fchownSync(fd, meta.uid, meta.gid);
    if (!moded) fs.fchmodSync(fd, meta.mode);
    fs.futimesSync(fd, meta.mtime, meta.mtime);
  }
}

/** Why a name from the archive must not be used as a path (never resolved, only refused). */
function unsafe(raw: string): string | undefined {
  if (raw.includes('\0')) return 'a NUL byte in its name';
  if (raw.startsWith('/')) return 'an absolute path';
  if (raw.split('/').includes('..')) return 'a ".." component';
  return undefined;
}

/** The clean components of a safe name: "./a//b/" -> ["a", "b"]. */
function components(raw: string): string[] {
  return raw.split('/').filter((p) => p !== '' && p !== '.');
}

/** A uid or gid chown accepts (-1 means "leave unchanged", so it is out). */
function isId(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && n < 0xffffffff;
}

/** Quotes a name from the archive so that control characters cannot break the line. */
function q(s: string): string {
  return JSON.stringify(s);
}

function fail(message: string): never {
  throw new RktError(message);
}
