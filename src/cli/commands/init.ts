import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { CONFIG_EXTENSIONS, DEFAULT_CONFIG } from '../../config/load.ts';
import { SluiceError } from '../../core/errors.ts';
import {
  type ScaffoldType,
  scaffoldConfig,
  scaffoldDescriptions,
  scaffoldEnv,
  scaffoldTypes,
} from '../scaffold.ts';

type InitOptions = {
  source?: ScaffoldType;
  target?: ScaffoldType;
  sync?: string;
  store?: string;
  yes?: boolean;
  force?: boolean;
};

export function registerInit(program: Command): void {
  program
    .command('init')
    .description(
      'write a commented sluice.config.ts for a source and a target, and add the store to .gitignore',
    )
    .option('--source <type>', `the source's connector: ${scaffoldTypes.join(', ')}`, scaffoldType)
    .option('--target <type>', `the target's connector: ${scaffoldTypes.join(', ')}`, scaffoldType)
    .option('--sync <name>', 'the name of the sync (default: contacts)', syncName)
    .option('--store <location>', 'the store: a SQLite file relative to the config, or a postgres:// URL')
    .option('-y, --yes', 'ask nothing: take the flags given and defaults (sqlite) for the rest')
    .option('--force', 'overwrite an existing config file')
    .action(async (opts: InitOptions, cmd: Command) => {
      const { config } = cmd.optsWithGlobals<{ config: string }>();
      // `--config` given: that file. Else the default name, in the extension this project can import.
      const named = cmd.parent?.getOptionValueSource('config') === 'cli';
      const file = named ? resolve(config) : defaultConfigFile(process.cwd());
      const existing = named
        ? [file].filter((f) => existsSync(f))
        : CONFIG_EXTENSIONS.map((ext) => resolve(`sluice.config${ext}`)).filter((f) => existsSync(f));
      if (existing.length > 0 && !opts.force) {
        throw new SluiceError(
          'CONFIG_EXISTS',
          `${existing[0]} exists; pass --force to overwrite it, or --config <file> to write another`,
        );
      }
      const answers = await answersFor(opts);
      const store = opts.store ?? '.sluice/state.db';
      writeFileSync(file, scaffoldConfig({ ...answers, store }));
      const lines = [`wrote ${file} (${answers.source} → ${answers.target}, sync ${answers.sync})`];
      const ignored = ignoreStore(dirname(file), store);
      if (ignored) lines.push(`added ${ignored} to ${join(dirname(file), '.gitignore')}`);
      const env = scaffoldEnv(answers);
      // The commands as the user types them: `--config` only where the file is not the default.
      const configFlag =
        !named || relative(process.cwd(), file) === DEFAULT_CONFIG
          ? ''
          : ` --config ${relative(process.cwd(), file)}`;
      const commands = [
        [`npx sluice check${configFlag}`, 'connects, checks tables, keys and credentials; writes nothing'],
        [`npx sluice backfill ${answers.sync}${configFlag}`, 'moves the history in time-boxed runs'],
      ] as const;
      const width = Math.max(...commands.map(([c]) => c.length)) + 3;
      lines.push(
        '',
        'next:',
        ...(env.length > 0
          ? [`  set ${env.join(', ')} in the environment (read when the config loads)`]
          : []),
        `  edit the connections and the sync in ${relative(process.cwd(), file) || file}`,
        ...commands.map(([command, what]) => `  ${command.padEnd(width)}${what}`),
      );
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

/**
 * `sluice.config.ts`, or `sluice.config.mts` in a project whose package.json says `"type":
 * "commonjs"` (npm init's default): there a `.ts` file is CommonJS and its `import` fails, while
 * `.mts` is always a module. The loader finds the default name with either extension.
 */
function defaultConfigFile(dir: string): string {
  let type: unknown;
  try {
    type = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: unknown }).type;
  } catch {
    // No package.json here (or not JSON): Node treats a .ts file with import/export as a module.
    type = undefined;
  }
  return resolve(dir, type === 'commonjs' ? 'sluice.config.mts' : DEFAULT_CONFIG);
}

function scaffoldType(value: string): ScaffoldType {
  if (!(scaffoldTypes as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${scaffoldTypes.join(', ')}, got "${value}"`);
  return value as ScaffoldType;
}

function syncName(value: string): string {
  if (!/^[A-Za-z_][\w-]*$/.test(value))
    throw new InvalidArgumentError(`expected a name of letters, digits, _ and -, got "${value}"`);
  return value;
}

/**
 * The choices not given as flags: asked on a terminal (with @inquirer/prompts, imported only then),
 * sqlite with `--yes`, refused otherwise (a script must say what it wants).
 */
async function answersFor(
  opts: InitOptions,
): Promise<{ source: ScaffoldType; target: ScaffoldType; sync: string }> {
  const interactive = !opts.yes && Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (!interactive) {
    if (!opts.yes && (!opts.source || !opts.target)) {
      throw new SluiceError(
        'INIT_NEEDS_FLAGS',
        `not on a terminal: pass --source <type> and --target <type> (${scaffoldTypes.join(', ')}), or --yes for sqlite`,
      );
    }
    return {
      source: opts.source ?? 'sqlite',
      target: opts.target ?? 'sqlite',
      sync: opts.sync ?? 'contacts',
    };
  }
  const { input, select } = await import('@inquirer/prompts');
  const choices = scaffoldTypes.map((type) => ({
    name: `${type} — ${scaffoldDescriptions[type]}`,
    value: type,
  }));
  const source = opts.source ?? (await select({ message: 'Read records from', choices }));
  const target = opts.target ?? (await select({ message: 'Write them to', choices }));
  const sync =
    opts.sync ??
    (await input({
      message: 'Name of the sync',
      default: 'contacts',
      validate: (v) => /^[A-Za-z_][\w-]*$/.test(v) || 'letters, digits, _ and - only',
    }));
  return { source, target, sync };
}

/**
 * Adds the store to the .gitignore beside the config (made if missing): its folder for the default
 * `.sluice/state.db`, else the file and its -wal and -shm companions. Returns what was added, or
 * null (a PostgreSQL store, a path outside the folder, or a line already there).
 */
function ignoreStore(dir: string, store: string): string | null {
  if (/^postgres(ql)?:\/\//.test(store)) return null;
  const path = store.startsWith('sqlite:') ? store.slice('sqlite:'.length) : store;
  if (path === ':memory:') return null;
  const rel = relative(dir, resolve(dir, path));
  if (rel.startsWith('..') || isAbsolute(rel)) return null;
  const posix = rel.split(sep).join('/');
  const [first, ...rest] = posix.split('/');
  const wanted = rest.length > 0 ? [`${first}/`] : [posix, `${posix}-wal`, `${posix}-shm`];
  const file = join(dir, '.gitignore');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const present = new Set(text.split(/\r?\n/).map((l) => l.trim().replace(/^\//, '')));
  const missing = wanted.filter((w) => !present.has(w) && !present.has(w.replace(/\/$/, '')));
  if (missing.length === 0) return null;
  const prefix = text.length > 0 && !text.endsWith('\n') ? '\n' : '';
  writeFileSync(
    file,
    `${text}${prefix}# Sluice's store (checkpoints, runs, dead letters)\n${missing.join('\n')}\n`,
  );
  return missing.join(', ');
}
