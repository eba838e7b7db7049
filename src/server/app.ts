import { Hono } from 'hono';
import type { Runtime } from '../runtime/port.ts';
import type { Workspace } from '../runtime/workspace.ts';
import { apiRoutes } from './api.ts';
import { json } from './body.ts';
import { mountDashboard } from './dashboard/routes.ts';
import { mountHooks } from './hooks.ts';
import { createMetrics } from './metrics.ts';

/** The HTTP face of `sluice serve`: webhooks, the REST API, the dashboard, health and metrics. */
export function createApp(ws: Workspace, runtime: Runtime, options: { now?: () => number } = {}): Hono {
  const app = new Hono();
  const metrics = createMetrics(ws, runtime);
  app.get('/healthz', (c) => json(c, { ok: true }));
  app.get('/metrics', async (c) =>
    c.text(await metrics.metrics(), 200, { 'content-type': metrics.contentType }),
  );
  mountHooks(app, ws, runtime, options.now);
  app.route('/api', apiRoutes(ws, runtime));
  mountDashboard(app, ws, runtime);
  app.notFound((c) => json(c, { error: 'not found' }, 404));
  // A webhook whose run could not be queued (the store failing) says so, as the API does.
  app.onError((err, c) => {
    const code = (err as { code?: unknown }).code;
    return json(c, { error: err.message, code: typeof code === 'string' ? code : 'INTERNAL' }, 500);
  });
  return app;
}
