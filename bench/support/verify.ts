import { createHash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Row count and a SHA-256 over every column of every row in key order, each value tagged with its
 * SQLite storage class, so `1`, `1.0` and `'1'` differ. Two tables with the same digest hold the same data.
 */
export function tableDigest(
  dbPath: string,
  table: string,
  columns: readonly string[],
  key: string,
): { rows: number; sha256: string } {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    // Each value with its storage class as SQLite reports it: INTEGER 1 and REAL 1.0 read back alike in JS.
    const select = columns.map((c) => `typeof(${quoteIdent(c)}), ${quoteIdent(c)}`).join(', ');
    const stmt = db.prepare(`SELECT ${select} FROM ${quoteIdent(table)} ORDER BY ${quoteIdent(key)}`);
    stmt.setReturnArrays(true);
    const hash = createHash('sha256');
    let rows = 0;
    for (const row of stmt.iterate() as Iterable<unknown[]>) {
      let line = '';
      for (const value of row) line += `${String(value)}\u0001`;
      hash.update(`${line}\n`);
      rows += 1;
    }
    return { rows, sha256: hash.digest('hex') };
  } finally {
    db.close();
  }
}

export function columnsOf(dbPath: string, table: string): string[] {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    return db
      .prepare('SELECT name FROM pragma_table_info(?) ORDER BY cid')
      .all(table)
      .map((r) => String(r.name));
  } finally {
    db.close();
  }
}
