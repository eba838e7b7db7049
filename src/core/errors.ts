/**
 * Every error Sluice raises on purpose carries a stable `code` (for scripts, run history and the
 * API) and a message a user can act on. Unknown throws are wrapped with `cause` kept.
 */
export class SluiceError extends Error {
  readonly code: string;
  /**
   * The failure is momentary (a dropped connection, a busy database, a 5xx): the same run started
   * again a little later from the checkpoint may well succeed. False for what a retry cannot fix
   * (bad credentials, a missing table, a bad config).
   */
  readonly transient: boolean;
  constructor(code: string, message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.name = 'SluiceError';
    this.code = code;
    this.transient = options?.transient ?? false;
  }
}

export class ConfigError extends SluiceError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[], source?: string) {
    const where = source ? ` in ${source}` : '';
    super('CONFIG_INVALID', `invalid config${where}:\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export class UnknownSyncError extends SluiceError {
  constructor(name: string, known: readonly string[]) {
    super('SYNC_UNKNOWN', `no sync named "${name}"; known syncs: ${known.join(', ') || '(none)'}`);
    this.name = 'UnknownSyncError';
  }
}

export class SyncBusyError extends SluiceError {
  constructor(sync: string, runId: number, holder: string) {
    super(
      'SYNC_BUSY',
      `sync "${sync}" is already running (run ${runId}, ${holder}); wait for it or stop it first`,
    );
    this.name = 'SyncBusyError';
  }
}

export class LaneBusyError extends SluiceError {
  constructor(lane: string, sync: string, runId: number, holder: string) {
    super(
      'LANE_BUSY',
      `${lane} is busy with run ${runId} of sync "${sync}" (${holder}); its syncs run one at a time`,
    );
    this.name = 'LaneBusyError';
  }
}

/** A run that no longer holds its sync (timed out, taken over by another process) tried to save. */
export class RunFencedError extends SluiceError {
  constructor(sync: string, runId: number, what: string) {
    super(
      'RUN_FENCED',
      `run ${runId} of sync "${sync}" no longer holds it (it timed out or another process took it over); ${what} was not saved, and the run that holds it now goes on from the checkpoint`,
    );
    this.name = 'RunFencedError';
  }
}

/** A checkpoint save that does not follow the saved version: another run saved since this one read it. */
export class CheckpointConflictError extends SluiceError {
  constructor(sync: string, version: number) {
    super(
      'CHECKPOINT_CONFLICT',
      `the checkpoint of sync "${sync}" was saved by another run since this one read it (this save would be version ${version}); nothing was saved, so it never moves backwards`,
    );
    this.name = 'CheckpointConflictError';
  }
}

/**
 * A connection's API budget (a daily quota, say) is spent until `resetsAt` (epoch ms). Not a failure:
 * the run ends with its confirmed batches kept and work left, and the sync goes on once it resets.
 */
export class QuotaExhaustedError extends SluiceError {
  readonly resetsAt: number;
  constructor(connection: string, used: number, limit: number, resetsAt: number) {
    super(
      'QUOTA_EXHAUSTED',
      `connection "${connection}" has spent its API budget (${used} of ${limit} calls); it goes on at ${new Date(resetsAt).toISOString()}`,
    );
    this.name = 'QuotaExhaustedError';
    this.resetsAt = resetsAt;
  }
}

export class ConnectorError extends SluiceError {
  constructor(code: string, message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(code, message, options);
    this.name = 'ConnectorError';
  }
}

// Socket errors Node reports by errno code, wherever they come from: worth another try.
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
// SQLITE_BUSY (5) and SQLITE_LOCKED (6): another connection holds the file for now.
const SQLITE_BUSY_CODES: ReadonlySet<number> = new Set([5, 6]);

/** Whether `err` is worth another try from the checkpoint (see `SluiceError.transient`). */
export function isTransient(err: unknown): boolean {
  if (err instanceof SluiceError) return err.transient;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  const errcode = (err as { errcode?: unknown } | null)?.errcode;
  return typeof errcode === 'number' && SQLITE_BUSY_CODES.has(errcode & 0xff);
}

/** Wraps anything thrown into a SluiceError, keeping a known code and the original as `cause`. */
const atBatch = new WeakSet<object>();

/**
 * Marks `err` as met on the records of a batch (their `map`, their write), not before the first
 * batch (opening, the high-water mark, the estimate, a read): setting that batch aside can get a
 * sync past it; nothing else can. Returns `err`.
 */
export function markAtBatch<E>(err: E): E {
  if (typeof err === 'object' && err !== null) atBatch.add(err);
  return err;
}

/** `err` was met on the records of a batch (see `markAtBatch`). */
export function isAtBatch(err: unknown): boolean {
  return typeof err === 'object' && err !== null && atBatch.has(err);
}

export function asSluiceError(err: unknown, fallbackCode = 'INTERNAL'): SluiceError {
  if (err instanceof SluiceError) return err;
  const transient = isTransient(err);
  if (err instanceof Error) {
    if (err.name === 'AbortError') return new SluiceError('ABORTED', err.message, { cause: err });
    const code = (err as { code?: unknown }).code;
    const known = typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code) ? code : fallbackCode;
    return new SluiceError(known, err.message, { cause: err, transient });
  }
  return new SluiceError(fallbackCode, String(err), { cause: err, transient });
}
