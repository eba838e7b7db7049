/**
 * Every error Sluice raises on purpose carries a stable `code` (for scripts, run history and the
 * API) and a message a user can act on. Unknown throws are wrapped with `cause` kept.
 */
export class SluiceError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SluiceError';
    this.code = code;
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

export class ConnectorError extends SluiceError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ConnectorError';
  }
}

/** Wraps anything thrown into a SluiceError, keeping a known code and the original as `cause`. */
export function asSluiceError(err: unknown, fallbackCode = 'INTERNAL'): SluiceError {
  if (err instanceof SluiceError) return err;
  if (err instanceof Error) {
    if (err.name === 'AbortError') return new SluiceError('ABORTED', err.message, { cause: err });
    return new SluiceError(fallbackCode, err.message, { cause: err });
  }
  return new SluiceError(fallbackCode, String(err), { cause: err });
}
