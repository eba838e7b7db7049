import prettyMs from 'pretty-ms';
import { stringifyJson } from '../core/json.ts';

/** Plain-text tables and figures for the CLI; `--json` output bypasses all of this. */

export function table(headers: string[], rows: (string | number | null)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

// Integers are grouped by hand: the first toLocaleString call loads ICU's number formatting, ~7 MB
// of RSS for a `sluice status` that prints a few counts.
export const count = (n: number): string =>
  Number.isSafeInteger(n) ? String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',') : n.toLocaleString('en-US');

export const duration = (ms: number | null): string =>
  ms === null ? '-' : prettyMs(Math.max(0, ms), { secondsDecimalDigits: 0, unitCount: 2 });

export const percent = (ratio: number | null): string =>
  ratio === null ? '-' : `${(ratio * 100).toFixed(1)}%`;

export function printJson(value: unknown): void {
  process.stdout.write(`${stringifyJson(value, { space: 2 })}\n`);
}
