/**
 * Runs emulators in a process of their own (for benchmarks and demos, so they do not share the
 * event loop with the code being measured). Dev-only; the emulators are not the real services.
 *
 *   node test/emulators/serve.ts --hubspot 200000 --salesforce 2
 *   node test/emulators/serve.ts --hubspot 1000000 --realistic --per-second 500 --invalid-emails 7 \
 *     --hubspot-rate-limit 190/10000 --search-rate-limit 4/1000
 *
 * `--realistic` seeds names, emails, companies, titles, phones and cities (test/emulators/people.ts)
 * instead of contact1@example.com…; `--hubspot-rate-limit n/ms` answers 429 past n requests in any
 * window (rolling, no Retry-After, as HubSpot documents), `--search-rate-limit n/ms` the search API's
 * own limit, `--search-lag ms` how long the search index lags writes, `--connection-cap n` at most
 * n records a second on each TCP connection, on every emulator (off by default).
 * Prints one JSON line `{ hubspot: url, salesforce: [url, …], invalidEmails: [ids] }` once
 * listening; exits when stdin closes or on SIGTERM. Each emulator answers `GET /_emulator/count`,
 * `GET /_emulator/stats`, `PUT /_emulator/rate-limit` and `PUT /_emulator/connection-cap` (no token;
 * emulator controls, not API).
 */
import { parseArgs } from 'node:util';
import { startHubSpotEmulator } from './hubspot.ts';
import { seedContacts } from './people.ts';
import { startSalesforceEmulator } from './salesforce.ts';

function limitOf(v: string | undefined): { requests: number; windowMs: number } | null {
  if (!v) return null;
  const m = /^(\d+)\/(\d+)$/.exec(v);
  if (!m) throw new Error(`expected <requests>/<ms>, got ${v}`);
  return { requests: Number(m[1]), windowMs: Number(m[2]) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      hubspot: { type: 'string', default: '0' },
      salesforce: { type: 'string', default: '1' },
      realistic: { type: 'boolean', default: false },
      'per-second': { type: 'string', default: '500' },
      'invalid-emails': { type: 'string', default: '0' },
      'hubspot-rate-limit': { type: 'string' },
      'search-rate-limit': { type: 'string' },
      'search-lag': { type: 'string', default: '0' },
      'connection-cap': { type: 'string' },
    },
  });
  const contacts = Number(values.hubspot);
  const hubspot = await startHubSpotEmulator({
    contacts: values.realistic ? 0 : contacts,
    searchLagMs: Number(values['search-lag']),
  });
  const invalidEmails = values.realistic
    ? seedContacts(hubspot, contacts, {
        perSecond: Number(values['per-second']),
        invalidEmails: Number(values['invalid-emails']),
      })
    : [];
  const burst = limitOf(values['hubspot-rate-limit']);
  if (burst) hubspot.server.faults.rateLimit = burst;
  hubspot.searchRateLimit = limitOf(values['search-rate-limit']);
  const salesforce = await Promise.all(
    Array.from({ length: Number(values.salesforce) }, () => startSalesforceEmulator()),
  );
  const cap = values['connection-cap'] ? Number(values['connection-cap']) : 0;
  if (!(cap >= 0))
    throw new Error(`--connection-cap: expected records per second, got ${values['connection-cap']}`);
  if (cap > 0)
    for (const emu of [hubspot, ...salesforce]) emu.server.faults.connectionCap = { recordsPerSecond: cap };
  process.stdout.write(
    `${JSON.stringify({ hubspot: hubspot.url, salesforce: salesforce.map((s) => s.url), invalidEmails })}\n`,
  );
  const stop = async () => {
    await Promise.all([hubspot.server.close(), ...salesforce.map((s) => s.server.close())]);
    process.exit(0);
  };
  process.stdin.on('end', () => void stop());
  process.stdin.on('close', () => void stop());
  process.stdin.resume();
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

void main();
