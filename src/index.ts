export { defineConfig, defineSync, env } from './config/define.ts';
export type { ConfigInput, SyncInput } from './config/schema.ts';
export type { Checkpoint, Connector, RunContext, Source, Store, Target } from './core/ports.ts';
export type { Cursor, Page, Phase, Row, WriteResult } from './core/types.ts';
export { isJsonArray, isJsonNull, type JsonNull, jsonArray, jsonNull } from './core/values.ts';
