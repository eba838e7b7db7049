import { timeOfValue } from '../core/keyset.ts';
import type { Fingerprint, NewDeadLetter, RunContext, Store } from '../core/ports.ts';
import type { Json, Phase, Rejected, Row, WriteResult } from '../core/types.ts';
import { deadLetter, fingerprintOf, keyText, mapRecords, missingKey } from './records.ts';
import type { RunSpec } from './run.ts';

/** A page turned into what the target is sent, and what is set aside or found unchanged. */
export type PreparedBatch = {
  /** Mapped records to write. */
  toWrite: Row[];
  /** From each mapped record back to its source record (absent where there is no map). */
  origin: Map<Row, Row>;
  deadLetters: NewDeadLetter[];
  /** The fingerprint of each record in `toWrite` that is fingerprinted, by the mapped record. */
  prints: Map<Row, Fingerprint>;
  /** Keys of records read again and found as they were last written: not sent. */
  unchangedKeys: string[];
};

/**
 * Which records carry fingerprints. With a lookback window, records are read again by its sweeps:
 * every record in incremental, and in backfill those the first sweep will read (at or after the
 * window's start behind the high-water mark; all of them where that cannot be told).
 */
export type FingerprintScope = { backfillFromMs: number | null } | null;

/** Key check, map, and the fingerprint comparison for one page. */
export async function prepareBatch(
  page: { records: Row[]; rejected?: Rejected<Json>[] },
  phase: Phase,
  ctx: RunContext,
  deps: { spec: RunSpec; store: Store; scope: FingerprintScope; setAside: { reason: string } | null },
): Promise<PreparedBatch> {
  const { spec, store, scope, setAside } = deps;
  const deadLetters: NewDeadLetter[] = [];
  const keyed: Row[] = [];
  for (const record of page.records) {
    const missing = missingKey(record, spec.key);
    if (missing === undefined) keyed.push(record);
    else deadLetters.push(deadLetter(record, spec.key, `key field "${missing}" is missing or empty`));
  }
  for (const r of page.rejected ?? []) deadLetters.push({ key: null, record: r.record, reason: r.reason });
  if (setAside) {
    for (const record of keyed) deadLetters.push(deadLetter(record, spec.key, setAside.reason));
    return { toWrite: [], origin: new Map(), deadLetters, prints: new Map(), unchangedKeys: [] };
  }
  const { mapped, origin, deadLetters: unmappable } = await mapRecords(keyed, spec, ctx);
  deadLetters.push(...unmappable);
  const prints = fingerprints(mapped, origin, phase, spec, scope);
  if (prints.size === 0) return { toWrite: mapped, origin, deadLetters, prints, unchangedKeys: [] };
  const stored = await store.fingerprints(
    spec.name,
    [...prints.values()].map((p) => p.key),
  );
  const toWrite: Row[] = [];
  const unchangedKeys: string[] = [];
  for (const record of mapped) {
    const print = prints.get(record);
    if (print && stored.get(print.key) === print.hash) {
      unchangedKeys.push(print.key);
      prints.delete(record);
    } else toWrite.push(record);
  }
  return { toWrite, origin, deadLetters, prints, unchangedKeys };
}

function fingerprints(
  mapped: Row[],
  origin: Map<Row, Row>,
  phase: Phase,
  spec: RunSpec,
  scope: FingerprintScope,
): Map<Row, Fingerprint> {
  const prints = new Map<Row, Fingerprint>();
  if (!scope) return prints;
  const from = phase === 'backfill' ? scope.backfillFromMs : null;
  for (const record of mapped) {
    const source = origin.get(record) ?? record;
    const cursorMs = spec.cursorField ? timeOfValue(source[spec.cursorField]) : null;
    if (phase === 'backfill' && from !== null && cursorMs !== null && cursorMs < from) continue;
    prints.set(record, { key: keyText(source, spec.key), hash: fingerprintOf(record), cursorMs });
  }
  return prints;
}

/**
 * What the target's answer makes of a prepared batch: its dead letters (the source record of each
 * refusal, so a retry maps it again), the fingerprints of what was written, and the keys whose open
 * dead letters it resolves.
 */
export function settleBatch(
  prepared: PreparedBatch,
  result: WriteResult<Row>,
  spec: RunSpec,
  resolveLetters: boolean,
): { deadLetters: NewDeadLetter[]; fingerprints: Fingerprint[]; resolvedKeys: string[] } {
  const deadLetters = [...prepared.deadLetters];
  const refused = new Set<Row>();
  for (const rejected of result.rejected) {
    refused.add(rejected.record);
    const source = prepared.origin.get(rejected.record) ?? rejected.record;
    deadLetters.push(deadLetter(source, spec.key, rejected.reason));
  }
  const fingerprints: Fingerprint[] = [];
  const resolvedKeys = resolveLetters ? [...prepared.unchangedKeys] : [];
  for (const record of prepared.toWrite) {
    if (refused.has(record)) continue;
    const print = prepared.prints.get(record);
    if (print) fingerprints.push(print);
    if (resolveLetters)
      resolvedKeys.push(print?.key ?? keyText(prepared.origin.get(record) ?? record, spec.key));
  }
  return { deadLetters, fingerprints, resolvedKeys };
}
