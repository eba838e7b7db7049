/**
 * The package's JavaScript (`npm run build`; tsc writes the declarations beside it). Two entries, the
 * library (`dist/index.js`) and the CLI (`dist/cli.js`), sharing their chunks, so a config that
 * imports 'sluice' and the CLI that loads it use one copy of each module. What a command imports
 * lazily (connectors, the PostgreSQL store, the runtime, the server) stays a chunk of its own.
 *
 * One file per concern instead of one per source module: `sluice status` loads about a dozen
 * files, not the ~150 Node resolved and linked one by one when dist/ mirrored src/ (bench/startup.ts).
 */
import { readFileSync } from 'node:fs';
import { defineConfig } from 'rolldown';

const { dependencies } = JSON.parse(readFileSync('package.json', 'utf8')) as {
  dependencies: Record<string, string>;
};
// zod is bundled: imported whole it is 95 modules, every locale included, and about 100 ms of a
// command's start-up; bundled, only what the schemas use is kept. It stays a dependency for the
// types the declarations name. The other dependencies are imported from node_modules as they are.
const BUNDLED = new Set(['zod']);
const external = Object.keys(dependencies).filter((name) => !BUNDLED.has(name));

export default defineConfig({
  input: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
  platform: 'node',
  external: (id) => external.some((name) => id === name || id.startsWith(`${name}/`)),
  output: {
    dir: 'dist',
    format: 'esm',
    sourcemap: true,
    chunkFileNames: 'chunks/[name]-[hash].js',
  },
});
