import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A per-connection token bucket (`requests` per `perMs`, bursts up to `requests`), plus a pause
 * every request honours: set from a 429's Retry-After or from rate-limit headers saying the
 * window is spent, so concurrent requests stop together instead of each earning its own 429.
 */
export class RateLimiter {
  private readonly capacity: number;
  private readonly perMs: number;
  private tokens: number;
  private last: number;
  private pausedUntil = 0;
  private readonly now: () => number;

  constructor(limit: { requests: number; perMs: number } | null, now: () => number = Date.now) {
    this.capacity = limit ? limit.requests : Number.POSITIVE_INFINITY;
    this.perMs = limit ? limit.perMs : 1;
    this.tokens = this.capacity;
    this.now = now;
    this.last = now();
  }

  /** Resolves when a request may be sent. */
  async acquire(signal: AbortSignal): Promise<void> {
    while (true) {
      signal.throwIfAborted();
      const now = this.now();
      if (now < this.pausedUntil) {
        await sleep(this.pausedUntil - now, undefined, { signal });
        continue;
      }
      if (this.capacity === Number.POSITIVE_INFINITY) return;
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.capacity) / this.perMs);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) * this.perMs) / this.capacity), undefined, { signal });
    }
  }

  /** Holds every request back for `ms` (the server said so). */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }

  /** Reads the common rate-limit headers; when the window is spent, pauses until it resets. */
  observe(headers: Headers): void {
    const remaining = headers.get('x-ratelimit-remaining') ?? headers.get('x-hubspot-ratelimit-remaining');
    if (remaining === null || Number(remaining) > 0) return;
    const reset = headers.get('x-ratelimit-reset');
    const interval = headers.get('x-hubspot-ratelimit-interval-milliseconds');
    if (reset !== null && /^\d+$/.test(reset)) {
      const n = Number(reset);
      // Epoch seconds (GitHub style) or seconds from now (IETF draft style).
      this.pause(n > 1e9 ? n * 1000 - this.now() : n * 1000);
    } else if (interval !== null && /^\d+$/.test(interval)) {
      // HubSpot gives the window length, not its end: waiting one window is the safe bound.
      this.pause(Number(interval));
    }
  }
}
