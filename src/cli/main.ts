import { Command, CommanderError } from 'commander';
import { DEFAULT_CONFIG } from '../config/load.ts';
import { ConfigError, SluiceError } from '../core/errors.ts';
import { registerBackfill } from './commands/backfill.ts';
import { registerDeadLetters } from './commands/dead-letters.ts';
import { registerReset } from './commands/reset.ts';
import { registerRun } from './commands/run.ts';
import { registerRuns } from './commands/runs.ts';
import { registerServe } from './commands/serve.ts';
import { registerStatus } from './commands/status.ts';
import { registerStore } from './commands/store.ts';

export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Batched, checkpointed, resumable record sync: backfill the history, then stay current.')
    .option('-c, --config <file>', 'the config file', DEFAULT_CONFIG)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerRun(program);
  registerBackfill(program);
  registerStatus(program);
  registerRuns(program);
  registerStore(program);
  registerReset(program);
  registerDeadLetters(program);
  registerServe(program);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

/** Runs the CLI; returns the exit code. Errors print one line (a config error lists every problem). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice: ${err.message}\n`);
      return 2;
    }
    const message =
      err instanceof SluiceError
        ? `${err.message} [${err.code}]`
        : err instanceof Error
          ? err.message
          : String(err);
    process.stderr.write(`sluice: ${message.split('\n')[0]}\n`);
    if (process.env.SLUICE_DEBUG) console.error(err);
    return 1;
  }
}
