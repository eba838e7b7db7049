import type { CheckFinding } from '../../core/ports.ts';
import { HttpError } from './errors.ts';

/** How long a check's call may take, retries included: a check answers, it does not wait out an outage. */
const CHECK_TIMEOUT_MS = 15_000;

/**
 * One read call made for `sluice check`, as a finding: `ok` with `done`, or the reason it failed,
 * told apart where the status says it (refused credentials, a missing scope or permission).
 */
export async function callFinding(
  what: string,
  call: (signal: AbortSignal) => Promise<unknown>,
  done: string,
): Promise<CheckFinding[]> {
  try {
    await call(AbortSignal.timeout(CHECK_TIMEOUT_MS));
    return [{ level: 'ok', message: `${what}: ${done}` }];
  } catch (err) {
    const status = err instanceof HttpError ? err.status : null;
    const why =
      status === 401
        ? 'the credentials are refused (401)'
        : status === 403
          ? 'forbidden (403): the credentials lack a scope or permission it needs'
          : null;
    const message = (err as Error).message;
    return [{ level: 'problem', message: `${what}: ${why ? `${why}: ${message}` : message}` }];
  }
}
