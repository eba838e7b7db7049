/**
 * The CRM demo: HubSpot contacts → Salesforce Contacts through the real `sluice` CLI, against two
 * local API emulators (test/emulators: dev-only stand-ins that follow the documented API shapes;
 * they are NOT HubSpot or Salesforce, and nothing here talks to the real services).
 *
 *   npm run demo                          # 1,000,000 contacts
 *   npm run demo -- --contacts 20000      # a quick one
 *
 * 1. starts the emulators in a child process on 127.0.0.1: a HubSpot-like one seeded with realistic
 *    contacts (about 500 share each lastmodifieddate second; a handful have invalid emails) and
 *    HubSpot's documented burst limit, and an empty Salesforce-like one;
 * 2. writes sluice.config.ts: sync `contacts`, hubspot → salesforce, upsert by HubSpot_Id__c, a map
 *    to Contact fields (demo/crm/mapping.ts), runs time-boxed to a few seconds;
 * 3. `sluice backfill contacts` (many runs; a live bar on a terminal);
 * 4. changes 1% of the HubSpot contacts through its batch upsert API (updates and new contacts, about
 *    1,000 a second), and waits out the search index's lag (the emulator's index, like HubSpot's,
 *    takes changes in late);
 * 5. `sluice run contacts`: incremental runs time-boxed to 30 s, the changes plus a lookback window
 *    (again while a run ends with work left), then one more run with nothing changed: records the lookback reads
 *    again are found unchanged (fingerprints) and not written, so only the changed ones ever are;
 * 6. fetches both sides over HTTP and compares every contact by key and content hash; the invalid
 *    emails must be exactly the dead letters (`sluice dead-letters list`);
 * 7. prints a summary and stops the emulators, whatever happened. Exits 1 if verification fails.
 *
 *   npm run demo -- --serve               # then keeps `sluice serve` up with its dashboard
 *
 * With --serve, once the demo has verified, the config gets an API token and an incremental
 * schedule, and `sluice serve` runs on it (the emulators stay up): the demo prints the dashboard's
 * URL and the token to sign in with, and keeps serving until Ctrl-C.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { HUBSPOT_TOKEN } from '../../test/emulators/hubspot.ts';
import { SF_CLIENT } from '../../test/emulators/salesforce.ts';
import { count } from '../options.ts';
import {
  EXTERNAL_ID,
  HUBSPOT_PROPERTIES,
  type HubSpotRow,
  SALESFORCE_FIELDS,
  type SalesforceContact,
  toSalesforceContact,
} from './mapping.ts';

const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));
const SRC_INDEX = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
const MAPPING = fileURLToPath(new URL('./mapping.ts', import.meta.url));
const SERVE = fileURLToPath(new URL('../../test/emulators/serve.ts', import.meta.url));

/**
 * HubSpot's documented burst limit for a private app in a Professional or Enterprise account:
 * 190 requests per 10 seconds (developers.hubspot.com, "API usage guidelines and limits"; raised
 * from 150 in the "Increasing our API limits" changelog). The CRM search API has its own limit,
 * a few requests per second (4 here, the connector's default).
 */
const BURST = { requests: 190, perMs: 10_000 };
const SEARCH = { requests: 4, perMs: 1_000 };
/**
 * The emulator's search index takes each change in up to this long after it is made; the source
 * reads changes only once they are older than SEARCH_LAG_MS (HubSpot's default is 30 s, for its
 * "several seconds"; the demo's emulator lags less, so the demo waits less).
 */
const INDEX_LAG_MS = 1_000;
const SEARCH_LAG_MS = 2_000;
/** HubSpot's list endpoint returns at most 100 contacts per call. */
const LIST_PAGE = 100;
const PER_SECOND = 500;

type Options = {
  contacts: number;
  dir: string;
  maxRunDuration: string;
  incrementalRunDuration: string;
  batch: number;
  invalidEmails: number;
  serve: boolean;
  port: number;
};
type Urls = { hubspot: string; salesforce: string[]; invalidEmails: number[] };
type Stats = { requests: number; rateLimited: number; failed: number };

