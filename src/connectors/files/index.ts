import { resolve } from 'node:path';
import type { Connector } from '../../core/ports.ts';
import {
  connectionSchema,
  type FileSourceOptions,
  type FilesConnection,
  type FileTargetOptions,
  sourceSchema,
  targetSchema,
} from './options.ts';
import { FileSource } from './source.ts';
import { JsonlTarget } from './target.ts';

const pathOf = (conn: FilesConnection, path: string, baseDir: string): string =>
  resolve(baseDir, conn.dir, path);

/** JSON Lines and CSV files as sources (backfill, then tail), JSON Lines files as targets (append). */
export const filesConnector: Connector<FilesConnection, FileSourceOptions, FileTargetOptions> = {
  type: 'files',
  connection: connectionSchema,
  source: {
    options: sourceSchema,
    open: async (conn, options, shape) =>
      new FileSource(pathOf(conn, options.path, shape.baseDir), options, shape.sync),
  },
  target: {
    options: targetSchema,
    open: async (conn, options, shape) => JsonlTarget.open(pathOf(conn, options.path, shape.baseDir)),
    check: async (conn, options, shape) => (await import('./check.ts')).checkFileTarget(conn, options, shape),
    singleWriter: true,
    resource: (conn, options, baseDir) => pathOf(conn, options.path, baseDir),
  },
};
