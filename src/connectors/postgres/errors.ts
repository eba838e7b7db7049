import { ConnectorError } from '../../core/errors.ts';
import { fieldReason } from '../../core/values.ts';

/**
 * The one place the PostgreSQL connector decides what an error means, by SQLSTATE:
 * - `record`: one row's values are at fault (data exception, constraint, a key twice in one
 *   statement); the target isolates the row and rejects it, the batch goes on;
 * - `retryable`: the server or the connection is momentarily unwell; the run fails and a later
 *   run resumes from the last checkpoint (or a caller retries);
 * - `fatal`: the sync is misconfigured (missing table, permission); retrying will not help.
 */
export type PgErrorKind = 'record' | 'retryable' | 'fatal';

const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57014', // query_canceled (statement_timeout)
  '57P01', // admin_shutdown (pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering)
  '58000', // system_error
  '58030', // io_error
]);
// 08: connection exception; 53: insufficient resources (too many connections, disk full, out of memory).
const RETRYABLE_CLASSES: ReadonlySet<string> = new Set(['08', '53']);
// 22: data exception (bad input, out of range); 23: integrity constraint violation.
const RECORD_CLASSES: ReadonlySet<string> = new Set(['22', '23']);
const RECORD_CODES: ReadonlySet<string> = new Set(['21000']); // ON CONFLICT touching one row twice
// Node's socket errors carry these instead of a SQLSTATE.
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
]);

export function sqlstateOf(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

export function classifyPgError(err: unknown): PgErrorKind {
  if (err instanceof PostgresError) return err.kind;
  const state = sqlstateOf(err);
  if (state) {
    if (RECORD_CODES.has(state) || RECORD_CLASSES.has(state.slice(0, 2))) return 'record';
    if (RETRYABLE_CODES.has(state) || RETRYABLE_CLASSES.has(state.slice(0, 2))) return 'retryable';
    return 'fatal';
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return 'retryable';
  const message = err instanceof Error ? err.message : String(err);
  // node-postgres reports a socket closed under a query without a code.
  return /connection terminated|connection ended|not queryable|socket/i.test(message) ? 'retryable' : 'fatal';
}

export class PostgresError extends ConnectorError {
  readonly sqlstate: string | null;
  readonly kind: PgErrorKind;
  get retryable(): boolean {
    return this.kind === 'retryable';
  }
  constructor(message: string, err: unknown) {
    const sqlstate = sqlstateOf(err);
    const kind = classifyPgError(err);
    const code = sqlstate ? `PG_${sqlstate}` : kind === 'retryable' ? 'PG_CONNECTION_LOST' : 'PG_ERROR';
    super(code, message, { cause: err, transient: kind === 'retryable' });
    this.name = 'PostgresError';
    this.sqlstate = sqlstate;
    this.kind = kind;
  }
}

/** Wraps a driver error with what Sluice was doing, keeping the SQLSTATE in the code. */
export function pgError(doing: string, err: unknown): PostgresError {
  if (err instanceof PostgresError) return err;
  return new PostgresError(`${doing}: ${describePgError(err)}`, err);
}

/**
 * PostgreSQL's message with its detail, as a user would want it in a dead letter, led by the field
 * at fault where the server names it (a COPY names the column of the value it could not read).
 */
export function describePgError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const { detail, where, column } = err as { detail?: unknown; where?: unknown; column?: unknown };
  const message = typeof detail === 'string' && detail ? `${err.message} (${detail})` : err.message;
  const field =
    (typeof where === 'string'
      ? /^COPY .*?, line \d+, column (.+?)(?:: "|$)/m.exec(where)?.[1]
      : undefined) ?? (typeof column === 'string' ? column : undefined);
  return field === undefined ? message : fieldReason(field, message);
}
