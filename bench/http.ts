/**
 * HTTP benchmark: a CRM-to-CRM backfill through Sluice beside a minimal hand-written loop.
 *
 *   node bench/http.ts [--records 200000] [--batch 1000] [--rounds 1] [--json]
 *
 * A child process runs the emulators (HubSpot-like source with `--records` contacts, two empty
 * Salesforce-like targets per round, no rate limits) so they do not share the event loop with the
 * code measured. Each round times, in alternating order:
 *   - baseline: list 100 contacts per GET, map, PATCH sObject Collections 200 per call, the calls of
 *     one batch at once — the least code that moves the data, with no retries or checkpoints;
 *   - Sluice: `executeRun` with the hubspot source and salesforce target, same batch size, a SQLite
 *     store checkpointing every batch, retries, rate limiter, circuit breaker and timeouts armed.
 * Both targets must end with every contact. Prints records/s for both and Sluice's overhead.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { hubspotConnector } from '../src/connectors/hubspot/index.ts';
import { salesforceConnector } from '../src/connectors/salesforce/index.ts';
import type { Connector } from '../src/core/ports.ts';
import type { Row } from '../src/core/types.ts';
import { executeRun } from '../src/engine/run.ts';
import { SqliteStore } from '../src/store/sqlite/store.ts';
import { HUBSPOT_TOKEN } from '../test/emulators/hubspot.ts';
import { SF_CLIENT } from '../test/emulators/salesforce.ts';

type Urls = { hubspot: string; salesforce: string[] };
type Rate = { ms: number; recordsPerSec: number };

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const RECORDS = Number(values.records.replaceAll('_', ''));
const BATCH = Number(values.batch);
const ROUNDS = Number(values.rounds);
const EXT = 'External_Id__c';

/** The same mapping on both sides: HubSpot contact → Salesforce Contact. */
const toContact = (r: Row): Row => ({
  [EXT]: r.id,
  FirstName: r.firstname,
  LastName: r.lastname,
  Email: r.email,
});

async function startEmulators(): Promise<{ urls: Urls; stop: () => void }> {
  const child = spawn(
    process.execPath,
    ['test/emulators/serve.ts', '--hubspot', String(RECORDS), '--salesforce', String(2 * ROUNDS)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`emulators exited with ${code}`)));
  });
  return { urls: JSON.parse(line) as Urls, stop: () => child.stdin!.end() };
}

async function count(url: string): Promise<number> {
  return ((await (await fetch(`${url}/_emulator/count`)).json()) as { count: number }).count;
}

async function baseline(urls: Urls, target: string): Promise<number> {
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: SF_CLIENT.id,
    client_secret: SF_CLIENT.secret,
  });
  const token = (
    (await (await fetch(`${target}/services/oauth2/token`, { method: 'POST', body: form })).json()) as {
      access_token: string;
    }
  ).access_token;
  const hs = { authorization: `Bearer ${HUBSPOT_TOKEN}` };
  const sf = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  let after: string | undefined;
  let moved = 0;
  do {
    const batch: Row[] = [];
    while (batch.length < BATCH) {
      const q = `limit=100&properties=email,firstname,lastname${after ? `&after=${after}` : ''}`;
      const page = (await (
        await fetch(`${urls.hubspot}/crm/v3/objects/contacts?${q}`, { headers: hs })
      ).json()) as {
        results: { id: string; properties: Record<string, string> }[];
        paging?: { next?: { after: string } };
      };
      for (const c of page.results) batch.push(toContact({ id: c.id, ...c.properties }));
      after = page.paging?.next?.after;
      if (!after) break;
    }
    const calls: Promise<void>[] = [];
    for (let i = 0; i < batch.length; i += 200) {
      const records = batch.slice(i, i + 200).map((r) => ({ attributes: { type: 'Contact' }, ...r }));
      calls.push(
        fetch(`${target}/services/data/v60.0/composite/sobjects/Contact/${EXT}`, {
          method: 'PATCH',
          headers: sf,
          body: JSON.stringify({ allOrNone: false, records }),
        }).then(async (res) => {
          const results = (await res.json()) as { success: boolean }[];
          if (!res.ok || results.some((r) => !r.success))
            throw new Error(`baseline write failed (${res.status})`);
        }),
      );
    }
    await Promise.all(calls);
    moved += batch.length;
  } while (after);
  return moved;
}

