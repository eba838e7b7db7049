import type { Runtime } from './port.ts';
import type { Workspace } from './workspace.ts';

export type RuntimeOptions = {
  /** Runs at once in this process. @defaultValue config `runtime.concurrency` */
  concurrency?: number;
  holder?: string;
};

/**
 * The runtime the store calls for: the local one on the embedded SQLite store (its queue is in the
 * file), the pg-boss one on a PostgreSQL store (its queue is in that database, shared by every
 * process on every machine). pg-boss is loaded only where it is used.
 */
export async function createRuntime(ws: Workspace, options: RuntimeOptions = {}): Promise<Runtime> {
  if (ws.store.queue) {
    const { LocalRuntime } = await import('./local/runtime.ts');
    return new LocalRuntime(ws, options);
  }
  const { PgBossRuntime } = await import('./pgboss/runtime.ts');
  return new PgBossRuntime(ws, options);
}
