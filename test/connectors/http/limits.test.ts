/**
 * The HTTP toolkit's limits as units: the rate gate (no burst at start, never more than the limit in
 * any window, a kind's own window inside the connection's), the daily budget (calendar day in a time
 * zone, rolling 24 hours) and the circuit. Clocks are injected where the code takes one; the gate's
 * waits are real but short, and only what it let through is asserted, never how long it took.
 */
import { describe, expect, it } from 'vitest';
import { Circuit } from '../../../src/connectors/http/circuit.ts';
import { RateGate, type Ticket } from '../../../src/connectors/http/limiter.ts';
import { nextMidnight, QuotaLedger } from '../../../src/connectors/http/quota.ts';

/** The most of `times` within any `windowMs`. */
function busiest(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('rate gate', () => {
  it('lets through at most the limit in any window, the first window included, counting until each answer', async () => {
    const gate = new RateGate({ requests: 5, perMs: 200 });
    const windows = gate.window(null);
    const sent: number[] = [];
    const answered: number[] = [];
    const signal = AbortSignal.timeout(20_000);
    await Promise.all(
      Array.from({ length: 23 }, async () => {
        const ticket = await gate.acquire(windows, signal);
        sent.push(Date.now());
        await new Promise((r) => setTimeout(r, 5));
        answered.push(Date.now());
        gate.release(ticket);
      }),
    );
    expect(sent).toHaveLength(23);
    // A server may count a call anywhere between its send and its answer: both bounds keep the limit.
    expect(busiest(sent, 200)).toBeLessThanOrEqual(5);
    expect(busiest(answered, 200)).toBeLessThanOrEqual(5);
  });

  it('holds a kind of call to its own window without holding the others behind it', async () => {
    const gate = new RateGate({ requests: 100, perMs: 1_000 });
    const search = gate.window({ requests: 1, perMs: 60_000 });
    const plain = gate.window(null);
    const signal = AbortSignal.timeout(20_000);
    gate.release(await gate.acquire(search, signal));
    const waiting = new AbortController();
    const second = Promise.resolve(gate.acquire(search, waiting.signal)).catch((e: unknown) => e);
    // The second search waits a minute; plain calls still go.
    const tickets: Ticket[] = [];
    for (let i = 0; i < 10; i++) tickets.push(await gate.acquire(plain, signal));
    expect(tickets).toHaveLength(10);
    waiting.abort(new Error('stop'));
    expect(await second).toMatchObject({ message: 'stop' });
  });

  it('gives every client on a connection the same window for a kind of call', () => {
    const gate = new RateGate({ requests: 100, perMs: 10_000 });
    const a = gate.window({ requests: 4, perMs: 1_000 }, 'search');
    const b = gate.window({ requests: 4, perMs: 1_000 }, 'search');
    expect(b).toBe(a);
    expect(a[0]).toBe(gate.main);
    expect(gate.window(null)).toEqual([gate.main]);
  });

  it('pauses every call when the server says its window is spent and ours does not explain it', async () => {
    let now = 1_000_000;
    const gate = new RateGate({ requests: 100, perMs: 10_000 }, () => now);
    gate.observe(
      new Headers({
        'x-hubspot-ratelimit-remaining': '0',
        'x-hubspot-ratelimit-interval-milliseconds': '10000',
      }),
    );
    const ac = new AbortController();
    const pending = Promise.resolve(gate.acquire(gate.window(null), ac.signal)).then(
      () => 'sent',
      () => 'held',
    );
    now += 1;
    ac.abort();
    expect(await pending).toBe('held');
  });
});

describe('daily budget', () => {
  it('counts a calendar day in the configured time zone and resets at its midnight', () => {
    let now = Date.parse('2025-03-10T03:30:00Z'); // 23:30 on the 9th in New York (EDT, UTC-4)
    const ledger = new QuotaLedger(
      { perDay: 2, window: 'day', timeZone: 'America/New_York' },
      'crm',
      () => now,
    );
    ledger.spend();
    ledger.spend();
    const midnight = Date.parse('2025-03-10T04:00:00Z');
    expect(() => ledger.spend()).toThrow(
      expect.objectContaining({ code: 'QUOTA_EXHAUSTED', resetsAt: midnight }),
    );
    expect(ledger.status()).toEqual({ used: 2, limit: 2, left: 0, resetsAt: midnight, window: 'day' });
    now = midnight;
    ledger.spend();
    expect(ledger.status().used).toBe(1);
    expect(nextMidnight(Date.parse('2025-03-09T12:00:00Z'), 'America/New_York')).toBe(
      Date.parse('2025-03-10T04:00:00Z'),
    );
    expect(nextMidnight(Date.parse('2025-06-01T23:59:59Z'), 'UTC')).toBe(Date.parse('2025-06-02T00:00:00Z'));
  });

  it('counts a rolling 24 hours: a call leaves the budget a day after it was made', () => {
    let now = Date.parse('2025-01-01T00:00:30Z');
    const ledger = new QuotaLedger({ perDay: 3, window: 'rolling', timeZone: 'UTC' }, 'org', () => now);
    ledger.spend();
    now += 3_600_000;
    ledger.spend();
    ledger.spend();
    let err: unknown;
    try {
      ledger.spend();
    } catch (e) {
      err = e;
    }
    // The first call's minute leaves the window a day after it ended.
    expect(err).toMatchObject({ code: 'QUOTA_EXHAUSTED', resetsAt: Date.parse('2025-01-02T00:01:00Z') });
    now = Date.parse('2025-01-02T00:01:00Z');
    expect(ledger.status().used).toBe(2);
    ledger.spend();
  });
});

describe('circuit', () => {
  it('opens after repeated failures, lets one probe through when half-open, and closes on its success', () => {
    let now = 0;
    const circuit = new Circuit({ failures: 3, halfOpenAfterMs: 1_000 }, () => now);
    for (let i = 0; i < 3; i++) circuit.failed(new Error('503'), false);
    expect(circuit.admit()).toEqual({ waitMs: 1_000, probe: false });
    now = 1_000;
    expect(circuit.admit()).toEqual({ waitMs: 0, probe: true });
    expect(circuit.admit().waitMs).toBe(Number.POSITIVE_INFINITY); // the others wait for the probe
    circuit.failed(new Error('503 again'), true);
    expect(circuit.admit()).toEqual({ waitMs: 2_000, probe: false }); // open twice as long
    now = 3_000;
    expect(circuit.admit().probe).toBe(true);
    circuit.succeeded();
    expect(circuit.admit()).toEqual({ waitMs: 0, probe: false });
    expect((circuit.lastFailure as Error).message).toBe('503 again');
  });
});
