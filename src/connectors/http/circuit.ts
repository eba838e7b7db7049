/**
 * A connection's circuit breaker, shared by every call on it in the process. After `failures`
 * service failures in a row (5xx, refused or reset connections, timeouts) it opens: calls stop going
 * out and wait — they are not failed. After `halfOpenAfterMs` one call goes as a probe while the others
 * keep waiting; its success closes the circuit and lets them all go, its failure opens it again for
 * twice as long (up to `maxOpenMs`). So an outage costs one probe per interval instead of every
 * caller's retries, and a run waits it out rather than failing on it.
 */
export type CircuitSettings = { failures: number; halfOpenAfterMs: number; maxOpenMs?: number };

export class Circuit {
  private readonly settings: CircuitSettings;
  private readonly now: () => number;
  private failures = 0;
  /** While open, when the next probe may go; 0 while closed. */
  private openUntil = 0;
  private openMs: number;
  private probing = false;
  /** The failure that opened the circuit, or the probe's last one: what a caller that gives up names. */
  lastFailure: unknown = null;
  private readonly waiters = new Set<() => void>();

  constructor(settings: CircuitSettings, now: () => number = Date.now) {
    this.settings = settings;
    this.now = now;
    this.openMs = settings.halfOpenAfterMs;
  }

  get open(): boolean {
    return this.openUntil !== 0;
  }

  /**
   * How long a call must wait before it may go (0: go now). When the circuit is half-open the first
   * caller to ask becomes the probe (`probe` true); the others wait for its outcome.
   */
  admit(): { waitMs: number; probe: boolean } {
    if (this.openUntil === 0) return { waitMs: 0, probe: false };
    const left = this.openUntil - this.now();
    if (left > 0) return { waitMs: left, probe: false };
    if (this.probing) return { waitMs: Number.POSITIVE_INFINITY, probe: false };
    this.probing = true;
    return { waitMs: 0, probe: true };
  }

  /** Resolves when the circuit's state changes (a probe ended), or after `ms`, or when `signal` aborts. */
  changed(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = Number.isFinite(ms) ? setTimeout(done, Math.max(1, ms)) : undefined;
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }

  succeeded(): void {
    this.failures = 0;
    if (this.openUntil !== 0 || this.probing) {
      this.openUntil = 0;
      this.probing = false;
      this.openMs = this.settings.halfOpenAfterMs;
      this.wake();
    }
  }

  failed(err: unknown, probe: boolean): void {
    this.lastFailure = err;
    this.failures += 1;
    if (probe) {
      this.probing = false;
      this.openMs = Math.min(this.openMs * 2, this.settings.maxOpenMs ?? 60_000);
      this.openUntil = this.now() + this.openMs;
      this.wake();
    } else if (this.openUntil === 0 && this.failures >= this.settings.failures) {
      this.openUntil = this.now() + this.openMs;
    }
  }

  /** A probe that ended without a verdict (aborted, a 4xx): the next caller probes instead. */
  released(probe: boolean): void {
    if (!probe) return;
    this.probing = false;
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
