/**
 * HTTP benchmark: a CRM-to-CRM backfill through Sluice beside a minimal hand-written loop.
 *
 *   node bench/http.ts [--records 200000] [--batch 1000] [--rounds 5] [--json] [--only baseline|sluice]
 *
 * Each measured run gets a fresh child process running the emulators (a HubSpot-like source with
 * `--records` contacts and two empty Salesforce-like targets, no rate limits), so they do not share
 * the event loop with the code measured and every run meets the same emulator state. Before it is
 * measured, each side moves its first 20,000 records into the spare target through its own code, so
 * both are measured warm (JIT, sockets, emulator). Rounds alternate which side goes first:
 *   - baseline: list 100 contacts per GET, map, PATCH sObject Collections 200 per call, the calls of
 *     one batch at once — the least code that moves the data, with no retries or checkpoints;
 *   - Sluice: `executeRun` with the hubspot source and salesforce target, same batch size, a SQLite
 *     store checkpointing every batch, retries, rate limiter, circuit breaker and timeouts armed.
 * Each target must end with every contact. Prints records/s and CPU per record (medians) for both,
 * Sluice's overhead, and the load average around each run (the machine is shared; compare within a
 * round). Sluice's HTTP client uses node:http with keep-alive; the loop uses fetch, the least code.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
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
/**
 * `cpuMs`: CPU of this process (the code measured), not of the emulators; `cpuUsPerRecord` the same
 * per record; `load`: the 1-minute load average before and after the run.
 */
type Rate = {
  ms: number;
  recordsPerSec: number;
  cpuMs: number;
  cpuUsPerRecord: number;
  load: [number, number];
};

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
    /** Measure one side only (for a profile of it: `node --cpu-prof bench/http.ts --only sluice`). */
    only: { type: 'string' },
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

async function baseline(urls: Urls, target: string, limit = Number.POSITIVE_INFINITY): Promise<number> {
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
  } while (after && moved < limit);
  return moved;
}

/** Sluice's backfill into `target`; with `batches`, only that many batches (a warm-up). */
async function sluice(urls: Urls, target: string, batches = Number.POSITIVE_INFINITY): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-http-'));
  const store = SqliteStore.open(join(dir, 'state.db'));
  const shape = { sync: 'bench', key: ['id'], cursorField: 'lastmodifieddate', baseDir: dir };
  const hub = hubspotConnector as Connector<unknown, unknown, unknown>;
  const sf = salesforceConnector as Connector<unknown, unknown, unknown>;
  const opened = await hub.source!.open(
    hub.connection.parse({
      baseUrl: urls.hubspot,
      accessToken: HUBSPOT_TOKEN,
      rateLimit: null,
      searchRateLimit: null,
    }),
    hub.source!.options.parse({}),
    shape,
  );
  // The warm-up reads `batches` pages and says the backfill is done there.
  let read = 0;
  const source: typeof opened = Number.isFinite(batches)
    ? Object.assign(Object.create(opened) as typeof opened, {
        read: async (req: Parameters<typeof opened.read>[0]) => {
          const page = await opened.read(req);
          return ++read >= batches ? { ...page, done: true } : page;
        },
      })
    : opened;

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
      cursorField: null,
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

/**
 * One measured run against a fresh emulator process, warmed up first by 20,000 records moved by the
 * same side into a spare target, so both are measured warm and meet the same emulator state.
 */
async function measure(which: 'baseline' | 'sluice'): Promise<Rate> {
  const { urls, stop } = await startEmulators();
  try {
    const [spare, target] = [urls.salesforce[0]!, urls.salesforce[1]!];
    if (which === 'baseline') await baseline(urls, spare, 20_000);
    else await sluice(urls, spare, Math.ceil(20_000 / BATCH));
    const load0 = loadavg()[0]!;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const moved = which === 'baseline' ? await baseline(urls, target) : await sluice(urls, target);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const load1 = loadavg()[0]!;
    const n = await count(target);
    if (n !== RECORDS || moved !== RECORDS)
      throw new Error(`${which}: moved ${moved}, target holds ${n}, expected ${RECORDS}`);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    return {
      ms: Math.round(ms),
      recordsPerSec: Math.round((moved / ms) * 1000),
      cpuMs: Math.round(cpuMs),
      cpuUsPerRecord: Number(((cpuMs * 1000) / moved).toFixed(1)),
      load: [Number(load0.toFixed(2)), Number(load1.toFixed(2))],
    };
  } finally {
    stop();
  }
}

