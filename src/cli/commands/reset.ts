import type { Command } from 'commander';
import { SluiceError } from '../../core/errors.ts';
import { withWorkspace } from '../context.ts';

export function registerReset(program: Command): void {
  program
    .command('reset')
    .description("forget a sync's checkpoint and dead letters, so its next run starts the backfill over")
    .argument('<sync>')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (sync: string, opts: { yes?: boolean }, cmd: Command) => {
      await withWorkspace(cmd, async (ws) => {
        ws.sync(sync);
        if (!opts.yes)
          await confirm(
            `Reset ${sync}? Its next run starts the backfill over. Type the sync name to confirm: `,
            sync,
          );
        await ws.store.resetSync(sync);
        process.stdout.write(`${sync}: reset; the next run starts the backfill over\n`);
      });
    });
}

async function confirm(question: string, expected: string): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new SluiceError('CONFIRMATION_NEEDED', 'refusing to reset without confirmation; pass --yes');
  }
  // Imported here: readline is ten builtin modules that every other command would load for nothing.
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question);
    if (answer.trim() !== expected)
      throw new SluiceError('NOT_CONFIRMED', 'not confirmed; nothing was reset');
  } finally {
    rl.close();
  }
}
