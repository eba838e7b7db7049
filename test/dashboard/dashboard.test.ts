import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { until } from '../support/until.ts';
import { CHROMIUM, openBrowser, type Page, screenshot } from './browser.ts';
import { servedWorkspace, TOKEN } from './setup.ts';

const LONG = 120_000;
/** How long a view may take to show what the store already has, on a busy 2-core machine. */
const UI = 60_000;

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).press('Enter');
}

/** The bar's value (0–100) in the syncs table, or null before the row is drawn. */
async function progressOf(page: Page, sync: string): Promise<number | null> {
  const value = await page
    .locator(`tr[data-sync="${sync}"] [role="progressbar"]`)
    .getAttribute('aria-valuenow', { timeout: 1_000 })
    .catch(() => null);
  return value === null ? null : Number(value);
}

describe.skipIf(!existsSync(CHROMIUM))('the dashboard in a real browser', () => {
  it(
    'says how to set a token when none is configured',
    async () => {
      const t = await servedWorkspace({ rows: 10, tokens: [] });
      const browser = await openBrowser();
      try {
        const { page } = browser;
        await page.goto(t.url);
        await page.getByRole('heading', { name: 'The dashboard needs an API token' }).waitFor();
        expect(await page.locator('pre').textContent()).toContain('apiTokens');
        await screenshot(page, 'no-token');
      } finally {
        await browser.close();
        await t.stop();
      }
    },
    LONG,
  );

  it(
    'refuses a wrong token, signs in with a right one (an HttpOnly SameSite=Strict cookie) and works from the keyboard',
    async () => {
      const t = await servedWorkspace({ rows: 100 });
      const browser = await openBrowser();
      try {
        const { page, context } = browser;
        await signIn(page, t.url, 'not-the-token');
        await expect
          .poll(() => page.locator('#sign-in-error').textContent(), { timeout: 30_000 })
          .toMatch(/not one of server\.apiTokens/);
        expect(await context.cookies()).toEqual([]);
        await screenshot(page, 'sign-in-refused');

        await page.getByLabel('API token').fill(TOKEN);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.locator('table#syncs tr[data-sync="big"]').waitFor();
        const [cookie] = await context.cookies();
        expect(cookie).toMatchObject({ name: 'sluice_session', httpOnly: true, sameSite: 'Strict' });
        // The script cannot read it.
        expect(await page.evaluate('document.cookie')).toBe('');

        // The keyboard reaches everything: Tab to tick's Run button, Enter requests a run.
        const focused = () => page.evaluate("document.activeElement?.getAttribute('aria-label') ?? ''");
        const tabTo = async (label: string) => {
          for (let i = 0; i < 60 && (await focused()) !== label; i++) await page.keyboard.press('Tab');
          expect(await focused()).toBe(label);
        };
        await tabTo('Run tick now');
        await page.keyboard.press('Enter');
        await page
          .locator('#toast')
          .getByText(/tick: run requested/)
          .waitFor();
        expect(await t.ws.store.queue!.list({ sync: 'tick' })).toHaveLength(1);
        // The feed picks the queued run up (no event: the runtime is not started here).
        await page.locator('tr[data-sync="tick"]').getByText('queued', { exact: true }).waitFor();
        // Reset asks first, naming the sync; Escape cancels.
        await tabTo('Reset tick');
        await page.keyboard.press('Enter');
        await page
          .locator('#confirm-text')
          .getByText(/^Reset tick\?/)
          .waitFor();
        await page.keyboard.press('Escape');
        await page.locator('#confirm').waitFor({ state: 'hidden' });
        await screenshot(page, 'keyboard');

        // Signing out ends the session: the sign-in form again.
        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.getByLabel('API token').waitFor();
        expect(await context.cookies()).toEqual([]);
      } finally {
        await browser.close();
        await t.stop();
      }
    },
    LONG,
  );

  it('follows a backfill live, shows the lane taking turns, retries a dead letter, edits and deletes a data store key', async () => {
    const t = await servedWorkspace();
    const browser = await openBrowser();
    try {
      const { page } = browser;
      await signIn(page, t.url, TOKEN);
      await page.locator('tr[data-sync="big"] [role="progressbar"]').waitFor();
      // Every value the bar takes, as the page draws it (pushed by the server, not polled here).
      // (A script in the page, given as text: the tests are type-checked without the DOM's types.)
      await page.evaluate(`(() => {
        const seen = (window.seen = []);
        const record = () => {
          const bar = document.querySelector('tr[data-sync="big"] [role="progressbar"]');
          const v = Number(bar?.getAttribute('aria-valuenow'));
          if (seen.at(-1) !== v) seen.push(v);
        };
        record();
        new MutationObserver(record).observe(document.body, {
          subtree: true,
          attributes: true,
          attributeFilter: ['aria-valuenow'],
          childList: true,
        });
      })()`);
      expect(await progressOf(page, 'big')).toBe(0);

      await t.runtime.start();
      await until(
        'big to be part-way, on the page',
        async () => {
          const v = await progressOf(page, 'big');
          return v !== null && v > 0 && v < 100;
        },
        60_000,
      );
      // The picture the README shows: big running part-way. Taken when the page shows it, or at 100%
      // at the latest (on a slow machine big may only be seen between its runs); nothing waits on it.
      let shot = false;
      await until(
        'big to reach 100%',
        async () => {
          const v = await progressOf(page, 'big');
          const running = await page.locator('tr[data-sync="big"] .state-running').count();
          if (!shot && ((running > 0 && v !== null && v >= 25 && v < 90) || v === 100)) {
            await screenshot(page, 'syncs');
            shot = true;
          }
          return v === 100;
        },
        LONG,
      );
      await until('big to reach 100% on the page', async () => (await progressOf(page, 'big')) === 100, LONG);
      const seen = (await page.evaluate('window.seen')) as number[];
      // The bar moved through several values on its way, each one further.
      const between = seen.filter((v) => v > 0 && v < 100);
      expect(between.length, `values seen: ${seen.join(', ')}`).toBeGreaterThanOrEqual(2);
      for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
      await page.locator('tr[data-sync="big"]').getByText('incremental').waitFor();

      // Lanes: in bundle crm, tick ran between two runs of big's backfill.
      await page.getByRole('link', { name: 'Lanes' }).click();
      const lane = page.locator('section[data-lane="bundle:crm"]');
      await lane.waitFor();
      const bigRuns = (await t.ws.store.listRuns({ sync: 'big', limit: 1_000 })).filter(
        (r) => r.phase === 'backfill',
      );
      expect(bigRuns.length).toBeGreaterThan(1);
      const order = await until(
        'the turns on the lane view',
        async () => {
          const turns = await lane.locator('ol.turns li').evaluateAll((items) =>
            items.map((li) => ({
              sync: li.getAttribute('data-sync')!,
              run: Number(li.getAttribute('data-run')),
            })),
          );
          const bigIds = new Set(bigRuns.map((r) => r.id));
          const first = turns.findIndex((x) => bigIds.has(x.run));
          const last = turns.findLastIndex((x) => bigIds.has(x.run));
          return first >= 0 && turns.slice(first, last).some((x) => x.sync === 'tick') ? turns : null;
        },
        UI,
      );
      expect(order!.some((x) => x.sync === 'tick')).toBe(true);
      expect(await lane.locator('svg rect[data-sync="tick"]').count()).toBeGreaterThan(0);
      expect(await lane.locator('svg rect[data-sync="big"]').count()).toBeGreaterThan(1);
      await screenshot(page, 'lanes');

      // Runs: the history with counters, filtered to one sync, and the chart.
      await page.getByRole('link', { name: 'Runs' }).click();
      await page.locator('#runs-sync').selectOption('big');
      await until(
        'only big runs listed',
        async () => {
          const syncs = await page
            .locator('#run-rows tr[data-sync]')
            .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-sync')));
          return syncs.length > 0 && syncs.every((s) => s === 'big');
        },
        UI,
      );
      await page.locator('#rates svg polyline[data-sync="big"]').waitFor();
      await screenshot(page, 'runs');

      // Dead letters: ids 7 and 9 were refused by big's map; fix 7 and retry that one letter.
      await page.getByRole('link', { name: 'Dead letters' }).click();
      const rows = page.locator('#letter-rows tr[data-letter]');
      await until('two letters listed', async () => (await rows.count()) === 2, UI);
      await screenshot(page, 'dead-letters');
      const letters = await t.ws.store.listDeadLetters({ sync: 'big' });
      const seven = letters.find((l) => JSON.stringify(l.key) === '[7]')!;
      t.broken.delete(7);
      await page.locator(`tr[data-letter="${seven.id}"]`).getByRole('button', { name: /Retry/ }).click();
      await page
        .locator('#letters-result')
        .getByText(/1 written/)
        .waitFor({ timeout: 60_000 });
      await page.locator(`tr[data-letter="${seven.id}"]`).waitFor({ state: 'detached' });
      expect(await rows.count()).toBe(1);
      expect((await t.ws.store.listDeadLetters({ sync: 'big' })).map((l) => l.key)).toEqual([[9]]);

      // Data store: a key edited; text that is not JSON is refused before it is sent.
      await t.ws.store.data.set('owner', { id: 7, name: 'Ada' });
      await page.getByRole('link', { name: 'Data store' }).click();
      await page.locator('#keys button[data-key="owner"]').click();
      const editor = page.locator('#store-value');
      await expect.poll(() => editor.inputValue()).toContain('"Ada"');
      await editor.fill('{ "id": 7, "name": ');
      await page.locator('#store-save').click();
      await page
        .locator('#store-error')
        .getByText(/Not valid JSON/)
        .waitFor();
      expect(await t.ws.store.data.get('owner')).toEqual({ id: 7, name: 'Ada' });
      await editor.fill('{ "id": 7, "name": "Grace", "big": 9007199254740993 }');
      await page.locator('#store-save').click();
      await until(
        'the new value stored',
        async () => {
          const value = (await t.ws.store.data.get('owner')) as { name?: string } | undefined;
          return value?.name === 'Grace';
        },
        UI,
      );
      expect(await t.ws.store.data.get('owner')).toEqual({ id: 7, name: 'Grace', big: 9007199254740993n });
      await screenshot(page, 'data-store');
      // Delete asks first, naming the key.
      await page.locator('#store-delete').click();
      await page
        .locator('#confirm-text')
        .getByText(/^Delete the key owner\?/)
        .waitFor();
      await page.getByRole('button', { name: 'Delete owner' }).click();
      await page.locator('#keys button[data-key="owner"]').waitFor({ state: 'detached' });
      expect(await t.ws.store.data.get('owner')).toBeUndefined();

      // The main view, as the README shows it, and the same on a phone.
      await page.getByRole('link', { name: 'Syncs' }).click();
      await page.locator('tr[data-sync="tick"]').waitFor();
      await page.locator('#toast:empty').waitFor({ state: 'attached' });
      await screenshot(page, 'main');
      await page.emulateMedia({ colorScheme: 'dark' });
      await screenshot(page, 'main-dark');
      await page.setViewportSize({ width: 390, height: 844 });
      await screenshot(page, 'syncs-phone');
    } finally {
      await browser.close();
      await t.stop();
    }
  }, 240_000);
});
