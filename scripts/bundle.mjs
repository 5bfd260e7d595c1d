// Bundles stage0 (src/cli.ts and every command) into one CommonJS file, dist/rkt.cjs, which
// bin/rkt runs: one file to read and compile instead of ~100 ES modules (and commander costs
// a few ms as CommonJS, against ~14 ms as ESM). dist/preload.cjs adds a V8 code cache per
// command. Measured, and left out: a V8 startup snapshot of the bundle (node --build-snapshot
// works, but deserializing its 5 MB costs more CPU than compiling the bundle).
//
// Command modules stay lazily initialized (dynamic imports become on-demand init calls).
// The heavy packages (openpgp, tar-stream, execa) stay outside the bundle: loaded, when a
// command needs them, always through require() so one copy of openpgp serves every module
// (its ESM and CommonJS builds do not share classes). execa is ESM only, ~100 files that
// Node's ESM loader took ~65 ms to resolve and compile on every command that spawns (rkt run
// --net=default): it gets a CommonJS bundle of its own, dist/execa.cjs (inside rkt.cjs it would
// make every start, and every code cache, larger). node-fetch is ESM-only with a default export that
// require() cannot hand over as such: it is bundled (and only initialized by fetches).
//
// `import.meta` has no meaning in CommonJS: each module's `import.meta.dirname` becomes the
// directory of the same module as tsc emits it under dist/ (the digest worker and the stage1
// helpers are found there; `npm run build` runs tsc first). Plain path arithmetic: a URL
// (import.meta.url) costs ~0.5 ms the first time on every start, and the build refuses it.
import { build, transform } from 'esbuild';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const EXTERNAL = ['openpgp', 'tar-stream'];
const require = createRequire(import.meta.url);


const plugin = {
  name: 'rkt',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      let contents = await fs.promises.readFile(args.path, 'utf8');
      if (contents.includes('import.meta.')) {
        const emitted = path.relative(src, args.path).replace(/\.ts$/, '.js');
        contents = contents.replaceAll('import.meta.dirname', `require('node:path').join(__dirname, ${JSON.stringify(path.dirname(emitted))})`);
        if (contents.includes('import.meta.')) throw new Error(`bundle.mjs: ${args.path} uses import.meta other than import.meta.dirname`);
      }
      return { contents, loader: 'ts' };
    });
    b.onResolve({ filter: /^execa$/ }, () => ({ path: './execa.cjs', external: true }));
    // child_process brings net, dgram and streams (~3 ms, ~10 ms when it was ESM) to every
    // start, though only some commands spawn; net (for isIP) brings the streams too. commander
    // (CommonJS) gets a proxy; our modules (ESM: named imports) get one function per export
    // that loads the module on first call (functions only: no class of these is used).
    b.onResolve({ filter: /^(node:)?(child_process|net)$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (name === 'child_process' && args.importer.includes('node_modules/commander/')) return { path: name, namespace: 'rkt-lazy' };
      return args.importer.startsWith(src) ? { path: name, namespace: 'rkt-lazy-esm' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'rkt-lazy' }, (args) => ({
      contents: `module.exports = new Proxy({}, { get: (_, k) => require('node:${args.path}')[k] });`, loader: 'js',
    }));
    b.onLoad({ filter: /.*/, namespace: 'rkt-lazy-esm' }, (args) => {
      const functions = Object.entries(require(`node:${args.path}`)).filter(([, v]) => typeof v === 'function').map(([k]) => k);
      return {
        contents: functions.map((k) => `export function ${k}(...a) { return require('node:${args.path}').${k}(...a); }`).join('\n'),
        loader: 'js',
      };
    });
  },
};

// The default seccomp filter, compiled here once (from tsc's output of the same source)
// rather than in every `rkt run` (~1 ms of it): src/stage0/start.ts seccompFilter.
const seccomp = await import(path.join(dist, 'stage1', 'seccomp', 'filter.js'));
const defaultSeccompFilter = seccomp.encodeBpf(seccomp.compileSeccomp(seccomp.defaultSeccomp()));

