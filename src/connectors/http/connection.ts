import { createHash } from 'node:crypto';
import type { Auth } from './auth.ts';
import { Circuit, type CircuitSettings } from './circuit.ts';
import { RateGate, type WindowLimit } from './limiter.ts';
import { type Budget, QuotaLedger, type QuotaSettings } from './quota.ts';

/** What one connection shares between every source and target on it in the process. */
export type ConnectionSettings = {
  /** Who the service counts calls against: the API's address and the credential (hashed). */
  identity: string;
  /** How messages name the connection: its name in the config where known, else its type and host. */
  label: string;
  rateLimit: WindowLimit | null;
  /** Calls in flight at once. */
  concurrency: number;
  circuitBreaker: CircuitSettings | null;
  quota: QuotaSettings | null;
};

export type HttpStats = {
  requests: number;
  retries: number;
  rateLimited: number;
  refreshes: number;
  timeouts: number;
};

/**
 * The state of one connection in this process: its rate gate (one sliding window for every call, and
 * windows of its own for kinds of call the service limits apart), its concurrency cap, circuit
 * breaker, daily budget, credentials and counters. Every client opened on the connection uses the
 * same one, so a HubSpot → HubSpot sync on one account keeps to one account's limit.
 */
export class Connection {
  readonly settings: ConnectionSettings;
  readonly gate: RateGate;
  readonly slots: Slots;
  readonly circuit: Circuit | null;
  readonly quota: QuotaLedger | null;
  readonly auth: Auth;
  readonly stats: HttpStats = { requests: 0, retries: 0, rateLimited: 0, refreshes: 0, timeouts: 0 };

  constructor(settings: ConnectionSettings, auth: Auth) {
    this.settings = settings;
    this.auth = auth;
    this.gate = new RateGate(settings.rateLimit);
    this.slots = new Slots(settings.concurrency);
    this.circuit = settings.circuitBreaker ? new Circuit(settings.circuitBreaker) : null;
    this.quota = settings.quota ? new QuotaLedger(settings.quota, settings.label) : null;
  }
}

const connections = new Map<string, Connection>();
const byOptions = new WeakMap<object, Connection>();

/**
 * The process's state for a connection, made on first use. `options` is the connection's parsed
 * config (what `apiBudget` is later asked about); `settings.identity` decides what is shared, so two
 * configured connections with one account and token share one limit, as the service counts them
 * (the first one opened sets the limits, the concurrency and the budget).
 */
export function sharedConnection(
  options: object,
  settings: ConnectionSettings,
  auth: () => Auth,
): Connection {
  let conn = connections.get(settings.identity);
  if (!conn) {
    conn = new Connection(settings, auth());
    connections.set(settings.identity, conn);
  }
  byOptions.set(options, conn);
  return conn;
}

/**
 * A connection's daily API budget for `sluice status`: calls counted in the current window by this
 * process, the limit, what is left and when it resets. `options` is the connection's parsed config
 * (`ValidConfig.connections.get(name).options`); null when it has no `quota`. A connection not yet
 * used in this process shows nothing used.
 */
export function apiBudget(options: object): Budget | null {
  const conn = byOptions.get(options);
  if (conn?.quota) return conn.quota.status();
  const quota = (options as { quota?: QuotaSettings | null }).quota;
  return quota ? new QuotaLedger(quota, '').status() : null;
}

/** A stable, non-reversible name for a credential, for `ConnectionSettings.identity`. */
export function credentialId(...parts: (string | undefined | null)[]): string {
  return createHash('sha256')
    .update(parts.map((p) => p ?? '').join('\n'))
    .digest('hex')
    .slice(0, 16);
}

/**
 * How messages name a connection: its name in the config where the shape carries it, else its type
 * and host (`hubspot api.hubapi.com`).
 */
export function labelOf(type: string, url: string, shape: object): string {
  const name = (shape as { connection?: unknown }).connection;
  if (typeof name === 'string' && name) return name;
  try {
    return `${type} ${new URL(url).host}`;
  } catch {
    // Not a URL (a Salesforce connection before its instance is known): the text itself.
    return `${type} ${url}`;
  }
}

/** A FIFO cap on calls in flight. */
export class Slots {
  private free: number;
  private readonly queue: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  /** Resolves with a release function once a slot is free. */
  async take(signal: AbortSignal): Promise<void> {
    if (this.free > 0 && this.queue.length === 0) {
      this.free -= 1;
      return;
    }
    signal.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal.removeEventListener('abort', abort);
        resolve();
      };
      const abort = () => {
        const i = this.queue.indexOf(go);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', abort, { once: true });
      this.queue.push(go);
    });
  }

  release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.free += 1;
  }
}
