import { DatabaseSync } from 'node:sqlite';
import type { Random } from './random.ts';

/**
 * Edits `contacts` tables made by test/support/contacts.ts while syncs read them: new rows after the
 * highest id and new content for existing ones, each commit stamped with the wall clock's `updated_at`
 * (ISO with milliseconds, later than every seeded row), as an application writing its own table would.
 */
export class ContactsWriter {
  private readonly dbs = new Map<string, DatabaseSync>();
  private readonly random: Random;
  private serial = 0;
  inserted = 0;
  updated = 0;
  /** When the last commit ended (epoch ms); 0 before the first. */
  lastCommitAt = 0;

  constructor(random: Random) {
    this.random = random;
  }

  /** One transaction on the table at `path`: a few inserts and updates. */
  edit(path: string): { inserted: number; updated: number } {
    const db = this.open(path);
    const inserts = this.random.int(0, 5);
    const updates = this.random.int(1, 25);
    let updated = 0;
    db.exec('BEGIN IMMEDIATE');
    try {
      const at = new Date().toISOString();
      const max = Number((db.prepare('SELECT max(id) AS m FROM contacts').get() as { m: number }).m);
      const add = db.prepare('INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?)');
      for (let i = 1; i <= inserts; i++) {
        const id = max + i;
        add.run(id, 'New', `Contact ${id}`, `new.${id}@example.com`, this.company(), this.score(), at);
      }
      const set = db.prepare(
        'UPDATE contacts SET email = ?, company = ?, score = ?, updated_at = ? WHERE id = ?',
      );
      for (let i = 0; i < updates; i++) {
        const id = this.random.int(1, max);
        updated += Number(
          set.run(`edit.${id}.${++this.serial}@example.com`, this.company(), this.score(), at, id).changes,
        );
      }
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
    this.lastCommitAt = Date.now();
    this.inserted += inserts;
    this.updated += updated;
    return { inserted: inserts, updated };
  }

  private open(path: string): DatabaseSync {
    let db = this.dbs.get(path);
    if (!db) {
      db = new DatabaseSync(path, { timeout: 10_000 });
      this.dbs.set(path, db);
    }
    return db;
  }

  private company(): string | null {
    return this.random.chance(0.05) ? null : `Company ${this.random.int(0, 96)} (edited)`;
  }

  private score(): number {
    return this.random.int(0, 9999) / 10;
  }

  close(): void {
    for (const db of this.dbs.values()) if (db.isOpen) db.close();
    this.dbs.clear();
  }
}
