import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { asset } from '../../src/server/dashboard/pages.ts';
import { ASSETS_MODULE, assetsModule, STATIC_DIR } from './assets-module.ts';

it('embeds the static files as they are (run node test/dashboard/embed-assets.ts after editing them)', () => {
  expect(readFileSync(ASSETS_MODULE, 'utf8')).toBe(assetsModule());
  expect(asset('app.js').body).toBe(readFileSync(new URL('app.js', STATIC_DIR), 'utf8'));
  expect(asset('app.css').body).toBe(readFileSync(new URL('app.css', STATIC_DIR), 'utf8'));
});
