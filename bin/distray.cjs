#!/usr/bin/env node
'use strict';
/**
 * Starts distray from its one-file bundle with a V8 code cache, so a run does
 * not spend its first few hundred milliseconds compiling (Node 22's
 * module.enableCompileCache does this for every module; Node 20 has no such
 * API). The cache lives in the user's own cache directory, keyed by Node's
 * version and the bundle's size and time; V8 itself refuses a cache made for
 * other source. Anything wrong with the cache only costs the time it saves.
 */
const { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { homedir } = require('node:os');
const { join } = require('node:path');
const vm = require('node:vm');

// A Ctrl+C (or SIGTERM) that comes while the bundle loads, before distray's own handler is in
// place, is kept for that handler rather than killing the process with no report.
const earlySignals = [];
const onEarlySignal = (signal) => earlySignals.push(signal);
process.on('SIGINT', onEarlySignal);
process.on('SIGTERM', onEarlySignal);
globalThis.__distrayEarlySignals = () => {
  process.off('SIGINT', onEarlySignal);
  process.off('SIGTERM', onEarlySignal);
  return earlySignals.splice(0);
};

const bundle = join(__dirname, '..', 'dist', 'cli', 'distray.cjs');
let source;
try {
  // The entry's #! line is only valid at the very start of a file, not inside the module wrapper.
  source = readFileSync(bundle, 'utf8').replace(/^#!.*/, '');
} catch (err) {
  process.stderr.write(
    `distray: cannot read ${bundle} (${err.code ?? err.message}): build it first with npm run build\n`,
  );
  process.exit(2);
}

let cacheFile;
let cached;
try {
  const info = statSync(bundle);
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'distray');
  cacheFile = join(dir, `${process.version}-${process.arch}-${info.size}-${Math.round(info.mtimeMs)}.v8`);
  cached = readFileSync(cacheFile);
} catch {
  // No cache yet (or no home to keep one in).
}

const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData: cached });
if (cacheFile) {
  // Made at exit, so it holds the functions this run compiled, not only the top level: made when
  // missing or refused, and made again after a longer run that compiled much more than it holds.
  process.once('exit', () => {
    const fresh = !cached || script.cachedDataRejected;
    if (!fresh && process.uptime() < 1) return;
    try {
      const data = script.createCachedData();
      if (!fresh && data.length < cached.length * 1.1) return;
      mkdirSync(join(cacheFile, '..'), { recursive: true, mode: 0o700 });
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(tmp, data, { mode: 0o600 });
      renameSync(tmp, cacheFile);
      // Caches of earlier builds and Node versions: the newest few stay (for other installs).
      const dir = join(cacheFile, '..');
      const old = readdirSync(dir)
        .filter((f) => f.endsWith('.v8'))
        .map((f) => ({ f, at: statSync(join(dir, f)).mtimeMs }))
        .sort((a, b) => b.at - a.at)
        .slice(4);
      for (const { f } of old) rmSync(join(dir, f), { force: true });
    } catch {
      // A read-only home: start-up stays as it was.
    }
  });
}
const mod = new Module(bundle, module);
mod.filename = bundle;
const req = Module.createRequire(bundle);
script.runInThisContext()(mod.exports, req, mod, bundle, join(__dirname, '..', 'dist', 'cli'));
