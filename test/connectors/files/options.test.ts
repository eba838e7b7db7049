import { describe, expect, it } from 'vitest';
import { formatIssues } from '../../../src/config/validate.ts';
import { filesConnector } from '../../../src/connectors/files/index.ts';

const issuesOf = (options: Record<string, unknown>): string[] => {
  const result = filesConnector.source!.options.safeParse(options);
  return result.success ? [] : formatIssues(result.error, options, ['syncs', 'x', 'source']);
};

describe('files options', () => {
  it('guesses the format from the extension and fills in the defaults', () => {
    expect(filesConnector.source!.options.parse({ path: 'a.NDJSON' })).toMatchObject({
      format: 'jsonl',
      malformed: 'reject',
      chunkSize: 65_536,
      onReplace: 'fail',
    });
    expect(filesConnector.source!.options.parse({ path: 'a.csv' })).toMatchObject({
      format: 'csv',
      csv: { delimiter: ',', quote: '"', header: true },
    });
    expect(filesConnector.connection.parse({})).toEqual({ dir: '.' });
  });

  it('names the path of each bad field', () => {
    expect(issuesOf({ path: 'a.txt' })).toEqual([
      'syncs.x.source.format: cannot tell the format from the extension of "a.txt"; expected format "jsonl" or "csv", got nothing',
    ]);
    expect(issuesOf({ path: 'a.csv', csv: { header: false } })).toEqual([
      'syncs.x.source.csv.columns: expected column names when header is false, got nothing',
    ]);
    expect(issuesOf({ path: 7, malformed: 'drop' })).toEqual([
      'syncs.x.source.path: expected the path of a .jsonl, .ndjson or .csv file, got 7',
      'syncs.x.source.malformed: expected "record", "reject" or "fail", got "drop"',
    ]);
    expect(issuesOf({ path: 'a.csv', onReplace: 'skip' })).toEqual([
      'syncs.x.source.onReplace: expected "fail" or "restart", got "skip"',
    ]);
    expect(issuesOf({ path: 'a.csv', csv: { quote: '""' } })).toEqual([
      'syncs.x.source.csv.quote: expected a single quote character, got "\\"\\""',
    ]);
  });
});
