import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { buildProgram, loadAll, locate, resolve, suggest, walk, visibleFlags, flagTerm, RktCommand, type Resolution, type Selected } from '../../../src/cli/tree.js';
import { COMMANDS } from '../../../src/cli/registry.js';
import { fullTree } from '../../../src/cli/help.js';
import { bashCompletion, zshCompletion } from '../../../src/cli/completion.js';
import { manPage } from '../../../src/cli/man.js';

/** Everything written to stdout while `fn` runs. */
async function stdoutOf(fn: () => Promise<unknown>): Promise<string> {
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out += String(s); return true; });
  try { await fn(); } finally { spy.mockRestore(); }
  return out;
}

async function selected(argv: string[]): Promise<Selected> {
  const r = await resolve(argv, COMMANDS);
  if (!('selected' in r)) throw new Error(`expected ${JSON.stringify(argv)} to select a command, got ${JSON.stringify(r)}`);
  return r.selected;
}

async function usageError(argv: string[]): Promise<string> {
  let r: Resolution | undefined;
  await stdoutOf(async () => { r = await resolve(argv, COMMANDS); });
  if (!r || !('status' in r) || r.status !== 254 || !r.error) throw new Error(`expected ${JSON.stringify(argv)} to be a usage error, got ${JSON.stringify(r)}`);
  expect(r.error).not.toContain('\n');
  return r.error;
}

describe('locate: the command path, wherever the flags are', () => {
  test.each([
    [['run', 'img'], ['run'], ['run', 'img']],
    [['--net=host', 'run', 'img'], ['run'], ['run', '--net=host', 'img']],
    [['--no-store', 'fetch', 'http://x/a.aci'], ['fetch'], ['fetch', '--no-store', 'http://x/a.aci']],
    [['--pull-policy', 'new', 'fetch', 'u'], ['fetch'], ['fetch', '--pull-policy', 'new', 'u']],
    [['--dir', '/tmp/d', 'list'], ['list'], ['list', '--dir', '/tmp/d']],
    [['--debug', 'image', '--dir=/x', 'list', '--full'], ['image', 'list'], ['image', 'list', '--debug', '--dir=/x', '--full']],
    [['ima', 'li'], ['image', 'list'], ['image', 'list']],
    [['run', 'list'], ['run'], ['run', 'list']],
    [['lst'], [], ['lst']],
    [['--', 'run'], [], ['--', 'run']],
    // A group and no leaf: the flags stay with the root.
    [['--dir=/x', 'image', 'lst'], ['image'], ['--dir=/x', 'image', 'lst']],
    [['--dir', '/x', 'image'], ['image'], ['--dir', '/x', 'image']],
  ])('%j', (argv, pathWanted, argvWanted) => {
    const l = locate(argv, COMMANDS);
    expect(l.path).toEqual(pathWanted);
    expect(l.argv).toEqual(argvWanted);
  });
});

