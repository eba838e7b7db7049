import type { Command } from 'commander';
import type { Workspace } from '../runtime/workspace.ts';

/** Opens the workspace named by the global `--config`, runs `fn`, and always closes it. */
export async function withWorkspace<T>(cmd: Command, fn: (ws: Workspace) => Promise<T>): Promise<T> {
  const { config } = cmd.optsWithGlobals<{ config: string }>();
  // Imported here, not at the top: `sluice --help` and `sluice init` need no engine, store or zod.
  const { Workspace } = await import('../runtime/workspace.ts');
  const ws = await Workspace.open(config);
  try {
    return await fn(ws);
  } finally {
    await ws.close();
  }
}

/**
 * A signal that asks for a graceful stop on the first SIGINT/SIGTERM (the batch in hand finishes
 * and is checkpointed); a second signal exits at once.
 */
export function gracefulStop(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.stderr.write(`\nsluice: ${name} again, exiting now\n`);
      process.exit(130);
    }
    process.stderr.write(`\nsluice: ${name} received, finishing the batch in hand (again to force)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
