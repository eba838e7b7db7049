import type { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import type { Connector } from '../core/ports.ts';
import { type Config, configSchema, type ResolvedSync, resolveSync } from './schema.ts';

export type ConnectorLookup = (type: string) => Connector | undefined;

export type ResolvedConnection = { name: string; type: string; connector: Connector; options: unknown };

export type ValidConfig = {
  config: Config;
  /** Folder relative paths in the config are resolved against. */
  baseDir: string;
  connections: Map<string, ResolvedConnection>;
  syncs: Map<string, ResolvedSync & { sourceOptions: unknown; targetOptions: unknown }>;
};

/**
 * Validates a whole config and reports every problem at once, each named by its field path
 * (`syncs.contacts.batch.size: expected a positive integer, got -5`). Connector-specific options are
 * checked by the connector's own schema, found through `lookup`, so this module knows no connector.
 */
export function validateConfig(
  raw: unknown,
  options: {
    baseDir: string;
    lookup: ConnectorLookup;
    knownTypes: string[];
    env?: NodeJS.ProcessEnv;
    origin?: string;
  },
): ValidConfig {
  const issues: string[] = [];
  const secrets = new Set<string>();
  const withSecrets = resolveSecrets(raw, [], options.env ?? process.env, issues, secrets);
  const parsed = configSchema.safeParse(withSecrets);
  if (!parsed.success) {
    issues.push(...formatIssues(parsed.error, withSecrets, [], secrets));
    throw new ConfigError(issues, options.origin);
  }
  const config = parsed.data;
  const connections = new Map<string, ResolvedConnection>();
  for (const [name, conn] of Object.entries(config.connections)) {
    const connector = options.lookup(conn.type);
    if (!connector) {
      issues.push(
        `connections.${name}.type: unknown connector type "${conn.type}"; known types: ${options.knownTypes.join(', ')}`,
      );
      continue;
    }
    const { type: _type, ...rest } = conn;
    const result = connector.connection.safeParse(rest);
    if (!result.success) issues.push(...formatIssues(result.error, rest, ['connections', name], secrets));
    else connections.set(name, { name, type: conn.type, connector, options: result.data });
  }
  const syncs: ValidConfig['syncs'] = new Map();
  // Single-writer targets by what they write to, and the sync that writes it.
  const written = new Map<string, string>();
  for (const [name, sync] of Object.entries(config.syncs)) {
    const resolved = resolveSync(name, sync);
    const sourceOptions = endpointOptions('source', resolved, connections, config, issues, secrets);
    const targetOptions = endpointOptions('target', resolved, connections, config, issues, secrets);
    const target = connections.get(resolved.target.connection);
    const singleWriter = target?.connector.target?.singleWriter === true;
    if (singleWriter && resolved.partitions > 1 && resolved.parallelPartitions) {
      issues.push(
        `syncs.${name}.backfill.parallel: a ${target.type} target has one writer at a time, so its ` +
          `${resolved.partitions} partitions cannot move at once; set backfill.parallel to false (they then ` +
          'move one after another) or backfill.partitions to 1, got true',
      );
    }
    const resource =
      target && singleWriter && targetOptions !== undefined
        ? target.connector.target?.resource?.(target.options, targetOptions, options.baseDir)
        : undefined;
    if (resource !== undefined) {
      const other = written.get(resource);
      if (other) {
        issues.push(
          `syncs.${name}.target: sync "${other}" writes ${resource} too; a ${target!.type} target has one ` +
            'writer, and each sync replays its own last batch after a crash by the lines it appended: give each sync a file of its own',
        );
      } else written.set(resource, name);
    }
    // A split made before stands whatever `backfill` says now (see Workspace.run): into a target
    // with one writer, its partitions move one after another even where the config now says 1.
    const parallelPartitions = resolved.parallelPartitions && !singleWriter;
    syncs.set(name, { ...resolved, parallelPartitions, sourceOptions, targetOptions });
  }
  const bundled = new Map<string, string>();
  for (const [bundle, { syncs: members }] of Object.entries(config.bundles)) {
    members.forEach((member, i) => {
      if (!config.syncs[member]) issues.push(`bundles.${bundle}.syncs.${i}: no sync named "${member}"`);
      const other = bundled.get(member);
      if (other)
        issues.push(`bundles.${bundle}.syncs.${i}: sync "${member}" is already in bundle "${other}"`);
      bundled.set(member, bundle);
    });
  }
  if (issues.length > 0) throw new ConfigError(issues, options.origin);
  return { config, baseDir: options.baseDir, connections, syncs };
}

function endpointOptions(
  side: 'source' | 'target',
  sync: ResolvedSync,
  connections: Map<string, ResolvedConnection>,
  config: Config,
  issues: string[],
  secrets: ReadonlySet<string>,
): unknown {
  const path = ['syncs', sync.name, side];
  const { connection: connName, ...rest } = sync[side];
  const conn = connections.get(connName);
  if (!conn) {
    // A connection that exists but failed its own validation was reported already.
    if (!config.connections[connName]) {
      const known = Object.keys(config.connections).join(', ') || '(none)';
      issues.push(
        `${path.join('.')}.connection: no connection named "${connName}"; known connections: ${known}`,
      );
    }
    return undefined;
  }
  const side_ = conn.connector[side];
  if (!side_) {
    issues.push(`${path.join('.')}.connection: connector "${conn.type}" cannot be a ${side}`);
    return undefined;
  }
  const result = side_.options.safeParse(rest);
  if (!result.success) {
    issues.push(...formatIssues(result.error, rest, path, secrets));
    return undefined;
  }
  return result.data;
}

/** Replaces every `{ $env: 'NAME' }` with the variable's value; a missing variable is an issue. */
function resolveSecrets(
  value: unknown,
  path: string[],
  env: NodeJS.ProcessEnv,
  issues: string[],
  secrets: Set<string>,
): unknown {
  if (Array.isArray(value))
    return value.map((v, i) => resolveSecrets(v, [...path, String(i)], env, issues, secrets));
  if (!isPlainObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === '$env' && typeof value.$env === 'string') {
    const found = env[value.$env];
    secrets.add(path.join('.'));
    if (found !== undefined && found !== '') return found;
    issues.push(`${path.join('.')}: environment variable ${value.$env} is not set`);
    // A stand-in, so the field's own checks add nothing more about a value that is not there.
    return '(missing secret)';
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = resolveSecrets(v, [...path, k], env, issues, secrets);
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** One line per issue: its full path, the message, and the value found there. */
export function formatIssues(
  error: z.ZodError,
  input: unknown,
  prefix: readonly string[],
  secrets: ReadonlySet<string> = new Set(),
): string[] {
  return error.issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path.map(String)].join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => `${path ? `${path}.` : ''}${key}: unknown field`);
    }
    const value = valueAt(input, issue.path);
    // A secret, or a value holding one (an `auth` block with a token from the environment): not shown.
    const hidden = [...secrets].some((s) => s === path || s.startsWith(`${path}.`));
    const got = hidden ? 'a secret (not shown)' : value === undefined ? 'nothing' : describe(value);
    return `${path || '(root)'}: ${issue.message}, got ${got}`;
  });
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current = input;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return current;
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return String(value);
  }
}
