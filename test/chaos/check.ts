import { existsSync, readFileSync } from 'node:fs';
import type { RunRow, SyncName } from './cli.ts';
import { COLUMNS, type Contact } from './source.ts';

/** Up to three examples of a finding, so a failure shows what went wrong without a dump. */
const examples = (items: string[]): string =>
  `${items.slice(0, 3).join('; ')}${items.length > 3 ? `; … ${items.length - 3} more` : ''}`;

const show = (row: Partial<Contact> | undefined): string =>
  row
    ? `v${row.version} ${row.updated_at} ${JSON.stringify(row.company)} ${JSON.stringify(row.email)}`
    : 'none';

const sameContent = (a: Partial<Contact>, b: Contact): boolean => COLUMNS.every((c) => a[c] === b[c]);

/** Invariant 1: the upsert target equals the source by key and by every column. */
export function checkUpsert(source: Contact[], target: Contact[]): string[] {
  const byId = new Map(target.map((r) => [r.id, r]));
  const ids = new Set(source.map((r) => r.id));
  const missing: string[] = [];
  const stale: string[] = [];
  const differing: string[] = [];
  for (const want of source) {
    const got = byId.get(want.id);
    if (!got) missing.push(`id ${want.id} (source ${show(want)})`);
    else if (got.version < want.version)
      stale.push(`id ${want.id}: target ${show(got)}, source ${show(want)}`);
    else if (!sameContent(got, want))
      differing.push(`id ${want.id}: target ${show(got)}, source ${show(want)}`);
  }
  const extra = target.filter((r) => !ids.has(r.id)).map((r) => `id ${r.id}`);
  const findings: string[] = [];
  if (missing.length)
    findings.push(`upsert: ${missing.length} source rows missing from the target: ${examples(missing)}`);
  if (stale.length)
    findings.push(
      `upsert: ${stale.length} stale rows (target behind the source's version): ${examples(stale)}`,
    );
  if (differing.length)
    findings.push(
      `upsert: ${differing.length} rows differing from the source at its version: ${examples(differing)}`,
    );
  if (extra.length)
    findings.push(`upsert: ${extra.length} target rows with no source row: ${examples(extra)}`);
  return findings;
}

export type AppendStats = { lines: number; pairs: number; duplicatedPairs: number; extraLines: number };

/**
 * Invariant 2: the JSON Lines target holds each (id, version) at most once, and for every source id
 * the line with its highest version equals the source row.
 */
export function checkAppend(source: Contact[], path: string): { findings: string[]; stats: AppendStats } {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const lines = text.split('\n').filter((l) => l !== '');
  const copies = new Map<string, number>();
  const newest = new Map<number, Partial<Contact>>();
  const unreadable: string[] = [];
  for (const [i, line] of lines.entries()) {
    let row: Partial<Contact>;
    try {
      row = JSON.parse(line) as Partial<Contact>;
    } catch (err) {
      unreadable.push(`line ${i + 1}: ${(err as Error).message}`);
      continue;
    }
    const pair = `${row.id}@${row.version}`;
    copies.set(pair, (copies.get(pair) ?? 0) + 1);
    const seen = newest.get(row.id as number);
    if (!seen || (seen.version as number) < (row.version as number)) newest.set(row.id as number, row);
  }
  const duplicated = [...copies].filter(([, n]) => n > 1);
  const extraLines = duplicated.reduce((sum, [, n]) => sum + n - 1, 0);
  const ids = new Set(source.map((r) => r.id));
  const missing: string[] = [];
  const stale: string[] = [];
  const differing: string[] = [];
  for (const want of source) {
    const got = newest.get(want.id);
    if (!got) missing.push(`id ${want.id} (source ${show(want)})`);
    else if ((got.version as number) < want.version)
      stale.push(`id ${want.id}: newest line ${show(got)}, source ${show(want)}`);
    else if (!sameContent(got, want))
      differing.push(`id ${want.id}: newest line ${show(got)}, source ${show(want)}`);
  }
  const unknown = [...newest.keys()].filter((id) => !ids.has(id)).map((id) => `id ${id}`);
  const findings: string[] = [];
  if (unreadable.length)
    findings.push(`append: ${unreadable.length} unreadable lines: ${examples(unreadable)}`);
  if (duplicated.length)
    findings.push(
      `append: ${duplicated.length} (id, version) pairs on more than one line, ${extraLines} lines too many: ${examples(
        duplicated.map(([pair, n]) => `${pair} ×${n}`),
      )}`,
    );
  if (missing.length)
    findings.push(`append: ${missing.length} source ids with no line: ${examples(missing)}`);
  if (stale.length)
    findings.push(`append: ${stale.length} ids whose newest line is behind the source: ${examples(stale)}`);
  if (differing.length)
    findings.push(
      `append: ${differing.length} ids whose newest line differs from the source: ${examples(differing)}`,
    );
  if (unknown.length) findings.push(`append: ${unknown.length} ids with no source row: ${examples(unknown)}`);
  return {
    findings,
    stats: { lines: lines.length, pairs: copies.size, duplicatedPairs: duplicated.length, extraLines },
  };
}

/**
 * No run ended failed, timed out or still running; the only runs not `succeeded` are `abandoned`
 * ones, at most one per SIGKILL that landed (a kill before the run started leaves none).
 */
export function checkRuns(runs: RunRow[], kills: Record<SyncName, number>): string[] {
  const findings: string[] = [];
  for (const sync of Object.keys(kills) as SyncName[]) {
    const mine = runs.filter((r) => r.sync === sync);
    const bad = mine.filter((r) => r.status !== 'succeeded' && r.status !== 'abandoned');
    if (bad.length)
      findings.push(
        `runs: ${bad.length} runs of ${sync} ended neither succeeded nor abandoned: ${examples(
          bad.map((r) => `run ${r.id} ${r.status}${r.errorCode ? ` ${r.errorCode}: ${r.errorMessage}` : ''}`),
        )}`,
      );
    const abandoned = mine.filter((r) => r.status === 'abandoned').length;
    if (abandoned > kills[sync])
      findings.push(`runs: ${abandoned} runs of ${sync} abandoned, but only ${kills[sync]} were killed`);
  }
  return findings;
}
