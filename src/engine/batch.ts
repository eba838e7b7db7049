import { timeOfValue } from '../core/keyset.ts';
import type { Fingerprint, NewDeadLetter, RunContext, Store } from '../core/ports.ts';
import type { Json, Phase, Rejected, Row, WriteResult } from '../core/types.ts';
import { deadLetter, fingerprintOf, keyText, mapRecords, missingKey, recordsOf } from './records.ts';
import type { RunSpec } from './run.ts';

/** A page turned into what the target is sent, and what is set aside or found unchanged. */
export type PreparedBatch = {
  /** Mapped records to write. */
  toWrite: Row[];
  /** The source record of each of `toWrite`, at the same index (`toWrite` itself where there is no map). */
  sources: Row[];
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
  const { records } = page;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const missing = missingKey(record, spec.key);
    if (missing === undefined) keyed.push(record);
    else deadLetters.push(deadLetter(record, spec.key, `key field "${missing}" is missing or empty`));
  }
  for (const r of page.rejected ?? []) deadLetters.push({ key: null, record: r.record, reason: r.reason });
  if (setAside) {
    for (const record of keyed) deadLetters.push(deadLetter(record, spec.key, setAside.reason));
    return { toWrite: [], sources: [], deadLetters, prints: new Map(), unchangedKeys: [] };
  }
  const { mapped, sources, deadLetters: unmappable } = await mapRecords(keyed, spec, ctx);
  deadLetters.push(...unmappable);
  const prints = fingerprints(mapped, sources, phase, spec, scope);
  if (prints.size === 0) return { toWrite: mapped, sources, deadLetters, prints, unchangedKeys: [] };
  const stored = await store.fingerprints(
    recordsOf(spec),
    [...prints.values()].map((p) => p.key),
  );
  const toWrite: Row[] = [];
  const toWriteSources: Row[] = [];
  const unchangedKeys: string[] = [];
  for (let i = 0; i < mapped.length; i++) {
    const record = mapped[i]!;
    const print = prints.get(record);
    if (print && stored.get(print.key) === print.hash) {
      unchangedKeys.push(print.key);
      prints.delete(record);
    } else {
      toWrite.push(record);
      toWriteSources.push(sources[i]!);
    }
  }
  return { toWrite, sources: toWriteSources, deadLetters, prints, unchangedKeys };
}

function fingerprints(
  mapped: Row[],
  sources: Row[],
  phase: Phase,
  spec: RunSpec,
  scope: FingerprintScope,
): Map<Row, Fingerprint> {
  const prints = new Map<Row, Fingerprint>();
  if (!scope) return prints;
  const from = phase === 'backfill' ? scope.backfillFromMs : null;
  for (let i = 0; i < mapped.length; i++) {
    const record = mapped[i]!;
    const source = sources[i]!;
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
  const { toWrite, sources } = prepared;
  const deadLetters = [...prepared.deadLetters];
  const refused = new Set<Row>();
  if (result.rejected.length > 0) {
    // Targets answer refusals by the record they were sent; its index leads to its source record.
    const indexOf = new Map(toWrite.map((record, i) => [record, i]));
    for (const rejected of result.rejected) {
      refused.add(rejected.record);
      const at = indexOf.get(rejected.record);
      const source = at === undefined ? rejected.record : sources[at]!;
      deadLetters.push(deadLetter(source, spec.key, rejected.reason));
    }
  }
  const fingerprints: Fingerprint[] = [];
  const resolvedKeys = resolveLetters ? [...prepared.unchangedKeys] : [];
  if (prepared.prints.size === 0 && !resolveLetters) return { deadLetters, fingerprints, resolvedKeys };
  for (let i = 0; i < toWrite.length; i++) {
    const record = toWrite[i]!;
    if (refused.has(record)) continue;
    const print = prepared.prints.get(record);
    if (print) fingerprints.push(print);
    if (resolveLetters) resolvedKeys.push(print?.key ?? keyText(sources[i]!, spec.key));
  }
  return { deadLetters, fingerprints, resolvedKeys };
}
