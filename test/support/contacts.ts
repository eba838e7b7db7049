import { createHash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';

export type ContactOptions = {
  /** First id; ids run from here. @defaultValue 1 */
  firstId?: number;
  /** How many consecutive ids share one `updated_at` second. @defaultValue 1000 */
  perSecond?: number;
  /** The `updated_at` of the first group. @defaultValue 2024-01-01T00:00:00Z */
  start?: number;
};

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Margaret', 'Dennis'];
const LAST = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Dijkstra',
  'Liskov',
  'Knuth',
  'Allen',
  'Thompson',
  'Hamilton',
  'Ritchie',
];

export const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

/** Creates (or extends) a `contacts` table with deterministic rows; many share one `updated_at`. */
export function seedContacts(path: string, count: number, options: ContactOptions = {}): void {
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = WAL;
    CREATE TABLE IF NOT EXISTS contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT,
      company TEXT, score REAL, updated_at TEXT NOT NULL)`);
  const first = options.firstId ?? 1;
  const perSecond = options.perSecond ?? 1000;
  const start = options.start ?? Date.UTC(2024, 0, 1);
  const insert = db.prepare('INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?)');
  db.exec('BEGIN');
  for (let i = 0; i < count; i++) {
    const id = first + i;
    const fn = FIRST[id % FIRST.length]!;
    const ln = LAST[Math.floor(id / 10) % LAST.length]!;
    const updated = iso(start + Math.floor(i / perSecond) * 1000);
    insert.run(
      id,
      fn,
      ln,
      `${fn}.${ln}.${id}@example.com`.toLowerCase(),
      `Company ${id % 97}`,
      (id % 1000) / 10,
      updated,
    );
  }
  db.exec('COMMIT');
  db.close();
}

/** Runs statements against a database file, e.g. to change the source mid-test. */
export function execSql(path: string, sql: string, ...params: (string | number | null)[]): void {
  const db = new DatabaseSync(path);
  try {
    if (params.length) db.prepare(sql).run(...params);
    else db.exec(sql);
  } finally {
    db.close();
  }
}

export type Digest = { count: number; hash: string; keys: number };

/** Row count, distinct keys and a hash of every row's content in key order. */
export function digest(
  path: string,
  table = 'contacts',
  columns = 'id, first_name, last_name, email, company, score, updated_at',
): Digest {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const hash = createHash('sha256');
    let count = 0;
    for (const row of db.prepare(`SELECT ${columns} FROM "${table}" ORDER BY id`).iterate()) {
      hash.update(JSON.stringify(Object.values(row)));
      hash.update('\n');
      count += 1;
    }
    const keys = Number(
      (db.prepare(`SELECT count(DISTINCT id) AS n FROM "${table}"`).get() as { n: number }).n,
    );
    return { count, hash: hash.digest('hex'), keys };
  } finally {
    db.close();
  }
}
