import { DatabaseSync } from 'node:sqlite';
import type { Random } from './random.ts';

/** Fixed-width ISO-8601 with milliseconds and `Z`, so text order is time order. */
export const stamp = (ms: number): string => new Date(ms).toISOString();

/** Where the virtual clock starts; every `updated_at` the test writes is taken from it, never from wall time. */
export const CLOCK_START = Date.UTC(2025, 0, 1);

/** How far behind the newest `updated_at` a late commit may be stamped: well inside the 60 s lookback. */
export const MAX_LATENESS_MS = 20_000;

export const COLUMNS = ['id', 'email', 'company', 'version', 'updated_at'] as const;

export type Contact = {
  id: number;
  email: string | null;
  company: string | null;
  version: number;
  updated_at: string;
};

const COMPANIES = [
  'Acme',
  'Globex',
  'Initech',
  'Umbrella',
  'Hooli',
  'Zürich Rück AG',
  'O"Brien & Söhne',
  '株式会社テスト',
  'Tab\there',
  'Line\nbreak',
  '',
];

/** What one editing round did, for the log kept with a failure. */
export type RoundLog = {
  at: string;
  during: boolean;
  inserted: number;
  updated: number;
  late: number;
  tie: { rows: number; at: string } | null;
};

/**
 * The source side of the chaos test: a SQLite `contacts` table edited by a seeded writer in this
 * process, between runs and while a run is going. Every change bumps `version` (a new row starts at
 * 1), so a (id, version) pair names one content of one record.
 */
export class ChaosSource {
  private readonly db: DatabaseSync;
  private readonly random: Random;
  /** The virtual now. */
  now = CLOCK_START;
  /** The newest `updated_at` ever written (rows can move back in time; this never does). */
  newest = 0;
  /** The oldest `updated_at` an editing round wrote. */
  oldestEdit = Number.POSITIVE_INFINITY;
  private company = 0;

  constructor(path: string, random: Random) {
    this.db = new DatabaseSync(path, { timeout: 10_000 });
    this.db.exec(`PRAGMA journal_mode = WAL;
      CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, company TEXT, version INTEGER NOT NULL,
        updated_at TEXT NOT NULL)`);
    this.random = random;
  }

  /** The history before the first run: ids with gaps, in groups sharing one `updated_at`, all before the clock starts. */
  seed(count: number): void {
    const rows: [number, number][] = [];
    let id = 0;
    let at = CLOCK_START - 7_200_000;
    while (rows.length < count) {
      const group = this.random.logInt(1, 400);
      at += this.random.int(1, 30_000);
      for (let i = 0; i < group && rows.length < count; i++) {
        id += this.random.int(1, 3);
        rows.push([id, at]);
      }
    }
    const shift = CLOCK_START - 5_000 - rows.at(-1)![1];
    const insert = this.db.prepare('INSERT INTO contacts VALUES (?, ?, ?, 1, ?)');
    this.transaction(() => {
      for (const [rowId, rowAt] of rows)
        insert.run(rowId, this.email(rowId), this.companyName(), stamp(rowAt + shift));
    });
    this.newest = CLOCK_START - 5_000;
  }

  /**
   * One editing round. Between runs the clock moves 1 s; during a run it moves 0 or 250 ms, so some
   * changes share the `updated_at` of rows a running batch has already read past.
   */
  round(during: boolean): RoundLog {
    this.now += during ? this.random.pick([0, 250]) : 1000;
    const log: RoundLog = { at: stamp(this.now), during, inserted: 0, updated: 0, late: 0, tie: null };
    log.inserted = this.insert(this.random.int(0, 25), this.now);
    log.updated = this.update(this.random.int(0, 50), this.now);
    if (this.random.chance(0.5)) {
      const late = this.random.int(1, 12);
      for (let i = 0; i < late; i++) {
        const at = this.newest - this.random.int(1, MAX_LATENESS_MS);
        log.late += this.random.chance(0.25) ? this.insert(1, at) : this.update(1, at);
      }
    }
    if (this.random.chance(0.2)) {
      const late = this.random.chance(0.3);
      const at = late ? this.newest - this.random.int(1, MAX_LATENESS_MS) : this.now;
      log.tie = { rows: this.tie(this.random.logInt(150, 3000), at), at: stamp(at) };
    }
    return log;
  }

