import type { Command } from 'commander';
import type { Json } from '../../core/types.ts';
import { withWorkspace } from '../context.ts';
import { printJson, table } from '../format.ts';

export function registerStore(program: Command): void {
  const store = program
    .command('store')
    .description('the key-value data store syncs read and write through their context');

  store
    .command('get')
    .description('print the value of a key (exit 1 if absent)')
    .argument('<key>')
    .action(async (key: string, _opts: unknown, cmd: Command) => {
      await withWorkspace(cmd, async (ws) => {
        const value = await ws.store.data.get(key);
        if (value === undefined) {
          process.stderr.write(`sluice: no key "${key}" in the data store\n`);
          process.exitCode = 1;
          return;
        }
        printJson(value);
      });
    });

  store
    .command('set')
    .description('set a key; the value is parsed as JSON when it is JSON, else kept as a string')
    .argument('<key>')
    .argument('<value>')
    .action(async (key: string, value: string, _opts: unknown, cmd: Command) => {
      await withWorkspace(cmd, (ws) => ws.store.data.set(key, parseValue(value)));
    });

  store
    .command('del')
    .description('delete a key (exit 1 if absent)')
    .argument('<key>')
    .action(async (key: string, _opts: unknown, cmd: Command) => {
      await withWorkspace(cmd, async (ws) => {
        if (!(await ws.store.data.del(key))) {
          process.stderr.write(`sluice: no key "${key}" in the data store\n`);
          process.exitCode = 1;
        }
      });
    });

  store
    .command('list')
    .description('list keys and values, optionally those starting with a prefix')
    .argument('[prefix]')
    .option('--json', 'print as JSON')
    .action(async (prefix: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      await withWorkspace(cmd, async (ws) => {
        const entries = await ws.store.data.list(prefix);
        if (opts.json) return printJson(entries);
        const rows = entries.map((e) => [e.key, JSON.stringify(e.value), e.updatedAt]);
        process.stdout.write(`${table(['KEY', 'VALUE', 'UPDATED'], rows)}\n`);
      });
    });
}

function parseValue(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}
