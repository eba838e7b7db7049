import type { Command } from 'commander';
import { Workspace } from '../runtime/workspace.ts';

/** Opens the workspace named by the global `--config`, runs `fn`, and always closes it. */
export async function withWorkspace<T>(cmd: Command, fn: (ws: Workspace) => Promise<T>): Promise<T> {
  const { config } = cmd.optsWithGlobals<{ config: string }>();
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
