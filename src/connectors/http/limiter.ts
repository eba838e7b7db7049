import { setTimeout as sleep } from 'node:timers/promises';
import type { ResponseHeaders } from './transport.ts';

/** At most `requests` in any `perMs` (a sliding window: no burst at start, no two windows' worth at a seam). */
export type WindowLimit = { requests: number; perMs: number };

/**
 * One limit as `requests` slots. A call takes a slot when it is sent and holds it until its answer
 * is back; the slot is free again `perMs` (plus a small margin) after that. The server counted the
 * call somewhere between its send and its answer, so a slot's next call is counted at least `perMs`
 * after the one before: each slot adds at most one call to any window of `perMs`, and no window, fixed
 * or rolling, wherever the server starts it and however late a busy machine or network delivers a
 * call, ever holds more than `requests`. The cost is the round trip, once per slot per window.
 */
export class SlidingWindow {
  readonly limit: WindowLimit;
  private readonly spanMs: number;
  /** Per slot: when its last call was answered; +Infinity while one is in flight. */
  private readonly freed: Float64Array;

  constructor(limit: WindowLimit, marginMs = Math.max(10, Math.round(limit.perMs * 0.01))) {
    this.limit = limit;
    this.spanMs = limit.perMs + marginMs;
    this.freed = new Float64Array(limit.requests).fill(Number.NEGATIVE_INFINITY);
  }

  /** The earliest time a slot is free. */
  openAt(): number {
    let first = Number.POSITIVE_INFINITY;
    for (const t of this.freed) if (t < first) first = t;
    return first + this.spanMs;
  }

  /** Takes the slot free longest; returns it. */
  take(): number {
    let slot = 0;
    for (let i = 1; i < this.freed.length; i++) if (this.freed[i]! < this.freed[slot]!) slot = i;
    this.freed[slot] = Number.POSITIVE_INFINITY;
    return slot;
  }

  release(slot: number, now: number): void {
    this.freed[slot] = now;
  }

  /** Calls in flight or answered within the last `perMs`. */
  used(now: number): number {
    let n = 0;
    for (const t of this.freed) if (t > now - this.limit.perMs) n++;
    return n;
  }
}

/** The slots a call holds until it is answered (`RateGate.release`). */
export type Ticket = { windows: readonly SlidingWindow[]; slots: number[] };

const FREE: Ticket = { windows: [], slots: [] };

type Waiter = {
  windows: readonly SlidingWindow[];
  resolve: (ticket: Ticket) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal;
  onAbort: () => void;
};

/**
 * One connection's gate for every call it makes, shared by every source and target on it in the
 * process. A call names the windows it counts in (every call in the connection's own, a HubSpot
 * search also in the search API's); it is let through when all of them have room at that instant,
 * takes a slot in each, and gives them back when it is answered. Calls wait in order, except that a call held
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

  private readonly kinds = new Map<string, readonly SlidingWindow[]>();

  /**
   * The windows a call of `kind` counts in: the main one, and for a kind the service limits apart
   * (HubSpot's search API), one of its own, the same for every client on the connection.
   */
  window(limit: WindowLimit | null, kind?: string): readonly SlidingWindow[] {
    const known = kind === undefined ? undefined : this.kinds.get(kind);
    if (known) return known;
    const own = limit ? [new SlidingWindow(limit)] : [];
    const windows = this.main ? [this.main, ...own] : own;
    if (kind !== undefined) this.kinds.set(kind, windows);
    return windows;
  }

  /**
   * Resolves when a call counted in `windows` may be sent, with the slots it holds until it is
   * answered: give them back with `release`, whatever the outcome.
   */
  acquire(windows: readonly SlidingWindow[], signal: AbortSignal): Ticket | Promise<Ticket> {
    if (windows.length === 0 && this.pausedUntil === 0) return FREE;
    const now = this.now();
    if (this.queue.length === 0 && this.openAt(windows) <= now) return this.grant(windows);
    signal.throwIfAborted();
    return new Promise<Ticket>((resolve, reject) => {
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

  /** The call holding `ticket` was answered (or failed, or was given up): its slots start to free. */
  release(ticket: Ticket): void {
    if (ticket.windows.length === 0) return;
    const now = this.now();
    for (let i = 0; i < ticket.windows.length; i++) ticket.windows[i]!.release(ticket.slots[i]!, now);
    if (this.queue.length) this.pump();
  }

  private grant(windows: readonly SlidingWindow[]): Ticket {
    return { windows, slots: windows.map((w) => w.take()) };
  }

  /** Holds every call back for `ms` (the server said so). */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }

  /** Whether the connection's own window is spent now (every slot busy or used within it). */
  spent(): boolean {
    return this.main !== null && this.main.used(this.now()) >= this.main.limit.requests;
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
        this.queue.splice(i, 1);
        waiter.signal.removeEventListener('abort', waiter.onAbort);
        waiter.resolve(this.grant(waiter.windows));
        continue;
      }
      // A slot in flight frees when its call is answered (`release` pumps); others at a known time.
      if (at > now && Number.isFinite(at)) wake = Math.min(wake, at);
      // Only the windows that hold this waiter back are closed to those behind it.
      for (const w of waiter.windows) if (w.openAt() > now || held.has(w)) held.add(w);
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
  observe(headers: ResponseHeaders): void {
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
