// The package root: what a config file imports (defineConfig and its helpers) and the library API.
// It stays light: a config that imports defineConfig loads no engine, store or connector.
export { defineConfig, defineSync, env } from './config/define.ts';
export type { ConfigInput, SyncInput } from './config/schema.ts';
export { ConfigError, SluiceError } from './core/errors.ts';
export type {
  ApiBudget,
  Checkpoint,
  Connector,
  DeadLetter,
  RunContext,
  RunRecord,
  RunRequest,
  Source,
  Store,
  Target,
} from './core/ports.ts';
export type {
  Counters,
  Cursor,
  Json,
  Page,
  Phase,
  Row,
  RunStatus,
  RunTrigger,
  WriteResult,
} from './core/types.ts';
export { isJsonArray, isJsonNull, type JsonNull, jsonArray, jsonNull } from './core/values.ts';
export type { Progress } from './engine/progress.ts';
export type { RetryOutcome } from './engine/retry.ts';
export type { RunOutcome } from './engine/run.ts';
export type { BackfillOptions, BackfillResult } from './library/backfill.ts';
export { type OpenWorkspaceOptions, openWorkspace } from './library/open.ts';
export type {
  RunOptions,
  RuntimeOptions,
  ServeOptions,
  SluiceServer,
  SluiceWorkspace,
} from './library/workspace.ts';
export type { RetryNotice } from './runtime/attempts.ts';
export type { RunEnded, RunStarted, Runtime, RuntimeEvents } from './runtime/port.ts';
export type { SyncStatus } from './runtime/workspace.ts';
