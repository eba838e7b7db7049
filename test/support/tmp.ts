import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

/**
 * A fresh folder for one test. It is removed when the test passes and kept when it fails, with its
 * path added to the failure, so the databases in it can be inspected.
 */
export function tempDir(label = 'sluice'): string {
  const dir = mkdtempSync(join(tmpdir(), `${label}-`));
  onTestFinished((ctx) => {
    const failed = ctx.task.result?.state === 'fail';
    if (failed) {
      for (const error of ctx.task.result?.errors ?? [])
        error.message = `${error.message}\n(test files kept in ${dir})`;
      return;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
