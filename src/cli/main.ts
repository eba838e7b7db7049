import { dirname } from 'node:path';
import { Command, CommanderError } from 'commander';
import { DEFAULT_CONFIG } from '../config/load.ts';
import { ConfigError, SluiceError } from '../core/errors.ts';
import { registerBackfill } from './commands/backfill.ts';
import { registerCheck } from './commands/check.ts';
import { registerDeadLetters } from './commands/dead-letters.ts';
import { registerInit } from './commands/init.ts';
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
  registerInit(program);
  registerCheck(program);
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

/**
 * `npm run sluice -- …` runs the CLI in the package's folder, not the one it was typed in; npm says
 * which that was in `INIT_CWD`. Relative paths (`--config`, `init`'s files) mean the folder the user
 * typed them in, so the CLI moves there. Only for npm's run of this package's own `sluice` script:
 * a process started with another folder on purpose keeps it.
 */
export function typedInFolder(env: NodeJS.ProcessEnv, cwd: string): string | null {
  const { INIT_CWD: typed, npm_lifecycle_event: script, npm_package_json: pkg } = env;
  if (!typed || script !== 'sluice' || !pkg) return null;
  return dirname(pkg) === cwd && typed !== cwd ? typed : null;
}

/** Runs the CLI; returns the exit code. Errors print one line (a config error lists every problem). */
export async function main(argv: string[]): Promise<number> {
  const typed = typedInFolder(process.env, process.cwd());
  if (typed) process.chdir(typed);
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
