import { setTimeout as sleep } from 'node:timers/promises';

/** At most `requests` in any `perMs` (a sliding window: no burst at start, no two windows' worth at a seam). */
export type WindowLimit = { requests: number; perMs: number };

/**
 * The send times of a connection's last `requests` calls of one kind. A call may go once the call
 * `requests` before it is `perMs + marginMs` old, so no window of `perMs` ever holds more than
 * `requests`, wherever the server starts its own windows (fixed or rolling). The margin covers the
 * time between our send and the server's count of it (a socket write, a busy event loop).
 */
export class SlidingWindow {
  readonly limit: WindowLimit;
  private readonly spanMs: number;
  private readonly sent: Float64Array;
  private head = 0;

  constructor(limit: WindowLimit, marginMs = defaultMargin(limit.perMs)) {
    this.limit = limit;
    this.spanMs = limit.perMs + marginMs;
    this.sent = new Float64Array(limit.requests).fill(Number.NEGATIVE_INFINITY);
  }

  /** The earliest time the next call may go. */
  openAt(): number {
    return this.sent[this.head]! + this.spanMs;
  }

  take(now: number): void {
    this.sent[this.head] = now;
    this.head = (this.head + 1) % this.sent.length;
  }

  /** Calls sent in the window that ends at `now`. */
  used(now: number): number {
    let n = 0;
    for (const t of this.sent) if (t > now - this.limit.perMs) n++;
    return n;
  }
}

/** 2% of the window, at least 50 ms: the send-to-count delay a busy machine adds. */
const defaultMargin = (perMs: number) => Math.max(50, Math.round(perMs * 0.02));

type Waiter = {
  windows: readonly SlidingWindow[];
  resolve: () => void;
  reject: (err: unknown) => void;
  signal: AbortSignal;
  onAbort: () => void;
};

const GRANTED: Promise<void> = Promise.resolve();

/**
 * One connection's gate for every call it makes, shared by every source and target on it in the
 * process. A call names the windows it counts in (every call in the connection's own, a HubSpot
 * search also in the search API's); it is let through when all of them have room at that instant,
 * and its send time is recorded in all of them at once. Calls wait in order, except that a call held
 * by a window others do not count in (a search waiting for the search window) lets them pass. A
 * pause — a 429's Retry-After, rate-limit headers saying the window is spent — holds every call.
 */
export class RateGate {
  /** The connection's own window; null when it has no client-side limit. */
  readonly main: SlidingWindow | null;
  private pausedUntil = 0;
  private readonly queue: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private readonly now: () => number;

  constructor(limit: WindowLimit | null, now: () => number = Date.now) {
    this.main = limit ? new SlidingWindow(limit) : null;
    this.now = now;
  }

  /** A window of its own for one kind of call (HubSpot's search API), counted beside the main one. */
  window(limit: WindowLimit | null): readonly SlidingWindow[] {
    const own = limit ? [new SlidingWindow(limit)] : [];
    return this.main ? [this.main, ...own] : own;
  }

  /** Resolves when a call counted in `windows` may be sent; its send time is then recorded. */
  acquire(windows: readonly SlidingWindow[], signal: AbortSignal): Promise<void> {
    const now = this.now();
    if (this.queue.length === 0 && this.openAt(windows) <= now) {
      for (const w of windows) w.take(now);
      return GRANTED;
    }
    signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        windows,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          reject(signal.reason);
          this.pump();
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.queue.push(waiter);
      this.pump();
    });
  }

  /** Holds every call back for `ms` (the server said so). */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }

  /** Whether the connection's own window is spent now (its last `requests` calls all inside it). */
  spent(): boolean {
    return this.main !== null && this.main.openAt() > this.now();
  }

  private openAt(windows: readonly SlidingWindow[]): number {
    let at = this.pausedUntil;
    for (const w of windows) at = Math.max(at, w.openAt());
    return at;
  }

  /** Lets through every waiter that may go now, in order; arms a timer for the first that may not. */
  private pump(): void {
    const now = this.now();
    if (this.pausedUntil > now) {
      this.arm(this.pausedUntil);
      return;
    }
    let wake = Number.POSITIVE_INFINITY;
    // A window a waiter is held by stays closed to the waiters behind it, so each window keeps order.
    const held = new Set<SlidingWindow>();
    for (let i = 0; i < this.queue.length; ) {
      const waiter = this.queue[i]!;
      const at = this.openAt(waiter.windows);
      if (at <= now && !waiter.windows.some((w) => held.has(w))) {
        for (const w of waiter.windows) w.take(now);
        this.queue.splice(i, 1);
        waiter.signal.removeEventListener('abort', waiter.onAbort);
        waiter.resolve();
        continue;
      }
      if (at > now) wake = Math.min(wake, at);
      for (const w of waiter.windows) held.add(w);
      // Every call counts in the main window: once it holds one waiter, it holds all behind.
      if (this.main && held.has(this.main)) break;
      i++;
    }
    this.arm(wake);
  }

  private arm(at: number): void {
    if (at === Number.POSITIVE_INFINITY || this.queue.length === 0) return;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.pump();
      },
      Math.max(1, at - this.now()),
    );
  }

  /**
   * Reads the common rate-limit headers. When the server says its window is spent and our own
   * window does not explain it (others use the account too), every call waits until it resets.
   */
  observe(headers: Headers): void {
    const remaining = headers.get('x-ratelimit-remaining') ?? headers.get('x-hubspot-ratelimit-remaining');
    if (remaining === null || Number(remaining) > 0 || this.spent()) return;
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

/** Waits `ms`, or rejects with the signal's reason. */
export function wait(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal });
}