function parseArgs(argv: string[]): Options {
  return new Command('demo')
    .option('--contacts <n>', 'contacts in the HubSpot emulator', count, 1_000_000)
    .option('--dir <path>', 'where the demo writes its config and store', 'demo-output/crm')
    .option('--max-run-duration <d>', "each run's time box; small, so the backfill takes many runs", '5s')
    .option(
      '--incremental-run-duration <d>',
      "each incremental run's time box: its lookback sweep must fit in one (the search API reads a few hundred changes a second)",
      '30s',
    )
    .option('--batch <n>', 'records per batch', count, 1000)
    .option(
      '--invalid-emails <n>',
      'contacts seeded with an invalid email (they become dead letters)',
      count,
      7,
    )
    .option('--serve', 'after the demo, keep `sluice serve` and its dashboard up until Ctrl-C', false)
    .option('--port <n>', 'the port `sluice serve` listens on with --serve (0: any free one)', port, 4300)
    .parse(argv)
    .opts<Options>();
}

const n = (v: number) => v.toLocaleString('en-US');
const say = (line: string) => process.stdout.write(`\n== ${line}\n`);
const info = (line: string) => process.stdout.write(`   ${line}\n`);

function sluice(dir: string, args: string[], capture = false): string {
  // The bin itself, as a user runs it: its shebang sets the V8 flags it wants.
  const result = spawnSync(BIN, ['--config', join(dir, 'sluice.config.ts'), ...args], {
    stdio: ['inherit', capture ? 'pipe' : 'inherit', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`sluice ${args.join(' ')} exited with ${result.status}`);
  return result.stdout ?? '';
}

async function startEmulators(options: Options): Promise<{ urls: Urls; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      SERVE,
      '--hubspot',
      String(options.contacts),
      '--realistic',
      '--per-second',
      String(PER_SECOND),
      '--invalid-emails',
      String(options.invalidEmails),
      '--hubspot-rate-limit',
      `${BURST.requests}/${BURST.perMs}`,
      '--search-rate-limit',
      `${SEARCH.requests}/${SEARCH.perMs}`,
      '--search-lag',
      String(INDEX_LAG_MS),
      '--salesforce',
      '1',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error('emulators did not start within 120 s')), 120_000);
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolveLine(l);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`emulators exited with ${code}`));
    });
  });
  return { urls: JSON.parse(line) as Urls, child };
}

async function stopEmulators(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.stdin?.end();
  const timeout = sleep(5_000).then(() => 'timeout' as const);
  if ((await Promise.race([exited, timeout])) === 'timeout') child.kill('SIGKILL');
}

function port(value: string): number {
  const p = Number(value);
  if (!Number.isInteger(p) || p < 0 || p > 65535)
    throw new InvalidArgumentError('expected a port, 0 to 65535');
  return p;
}

/** With --serve: the API token the dashboard signs in with, and how often incremental runs come. */
type Serving = { token: string; port: number; incrementalEvery: string };

