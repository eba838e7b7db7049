import { InvalidArgumentError } from 'commander';

/** A positive count for a demo option; `1_000_000` reads as a million. */
export function count(value: string): number {
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}
