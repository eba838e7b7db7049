import type { ConfigInput } from '../config/schema.ts';
import type { Connector } from '../core/ports.ts';
import type { SluiceWorkspace } from './workspace.ts';

/** Where the config comes from: a value (as `defineConfig` returns), or a config file. */
export type OpenWorkspaceOptions = (
  | {
      config: ConfigInput;
      /** Folder the config's relative paths (store, SQLite files, CSV folders) are resolved against. @defaultValue `process.cwd()` */
      baseDir?: string;
      configFile?: never;
    }
  | {
      /** A `sluice.config.ts` (or `.mts`, `.js`, `.mjs`); relative paths in it are resolved against its folder. */
      configFile: string;
      config?: never;
      baseDir?: never;
    }
) & {
  /** Connectors beyond the built-in ones; a type here wins over a built-in one. */
  connectors?: Connector[];
};

/**
 * Opens a workspace in this process: the config validated (every problem named by its field path, as
 * a `ConfigError`), its connectors loaded and its store opened. `close()` it when done.
 *
 * The engine is imported here, on first use: a config file that imports `defineConfig` from
 * 'sluice' loads none of it.
 */
export async function openWorkspace(options: OpenWorkspaceOptions): Promise<SluiceWorkspace> {
  const { SluiceWorkspace } = await import('./workspace.ts');
  return SluiceWorkspace.open(options);
}
