import type { CheckFinding, SyncShape } from '../../core/ports.ts';
import { createPool, describeTable, withClient } from './client.ts';
import { createTableSql } from './create.ts';
import { describePgError } from './errors.ts';
import { qualified, selectUniqueKeys } from './sql.ts';
import type { PostgresTargetOptions } from './target.ts';

/** The privilege each write mode needs on the target table. */
const NEEDED: Record<PostgresTargetOptions['mode'], string[]> = {
  upsert: ['INSERT', 'UPDATE'],
  insert: ['INSERT'],
  update: ['UPDATE'],
};

/**
 * A PostgreSQL target as `sluice check` sees it, by catalog queries only (opening the target may
 * create its table): the credentials, the table or the right to create it, the key's columns and
 * unique index, and the privileges its mode needs.
 */
export async function checkPostgresTarget(
  connection: { url: string },
  options: PostgresTargetOptions,
  shape: SyncShape,
): Promise<CheckFinding[]> {
  const schema = options.schema ?? 'public';
  const name = `table ${schema}.${options.table}`;
  const pool = createPool(connection.url, 1);
  try {
    return await withClient(pool, 'checking the target', async (client) => {
      const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1) AS oid', [
        qualified(schema, options.table),
      ]);
      if (!exists.rows[0]?.oid) {
        if (options.create === false)
          return [{ level: 'problem', message: `${name} does not exist and create is false: create it` }];
        try {
          createTableSql(schema, options.table, shape.sourceSchema, shape.key);
        } catch (err) {
          return [{ level: 'problem', message: (err as Error).message }];
        }
        const { rows } = await client.query<{ ok: boolean | null }>(
          "SELECT has_schema_privilege(current_user, $1, 'CREATE') AS ok",
          [schema],
        );
        return rows[0]?.ok
          ? [{ level: 'ok', message: `${name} does not exist yet: the first write creates it` }]
          : [
              {
                level: 'problem',
                message: `${name} does not exist, and this user may not create it in schema ${schema}`,
              },
            ];
      }
      const columns = (await describeTable(client, schema, options.table)).map((c) => c.name);
      const findings: CheckFinding[] = [];
      const missing = shape.key.filter((k) => !columns.includes(k));
      if (missing.length > 0)
        findings.push({
          level: 'problem',
          message: `${name} has no key column ${missing.map((m) => `"${m}"`).join(', ')}`,
        });
      if (options.mode !== 'update' && missing.length === 0) {
        const { rows } = await client.query<{ cols: string[] }>(selectUniqueKeys, [
          qualified(schema, options.table),
        ]);
        const wanted = [...shape.key].sort().join('\u0000');
        if (!rows.some((r) => [...r.cols].sort().join('\u0000') === wanted))
          findings.push({
            level: 'problem',
            message: `${name} has no PRIMARY KEY or UNIQUE index on (${shape.key.join(', ')}); writes by key need one`,
          });
      }
      const { rows } = await client.query<{ privilege: string; ok: boolean }>(
        'SELECT p AS privilege, has_table_privilege(current_user, $1, p) AS ok FROM unnest($2::text[]) AS p',
        [qualified(schema, options.table), NEEDED[options.mode]],
      );
      const refused = rows.filter((r) => !r.ok).map((r) => r.privilege);
      if (refused.length > 0)
        findings.push({
          level: 'problem',
          message: `${name}: this user lacks ${refused.join(' and ')} (mode ${options.mode})`,
        });
      if (findings.length === 0)
        findings.push({
          level: 'ok',
          message: `${name} exists${options.mode === 'update' ? '' : `, unique on (${shape.key.join(', ')})`}, ${NEEDED[options.mode].join(' and ')} allowed`,
        });
      return findings;
    });
  } catch (err) {
    return [{ level: 'problem', message: `${name}: ${describePgError(err)}` }];
  } finally {
    await pool.end();
  }
}
