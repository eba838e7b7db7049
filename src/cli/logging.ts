import { InvalidArgumentError } from 'commander';
import type pino from 'pino';

export const logFormats = ['pretty', 'json'] as const;
export type LogFormat = (typeof logFormats)[number];

/** `--log-format`: `pretty` (lines a person reads) or `json` (one JSON object a line, for a collector). */
export function logFormat(value: string): LogFormat {
  if (!(logFormats as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected "pretty" or "json", got "${value}"`);
  return value as LogFormat;
}

/** Fields every line shows in its own place (time, level, sync, message), not among the rest. */
const PLACED = new Set(['time', 'level', 'msg', 'sync']);

/**
 * A logger on stdout: readable lines on a terminal (`12:00:01.250 INFO  contacts: run ended
 * status=succeeded …`), JSON lines when stdout is piped, or as `format` says. pino-pretty is
 * imported only for the readable lines, so a piped `sluice serve` never loads it.
 */
export async function createLogger(options: {
  level: string;
  format?: LogFormat | undefined;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}): Promise<pino.Logger> {
  const stream = options.stream ?? process.stdout;
  const format = options.format ?? (stream.isTTY ? 'pretty' : 'json');
  // Imported here: the option parser above is loaded with every command, the logger only by serve.
  const { default: pino } = await import('pino');
  const base = { level: options.level, base: null };
  if (format === 'json') return pino(base, stream === process.stdout ? undefined : stream);
  const { default: pretty } = await import('pino-pretty');
  return pino(
    base,
    pretty({
      destination: stream,
      sync: true,
      colorize: Boolean(stream.isTTY) && !process.env.NO_COLOR,
      translateTime: 'SYS:HH:MM:ss.l',
      hideObject: true,
      messageFormat: (log, messageKey) => readableMessage(log, messageKey),
    }),
  );
}

/** `sync: message key=value …`: the sync first, then the message, then the other fields in order. */
export function readableMessage(log: Record<string, unknown>, messageKey = 'msg'): string {
  const sync = typeof log.sync === 'string' ? `${log.sync}: ` : '';
  const message = String(log[messageKey] ?? '');
  // A field the message already says (`listening on <url>`) is not said twice.
  const rest = Object.entries(log)
    .filter(([key, value]) => !PLACED.has(key) && key !== messageKey && value !== undefined)
    .filter(([, value]) => typeof value !== 'string' || !message.includes(value))
    .map(
      ([key, value]) =>
        `${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`,
    );
  return `${sync}${message}${rest.length > 0 ? ` ${rest.join(' ')}` : ''}`;
}
