import type { Checkpoint, DeadLetter, RequestStatus, RunRecord, RunRequest } from '../core/ports.ts';
import type { Cursor, Json, Phase, RunStatus, RunTrigger } from '../core/types.ts';

/** Maps between store rows (snake_case, JSON as text) and the port's types; shared by every store. */

type DbRow = Record<string, unknown>;

const num = (v: unknown): number => Number(v ?? 0);
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const json = (v: unknown): Json | null =>
  v === null || v === undefined ? null : (JSON.parse(String(v)) as Json);

export const toJsonText = (v: Cursor | Json | null): string | null => (v === null ? null : JSON.stringify(v));

export function checkpointFromRow(row: DbRow): Checkpoint {
  return {
    sync: String(row.sync),
    phase: row.phase as Phase,
    cursor: json(row.cursor),
    highWaterMark: json(row.high_water_mark),
    totals: {
      batches: num(row.batches),
      read: num(row.records_read),
      written: num(row.records_written),
      rejected: num(row.records_rejected),
    },
    backfillDone: num(row.backfill_done),
    backfillEstimate: row.backfill_estimate === null ? null : num(row.backfill_estimate),
    backfillStartedAt: str(row.backfill_started_at),
    backfillEndedAt: str(row.backfill_ended_at),
    updatedAt: String(row.updated_at),
  };
}

export function checkpointParams(cp: Checkpoint): Record<string, string | number | null> {
  return {
    sync: cp.sync,
    phase: cp.phase,
    cursor: toJsonText(cp.cursor),
    hwm: toJsonText(cp.highWaterMark),
    batches: cp.totals.batches,
    read: cp.totals.read,
    written: cp.totals.written,
    rejected: cp.totals.rejected,
    backfillDone: cp.backfillDone,
    backfillEstimate: cp.backfillEstimate,
    backfillStartedAt: cp.backfillStartedAt,
    backfillEndedAt: cp.backfillEndedAt,
    updatedAt: cp.updatedAt,
  };
}

export function runFromRow(row: DbRow): RunRecord {
  return {
    id: num(row.id),
    sync: String(row.sync),
    trigger: row.trigger as RunTrigger,
    status: row.status as RunStatus,
    phase: row.phase as Phase,
    startedAt: String(row.started_at),
    endedAt: str(row.ended_at),
    counters: {
      batches: num(row.batches),
      read: num(row.records_read),
      written: num(row.records_written),
      rejected: num(row.records_rejected),
    },
    more: row.more === null || row.more === undefined ? null : Boolean(row.more),
    errorCode: str(row.error_code),
    errorMessage: str(row.error_message),
    holder: String(row.holder),
    lane: str(row.lane),
  };
}

export function deadLetterFromRow(row: DbRow): DeadLetter {
  return {
    id: num(row.id),
    sync: String(row.sync),
    runId: num(row.run_id),
    batch: num(row.batch),
    cursorFrom: json(row.cursor_from),
    cursorTo: json(row.cursor_to),
    key: json(row.record_key),
    record: json(row.record),
    reason: String(row.reason),
    attempts: num(row.attempts),
    createdAt: String(row.created_at),
    lastFailedAt: String(row.last_failed_at),
    retriedAt: str(row.retried_at),
  };
}

/** The smallest string greater than every string that starts with `prefix`, for range scans. */
export function prefixUpperBound(prefix: string): string {
  return `${prefix}\u{10FFFF}`;
}

export function requestFromRow(row: DbRow): RunRequest {
  const optionalNum = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  return {
    id: num(row.id),
    sync: String(row.sync),
    lane: String(row.lane),
    trigger: row.trigger as RunTrigger,
    payload: json(row.payload),
    skipReason: str(row.skip_reason),
    attempt: num(row.attempt),
    status: row.status as RequestStatus,
    notBefore: num(row.not_before),
    createdAt: num(row.created_at),
    startedAt: optionalNum(row.started_at),
    finishedAt: optionalNum(row.finished_at),
    holder: str(row.holder),
    runId: optionalNum(row.run_id),
    errorCode: str(row.error_code),
    errorMessage: str(row.error_message),
  };
}
