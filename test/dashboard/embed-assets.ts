/**
 * Writes src/server/dashboard/assets.ts from the files in src/server/dashboard/static/:
 *
 *   npx node test/dashboard/embed-assets.ts
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ASSETS_MODULE, assetsModule } from './assets-module.ts';

writeFileSync(ASSETS_MODULE, assetsModule());
process.stdout.write(`wrote ${fileURLToPath(ASSETS_MODULE)}\n`);
