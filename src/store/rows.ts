import { parseJson, stringifyJson } from '../core/json.ts';
import type { Checkpoint, DeadLetter, RequestStatus, RunRecord, RunRequest } from '../core/ports.ts';
import type { Counters, Cursor, Json, Phase, RunStatus, RunTrigger } from '../core/types.ts';

/** Maps between store rows (snake_case, JSON as text) and the port's types; shared by every store. */

type DbRow = Record<string, unknown>;

const num = (v: unknown): number => Number(v ?? 0);
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
// JSON through the store keeps integers beyond 2^53 exact: a cursor or a key may hold one.
const json = (v: unknown): Json | null =>
  v === null || v === undefined ? null : (parseJson(String(v)) as Json);

export const toJsonText = (v: Cursor | Json | null): string | null => (v === null ? null : stringifyJson(v));

const countersOf = (row: DbRow): Counters => ({
  batches: num(row.batches),
  read: num(row.records_read),
  written: num(row.records_written),
  unchanged: num(row.records_unchanged),
  rejected: num(row.records_rejected),
});

export function checkpointFromRow(row: DbRow): Checkpoint {
  return {
    sync: String(row.sync),
    phase: row.phase as Phase,
    cursor: json(row.cursor),
    sweep: json(row.sweep),
    highWaterMark: json(row.high_water_mark),
    totals: countersOf(row),
    backfillDone: num(row.backfill_done),
    backfillEstimate: row.backfill_estimate === null ? null : num(row.backfill_estimate),
    backfillEstimateExact: Boolean(row.backfill_estimate_exact),
    backfillStartedAt: str(row.backfill_started_at),
    backfillEndedAt: str(row.backfill_ended_at),
    updatedAt: String(row.updated_at),
    version: num(row.version),
  };
}

export function checkpointParams(cp: Checkpoint): Record<string, string | number | boolean | null> {
  return {
    sync: cp.sync,
    phase: cp.phase,
    cursor: toJsonText(cp.cursor),
    sweep: toJsonText(cp.sweep),
    hwm: toJsonText(cp.highWaterMark),
    ...counterParams(cp.totals),
    backfillDone: cp.backfillDone,
    backfillEstimate: cp.backfillEstimate,
    backfillEstimateExact: cp.backfillEstimateExact,
    backfillStartedAt: cp.backfillStartedAt,
    backfillEndedAt: cp.backfillEndedAt,
    updatedAt: cp.updatedAt,
    version: cp.version,
  };
}

export function counterParams(c: Counters): Record<string, number> {
  return {
    batches: c.batches,
    read: c.read,
    written: c.written,
    unchanged: c.unchanged,
    rejected: c.rejected,
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
    counters: countersOf(row),
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
    closedAt: str(row.closed_at),
    closedByRun:
      row.closed_by_run === null || row.closed_by_run === undefined ? null : num(row.closed_by_run),
    resolution: str(row.resolution),
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
    setAsideReason: str(row.set_aside_reason),
    attempt: num(row.attempt),
    status: row.status as RequestStatus,
    notBefore: num(row.not_before),
    createdAt: num(row.created_at),
    startedAt: optionalNum(row.started_at),
    finishedAt: optionalNum(row.finished_at),
    holder: str(row.holder),
    owner: str(row.owner),
    runId: optionalNum(row.run_id),
    errorCode: str(row.error_code),
    errorMessage: str(row.error_message),
  };
}
