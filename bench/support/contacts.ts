import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';

export type GenerateContactsOptions = {
  /** Table to write, created if absent; rows are appended to an existing one. @defaultValue 'contacts' */
  table?: string;
  /** Seed of the pseudo-random generator; the same seed gives the same rows. @defaultValue 1 */
  seed?: number;
  /**
   * Average number of rows sharing one `updated_at` second. Seconds are drawn at random over the
   * span this implies, so ties are scattered across ids, not in id order. @defaultValue 2000
   */
  rowsPerSecond?: number;
  /** The earliest `updated_at`, ISO. @defaultValue '2024-01-01T00:00:00Z' */
  since?: string;
  /** First id; ids are consecutive from it. @defaultValue 1 */
  firstId?: number;
};

export const CONTACT_COLUMNS = [
  'id',
  'first_name',
  'last_name',
  'email',
  'company',
  'phone',
  'city',
  'country',
  'created_at',
  'updated_at',
] as const;

const FIRST = (
  'James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan Joseph ' +
  'Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy Anthony Betty Mark Sandra Paul Ashley Steven ' +
  'Kimberly Andrew Emily Joshua Donna Kenneth Michelle Kevin Carol Brian Amanda George Melissa Timothy Deborah ' +
  'Amelie Lucas Sofia Mateo Chloe Noah Yuki Hiroshi Aisha Omar Ingrid Lars Priya Arjun Zoe Hugo'
).split(' ');
const LAST = (
  'Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson ' +
  'Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis ' +
  'Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera ' +
  'Campbell Mitchell Carter Roberts Dubois Muller Rossi Tanaka Kowalski Jensen Silva Novak Schmidt'
).split(' ');
const COMPANY_A =
  'Acme Globex Initech Umbrella Stark Wayne Hooli Vandelay Soylent Cyberdyne Tyrell Wonka Aperture Monarch Oscorp Massive Dynamic Pied Piper Gekko Nakatomi'.split(
    ' ',
  );
const COMPANY_B = ['Inc', 'LLC', 'Ltd', 'GmbH', 'Group', 'Labs', 'Systems', 'Partners', 'Holdings', 'Co'];
const DOMAINS = ['example.com', 'mail.test', 'inbox.example', 'corp.example', 'post.test', 'example.org'];
const PLACES: readonly (readonly [string, string])[] = [
  ['New York', 'US'],
  ['Chicago', 'US'],
  ['Austin', 'US'],
  ['Seattle', 'US'],
  ['Toronto', 'CA'],
  ['Montreal', 'CA'],
  ['London', 'GB'],
  ['Manchester', 'GB'],
  ['Paris', 'FR'],
  ['Lyon', 'FR'],
  ['Berlin', 'DE'],
  ['Munich', 'DE'],
  ['Madrid', 'ES'],
  ['Lisbon', 'PT'],
  ['Rome', 'IT'],
  ['Amsterdam', 'NL'],
  ['Stockholm', 'SE'],
  ['Warsaw', 'PL'],
  ['Tokyo', 'JP'],
  ['Osaka', 'JP'],
  ['Sydney', 'AU'],
  ['Sao Paulo', 'BR'],
  ['Mexico City', 'MX'],
  ['Bangalore', 'IN'],
];

const ROWS_PER_INSERT = 500;
const DAY_MS = 86_400_000;

/** mulberry32: small, fast, seedable; good enough to make test data look varied. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Creates `count` realistic contacts in the SQLite file at `dbPath` (created if absent), in one
 * transaction with multi-row inserts: a million rows take a few seconds. `updated_at` values are
 * whole seconds where about `rowsPerSecond` rows share each one, to exercise keyset ties.
 */
export function generateContacts(dbPath: string, count: number, options: GenerateContactsOptions = {}): void {
  const table = quoteIdent(options.table ?? 'contacts');
  const next = random(options.seed ?? 1);
  const rowsPerSecond = Math.max(1, options.rowsPerSecond ?? 2000);
  const since = Date.parse(options.since ?? '2024-01-01T00:00:00Z');
  const seconds = Math.max(1, Math.ceil(count / rowsPerSecond));
  const firstId = options.firstId ?? 1;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;

  mkdirSync(dirname(dbPath), { recursive: true });
  const db = new DatabaseSync(dbPath);
  try {
    db.exec('PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF');
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${table} (id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL, ` +
        'email TEXT NOT NULL, company TEXT, phone TEXT, city TEXT, country TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)',
    );
    const width = CONTACT_COLUMNS.length;
    const tuple = `(${CONTACT_COLUMNS.map(() => '?').join(', ')})`;
    const insertSql = (rows: number) =>
      `INSERT INTO ${table} (${CONTACT_COLUMNS.map(quoteIdent).join(', ')}) VALUES ${Array(rows).fill(tuple).join(', ')}`;
    const full = db.prepare(insertSql(ROWS_PER_INSERT));
    const values: SQLInputValue[] = new Array(ROWS_PER_INSERT * width);
    db.exec('BEGIN');
    for (let done = 0; done < count; ) {
      const rows = Math.min(ROWS_PER_INSERT, count - done);
      if (rows < ROWS_PER_INSERT) values.length = rows * width;
      for (let r = 0, n = 0; r < rows; r++) {
        const id = firstId + done + r;
        const first = pick(FIRST);
        const last = pick(LAST);
        const [city, country] = pick(PLACES);
        const updated = since + Math.floor(next() * seconds) * 1000;
        const created = updated - Math.floor(next() * 900) * DAY_MS - Math.floor(next() * 86_400) * 1000;
        values[n++] = id;
        values[n++] = first;
        values[n++] = last;
        values[n++] = `${first}.${last}${id}@${pick(DOMAINS)}`.toLowerCase();
        values[n++] = next() < 0.1 ? null : `${pick(COMPANY_A)} ${pick(COMPANY_B)}`;
        values[n++] =
          next() < 0.2 ? null : `+1-555-${String(Math.floor(next() * 10_000_000)).padStart(7, '0')}`;
        values[n++] = city;
        values[n++] = country;
        values[n++] = new Date(created).toISOString().replace('.000Z', 'Z');
        values[n++] = new Date(updated).toISOString().replace('.000Z', 'Z');
      }
      (rows === ROWS_PER_INSERT ? full : db.prepare(insertSql(rows))).run(...values);
      done += rows;
    }
    db.exec('COMMIT');
    db.exec(
      `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${options.table ?? 'contacts'}_updated_at`)} ON ${table} (updated_at, id)`,
    );
  } finally {
    db.close();
  }
}