  /** New rows: most after the highest id, some filling a gap below it. */
  private insert(count: number, at: number): number {
    const add = this.db.prepare('INSERT INTO contacts VALUES (?, ?, ?, 1, ?)');
    let added = 0;
    this.transaction(() => {
      for (let i = 0; i < count; i++) {
        const id = this.random.chance(0.2) ? this.gapAfter(this.randomId()) : this.maxId() + 1;
        if (id === null) continue;
        add.run(id, this.email(id), this.companyName(), stamp(at));
        added += 1;
      }
    });
    this.saw(at);
    return added;
  }

  /** New content for existing rows, one transaction. */
  private update(count: number, at: number): number {
    const set = this.db.prepare(
      'UPDATE contacts SET version = version + 1, email = ?, company = ?, updated_at = ? WHERE id = ?',
    );
    let changed = 0;
    this.transaction(() => {
      for (let i = 0; i < count; i++) {
        const id = this.existingFrom(this.randomId());
        if (id === null) continue;
        changed += Number(set.run(this.email(id), this.companyName(), stamp(at), id).changes);
      }
    });
    this.saw(at);
    return changed;
  }

  /** Many rows stamped with one identical `updated_at` in one statement: a run of ids, or every n-th id. */
  private tie(count: number, at: number): number {
    const company = this.companyName();
    const from = this.existingFrom(this.randomId()) ?? 1;
    const result = this.random.chance(0.5)
      ? this.db
          .prepare(
            `UPDATE contacts SET version = version + 1, company = ?, updated_at = ?
             WHERE id IN (SELECT id FROM contacts WHERE id >= ? ORDER BY id LIMIT ?)`,
          )
          .run(company, stamp(at), from, count)
      : this.db
          .prepare(
            `UPDATE contacts SET version = version + 1, company = ?, updated_at = ?
             WHERE id IN (SELECT id FROM contacts WHERE id % ? = ? ORDER BY id LIMIT ?)`,
          )
          .run(company, stamp(at), this.random.int(2, 5), this.random.int(0, 1), count);
    this.saw(at);
    return Number(result.changes);
  }

  private saw(at: number): void {
    this.newest = Math.max(this.newest, at);
    this.oldestEdit = Math.min(this.oldestEdit, at);
  }

  private maxId(): number {
    return Number((this.db.prepare('SELECT max(id) AS m FROM contacts').get() as { m: number }).m);
  }

  private randomId(): number {
    return this.random.int(1, this.maxId());
  }

  private existingFrom(id: number): number | null {
    const row = this.db.prepare('SELECT id FROM contacts WHERE id >= ? ORDER BY id LIMIT 1').get(id);
    return row ? Number(row.id) : null;
  }

  private gapAfter(id: number): number | null {
    const row = this.db
      .prepare(
        'SELECT c.id + 1 AS id FROM contacts c WHERE c.id >= ? AND NOT EXISTS (SELECT 1 FROM contacts d WHERE d.id = c.id + 1) ORDER BY c.id LIMIT 1',
      )
      .get(id);
    return row ? Number(row.id) : null;
  }

  private email(id: number): string | null {
    if (this.random.chance(0.03)) return null;
    const name = this.random.pick(['ada', 'grace', 'alan', 'edsger', 'barbara', 'zoë', 'łukasz']);
    return `${name}.${id}.${this.random.int(0, 999_999)}@example.com`;
  }

  private companyName(): string | null {
    if (this.random.chance(0.03)) return null;
    this.company += 1;
    return `${this.random.pick(COMPANIES)} #${this.company}`;
  }

  private transaction(fn: () => void): void {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      fn();
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}

/** Every row of a contacts table in key order. */
export function readContacts(path: string, table = 'contacts'): Contact[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db
      .prepare(`SELECT ${COLUMNS.join(', ')} FROM "${table}" ORDER BY id`)
      .all()
      .map((r) => ({ ...r }) as Contact);
  } finally {
    db.close();
  }
}