function writeConfig(
  dir: string,
  urls: Urls,
  options: Options,
  maxRunDuration: string,
  serving: Serving | null = null,
): void {
  const server = serving
    ? `
  // Written for --serve: the dashboard and the REST API sign in with this token (made up by the demo).
  server: { port: ${serving.port}, apiTokens: [${JSON.stringify(serving.token)}] },`
    : '';
  const incremental = serving
    ? `
      incremental: { every: ${JSON.stringify(serving.incrementalEvery)} },`
    : '';
  writeFileSync(
    join(dir, 'sluice.config.ts'),
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};
import { HUBSPOT_PROPERTIES, EXTERNAL_ID, toSalesforceContact } from ${JSON.stringify(MAPPING)};

// Written by the CRM demo. The URLs are local API emulators (dev-only stand-ins, not HubSpot or
// Salesforce); they live only while the demo runs. Run any sluice command against this file with
// --config ${join(dir, 'sluice.config.ts')} while they are up.
export default defineConfig({
  store: '.sluice/state.db',
  connections: {
    hubspot: {
      type: 'hubspot',
      baseUrl: ${JSON.stringify(urls.hubspot)},
      accessToken: ${JSON.stringify(HUBSPOT_TOKEN)},
      // HubSpot's documented burst limit for a private app on a Professional/Enterprise account.
      rateLimit: { requests: ${BURST.requests}, perMs: ${BURST.perMs} },
      searchRateLimit: { requests: ${SEARCH.requests}, perMs: ${SEARCH.perMs} },
    },
    salesforce: {
      type: 'salesforce',
      // OAuth2 client credentials; the API is then reached at the instance_url the token names.
      loginUrl: ${JSON.stringify(urls.salesforce[0])},
      clientId: ${JSON.stringify(SF_CLIENT.id)},
      clientSecret: ${JSON.stringify(SF_CLIENT.secret)},
    },
  },
  syncs: {
    contacts: {
      // Changes are read once the search index has surely taken them in (the emulator's lags ${INDEX_LAG_MS} ms).
      source: {
        connection: 'hubspot',
        properties: [...HUBSPOT_PROPERTIES],
        searchPageSize: 200,
        searchLagMs: ${SEARCH_LAG_MS},
      },
      target: { connection: 'salesforce', object: 'Contact', externalIdField: EXTERNAL_ID },
      key: 'id',
      // Each incremental run re-reads this much before its checkpoint (records committed late); what it
      // reads again unchanged is not written again. A run must be able to read more than the window
      // holds (here ~1,900 changes/s at most vs ~800 search results/s).
      cursor: { field: 'lastmodifieddate', lookback: '1s' },
      batch: { size: ${options.batch} },
      maxRunDuration: '${maxRunDuration}',
      map: (contact) => toSalesforceContact(contact),${incremental}
    },
  },${server}
});
`,
  );
}

/**
 * fetch, once more after a network error (a pooled keep-alive connection the server closed as it
 * was reused); the cause is kept in the message.
 */
async function call(url: string, init?: RequestInit): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (err) {
      const cause = (err as { cause?: { message?: string; code?: string } }).cause;
      if (attempt >= 3)
        throw new Error(
          `${init?.method ?? 'GET'} ${url}: ${(err as Error).message}: ${cause?.code ?? ''} ${cause?.message ?? ''}`,
        );
      await sleep(200 * attempt);
    }
  }
}

async function stats(url: string): Promise<Stats> {
  return (await (await call(`${url}/_emulator/stats`)).json()) as Stats;
}

/** A HubSpot API call from the demo itself, waiting out 429s (Retry-After) a bounded number of times. */
async function hubspotCall(url: string, path: string, body: unknown): Promise<Response> {
  for (let attempt = 0; attempt < 30; attempt++) {
    const res = await call(`${url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${HUBSPOT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== 429) return res;
    await res.arrayBuffer();
    await sleep(Number(res.headers.get('retry-after') ?? 1) * 1000);
  }
  throw new Error(`HubSpot emulator kept answering 429 to ${path}`);
}

/**
 * Changes 1% of the contacts the way a user of the API would: half of them updates of existing
 * contacts by id (batch update: new company and title), half new contacts (batch upsert by email).
 */
