import { extname } from 'node:path';
import { z } from 'zod';

export const connectionSchema = z.strictObject({
  /** Folder file paths are resolved against, itself relative to the config file's folder. @defaultValue '.' */
  dir: z.string({ error: 'expected a folder path' }).min(1, 'expected a folder path').default('.'),
});

export type FilesConnection = z.output<typeof connectionSchema>;

/**
 * What a source does with a line or CSV record it cannot parse. Every mode keeps the record from
 * vanishing: `reject` returns it in the page's `rejected` list, which the engine dead-letters with
 * the reason; `record` passes it on as a row holding only `MALFORMED_FIELD`, for a `map` that wants
 * to see it; `fail` stops the run at it.
 */
export const malformedModes = ['record', 'reject', 'fail'] as const;
export type MalformedMode = (typeof malformedModes)[number];

/**
 * What a source does when its file was replaced since the saved position was read: renamed over,
 * rewritten in place, or cut shorter, so that position means nothing in it. `fail` stops the sync
 * until someone decides (`sluice reset <sync>` reads the new file from its start); `restart` reads
 * the new file from its start by itself. Records read from the old file stay in the target.
 */
export const replaceModes = ['fail', 'restart'] as const;
export type ReplaceMode = (typeof replaceModes)[number];

const csvSchema = z.strictObject({
  /** @defaultValue ',' */
  delimiter: z.string().min(1, 'expected a non-empty delimiter').default(','),
  /** @defaultValue '"' */
  quote: z.string().length(1, 'expected a single quote character').default('"'),
  /** The first record names the columns. @defaultValue true */
  header: z.boolean({ error: 'expected true or false' }).default(true),
  /** Column names; with `header`, they replace the header's names. Required without a header. */
  columns: z.array(z.string().min(1, 'expected a non-empty column name')).min(1).optional(),
});

const formats = ['jsonl', 'csv'] as const;
export type FileFormat = (typeof formats)[number];

const byExtension: Record<string, FileFormat> = { '.jsonl': 'jsonl', '.ndjson': 'jsonl', '.csv': 'csv' };

export const sourceSchema = z
  .strictObject({
    path: z.string({ error: 'expected the path of a .jsonl, .ndjson or .csv file' }).min(1),
    format: z.enum(formats, { error: 'expected "jsonl" or "csv"' }).optional(),
    csv: csvSchema.optional(),
    /** What a malformed line becomes: a dead letter with the reason (reject), a marked record passed to map (record), or an error (fail). @defaultValue 'reject' */
    malformed: z.enum(malformedModes, { error: 'expected "record", "reject" or "fail"' }).default('reject'),
    /** Bytes read from the file at a time. @defaultValue 65536 */
    chunkSize: z.number().int().min(1, 'expected a positive number of bytes').default(65_536),
    /** When the file was replaced (another inode, other bytes before the saved position, or shorter): stop the sync with SOURCE_FILE_REPLACED (fail) or read the new file from its start (restart). @defaultValue 'fail' */
    onReplace: z.enum(replaceModes, { error: 'expected "fail" or "restart"' }).default('fail'),
  })
  .superRefine((o, ctx) => {
    if (!o.format && !byExtension[extname(o.path).toLowerCase()]) {
      ctx.addIssue({
        code: 'custom',
        path: ['format'],
        message: `cannot tell the format from the extension of "${o.path}"; expected format "jsonl" or "csv"`,
      });
    }
    if (o.csv && !o.csv.header && !o.csv.columns) {
      ctx.addIssue({
        code: 'custom',
        path: ['csv', 'columns'],
        message: 'expected column names when header is false',
      });
    }
  })
  .transform((o) => ({
    path: o.path,
    format: o.format ?? (byExtension[extname(o.path).toLowerCase()] as FileFormat),
    csv: o.csv ?? csvSchema.parse({}),
    malformed: o.malformed,
    chunkSize: o.chunkSize,
    onReplace: o.onReplace,
  }));

export type FileSourceOptions = z.output<typeof sourceSchema>;
export type CsvOptions = FileSourceOptions['csv'];

export const targetSchema = z.strictObject({
  path: z.string({ error: 'expected the path of a .jsonl file to append to' }).min(1),
});

export type FileTargetOptions = z.output<typeof targetSchema>;
