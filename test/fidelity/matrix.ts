import type pg from 'pg';
import type { DeadLetter } from '../../src/core/ports.ts';
import type { Workspace } from '../../src/runtime/workspace.ts';

/**
 * What one path did with one type family, over the rows whose source value is not NULL:
 * `equal` (every row arrived with the source's value), or a list of what else happened —
 * `dead letter: <rows>` (refused, the reason naming this field), `CHANGED: <rows>` (arrived with
 * another value), `LOST: <rows>` (neither arrived nor dead-lettered), `run failed: <error>`.
 */
export type Cell = string;

/** A path's outcome per row: its target values (column → text), or the dead letter that set it aside. */
export type Landing = {
  /** Target rows by id, each column's `::text` (null for NULL). */
  rows: Map<number, Record<string, string | null>>;
  /** Dead letters by the id of their record. */
  letters: Map<number, DeadLetter>;
  /** Why the path could not run at all, if it could not. */
  failed: string | null;
};

/** Runs syncs one after the other, each until it has read everything; the first failure stops the path. */
export async function runPath(ws: Workspace, syncs: readonly string[]): Promise<string | null> {
  for (const sync of syncs) {
    try {
      await ws.run(sync, { trigger: 'run', stopAfterBackfill: true });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return `${sync}: ${e.code ?? 'ERROR'} ${e.message ?? String(err)}`;
    }
  }
  return null;
}

/** Each column of `table` as text, by id. */
export async function textRows(
  client: pg.ClientBase,
  table: string,
  columns: readonly string[],
): Promise<Map<number, Record<string, string | null>>> {
  const list = columns.map((c) => `${c}::text AS ${c}`).join(', ');
  const { rows } = await client.query(`SELECT id::int AS id, ${list} FROM ${table} ORDER BY id`);
  return new Map(rows.map((r) => [r.id as number, r as Record<string, string | null>]));
}

export async function lettersOf(ws: Workspace, syncs: readonly string[]): Promise<Map<number, DeadLetter>> {
  const letters = new Map<number, DeadLetter>();
  for (const sync of syncs) {
    for (const letter of await ws.store.listDeadLetters({ sync, limit: 1000 })) {
      // A record the source could not read (its key unknown) is checked on its own.
      if (Array.isArray(letter.key)) letters.set(Number(letter.key[0]), letter);
    }
  }
  return letters;
}

/** The field a dead letter's reason names (`field "x": …`), or null. */
export const fieldOf = (letter: DeadLetter): string | null =>
  /field "([^"]+)"/.exec(letter.reason)?.[1] ?? null;

/**
 * The cell of `column` on one path: each source row with a non-null value is compared with what
 * arrived (`expected` gives the text the target must hold) or with the dead letter that set it aside.
 */
export function cellOf(
  column: string,
  source: readonly { id: number; label: string; expected: string | null }[],
  landing: Landing,
): Cell {
  if (landing.failed) return `run failed: ${landing.failed.slice(0, 200)}`;
  const outcome: Record<'dead letter' | 'CHANGED' | 'LOST', string[]> = {
    'dead letter': [],
    CHANGED: [],
    LOST: [],
  };
  for (const row of source) {
    const arrived = landing.rows.get(row.id);
    const letter = landing.letters.get(row.id);
    if (arrived) {
      if (row.expected === null && arrived[column] === null) continue;
      if (arrived[column] !== row.expected) outcome.CHANGED.push(row.label);
    } else if (letter) {
      // A letter naming no field is reported once for its row (`unnamed`), not in every cell.
      if (fieldOf(letter) === column) outcome['dead letter'].push(row.label);
    } else if (row.expected !== null) outcome.LOST.push(row.label);
  }
  const parts = Object.entries(outcome)
    .filter(([, rows]) => rows.length > 0)
    .map(([what, rows]) => `${what}: ${rows.join(', ')}`);
  return parts.length === 0 ? 'equal' : parts.join('; ');
}

/** Dead letters whose reason names no field: `<label>: <reason>`, one per row. */
export function unnamed(landing: Landing, labels: ReadonlyMap<number, string>): string[] {
  return [...landing.letters]
    .filter(([, letter]) => fieldOf(letter) === null)
    .map(([id, letter]) => `${labels.get(id) ?? id}: ${letter.reason}`);
}

/** The matrix as a markdown table, families down, paths across, for a failure message or a README. */
export function markdown(matrix: Record<string, Record<string, Cell>>): string {
  const paths = Object.keys(matrix);
  const families = Object.keys(matrix[paths[0]!] ?? {});
  const lines = [`| family | ${paths.join(' | ')} |`, `| --- | ${paths.map(() => '---').join(' | ')} |`];
  for (const family of families)
    lines.push(`| ${family} | ${paths.map((p) => matrix[p]![family]).join(' | ')} |`);
  return lines.join('\n');
}
