import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Rejected, Row } from '../../core/types.ts';
import { type Column, query } from './client.ts';
import type { CopyEncoder } from './copy.ts';
import { classifyPgError, describePgError, pgError } from './errors.ts';
import { columnList } from './sql.ts';

/** COPY + statement per chunk under a savepoint, bisecting a chunk that fails on some row's values. */
export class ChunkWriter {
  private readonly client: pg.ClientBase;
  private readonly encoder: CopyEncoder;
  private readonly columns: readonly Column[];
  private readonly stage: string;
  private readonly statement: string;
  private readonly rejected: Rejected<Row>[];
  private readonly copy: string;
  private readonly textInput: boolean;
  /** The stage holds a written chunk's rows: the next chunk empties it first. */
  private dirty = false;

  constructor(
    client: pg.ClientBase,
    encoder: CopyEncoder,
    columns: readonly Column[],
    stage: string,
    statement: string,
    rejected: Rejected<Row>[],
    textInput: boolean,
  ) {
    this.textInput = textInput;
    this.client = client;
    this.encoder = encoder;
    this.columns = columns;
    this.stage = stage;
    this.statement = statement;
    this.rejected = rejected;
    this.copy = `COPY ${stage} (${columnList(columns.map((c) => c.name))}) FROM STDIN`;
  }

  async write(chunk: Row[]): Promise<number> {
    await query(
      this.client,
      this.dirty ? `DELETE FROM ${this.stage}; SAVEPOINT sluice_chunk` : 'SAVEPOINT sluice_chunk',
    );
    this.dirty = false;
    try {
      await pipeline(
        Readable.from(this.encoder.chunks(chunk, this.columns, { textInput: this.textInput })),
        this.client.query(copyFrom(this.copy)),
      );
      const result = await this.client.query(this.statement);
      await this.client.query('RELEASE SAVEPOINT sluice_chunk');
      this.dirty = true;
      return result.rowCount ?? 0;
    } catch (err) {
      if (classifyPgError(err) !== 'record') throw pgError('writing a batch', err);
      await query(this.client, 'ROLLBACK TO SAVEPOINT sluice_chunk; RELEASE SAVEPOINT sluice_chunk');
      if (chunk.length === 1) {
        this.rejected.push({ record: chunk[0]!, reason: describePgError(err) });
        return 0;
      }
      const half = Math.ceil(chunk.length / 2);
      return (await this.write(chunk.slice(0, half))) + (await this.write(chunk.slice(half)));
    }
  }
}
