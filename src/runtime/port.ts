import type { RunRequest } from '../core/ports.ts';
import type { Counters, Json, RunTrigger } from '../core/types.ts';
import type { Progress } from '../engine/progress.ts';

export type RunStarted = { request: RunRequest; laneWaitMs: number };

export type RunEnded = {
  request: RunRequest;
  runId: number | null;
  ok: boolean;
  status: 'succeeded' | 'failed' | 'timed_out' | 'abandoned' | 'requeued';
  counters: Counters | null;
  more: boolean;
  durationMs: number;
  errorCode: string | null;
  errorMessage: string | null;
};

export type RuntimeEvents = {
  'run:start': [RunStarted];
  'run:end': [RunEnded];
  'run:progress': [Progress];
  /** A triggered chain ran out of retries; the sync stays failed until restarted. */
  'chain:broken': [{ sync: string; reason: string }];
  /** Requests of a process that died, put back in the queue by this one (a lane taken over). */
  recovered: [{ requests: RunRequest[] }];
  /** Something the runtime could not do on its own (a skip that failed, a tick that failed). */
  error: [{ sync: string | null; error: Error }];
};

/**
 * A runtime runs requested runs in lanes and continues them by their rerun policies. Every
 * adapter (local now, distributed later) passes the same conformance suite in test/runtime.
 */
export interface Runtime {
  start(): Promise<void>;
  /** Queues a run of a sync; it starts when its lane is free. */
  request(sync: string, options?: { trigger?: RunTrigger; payload?: Json | null }): Promise<RunRequest>;
  /** Stops taking runs; running batches finish and checkpoint within the grace, then stop at once. True when all finished in time. */
  stop(options?: { timeoutMs?: number }): Promise<boolean>;
  on<E extends keyof RuntimeEvents>(event: E, listener: (...args: RuntimeEvents[E]) => void): this;
  off<E extends keyof RuntimeEvents>(event: E, listener: (...args: RuntimeEvents[E]) => void): this;
}
