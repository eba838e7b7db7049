#!/usr/bin/env -S node --max-semi-space-size=16 --heap-growing-percent=50
// A batch is garbage once written. Semi-spaces capped at 16 MB let V8 collect it young instead of
// growing the young generation to its default: a million-row backfill peaks near 155 MB, not 240 MB
// (measured with `sluice backfill` on the demo's contacts). A batch whose reading allocates about as
// much as a semi-space holds (PostgreSQL's driver: ~3 KB a row) is promoted anyway; old space then
// grows by half of what survived before the next full collection, not by V8's default of up to 4x:
// the ordinary PostgreSQL path at 1M rows peaks near 178 MB, not 245 MB. NODE_OPTIONS can override the
// semi-spaces, not the growing factor (V8 refuses it there): run `node <flags> bin/sluice.js` to change both.

import module from 'node:module';

// node:fs taken as CommonJS: an `import` builds an ES module facade whose lazy getters load ~30
// internal modules (streams, fs/promises…) at every start (rolldown.config.ts does the same for
// dist/). A Node older than 22.3 has no getBuiltinModule; it only reaches the message below.
const { existsSync } = process.getBuiltinModule?.('node:fs') ?? (await import('node:fs'));

// In a clone of the repository Sluice runs its TypeScript directly; the published package has no
// src/ and runs the JavaScript compiled into dist/ (Node does not strip types under node_modules).
const source = new URL('../src/cli/main.ts', import.meta.url);
const fromSource = existsSync(source);

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  // Node strips TypeScript's types from 22.18 on: Sluice's own source here, the user's sluice.config.ts there.
  process.stderr.write(
    `sluice: needs Node.js 22.18 or newer, this is ${process.version}; ${
      fromSource
        ? 'in this repository run it through npm (`npm run sluice -- <command>`), which uses the Node 24 the project pins'
        : 'install a newer Node.js (https://nodejs.org)'
    }\n`,
  );
  process.exit(1);
}

// Started as `node bin/sluice.js` (a test's spawn, a container's `CMD ["node", …]`), the shebang is
// a comment and V8 runs with its defaults: a 1M-row PostgreSQL backfill then peaks at 317–337 MB
// instead of 150–160 MB, whatever the store (bench/pg.ts --launch node). The process replaces itself
// with one that has the flags: execve keeps its pid, stdio and environment (no second process); once,
// and only where Node has execve (not Windows). Flags given on the command line or in NODE_OPTIONS
// stand as they are.
const V8_FLAGS = ['--max-semi-space-size=16', '--heap-growing-percent=50'];
const flagged = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((arg) =>
  arg.startsWith('--max-semi-space-size'),
);
if (!flagged && !process.env.SLUICE_V8_FLAGS && typeof process.execve === 'function') {
  process.execve(
    process.execPath,
    [process.execPath, ...V8_FLAGS, ...process.execArgv, process.argv[1], ...process.argv.slice(2)],
    { ...process.env, SLUICE_V8_FLAGS: V8_FLAGS.join(' ') },
  );
}
if (!fromSource) {
  // Compiled code, and the user's sluice.config.ts with its types stripped, are cached on disk (in the
  // system's temp folder, or NODE_COMPILE_CACHE): a later command neither parses them again nor loads
  // the type stripper, which alone costs ~20 MB and tens of ms. A cache that cannot be written is skipped.
  module.enableCompileCache?.();
  // SLUICE_DEBUG prints stack traces: point them at the TypeScript (the maps carry its text). Off
  // otherwise, as Node reads every module's map at load while they are on.
  if (process.env.SLUICE_DEBUG) process.setSourceMapsEnabled(true);
}
const { main } = await import(fromSource ? source.href : '../dist/cli.js');
process.exitCode = await main(process.argv);
