/**
 * Bundles the compiled CLI (dist/cli/main.js) and its dependencies into one
 * CommonJS file, dist/cli/distray.cjs, which bin/distray.cjs loads with a V8
 * code cache. Loading and compiling the modules one file at a time cost more
 * start-up than anything else a run does before its first login (see
 * CONTRIBUTING.md, The command's bundle, and BENCHMARKS.md, Start-up).
 */
import { copyFileSync, cpSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

// The host shell is a script of its own, read beside the compiled code (dist/hostShell) by src/hostShell/protocol.ts.
copyFileSync('src/hostShell/hostShell.sh', 'dist/hostShell/hostShell.sh');
// The live page's files (and the HTML report's, which inlines them), read beside the compiled code (dist/ui/assets) by src/ui/assets.ts.
cpSync('src/ui/assets', 'dist/ui/assets', { recursive: true });

await build({
  entryPoints: ['dist/cli/main.js'],
  outfile: 'dist/cli/distray.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Native addons stay where npm put them: sharp, and ssh2's optional crypto binding and cpu-features.
  external: ['cpu-features'],
  plugins: [
    {
      // sharp is loaded lazily with import(), which a script run by bin/distray.cjs cannot do:
      // the import becomes a require() of sharp where npm installed it.
      name: 'sharp-by-require',
      setup(b) {
        b.onResolve({ filter: /^sharp$/ }, (args) =>
          args.namespace === 'sharp-shim'
            ? { path: 'sharp', external: true }
            : { path: 'sharp', namespace: 'sharp-shim' },
        );
        b.onLoad({ filter: /.*/, namespace: 'sharp-shim' }, () => ({
          contents: "module.exports = require('sharp');",
          loader: 'js',
        }));
      },
    },
    {
      name: 'ssh2-native-binding',
      setup(b) {
        b.onResolve({ filter: /sshcrypto\.node$/ }, () => ({
          path: 'ssh2/lib/protocol/crypto/build/Release/sshcrypto.node',
          external: true,
        }));
      },
    },
  ],
  // The bundle sits beside main.js, so URLs made from import.meta.url (the package.json) resolve alike.
  define: { 'import.meta.url': '__distray_import_meta_url' },
  banner: { js: "const __distray_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});

// The library (import { run } from 'distray'): one ES module of distray's own code, its dependencies
// imported from where npm installed them (they are the package's dependencies). Beside the CLI's bundle,
// at the same depth, so the URLs made from import.meta.url (the host shell, the page's files) resolve alike.
const { dependencies } = JSON.parse(readFileSync('package.json', 'utf8'));
await build({
  entryPoints: ['dist/index.js'],
  outfile: 'dist/api/index.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: Object.keys(dependencies),
  logLevel: 'warning',
});

// The library's declarations: tsc writes one .d.ts per module, but the package ships only those
// dist/index.d.ts reaches (the types of the public surface and what they name), not the rest.
const reached = new Set();
const pending = ['dist/index.d.ts'];
while (pending.length > 0) {
  const file = pending.pop();
  if (reached.has(file)) continue;
  reached.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:from\s+|import\()\s*['"](\.{1,2}\/[^'"]+)\.js['"]/g))
    pending.push(join(dirname(file), `${m[1]}.d.ts`));
}
for (const file of readdirSync('dist', { recursive: true, encoding: 'utf8' }))
  if (file.endsWith('.d.ts') && !reached.has(join('dist', file))) rmSync(join('dist', file));
