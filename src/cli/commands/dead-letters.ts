import type { Command } from 'commander';
import { withWorkspace } from '../context.ts';
import { count, printJson, table } from '../format.ts';
import { positiveInt } from '../options.ts';

export function registerDeadLetters(program: Command): void {
  const dl = program
    .command('dead-letters')
    .description('records set aside because they failed, with the reason');

  dl.command('list')
    .description('list dead letters not yet retried, oldest first')
    .argument('[sync]', 'only this sync')
    .option('--limit <n>', 'how many at most (a line on stderr says when there are more)', positiveInt, 100)
    .option('--all', 'include the closed ones (written since, or gone from the source)')
    .option('--json', 'print as JSON')
    .action(
      async (
        sync: string | undefined,
        opts: { limit: number; all?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        await withWorkspace(cmd, async (ws) => {
          if (sync) ws.sync(sync);
          // One more than asked for tells whether the list was cut short.
          const found = await ws.store.listDeadLetters({
            ...(sync ? { sync } : {}),
            limit: opts.limit + 1,
            includeClosed: Boolean(opts.all),
          });
          const letters = found.slice(0, opts.limit);
          if (found.length > opts.limit)
            process.stderr.write(
              `sluice: showing the first ${count(opts.limit)} dead letters, oldest first; there are more (--limit <n> shows more)\n`,
            );
          if (opts.json) return printJson(letters);
          const rows = letters.map((l) => [
            l.id,
            l.sync,
            l.runId,
            l.batch,
            l.createdAt,
            l.resolution ?? (l.attempts > 1 ? `open, ${l.attempts} attempts` : 'open'),
            l.reason,
            truncate(JSON.stringify(l.record), 60),
          ]);
          process.stdout.write(
            `${table(['ID', 'SYNC', 'RUN', 'BATCH', 'AT', 'STATE', 'REASON', 'RECORD'], rows)}\n`,
          );
        });
      },
    );

  dl.command('retry')
    .description("send a sync's open dead letters to its target again, as the source holds each record now")
    .argument('<sync>')
    .option('--json', 'print the outcome as JSON')
    .action(async (sync: string, opts: { json?: boolean }, cmd: Command) => {
      await withWorkspace(cmd, async (ws) => {
        const outcome = await ws.retryDeadLetters(sync);
        if (opts.json) return printJson(outcome);
        const unkeyed = outcome.unkeyed
          ? `; ${count(outcome.unkeyed)} without a key (unreadable input) left open: fix the source, then \`sluice reset ${sync}\``
          : '';
        process.stdout.write(
          `${sync}: retried ${count(outcome.retried)} dead letters: ${count(outcome.written)} written, ${count(outcome.rejectedAgain)} failed again (still open), ${count(outcome.gone)} gone from the source${unkeyed}\n`,
        );
      });
    });
}

function truncate(text: string | undefined, max: number): string {
  if (!text) return '';
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
