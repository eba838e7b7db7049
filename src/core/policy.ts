import { decorrelatedJitterGenerator, ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { RunRecord } from './ports.ts';

/**
 * What happens after a run, decided from the sync's rerun and retry policies alone (no I/O), so the
 * same rules hold in every runtime adapter.
 */

export type RerunPolicy =
  | { mode: 'triggered'; watchdog?: { every: number } | { cron: string } | undefined }
  | { mode: 'scheduled'; every?: number | undefined; cron?: string | undefined };

export type RetryPolicy = { attempts: number; backoff: { initial: number; max: number } };

export type RunResult =
  | { ok: true; more: boolean }
  /** `atBatch`: the failure was met on a batch's records (see core/errors `markAtBatch`). */
  | { ok: false; errorCode: string; errorMessage: string; atBatch: boolean };

export type NextStep =
  /** Nothing now: a schedule (or a request) brings the next run. */
  | { kind: 'wait' }
  /** Enqueue the successor, after `delayMs`. */
  | { kind: 'enqueue'; trigger: 'rerun' | 'retry'; attempt: number; delayMs: number }
  /** The batch failed `attempts` times: dead-letter it and move past it on the next run. */
  | { kind: 'skip-batch'; reason: string }
  /**
   * Out of retries with nothing to move past: a triggered chain, or a scheduled sync failing before
   * its first batch. The sync is failed until a watchdog or a user restarts it.
   */
  | { kind: 'chain-broken'; reason: string };

export function afterRun(
  rerun: RerunPolicy,
  retries: RetryPolicy,
  result: RunResult,
  attempt: number,
): NextStep {
  if (result.ok) {
    if (!result.more) return { kind: 'wait' };
    return rerun.mode === 'triggered'
      ? { kind: 'enqueue', trigger: 'rerun', attempt: 1, delayMs: 0 }
      : { kind: 'wait' };
  }
  const reason = `failed ${attempt} time${attempt === 1 ? '' : 's'}: ${result.errorMessage}`;
  if (rerun.mode === 'scheduled') {
    if (attempt < retries.attempts) return { kind: 'wait' };
    // A failure before the first batch (opening, the high-water mark) has no batch to set aside.
    return result.atBatch
      ? { kind: 'skip-batch', reason }
      : { kind: 'chain-broken', reason: `${reason} (before its first batch: nothing to set aside)` };
  }
  if (attempt >= retries.attempts) return { kind: 'chain-broken', reason };
  return { kind: 'enqueue', trigger: 'retry', attempt: attempt + 1, delayMs: retryDelay(retries, attempt) };
}

/** Delay before attempt `failed + 1`: exponential from `initial`, capped at `max`, with jitter. */
export function retryDelay(retries: RetryPolicy, failed: number): number {
  const factory = new ExponentialBackoff({
    initialDelay: retries.backoff.initial,
    maxDelay: retries.backoff.max,
    generator: decorrelatedJitterGenerator,
  });
  let backoff: IBackoff<unknown> = factory.next();
  for (let i = 1; i < failed; i++) backoff = backoff.next(undefined);
  // The jitter may go under `initial`; never wait less than the user asked for.
  return Math.min(retries.backoff.max, Math.max(retries.backoff.initial, Math.round(backoff.duration)));
}

/**
 * The attempt a scheduled run makes at the batch now at the checkpoint, read from the sync's runs
 * (newest first): one more than the failures since its last run that did not fail, where a failed
 * run that had saved batches failed at a new batch and so counts as that batch's first attempt.
 */
export function nextAttempt(runsNewestFirst: readonly Pick<RunRecord, 'status' | 'counters'>[]): number {
  let failed = 0;
  for (const run of runsNewestFirst) {
    if (run.status === 'running') continue;
    if (run.status !== 'failed' && run.status !== 'timed_out') break;
    failed += 1;
    if (run.counters.batches > 0) break;
  }
  return failed + 1;
}
