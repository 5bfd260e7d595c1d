import { describe, expect, test } from '@jest/globals';
import { RktError, errorMessage, hostFaultMessage, setDataDirForErrors } from '../../../src/util/errors.js';

const DIR = '/var/lib/rkt';

function errno(code: string, syscall: string, p?: string, dest?: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: something, ${syscall}${p ? ` '${p}'` : ''}`) as NodeJS.ErrnoException & { dest?: string };
  e.code = code;
  e.syscall = syscall;
  if (p) e.path = p;
  if (dest) e.dest = dest;
  return e;
}

describe('hostFaultMessage', () => {
  test('ENOSPC on a store path: the dir, what was needed and the fix, on one line', () => {
    const msg = hostFaultMessage(errno('ENOSPC', 'write', `${DIR}/cas/tmp/1-2-ab/blob`), DIR);
    expect(msg).toBe(`no space left in the data directory ${DIR} (needed to write cas/tmp/1-2-ab/blob): free space in ${DIR} or use --dir to choose another data directory`);
    expect(msg).not.toContain('\n');
  });

  test('EDQUOT names the quota', () => {
    expect(hostFaultMessage(errno('EDQUOT', 'open', `${DIR}/cas/info/x.json`), DIR)).toMatch(/^disk quota exceeded in the data directory \/var\/lib\/rkt \(needed to write cas\/info\/x\.json\): free space in \/var\/lib\/rkt, raise the quota, or use --dir/);
  });

  test('EROFS says read-only and how to get out of it', () => {
    expect(hostFaultMessage(errno('EROFS', 'mkdir', `${DIR}/cas/tmp/x`), DIR)).toBe(
      `the data directory ${DIR} is on a read-only filesystem (needed to create directory cas/tmp/x): remount it read-write or use --dir to choose a writable data directory`);
  });

  test('EACCES and EPERM say run as root, and what group rkt may do', () => {
    for (const code of ['EACCES', 'EPERM']) {
      const msg = hostFaultMessage(errno(code, 'scandir', `${DIR}/pods/run`), DIR);
      expect(msg).toBe(`permission denied in the data directory ${DIR} (needed to list pods/run): run as root (members of group "rkt" may list pods and images, read status and fetch)`);
    }
  });

  test('the data dir itself and a rename into it', () => {
    expect(hostFaultMessage(errno('EACCES', 'open', DIR), DIR)).toContain('(needed to write .)');
    expect(hostFaultMessage(errno('EROFS', 'rename', '/elsewhere/a', `${DIR}/cas/blob/b`), DIR)).toContain('(needed to rename cas/blob/b)');
  });

  test('a write(2) that names no file is the data dir\'s, for ENOSPC and EDQUOT only', () => {
    expect(hostFaultMessage(errno('ENOSPC', 'write'), DIR)).toContain('(needed to write a file): free space in /var/lib/rkt');
    expect(hostFaultMessage(errno('EACCES', 'write'), DIR)).toBeUndefined();
  });

  test('found through the cause of an RktError (extraction wraps fs errors)', () => {
    const wrapped = new RktError('cannot extract ACI in entry "rootfs/big": ENOSPC', undefined, errno('ENOSPC', 'write', `${DIR}/cas/tmp/s/tree/rootfs/big`));
    expect(hostFaultMessage(wrapped, DIR)).toContain('(needed to write cas/tmp/s/tree/rootfs/big)');
  });

  test('not the data dir\'s fault: left to its own message', () => {
    expect(hostFaultMessage(errno('EACCES', 'open', '/home/u/image.aci'), DIR)).toBeUndefined();
    expect(hostFaultMessage(errno('ENOSPC', 'write', '/tmp/extract/rootfs/x'), DIR)).toBeUndefined();
    expect(hostFaultMessage(errno('EACCES', 'open', '/var/lib/rkt-other/x'), DIR)).toBeUndefined();
    expect(hostFaultMessage(errno('ENOENT', 'open', `${DIR}/cas/x`), DIR)).toBeUndefined();
    expect(hostFaultMessage(new RktError('bad ACI'), DIR)).toBeUndefined();
    expect(hostFaultMessage(errno('ENOSPC', 'write', `${DIR}/x`), undefined)).toBeUndefined();
  });
});

describe('errorMessage', () => {
  test('says a host fault on the data dir the clear way once cli.ts has named the dir, anywhere it is used', () => {
    const e = errno('EACCES', 'scandir', `${DIR}/pods/run`);
    setDataDirForErrors(undefined);
    expect(errorMessage(e)).toBe(e.message);
    setDataDirForErrors(DIR);
    try {
      expect(errorMessage(e)).toMatch(/^permission denied in the data directory \/var\/lib\/rkt \(needed to list pods\/run\): run as root/);
      expect(errorMessage(new RktError('bad ACI'))).toBe('bad ACI');
      expect(errorMessage('text')).toBe('text');
    } finally {
      setDataDirForErrors(undefined);
    }
  });
});