async function changeOnePercent(urls: Urls, total: number): Promise<{ updated: number; created: number }> {
  const changes = Math.max(2, Math.floor(total / 100));
  const invalid = new Set(urls.invalidEmails);
  const step = Math.max(1, Math.floor(total / Math.floor(changes / 2)));
  const updates: { id: string; properties: Record<string, string> }[] = [];
  for (let id = 1; updates.length < Math.floor(changes / 2) && id <= total; id += step) {
    if (invalid.has(id)) continue;
    updates.push({
      id: String(id),
      properties: { company: 'Sluice Demo Corp (acquired)', jobtitle: 'VP Integrations' },
    });
  }
  const created = changes - updates.length;
  const inserts = Array.from({ length: created }, (_, i) => ({
    id: `new.contact${i + 1}@demo.example`,
    idProperty: 'email',
    properties: {
      firstname: 'New',
      lastname: `Contact ${i + 1}`,
      company: 'Fresh Leads Ltd',
      city: 'Lisbon',
    },
  }));
  // At most 10 batches of 100 a second: about 1,000 edits a second, a busy CRM's pace rather than
  // one burst, so a 1 s lookback window holds what an incremental run can read again.
  const send = async (path: string, inputs: unknown[]) => {
    for (let i = 0; i < inputs.length; i += 100) {
      const paced = sleep(100);
      const res = await hubspotCall(urls.hubspot, path, { inputs: inputs.slice(i, i + 100) });
      await paced;
      if (res.status !== 200) throw new Error(`HubSpot ${path} answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    }
  };
  await send('/crm/v3/objects/contacts/batch/update', updates);
  await send('/crm/v3/objects/contacts/batch/upsert', inserts);
  return { updated: updates.length, created };
}

const hashOf = (c: SalesforceContact) =>
  createHash('sha256')
    .update(JSON.stringify(SALESFORCE_FIELDS.map((f) => c[f] ?? null)))
    .digest('hex');

/** Every HubSpot contact, mapped as the sync maps it: key → content hash. */
async function hubspotSide(
  url: string,
): Promise<{ hashes: Map<string, string>; emails: Map<string, string> }> {
  const hashes = new Map<string, string>();
  const emails = new Map<string, string>();
  let after: string | undefined;
  const props = HUBSPOT_PROPERTIES.join(',');
  for (let page = 0; page < 1_000_000; page++) {
    const q = `limit=${LIST_PAGE}&properties=${props}${after ? `&after=${after}` : ''}`;
    const res = await call(`${url}/crm/v3/objects/contacts?${q}`, {
      headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` },
    });
    if (!res.ok) throw new Error(`HubSpot list answered ${res.status}`);
    const body = (await res.json()) as {
      results: { id: string; properties: Record<string, string | null> }[];
      paging?: { next?: { after: string } };
    };
    for (const r of body.results) {
      const row: HubSpotRow = { id: r.id, ...r.properties };
      const mapped = toSalesforceContact(row);
      hashes.set(r.id, hashOf(mapped));
      emails.set(r.id, String(r.properties.email));
    }
    after = body.paging?.next?.after;
    if (!after) return { hashes, emails };
  }
  throw new Error('HubSpot list did not end');
}

