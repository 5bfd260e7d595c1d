// Loaded by bin/rkt before the bundle (node --require dist/preload.cjs dist/rkt.cjs ...);
// scripts/bundle.mjs copies it to dist/ with NEED set from package.json's engines.
//
// 1. An old Node gets one line naming the version rkt needs, not a stack trace from the
//    bundle. Plain ES5, so any Node parses this file.
// 2. The bundle (and dist/execa.cjs) is compiled with a V8 code cache: compiling rkt.cjs costs ~20 ms of every
//    start, and the functions a command runs are compiled again on each run. The cache is
//    made by the first successful run of each command (bytecode of everything that run
//    compiled) and kept in dist/v8-cache/, next to the code it was made from: only a
//    process that may write the bundle's own directory writes it, and a cache file is used
//    only when it has the bundle's owner and nobody else may write it (it is code).
//    A cache names the bundle's size, mtime and inode, so a rebuilt bundle never runs
//    another build's bytecode (V8 itself checks only the source length).
// 3. bin/rkt's rkt-launch holds Node's own variables (every NODE_*: NODE_OPTIONS, NODE_PATH,
//    NODE_EXTRA_CA_CERTS...) from Node's start, as RKT_HELD_NODE_*: rkt runs the same whoever
//    calls it, and Node does not parse NODE_EXTRA_CA_CERTS at start (~40 ms). They are put back
//    here, before any of rkt's code runs, so that rkt's children (and --inherit-env) get them
//    unchanged; src/image/http.ts reads the CA file when a fetch first opens a TLS connection.
(function () {
  var held = 'RKT_HELD_';
  var names = Object.keys(process.env);
  for (var i = 0; i < names.length; i++) {
    if (names[i].lastIndexOf(held + 'NODE_', 0) !== 0) continue;
    var value = process.env[names[i]];
    delete process.env[names[i]];
    process.env[names[i].slice(held.length)] = value;
    if (names[i] === held + 'NODE_EXTRA_CA_CERTS') global[Symbol.for('rkt.deferredExtraCaCerts')] = value;
  }
})();

var NEED = [0, 0];
var v = process.versions.node.split('.').map(Number);
if (v[0] < NEED[0] || (v[0] === NEED[0] && v[1] < NEED[1])) {
  process.stderr.write('rkt: Node.js ' + process.versions.node + ' (' + process.execPath + ') is too old: rkt needs Node.js ' + NEED[0] + '.' + NEED[1] + ' or later\n');
  process.exit(254);
}

(function () {
  var fs = require('fs');
  var path = require('path');
  var vm = require('vm');
  var Module = require('module');
  var cacheDir = path.join(__dirname, 'v8-cache');
  var loadJs = Module._extensions['.js'];

  // The command word (run, list, image ...): each command has its own cache.
  function cacheName() {
    var args = process.argv.slice(2);
    for (var i = 0; i < args.length; i++) {
      if (/^[a-z][a-z0-9-]{0,30}$/.test(args[i])) return args[i] + '.v8';
      if (args[i] === '--') break;
    }
    return 'none.v8';
  }

  function readCache(file, stamp, owner) {
    var fd;
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      var st = fs.fstatSync(fd);
      if (!st.isFile() || st.uid !== owner || (st.mode & 18 /* 0o022 */) !== 0) return undefined;
      var data = fs.readFileSync(fd);
      var end = data.indexOf(10);
      if (end < 0 || data.toString('latin1', 0, end) !== stamp) return undefined;
      return data.subarray(end + 1);
    } catch (e) {
      return undefined;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  function writeCache(file, stamp, script) {
    try {
      fs.mkdirSync(cacheDir, { mode: 493 /* 0o755 */ });
    } catch (e) {
      if (e.code !== 'EEXIST') return;
    }
    var tmp = file + '.' + process.pid + '.tmp';
    try {
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from(stamp + '\n', 'latin1'), script.createCachedData()]), { mode: 420 /* 0o644 */, flag: 'wx' });
      fs.renameSync(tmp, file);
    } catch (e) {
      try { fs.unlinkSync(tmp); } catch (e2) { /* never made */ }
    }
  }

  // The files compiled with a cache, and their cache's name: the bundle, one per command;
  // dist/execa.cjs (see scripts/bundle.mjs), loaded by commands that spawn, one for all.
  var bundle = path.join(__dirname, 'rkt.cjs');
  var cached = Object.create(null);
  cached[bundle] = cacheName();
  cached[path.join(__dirname, 'execa.cjs')] = 'execa.v8';
  // RKT_DEBUG_STACK (an internal error's stack trace): the bundle as it was before its local
  // names were minified (see scripts/bundle.mjs), without a cache.
  var debugBundle = process.env.RKT_DEBUG_STACK ? path.join(__dirname, 'rkt.debug.cjs') : undefined;

  Module._extensions['.js'] = function (module, filename) {
    if (debugBundle && filename === bundle) return loadJs(module, debugBundle);
    var name = cached[filename];
    if (!name) return loadJs(module, filename);
    delete cached[filename];
    // ASCII only (scripts/bundle.mjs checks): Latin-1 makes V8's string without decoding UTF-8.
    var source = fs.readFileSync(filename, 'latin1');
    var st = fs.statSync(filename);
    var stamp = 'rkt-v8-cache ' + process.version + ' ' + st.size + ' ' + st.mtimeMs + ' ' + st.ino;
    var file = path.join(cacheDir, name);
    var data = readCache(file, stamp, st.uid);
    var script = new vm.Script(Module.wrap(source), { filename: filename, cachedData: data });
    // Written by the bundle's owner only: a cache of another owner is never used (see readCache).
    if ((!data || script.cachedDataRejected) && process.getuid && process.getuid() === st.uid) {
      process.once('exit', function (code) {
        if (code === 0) writeCache(file, stamp, script);
      });
    }
    var require = function (id) { return module.require(id); };
    require.resolve = function (request, options) { return Module._resolveFilename(request, module, false, options); };
    require.main = process.mainModule;
    require.cache = Module._cache;
    script.runInThisContext().call(module.exports, module.exports, require, module, filename, path.dirname(filename));
  };
})();
