import type { RunContext } from '../core/ports.ts';
import type { Row } from '../core/types.ts';
import type { ConfigInput, EnvSecret, SyncInput } from './schema.ts';

/** Types `sluice.config.ts`; validation happens when the config is loaded. */
export function defineConfig(config: ConfigInput): ConfigInput {
  return config;
}

/**
 * Types one sync's records: `map` sees `In` (the source's record) and must return `Out` (what the
 * target takes), or null to skip the record.
 */
export function defineSync<In extends Row = Row, Out extends Row = Row>(
  sync: Omit<SyncInput, 'map'> & {
    map?: (record: In, ctx: RunContext) => Out | null | undefined | Promise<Out | null | undefined>;
  },
): SyncInput {
  return sync as SyncInput;
}

/** A value read from the environment variable `name` when the config loads; never printed. */
export function env(name: string): EnvSecret {
  return { $env: name };
}