await build({
  entryPoints: [path.join(src, 'cli.ts')],
  outfile: path.join(dist, 'rkt.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // web-streams-polyfill: fetch-blob's fallback for Nodes without global web streams.
  external: [...EXTERNAL, 'web-streams-polyfill', 'web-streams-polyfill/*'],
  supported: { 'dynamic-import': false },
  define: { RKT_DEFAULT_SECCOMP_FILTER: JSON.stringify(defaultSeccompFilter) },
  plugins: [plugin],
  // Smaller to read and parse at every start; names are kept here (rkt.debug.cjs), minified below.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
});

await build({
  entryPoints: [require.resolve('execa')],
  outfile: path.join(dist, 'execa.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
});

// esbuild gives each module's default import of a Node built-in (`import fs from 'node:fs'`,
// in ~100 modules) a copy of all its properties (__toESM): ~2 ms of every start. An object
// that inherits them instead reads the same and costs nothing.
const bundled = path.join(dist, 'rkt.cjs');
const toEsm = /__toESM\(require\("(node:[a-z_/]+)"\),1\)/g;
const code = fs.readFileSync(bundled, 'utf8');
if (!toEsm.test(code)) throw new Error('bundle.mjs: no __toESM(require("node:...")) left to replace: check the esbuild output');
if (!code.startsWith('"use strict";')) throw new Error('bundle.mjs: the bundle does not start with "use strict"');
fs.writeFileSync(bundled, code.replace(toEsm, '__rktBuiltin(require("$1"))')
  .replace('"use strict";', '"use strict";var __rktBuiltin=(m)=>({__proto__:m,default:m});'));

// Local names minified last (the replacement above needs esbuild's own): a quarter less to
// read on every start, ~1 ms of `rkt version`. The bundle as it was stays beside it as
// rkt.debug.cjs, which dist/preload.cjs runs instead under RKT_DEBUG_STACK, so that a stack
// trace names our functions.
const debugBundle = path.join(dist, 'rkt.debug.cjs');
fs.copyFileSync(bundled, debugBundle);
const minified = await transform(fs.readFileSync(bundled, 'latin1'), {
  minify: true, format: 'cjs', platform: 'node', target: 'node20', charset: 'ascii', legalComments: 'none', logLevel: 'warning',
});
fs.writeFileSync(bundled, minified.code);

// dist/preload.cjs reads the bundles as Latin-1: ASCII only, they need no UTF-8 decoding
// (~1 ms of every start for rkt.cjs). esbuild escapes strings but not regular expressions.
for (const file of [bundled, debugBundle, path.join(dist, 'execa.cjs')]) {
  const at = fs.readFileSync(file).findIndex((b) => b > 0x7f);
  if (at >= 0) throw new Error(`bundle.mjs: ${file} has a non-ASCII byte at offset ${at}: escape it in the source (\\uXXXX)`);
}


// dist/preload.cjs, loaded by bin/rkt before the bundle: refuses an old Node in one line (NEED
// from package.json's engines) and compiles the bundle with a V8 code cache (see the file).
// A rebuilt bundle starts with no cache.
const engines = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).engines.node;
const need = /^>=(\d+)\.(\d+)$/.exec(engines);
if (!need) throw new Error(`package.json engines.node must read ">=MAJOR.MINOR", not ${engines}`);
const preload = fs.readFileSync(path.join(root, 'scripts', 'preload.cjs'), 'utf8');
if (!preload.includes('var NEED = [0, 0];')) throw new Error('scripts/preload.cjs lost its NEED line');
fs.writeFileSync(path.join(dist, 'preload.cjs'), preload.replace('var NEED = [0, 0];', `var NEED = [${need[1]}, ${need[2]}];`));
fs.rmSync(path.join(dist, 'node-check.cjs'), { force: true });
fs.rmSync(path.join(dist, 'v8-cache'), { recursive: true, force: true });
