import type { Command } from 'commander';
import { retryDeadLetters } from '../../engine/retry.ts';
import { currentHolder } from '../../store/holder.ts';
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
    .option('--limit <n>', 'how many', positiveInt, 100)
    .option('--all', 'include the ones already retried')
    .option('--json', 'print as JSON')
    .action(
      async (
        sync: string | undefined,
        opts: { limit: number; all?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        await withWorkspace(cmd, async (ws) => {
          if (sync) ws.sync(sync);
          const letters = await ws.store.listDeadLetters({
            ...(sync ? { sync } : {}),
            limit: opts.limit,
            includeRetried: Boolean(opts.all),
          });
          if (opts.json) return printJson(letters);
          const rows = letters.map((l) => [
            l.id,
            l.sync,
            l.runId,
            l.batch,
            l.createdAt,
            l.retriedAt,
            l.reason,
            truncate(JSON.stringify(l.record), 60),
          ]);
          process.stdout.write(
            `${table(['ID', 'SYNC', 'RUN', 'BATCH', 'AT', 'RETRIED', 'REASON', 'RECORD'], rows)}\n`,
          );
        });
      },
    );

  dl.command('retry')
    .description("send a sync's dead letters through its map and target again")
    .argument('<sync>')
    .option('--json', 'print the outcome as JSON')
    .action(async (sync: string, opts: { json?: boolean }, cmd: Command) => {
      await withWorkspace(cmd, async (ws) => {
        const target = await ws.openTarget(sync);
        try {
          const outcome = await retryDeadLetters({
            spec: ws.sync(sync),
            target,
            store: ws.store,
            holder: currentHolder(),
          });
          if (opts.json) return printJson(outcome);
          process.stdout.write(
            `${sync}: retried ${count(outcome.retried)} dead letters: ${count(outcome.written)} written, ${count(outcome.rejectedAgain)} failed again (listed anew)\n`,
          );
        } finally {
          await target.close?.();
        }
      });
    });
}

function truncate(text: string | undefined, max: number): string {
  if (!text) return '';
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