async function main(): Promise<void> {
  const rounds: { baseline: Rate; sluice: Rate }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? (['baseline', 'sluice'] as const) : (['sluice', 'baseline'] as const);
    const out: Partial<Record<'baseline' | 'sluice', Rate>> = {};
    for (const which of order) if (!values.only || values.only === which) out[which] = await measure(which);
    if (values.only) {
      const r = out[values.only as 'baseline' | 'sluice']!;
      console.log(
        `${values.only}: ${r.recordsPerSec} rec/s (${r.ms} ms, cpu ${r.cpuMs} ms = ${r.cpuUsPerRecord} µs/record, load ${r.load.join(' → ')})`,
      );
      continue;
    }
    rounds.push({ baseline: out.baseline!, sluice: out.sluice! });
  }
  if (values.only) return;
  // Medians over rounds run in alternating order, each run against its own fresh emulator process.
  const median = (k: 'baseline' | 'sluice', of: 'recordsPerSec' | 'cpuUsPerRecord') => {
    const xs = rounds.map((r) => r[k][of]).sort((a, b) => a - b);
    const mid = xs.length >> 1;
    return xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
  };
  const overhead =
    ((median('baseline', 'recordsPerSec') - median('sluice', 'recordsPerSec')) /
      median('baseline', 'recordsPerSec')) *
    100;
  const loads = rounds.flatMap((r) => [...r.baseline.load, ...r.sluice.load]);
  const figures = {
    records: RECORDS,
    batch: BATCH,
    rounds,
    baselinePerSec: Math.round(median('baseline', 'recordsPerSec')),
    sluicePerSec: Math.round(median('sluice', 'recordsPerSec')),
    baselineCpuUsPerRecord: median('baseline', 'cpuUsPerRecord'),
    sluiceCpuUsPerRecord: median('sluice', 'cpuUsPerRecord'),
    overheadPct: Number(overhead.toFixed(1)),
    load: { min: Math.min(...loads), max: Math.max(...loads) },
    node: process.version,
  };
  if (values.json) console.log(JSON.stringify(figures, null, 2));
  else {
    for (const [i, r] of rounds.entries()) {
      console.log(
        `round ${i + 1}: baseline ${r.baseline.recordsPerSec} rec/s (${r.baseline.ms} ms, cpu ${r.baseline.cpuUsPerRecord} µs/rec, load ${r.baseline.load.join('→')}), sluice ${r.sluice.recordsPerSec} rec/s (${r.sluice.ms} ms, cpu ${r.sluice.cpuUsPerRecord} µs/rec, load ${r.sluice.load.join('→')})`,
      );
    }
    console.log(
      `HubSpot emulator → Salesforce emulator, ${RECORDS} records, batch ${BATCH}, ${process.version}`,
    );
    console.log(
      `baseline (hand-written fetch loop): ${figures.baselinePerSec} records/s, ${figures.baselineCpuUsPerRecord} µs CPU/record (medians of ${ROUNDS})`,
    );
    console.log(
      `sluice:                             ${figures.sluicePerSec} records/s, ${figures.sluiceCpuUsPerRecord} µs CPU/record (medians of ${ROUNDS})`,
    );
    console.log(`sluice overhead:                    ${figures.overheadPct}% (target ≤ 10%)`);
    console.log(
      `load average (1 min) during the runs: ${figures.load.min} to ${figures.load.max} on ${availableParallelism()} cores`,
    );
  }
}

await main();
