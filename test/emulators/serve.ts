/**
 * Runs emulators in a process of their own (for benchmarks and demos, so they do not share the
 * event loop with the code being measured). Dev-only.
 *
 *   node test/emulators/serve.ts --hubspot 200000 --salesforce 2
 *
 * Prints one JSON line `{ hubspot: url, salesforce: [url, …] }` once listening; exits when stdin closes.
 * Each emulator answers `GET /_emulator/count` (no token) with its number of contacts.
 */
import { parseArgs } from 'node:util';
import { startHubSpotEmulator } from './hubspot.ts';
import { startSalesforceEmulator } from './salesforce.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { hubspot: { type: 'string', default: '0' }, salesforce: { type: 'string', default: '1' } },
  });
  const hubspot = await startHubSpotEmulator({ contacts: Number(values.hubspot) });
  const salesforce = await Promise.all(
    Array.from({ length: Number(values.salesforce) }, () => startSalesforceEmulator()),
  );
  process.stdout.write(
    `${JSON.stringify({ hubspot: hubspot.url, salesforce: salesforce.map((s) => s.url) })}\n`,
  );
  const stop = async () => {
    await Promise.all([hubspot.server.close(), ...salesforce.map((s) => s.server.close())]);
    process.exit(0);
  };
  process.stdin.on('end', () => void stop());
  process.stdin.on('close', () => void stop());
  process.stdin.resume();
  process.on('SIGTERM', () => void stop());
}

void main();
