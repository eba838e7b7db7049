import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SRC_INDEX } from './cli.ts';

/**
 * Makes `import … from 'sluice'` work in `dir` as it does in a user's project after `npm install
 * sluice`, but from this repository's source: `node_modules/sluice` re-exports `src/index.ts` by its
 * absolute path (outside node_modules, so Node strips its types). No build of `dist/` needed.
 */
export function installSluiceModule(dir: string): void {
  const pkg = join(dir, 'node_modules', 'sluice');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ name: 'sluice', type: 'module', exports: './index.js' }, null, 2),
  );
  writeFileSync(join(pkg, 'index.js'), `export * from ${JSON.stringify(pathToFileURL(SRC_INDEX).href)};\n`);
}
