import type { DatabaseSync, StatementSync } from 'node:sqlite';

/** What the store asks of its connection: statements to run, and SQL to execute as it is. */
export type Connection = { exec(sql: string): void; prepare(sql: string): StatementSync };

/**
 * node:sqlite compiles a statement anew at every `prepare`, which costs more than running most of
 * the store's statements: each text is compiled once per connection and reused. The store's SQL is
 * a fixed set of constants (never built from values), so the cache stays as small as that set.
 */
export function cachedStatements(db: DatabaseSync): Connection {
  const statements = new Map<string, StatementSync>();
  return {
    exec: (sql) => db.exec(sql),
    prepare(sql) {
      let statement = statements.get(sql);
      if (!statement) {
        statement = db.prepare(sql);
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}
