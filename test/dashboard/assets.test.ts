import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { asset } from '../../src/server/dashboard/pages.ts';
import { ASSETS_MODULE, assetsModule, STATIC_DIR } from './assets-module.ts';

it('embeds the static files as they are (run npx node test/dashboard/embed-assets.ts after editing them)', () => {
  expect(readFileSync(ASSETS_MODULE, 'utf8')).toBe(assetsModule());
  for (const name of ['app.js', 'common.js', 'syncs.js', 'app.css'])
    expect(asset(name).body).toBe(readFileSync(new URL(name, STATIC_DIR), 'utf8'));
});
