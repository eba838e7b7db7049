import type { Command } from 'commander';
import { UnknownSyncError } from '../../core/errors.ts';
import { stringifyJson } from '../../core/json.ts';
import { count, printJson } from '../format.ts';
import type { Finding, SyncCheck } from '../inspect.ts';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description(
      "load the config, connect to every connection its syncs use, check tables, columns, keys and credentials, and say what each sync's next run would do; writes nothing",
    )
    .argument('[sync]', 'only this sync')
    .option('--json', 'print the findings as JSON')
    .action(async (only: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const { config: path } = cmd.optsWithGlobals<{ config: string }>();
      // Imported when the command runs: the CLI starts without the workspace, the store or zod.
      const { Workspace } = await import('../../runtime/workspace.ts');
      const { checkSync, problemsOf, storeToRead } = await import('../inspect.ts');
      const config = await Workspace.loadConfig(path);
      const names = [...config.syncs.keys()];
      if (only && !config.syncs.has(only)) throw new UnknownSyncError(only, names);
      const { store, findings: storeFindings } = await storeToRead(config);
      const checks: SyncCheck[] = [];
      try {
        for (const name of only ? [only] : names) checks.push(await checkSync(config, name, store));
      } finally {
        await store?.close();
      }
      const problems = problemsOf(checks, storeFindings);
      if (opts.json) printJson({ ok: problems.length === 0, store: storeFindings, syncs: checks, problems });
      else process.stdout.write(report(checks, storeFindings, problems));
      if (problems.length > 0) process.exitCode = 1;
    });
}

function report(
  checks: readonly SyncCheck[],
  store: readonly Finding[],
  problems: readonly string[],
): string {
  const lines: string[] = [];
  for (const f of store) lines.push(findingLine(f));
  for (const c of checks) {
    lines.push(
      '',
      `${c.sync}: ${c.source.type} ${c.source.connection} → ${c.target.type} ${c.target.connection}`,
    );
    if (c.next) lines.push(...nextRunLines(c));
    for (const f of c.findings) lines.push(findingLine(f));
  }
  lines.push(
    '',
    problems.length === 0
      ? `no problems found in ${count(checks.length)} ${checks.length === 1 ? 'sync' : 'syncs'}`
      : `${count(problems.length)} ${problems.length === 1 ? 'problem' : 'problems'}:\n${problems.map((p) => `  ${p}`).join('\n')}`,
  );
  return `${lines.join('\n').replace(/^\n/, '')}\n`;
}

function nextRunLines(c: SyncCheck): string[] {
  const next = c.next!;
  const phase = next.startsBackfill
    ? 'starts the backfill'
    : next.phase === 'backfill'
      ? 'goes on with the backfill'
      : 'incremental (the backfill is done)';
  const left = next.estimate
    ? `${next.estimate.exact ? '' : 'about '}${count(next.estimate.records)} records left`
    : next.phase === 'incremental'
      ? 'reads what is new or changed since the checkpoint'
      : 'records left: the source cannot tell';
  const json = (cursor: unknown) => (cursor === null ? 'none' : stringifyJson(cursor));
  return [
    `  next run:    ${phase}; ${left}`,
    next.phase === 'backfill'
      ? `  high-water:  ${json(next.highWaterMark)}${next.startsBackfill ? ' (as the source stands now)' : ''}`
      : `  reads after: ${json(next.cursor)}`,
    `  native copy: ${next.nativeCopy.native ? 'yes' : 'no'}: ${next.nativeCopy.why}`,
    ...(next.openDeadLetters > 0 ? [`  dead letters: ${count(next.openDeadLetters)} open`] : []),
  ];
}

const LABEL: Record<Finding['level'], string> = { ok: 'ok     ', warning: 'warning', problem: 'PROBLEM' };

function findingLine(f: Finding): string {
  return `  ${LABEL[f.level]} ${f.side}: ${f.message}`;
}
