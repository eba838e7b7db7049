import { Hono } from 'hono';
import type { Runtime } from '../runtime/port.ts';
import type { Workspace } from '../runtime/workspace.ts';
import { apiRoutes } from './api.ts';
import { mountHooks } from './hooks.ts';
import { createMetrics } from './metrics.ts';

/** The HTTP face of `sluice serve`: webhooks, the REST API, health and metrics. */
export function createApp(ws: Workspace, runtime: Runtime, options: { now?: () => number } = {}): Hono {
  const app = new Hono();
  const metrics = createMetrics(ws, runtime);
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/metrics', async (c) =>
    c.text(await metrics.metrics(), 200, { 'content-type': metrics.contentType }),
  );
  mountHooks(app, ws, runtime, options.now);
  app.route('/api', apiRoutes(ws, runtime));
  app.notFound((c) => c.json({ error: 'not found' }, 404));
  return app;
}