/** Every Salesforce Contact by its external id: key → content hash. */
async function salesforceSide(url: string): Promise<Map<string, string>> {
  const token = (await (
    await call(`${url}/services/oauth2/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: SF_CLIENT.id,
        client_secret: SF_CLIENT.secret,
      }),
    })
  ).json()) as { access_token: string; instance_url: string };
  const headers = { authorization: `Bearer ${token.access_token}` };
  const soql = `SELECT ${SALESFORCE_FIELDS.join(', ')} FROM Contact`;
  let next: string | undefined = `/services/data/v60.0/query?q=${encodeURIComponent(soql)}`;
  const out = new Map<string, string>();
  for (let chunk = 0; next && chunk < 1_000_000; chunk++) {
    const res = await call(`${token.instance_url}${next}`, { headers });
    if (!res.ok) throw new Error(`Salesforce query answered ${res.status}`);
    const body = (await res.json()) as {
      done: boolean;
      nextRecordsUrl?: string;
      records: SalesforceContact[];
    };
    for (const r of body.records) out.set(String(r[EXTERNAL_ID]), hashOf(r));
    next = body.done ? undefined : body.nextRecordsUrl;
  }
  return out;
}

type DeadLetterRow = { key: unknown; reason: string; record: { id?: string } | null };

async function main(): Promise<void> {
  const options = parseArgs(process.argv);
  const dir = resolve(options.dir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const perSecond = (BURST.requests * LIST_PAGE * 1000) / BURST.perMs;
  const t0 = Date.now();

  say(`Starting the API emulators (dev-only stand-ins for HubSpot and Salesforce, on 127.0.0.1)`);
  info(
    `HubSpot-like: ${n(options.contacts)} contacts, about ${PER_SECOND} share each lastmodifieddate second, ${options.invalidEmails} with an invalid email`,
  );
  info(
    `rate limit: ${BURST.requests} requests per ${BURST.perMs / 1000} s (HubSpot's documented burst limit, Professional/Enterprise private app), ${LIST_PAGE} contacts per list call`,
  );
  info(
    `expected backfill: ${n(options.contacts)} / ${n(perSecond)} contacts/s ≈ ${Math.ceil(options.contacts / perSecond)} s, bound by the rate limit`,
  );
  let t = Date.now();
  const { urls, child } = await startEmulators(options);
  let ok = false;
  try {
    info(
      `up in ${((Date.now() - t) / 1000).toFixed(1)} s: HubSpot ${urls.hubspot}, Salesforce ${urls.salesforce[0]}`,
    );
    writeConfig(dir, urls, options, options.maxRunDuration);

    say(`sluice backfill contacts (HubSpot → Salesforce, each run time-boxed to ${options.maxRunDuration})`);
    const before = await stats(urls.hubspot);
    const backfill = JSON.parse(sluice(dir, ['backfill', 'contacts', '--json'], true)) as {
      done: boolean;
      runs: number;
      batches: number;
      records: number;
      elapsedMs: number;
      recordsPerSecond: number;
      peakRssMb: number;
    };
    const afterBackfill = await stats(urls.hubspot);
    if (!backfill.done) throw new Error('the backfill did not finish');
    info(
      `${n(backfill.records)} records in ${n(backfill.runs)} runs, ${n(backfill.batches)} batches, ${(backfill.elapsedMs / 1000).toFixed(1)} s`,
    );

    say('Changing 1% of the HubSpot contacts through its batch upsert API: updates and new contacts');
    const changed = await changeOnePercent(urls, options.contacts);
    info(`${n(changed.updated)} updated, ${n(changed.created)} created`);
    // The source reads a change once it is older than its searchLagMs: a run started sooner would
    // simply leave the newest changes to the next run. Waiting lets the first run find them all.
    info(`waiting ${SEARCH_LAG_MS / 1000} s for the search index to take the changes in`);
    await sleep(SEARCH_LAG_MS);

    // An incremental run starts with a sweep of its lookback window; the window must fit in one run,
    // and HubSpot's search reads a few hundred records a second: incremental runs get a longer box.
    writeConfig(dir, urls, options, options.incrementalRunDuration);
    say(
      `sluice run contacts (incremental, each run time-boxed to ${options.incrementalRunDuration}: the changes plus the 1 s lookback; again while a run ends with work left)`,
    );
    const beforeRun = await stats(urls.hubspot);
    t = Date.now();
    const c = { runs: 0, batches: 0, read: 0, written: 0, unchanged: 0, rejected: 0 };
    // Each run is time-boxed like the backfill's, and the search API allows a few calls a second,
    // so 1% of a million takes several runs: run again while the last one says work is left.
    let lastCursor = '';
    let stalled = 0;
    for (let more = true; more && c.runs < 1_000; ) {
      const outcome = JSON.parse(sluice(dir, ['run', 'contacts', '--json'], true)) as {
        checkpoint: { cursor: unknown };
        run: {
          id: number;
          more: boolean | null;
          counters: { batches: number; read: number; written: number; unchanged: number; rejected: number };
        };
      };
      const r = outcome.run.counters;
      c.runs += 1;
      c.batches += r.batches;
      c.read += r.read;
      c.written += r.written;
      c.unchanged += r.unchanged;
      c.rejected += r.rejected;
      more = outcome.run.more === true;
      // Each run starts a lookback earlier than its checkpoint: if that window holds more records
      // than one run can read, the checkpoint stops moving. Say so rather than loop.
      const cursor = JSON.stringify(outcome.checkpoint.cursor);
      stalled = cursor === lastCursor ? stalled + 1 : 0;
      lastCursor = cursor;
      if (more && stalled >= 3)
        throw new Error('incremental runs make no progress: the lookback window holds more than a run reads');
      info(
        `run ${outcome.run.id}: ${r.batches} batches, ${n(r.read)} read, ${n(r.unchanged)} unchanged, ${n(r.written)} written, ${r.rejected} rejected${more ? ', work left' : ', caught up'}`,
      );
    }
    // Nothing changed since: this run's lookback reads the last second of changes again, finds them
    // as they were written (fingerprints), and writes none of them.
    const quiet = JSON.parse(sluice(dir, ['run', 'contacts', '--json'], true)) as {
      run: { id: number; counters: { read: number; written: number; unchanged: number; rejected: number } };
    };
    const q = quiet.run.counters;
    info(
      `run ${quiet.run.id} (nothing changed): ${n(q.read)} read again by the lookback, ${n(q.unchanged)} unchanged, ${n(q.written)} written`,
    );
    c.runs += 1;
    c.read += q.read;
    c.written += q.written;
    c.unchanged += q.unchanged;
    c.rejected += q.rejected;
    const incrementalMs = Date.now() - t;
    const changes = changed.updated + changed.created;
    // Every change written once, nothing else: what was read again was found unchanged.
    const onlyChanged = c.written === changes && q.written === 0 && c.read === c.written + c.unchanged;
    const afterRun = await stats(urls.hubspot);

    say('Verifying: every HubSpot contact in Salesforce, mapped, by key and content hash');
    // The demo's own reads should not wait on the burst limit: lift it on the emulator first.
    await call(`${urls.hubspot}/_emulator/rate-limit`, { method: 'PUT', body: 'null' });
    t = Date.now();
    const [hs, sf] = await Promise.all([hubspotSide(urls.hubspot), salesforceSide(urls.salesforce[0]!)]);
    const invalid = new Set(urls.invalidEmails.map(String));
    let matched = 0;
    const missing: string[] = [];
    const different: string[] = [];
    const expected = createHash('sha256');
    const actual = createHash('sha256');
    for (const [key, hash] of [...hs.hashes].sort(([a], [b]) => Number(a) - Number(b))) {
      if (invalid.has(key)) continue;
      expected.update(`${key}:${hash}\n`);
      const got = sf.get(key);
      if (got !== undefined) actual.update(`${key}:${got}\n`);
      if (got === undefined) missing.push(key);
      else if (got !== hash) different.push(key);
      else matched += 1;
    }
    const extra = [...sf.keys()].filter((k) => !hs.hashes.has(k) || invalid.has(k));
    const expectedHash = expected.digest('hex');
    const actualHash = actual.digest('hex');
    info(
      `HubSpot: ${n(hs.hashes.size)} contacts (${invalid.size} with an invalid email); Salesforce: ${n(sf.size)} contacts; fetched in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
    info(
      `matched ${n(matched)}, missing ${missing.length}, different ${different.length}, unexpected ${extra.length}`,
    );
    info(
      `content sha256: HubSpot (mapped) ${expectedHash.slice(0, 16)}, Salesforce ${actualHash.slice(0, 16)}`,
    );
    for (const key of [...missing, ...different].slice(0, 5)) info(`  e.g. contact ${key}`);

    say('sluice dead-letters list contacts');
    sluice(dir, ['dead-letters', 'list', 'contacts']);
    const letters = JSON.parse(
      sluice(dir, ['dead-letters', 'list', 'contacts', '--json'], true),
    ) as DeadLetterRow[];
    const lettered = new Set(letters.map((l) => String(l.record?.id ?? '')));
    const lettersMatch = lettered.size === invalid.size && [...invalid].every((k) => lettered.has(k));

    say('sluice status');
    sluice(dir, ['status']);

    ok =
      missing.length === 0 &&
      different.length === 0 &&
      extra.length === 0 &&
      expectedHash === actualHash &&
      lettersMatch &&
      onlyChanged;
    say('Summary');
    const rl = (a: Stats, b: Stats) => b.rateLimited - a.rateLimited;
    process.stdout.write(
      [
        `   backfill:     ${n(backfill.records)} records in ${n(backfill.runs)} runs, ${n(backfill.batches)} batches, ${(backfill.elapsedMs / 1000).toFixed(1)} s, ${n(backfill.recordsPerSecond)} records/s (the rate limit allows ${n(perSecond)})`,
        `   HubSpot API:  ${n(afterBackfill.requests - before.requests)} requests, ${rl(before, afterBackfill)} answered 429 during the backfill; ${rl(beforeRun, afterRun)} during the incremental runs`,
        `   peak memory:  ${backfill.peakRssMb} MB (RSS of the sluice backfill process)`,
        `   incremental:  ${n(changes)} changes (${n(changed.updated)} updated, ${n(changed.created)} new) in ${c.runs} run${c.runs === 1 ? '' : 's'}, ${(incrementalMs / 1000).toFixed(1)} s including start-up`,
        `                 ${n(c.read)} read (changes + lookback), ${n(c.unchanged)} unchanged (read again, not written), ${n(c.written)} written (${onlyChanged ? 'exactly the changed records' : `NOT the ${n(changes)} changed records`})`,
        `   dead letters: ${letters.length} (${lettersMatch ? 'exactly the contacts seeded with an invalid email, refused by Salesforce' : 'NOT the contacts seeded with an invalid email'})`,
        `   verified:     ${ok ? 'every HubSpot contact is in Salesforce with the mapped content, or a dead letter' : 'MISMATCH between HubSpot and Salesforce'}`,
        `   total:        ${((Date.now() - t0) / 1000).toFixed(1)} s`,
        '',
      ].join('\n'),
    );
    if (options.serve) await serveDashboard(dir, urls, options);
  } finally {
    await stopEmulators(child);
  }
  if (!ok) process.exitCode = 1;
}

/**
 * `sluice serve` on the demo's config, with a made-up API token and an incremental run every 15 s,
 * until Ctrl-C (or SIGTERM): prints the dashboard's URL and the token to sign in with.
 */
async function serveDashboard(dir: string, urls: Urls, options: Options): Promise<void> {
  const serving: Serving = {
    token: randomBytes(16).toString('hex'),
    port: options.port,
    incrementalEvery: '15s',
  };
  writeConfig(dir, urls, options, options.incrementalRunDuration, serving);
  say('sluice serve: the runtime and the dashboard, until Ctrl-C');
  const serve = spawn(BIN, ['--config', join(dir, 'sluice.config.ts'), 'serve', '--log-level', 'info'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    // Its own process group: Ctrl-C reaches the demo, which stops serve once (a second signal would
    // make serve exit at once, without letting its runs checkpoint).
    detached: true,
  });
  const exited = new Promise<number | null>((r) => serve.once('exit', (code) => r(code)));
  // serve logs JSON lines; its 'listening' line carries the URL (the port may have been 0).
  const url = await new Promise<string | null>((resolveUrl) => {
    const lines = createInterface({ input: serve.stdout! });
    lines.on('line', (line) => {
      try {
        const { level: _level, time: _time, msg, ...fields } = JSON.parse(line) as Record<string, unknown>;
        if (typeof fields.url === 'string' && String(msg).startsWith('listening')) resolveUrl(fields.url);
        else info(`serve: ${msg} ${JSON.stringify(fields)}`);
      } catch {
        // Not a log line of serve's (nothing else writes there): ignored.
      }
    });
    void exited.then(() => resolveUrl(null));
  });
  if (url === null) throw new Error(`sluice serve exited with ${await exited} before it listened`);
  info(`dashboard: ${url}/`);
  info(`sign in with the API token ${serving.token}`);
  info('incremental runs every 15 s; Ctrl-C stops serve, then the emulators');
  const stop = () => serve.kill('SIGTERM');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const code = await exited;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  info(`sluice serve stopped (exit ${code})`);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