describe('resolve: commander parses the regular commands', () => {
  test('flags before and after the command name give the same values', async () => {
    for (const argv of [['list', '--full', '--dir=/tmp/x'], ['--full', 'list', '--dir', '/tmp/x'], ['--dir=/tmp/x', '--full', 'list']]) {
      const s = await selected(argv);
      expect(s.command.name).toBe('list');
      expect(Object.fromEntries(s.parsed.values)).toEqual({ full: true, dir: '/tmp/x' });
    }
  });

  test('pflag booleans: --flag=false, last one wins, --no-legend', async () => {
    expect((await selected(['list', '--full=false'])).parsed.values.get('full')).toBe(false);
    expect((await selected(['list', '--full', '--full=0'])).parsed.values.get('full')).toBe(false);
    expect((await selected(['list', '--full=false', '--full'])).parsed.values.get('full')).toBe(true);
    expect((await selected(['list', '--no-legend'])).parsed.values.get('no-legend')).toBe(true);
    expect((await selected(['list'])).parsed.values.has('no-legend')).toBe(false);
    expect(await usageErrorOrThrow(['list', '--full=maybe'])).toContain('invalid value "maybe" for --full');
  });

  test('a flag with an optional value does not eat the next argument (status --wait UUID)', async () => {
    const s = await selected(['status', '--wait', 'abc']);
    expect(s.parsed.values.get('wait')).toBe('true');
    expect(s.parsed.positionals).toEqual(['abc']);
    expect((await selected(['status', '--wait=10s', 'abc'])).parsed.values.get('wait')).toBe('10s');
  });

  test('list flags collect every occurrence; positionals stay in order', async () => {
    const s = await selected(['image', 'rm', 'a', 'b', 'c']);
    expect(s.path).toEqual(['image', 'rm']);
    expect(s.parsed.positionals).toEqual(['a', 'b', 'c']);
  });

  test('own-grammar commands get their arguments untouched, `--` and all', async () => {
    const argv = ['--net=host', 'run', 'img', '--exec=/bin/echo', '--', '-h', '--dir=/no', '---', 'img2', '--name=x'];
    const s = await selected(argv);
    expect(s.command.name).toBe('run');
    expect(s.rawArgs).toEqual(['--net=host', 'img', '--exec=/bin/echo', '--', '-h', '--dir=/no', '---', 'img2', '--name=x']);
    expect(s.parsed.values.has('dir')).toBe(false);
    const g = await selected(['run', '--dir=/tmp/d', 'img']);
    expect(g.parsed.values.get('dir')).toBe('/tmp/d');
  });

  test('a located command gets a tree of its path only, with Options only where commander parses them', async () => {
    const run = (await loadAll({ run: COMMANDS.run })).get('run')!;
    const list = (await loadAll({ list: COMMANDS.list })).get('list')!;
    const full = buildProgram(new Map([['run', run], ['list', list]]), COMMANDS);
    const only = (path: string, cmd: typeof run) => buildProgram(new Map([[path, cmd]]), COMMANDS, [path]).root;
    const sub = (root: RktCommand, name: string) => root.commands.find((c) => c.name() === name)!;
    // Help and suggestions need them all.
    expect(full.root.options.length).toBeGreaterThan(10);
    expect(sub(full.root, 'run').options.length).toBeGreaterThan(50);
    // run reads its own arguments; the root sees the command path first.
    expect(only('run', run).options).toEqual([]);
    expect(only('run', run).commands.map((c) => c.name())).toEqual(['run']);
    expect(sub(only('run', run), 'run').options).toEqual([]);
    // list is parsed by commander: its own flags and the global ones.
    expect(sub(only('list', list), 'list').options.map((o) => o.long)).toEqual(expect.arrayContaining(['--full', '--dir', '--debug']));
  });

  test('enter passes the command after the UUID through, flags and -h included', async () => {
    const s = await selected(['enter', '--app=a', 'abcd', '/bin/ls', '-h']);
    expect(s.rawArgs).toEqual(['--app=a', 'abcd', '/bin/ls', '-h']);
  });
});

async function usageErrorOrThrow(argv: string[]): Promise<string> {
  try { return await usageError(argv); } catch (e) { return (e as Error).message; }
}

describe('usage errors: one line, exit 254, with a suggestion', () => {
  test.each([
    [['--dri=x', 'list'], 'unknown flag --dri (did you mean --dir?); see "rkt list --help"'],
    [['list', '--ful'], 'unknown flag --ful (did you mean --full?)'],
    [['--bogus', 'version'], 'unknown flag --bogus; see "rkt version --help"'],
    [['image', 'lst'], 'unknown command "lst" for "rkt image" (did you mean list?)'],
    [['--dir=/x', 'image', 'lst'], 'unknown command "lst" for "rkt image" (did you mean list?)'],
    [['lst'], 'unknown command "lst" for "rkt" (did you mean list?)'],
    [['stauts', 'x'], 'unknown command "stauts" for "rkt" (did you mean status?)'],
    [['zzzz'], 'unknown command "zzzz" for "rkt"; run "rkt help" for the list'],
    [['--bogus'], 'unknown flag --bogus; see "rkt --help"'],
  ])('%j', async (argv, msg) => {
    expect(await usageError(argv)).toContain(msg);
  });

  test('suggest: close names only', () => {
    expect(suggest('--dri', ['--dir', '--debug'])).toBe(' (did you mean --dir?)');
    expect(suggest('--insecure', ['--insecure-options'])).toBe(' (did you mean --insecure-options?)');
    expect(suggest('--zzz', ['--dir'])).toBe('');
  });
});

