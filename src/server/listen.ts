import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { SluiceError } from '../core/errors.ts';
import { endLiveStreams } from './dashboard/routes.ts';

/**
 * Serves `app` on `hostname:port` (0: any free port). Resolves once the port is bound, with the
 * server and its address; a port that cannot be bound rejects with a one-line reason (in use,
 * not permitted, no such address) rather than an unhandled 'error' event and its stack trace.
 */
export function listen(
  app: Hono,
  hostname: string,
  port: number,
): Promise<{ server: ServerType; address: AddressInfo }> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname, port }, (address) => {
      server.off('error', failed);
      resolve({ server, address });
    });
    // A dashboard page keeps a live stream open for as long as it is shown: closing the server ends
    // those streams (the page says it is reconnecting), so they do not hold the close up. Other
    // requests in flight still finish.
    const close = server.close.bind(server);
    server.close = ((callback?: (err?: Error) => void) => {
      const closing = close(callback);
      endLiveStreams(app);
      return closing;
    }) as typeof server.close;
    const failed = (err: NodeJS.ErrnoException) => reject(listenError(err, hostname, port));
    server.once('error', failed);
  });
}

function listenError(err: NodeJS.ErrnoException, hostname: string, port: number): SluiceError {
  const where = `port ${port} on ${hostname}`;
  const fix = 'choose another with --port or server.port';
  switch (err.code) {
    case 'EADDRINUSE':
      return new SluiceError('PORT_IN_USE', `${where} is in use; stop what holds it or ${fix}`, {
        cause: err,
      });
    case 'EACCES':
      return new SluiceError('PORT_NOT_PERMITTED', `${where} is not permitted to this user; ${fix}`, {
        cause: err,
      });
    case 'EADDRNOTAVAIL':
      return new SluiceError(
        'ADDRESS_NOT_AVAILABLE',
        `cannot listen on ${hostname}: no such address on this machine; choose another with --host or server.host`,
        { cause: err },
      );
    default:
      return new SluiceError('LISTEN_FAILED', `cannot listen on ${where}: ${err.message}`, { cause: err });
  }
}