async function sluice(urls: Urls, target: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-http-'));
  const store = SqliteStore.open(join(dir, 'state.db'));
  const shape = { sync: 'bench', key: ['id'], cursorField: 'lastmodifieddate', baseDir: dir };
  const hub = hubspotConnector as Connector<unknown, unknown, unknown>;
  const sf = salesforceConnector as Connector<unknown, unknown, unknown>;
  const source = await hub.source!.open(
    hub.connection.parse({
      baseUrl: urls.hubspot,
      accessToken: HUBSPOT_TOKEN,
      rateLimit: null,
      searchRateLimit: null,
    }),
    hub.source!.options.parse({}),
    shape,
  );
  const sink = await sf.target!.open(
    sf.connection.parse({
      loginUrl: target,
      clientId: SF_CLIENT.id,
      clientSecret: SF_CLIENT.secret,
      concurrency: 8,
    }),
    sf.target!.options.parse({ externalIdField: EXT }),
    { ...shape, key: [EXT] },
  );
  try {
    const spec = {
      name: 'bench',
      key: ['id'],
      batchSize: BATCH,
      maxRunDurationMs: 3_600_000,
      lookbackMs: 0,
      map: toContact,
    };
    const outcome = await executeRun({
      spec,
      source,
      target: sink,
      store,
      trigger: 'backfill',
      holder: 'bench',
      stopAfterBackfill: true,
    });
    return outcome.checkpoint.totals.written;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function timed(fn: () => Promise<number>): Promise<Rate & { moved: number }> {
  const t0 = performance.now();
  const moved = await fn();
  const ms = performance.now() - t0;
  return { ms: Math.round(ms), recordsPerSec: Math.round((moved / ms) * 1000), moved };
}

async function main(): Promise<void> {
  const { urls, stop } = await startEmulators();
  try {
    const rounds: { baseline: Rate; sluice: Rate }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const [bTarget, sTarget] = [urls.salesforce[2 * r]!, urls.salesforce[2 * r + 1]!];
      const runs = r % 2 === 0 ? ['baseline', 'sluice'] : ['sluice', 'baseline'];
      const out: Partial<Record<string, Rate & { moved: number }>> = {};
      for (const which of runs)
        out[which] = await timed(() =>
          which === 'baseline' ? baseline(urls, bTarget) : sluice(urls, sTarget),
        );
      for (const [which, url] of [
        ['baseline', bTarget],
        ['sluice', sTarget],
      ] as const) {
        const n = await count(url);
        if (n !== RECORDS) throw new Error(`${which}: target holds ${n} contacts, expected ${RECORDS}`);
      }
      rounds.push({ baseline: out.baseline!, sluice: out.sluice! });
    }
    const best = (k: 'baseline' | 'sluice') => Math.max(...rounds.map((r) => r[k].recordsPerSec));
    const overhead = ((best('baseline') - best('sluice')) / best('baseline')) * 100;
    const figures = {
      records: RECORDS,
      batch: BATCH,
      rounds,
      baselinePerSec: best('baseline'),
      sluicePerSec: best('sluice'),
      overheadPct: Number(overhead.toFixed(1)),
      node: process.version,
    };
    if (values.json) console.log(JSON.stringify(figures, null, 2));
    else {
      for (const [i, r] of rounds.entries()) {
        console.log(
          `round ${i + 1}: baseline ${r.baseline.recordsPerSec} rec/s (${r.baseline.ms} ms), sluice ${r.sluice.recordsPerSec} rec/s (${r.sluice.ms} ms)`,
        );
      }
      console.log(
        `HubSpot emulator → Salesforce emulator, ${RECORDS} records, batch ${BATCH}, ${process.version}`,
      );
      console.log(`baseline (hand-written fetch loop): ${figures.baselinePerSec} records/s`);
      console.log(`sluice:                             ${figures.sluicePerSec} records/s`);
      console.log(`sluice overhead:                    ${figures.overheadPct}% (target ≤ 10%)`);
    }
  } finally {
    stop();
  }
}

await main();