describe('output to a reader that went away (`rkt list | head -1`)', () => {
  const bin = path.resolve('bin/rkt');
  const built = fs.existsSync(path.resolve('dist/rkt.cjs'));
  (built || process.env.CI ? test : test.skip)('no EPIPE crash: the command finishes, nothing on stderr', async () => {
    const child = spawn(bin, ['help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before node has even started: every write meets EPIPE.
    child.stdout!.destroy();
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });

  (built || process.env.CI ? test : test.skip)('stderr gone too: an error line meets EPIPE, the status is still the command\'s', async () => {
    const status = async (closeStderr: boolean) => {
      const child = spawn(bin, ['no-such-command'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      if (closeStderr) child.stderr!.destroy();
      const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
      return { code, out };
    };
    const open = await status(false);
    expect(open.code).not.toBe(0);
    expect(await status(true)).toEqual(open);
  });
});

describe('help', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-help-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('--help, -h and rkt help COMMAND print the same text, status 0', async () => {
    let r: Resolution | undefined;
    const a = await stdoutOf(async () => { r = await resolve(['run', '--help'], COMMANDS); });
    expect(r).toEqual({ status: 0 });
    const b = await stdoutOf(() => resolve(['run', '-h'], COMMANDS));
    const c = await stdoutOf(async () => {
      const s = await selected(['help', 'run']);
      await s.command.run({ globals: undefined as never, parsed: s.parsed, rawArgs: s.rawArgs, commands: COMMANDS });
    });
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(a).toMatch(/^Run image\(s\) in a pod in rkt\n\nUsage:\n {2}rkt run /);
    expect(a).toContain('\nGlobal Flags:\n');
  });

  test('rkt help lists every command; each leaf lists its visible flags', async () => {
    const root = await fullTree(COMMANDS);
    const top = await stdoutOf(() => resolve([], COMMANDS));
    for (const name of Object.keys(COMMANDS)) expect(top).toMatch(new RegExp(`\\n {2}${name} +\\S`));
    for (const leaf of walk(root).filter((c) => c.rkt)) {
      const text = await stdoutOf(() => resolve([...leaf.path, '--help'], COMMANDS));
      for (const spec of visibleFlags(leaf, false)) expect(text).toContain(flagTerm(spec));
      for (const spec of leaf.rkt!.flags.filter((s) => s.hidden)) expect(text).not.toContain(`--${spec.name}=`);
    }
  });

  test('README lists every command that rkt help lists', async () => {
    const readme = fs.readFileSync(path.resolve('README.md'), 'utf8');
    const root = await fullTree(COMMANDS);
    for (const cmd of walk(root).filter((c) => c.rkt)) expect(readme).toContain(`rkt ${cmd.path.join(' ')}`);
  });

  test('bash and zsh completion know every command and flag, and parse', async () => {
    const root = await fullTree(COMMANDS);
    const bash = bashCompletion(root);
    for (const cmd of walk(root)) {
      if (cmd.path.length > 0) expect(bash).toContain(cmd.name());
      for (const spec of visibleFlags(cmd, false)) expect(bash).toContain(`--${spec.name}`);
    }
    const file = path.join(dir, 'rkt.bash');
    fs.writeFileSync(file, bash);
    const check = spawnSync('bash', ['-c', `source ${file} && COMP_WORDS=(rkt image l) COMP_CWORD=2 && _rkt && echo "\${COMPREPLY[*]}" && COMP_WORDS=(rkt --debug list --fu) COMP_CWORD=3 && _rkt && echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.stdout).toBe('list\n--full\n');
    expect(zshCompletion(root)).toMatch(/^#compdef rkt\n/);
  });

  test('the man page documents every command and flag', async () => {
    const root = await fullTree(COMMANDS);
    const man = manPage(root);
    expect(man).toMatch(/^\.TH RKT 1 /);
    for (const cmd of walk(root).filter((c) => c.rkt)) {
      expect(man).toContain(`.SS rkt ${cmd.path.join(' ').replace(/-/g, '\\-')}`);
      for (const spec of visibleFlags(cmd, false)) expect(man).toContain(`.B \\-\\-${spec.name.replace(/-/g, '\\-')}`);
    }
  });
});
