/**
 * The package's JavaScript (`npm run build`; tsc writes the declarations beside it). Two entries, the
 * library (`dist/index.js`) and the CLI (`dist/cli.js`), sharing their chunks, so a config that
 * imports 'sluice' and the CLI that loads it use one copy of each module. What a command imports
 * lazily (connectors, the PostgreSQL store, the runtime, the server) stays a chunk of its own.
 *
 * One file per concern instead of one per source module: `sluice status` loads about a dozen
 * files, not the ~150 Node resolved and linked one by one when dist/ mirrored src/ (bench/startup.ts).
 */
import { readFileSync } from 'node:fs';
import { defineConfig, type Plugin } from 'rolldown';

const { dependencies } = JSON.parse(readFileSync('package.json', 'utf8')) as {
  dependencies: Record<string, string>;
};
// The dependencies are imported from node_modules as they are, but for zod, bundled: imported whole
// it is 95 modules, every locale included, and about 100 ms of a command's start-up; bundled, only
// what the schemas use is kept. It stays a dependency for the types the declarations name.
// What src/ imports beyond the dependencies is bundled too: commander is a devDependency the CLI
// carries inside dist/, so its imports of node:fs and node:util go through builtinsAsCommonJs.
const BUNDLED = new Set(['zod']);
const external = Object.keys(dependencies).filter((name) => !BUNDLED.has(name));

/**
 * Node builtins taken with `process.getBuiltinModule` instead of `import`. For an `import`, Node
 * builds an ES module facade that reads every export of the builtin, and the lazy getters of
 * node:fs and node:util (streams, fs/promises, worker_threads, parseArgs…) then load about 60
 * internal modules that no command asked for, ~10-20 ms of CPU and ~1 MB at every start. The
 * CommonJS exports are the same objects, minus the facade. One line stays one line, so the source
 * maps hold.
 *
 * An `import` is bound before any module runs, a `const` only once its chunk runs: were two chunks
 * to import each other, one could call into the other before its builtins are there. The build
 * fails if the chunks' static imports ever form a cycle.
 */
// Builtins a bundled library takes whole but reaches only on paths no command takes at start:
// commander runs executable subcommands through node:child_process (Sluice has none), and loading
// it pulls net, dgram and streams in at every start (~1.2 MB and ~8 ms of `sluice status`). These
// load on first use instead.
const LAZY_BUILTINS = new Set(['node:child_process']);

function builtinsAsCommonJs(): Plugin {
  const importLine =
    /^import (?:([\w$]+)(?:, )?)?(?:\{ ([^}]*) \}|\* as ([\w$]+))? ?(?:from )?"(node:[\w/]+)";$/gm;
  return {
    name: 'builtins-as-commonjs',
    renderChunk(code) {
      const rewritten = code.replace(
        importLine,
        (_line, defaultName?: string, named?: string, namespace?: string, builtin?: string) => {
          const load = `process.getBuiltinModule(${JSON.stringify(builtin)})`;
          const whole = defaultName ?? namespace;
          if (whole && !named && LAZY_BUILTINS.has(builtin!))
            return `const ${whole} = new Proxy({}, { get: (_, name) => ${load}[name] });`;
          if (!whole && !named) return `${load};`;
          const names = named ? `{ ${named.replaceAll(' as ', ': ')} }` : '';
          if (!whole) return `const ${names} = ${load};`;
          return named ? `const ${whole} = ${load}, ${names} = ${whole};` : `const ${whole} = ${load};`;
        },
      );
      return rewritten === code ? null : { code: rewritten, map: null };
    },
    generateBundle(_options, bundle) {
      const imports = new Map(
        Object.values(bundle).flatMap((file) =>
          file.type === 'chunk' ? [[file.fileName, file.imports]] : [],
        ),
      );
      const done = new Set<string>();
      const visit = (name: string, path: string[]): void => {
        if (path.includes(name)) this.error(`chunks import each other: ${[...path, name].join(' → ')}`);
        if (done.has(name)) return;
        for (const next of imports.get(name) ?? []) if (imports.has(next)) visit(next, [...path, name]);
        done.add(name);
      };
      for (const name of imports.keys()) visit(name, []);
    },
  };
}

export default defineConfig({
  input: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
  platform: 'node',
  external: (id) => external.some((name) => id === name || id.startsWith(`${name}/`)),
  plugins: [builtinsAsCommonJs()],
  output: {
    dir: 'dist',
    format: 'esm',
    sourcemap: true,
    chunkFileNames: 'chunks/[name]-[hash].js',
  },
});
