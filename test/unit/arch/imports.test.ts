/**
 * The architecture as the import graph shows it: the CLI is the only flag reader, so no
 * layer below it imports src/cli/; and no module imports itself through others (a cycle
 * makes start-up order matter and the layers meaningless). Type-only imports are erased
 * at build time and do not count; dynamic imports do (they are loaded at run time).
 */
import { describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..', 'src');

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of a file that exist at run time: `import ... from`, `export ... from`, `import(...)`. */
export function runtimeImports(file: string, text: string): string[] {
  const out: string[] = [];
  const stat = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+['"](\.[^'"]+)['"]/gms;
  for (const m of text.matchAll(stat)) {
    if (m[2]) continue; // import type / export type
    const names = m[3].replace(/^\{|\}$/g, '');
    // `import { type A, type B }` is erased too.
    if (m[3].startsWith('{') && names.split(',').map((n) => n.trim()).filter(Boolean).every((n) => n.startsWith('type '))) continue;
    out.push(m[4]);
  }
  for (const m of text.matchAll(/^\s*import\s+['"](\.[^'"]+)['"]/gm)) out.push(m[1]);
  for (const m of text.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) out.push(m[1]);
  return out.map((spec) => path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
}

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of tsFiles(SRC)) g.set(f, runtimeImports(f, fs.readFileSync(f, 'utf8')).filter((t) => t.startsWith(SRC)));
  return g;
}

/** Every import, type-only ones included: for the layering rule. */
function anyImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import\()\s*['"](\.[^'"]+)['"]/g)].map((m) => path.resolve(path.dirname(file), m[1].replace(/\.js$/, '.ts')));
}

/** One cycle per strongly connected part of the graph, as a path of files (Tarjan). */
function cycles(g: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const part: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); part.push(w); } while (w !== v);
      if (part.length > 1 || (g.get(v) ?? []).includes(v)) out.push(part.map((p) => path.relative(SRC, p)).sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('import graph of src/', () => {
  test('the cycle finder finds a cycle (a check that cannot fail proves nothing)', () => {
    const a = path.join(SRC, 'a.ts'); const b = path.join(SRC, 'b.ts'); const c = path.join(SRC, 'c.ts');
    expect(cycles(new Map([[a, [b]], [b, [c]], [c, [a]]]))).toEqual([['a.ts', 'b.ts', 'c.ts']]);
    expect(cycles(new Map([[a, [b]], [b, [c]], [c, []]]))).toEqual([]);
    expect(runtimeImports(a, "import type { X } from './x.js';\nimport { type Y } from './y.js';\nimport { z } from './z.js';\nconst m = await import('./m.js');"))
      .toEqual([path.join(SRC, 'z.ts'), path.join(SRC, 'm.ts')]);
  });

  test('no layer below the CLI imports src/cli (stage0, fetch, store, image, net, stage1, cgroups, trust, host, util)', () => {
    const cli = path.join(SRC, 'cli');
    const below = tsFiles(SRC).filter((f) => !f.startsWith(`${cli}/`) && f !== path.join(SRC, 'cli.ts'));
    const offenders = below.flatMap((f) => anyImports(f).filter((t) => t.startsWith(`${cli}/`)).map((t) => `${path.relative(SRC, f)} -> ${path.relative(SRC, t)}`));
    expect(offenders).toEqual([]);
  });

  test('no import cycles between files', () => {
    expect(cycles(graph())).toEqual([]);
  });

  test('no import cycles between folders (src/fetch above src/store above src/image)', () => {
    const folder = (f: string) => path.relative(SRC, f).split('/')[0];
    const folders = new Map<string, string[]>();
    for (const [from, tos] of graph()) {
      const a = path.join(SRC, folder(from));
      const out = folders.get(a) ?? [];
      for (const to of tos) if (folder(to) !== folder(from)) out.push(path.join(SRC, folder(to)));
      folders.set(a, out);
    }
    expect(cycles(folders)).toEqual([]);
  });
});
