#!/usr/bin/env -S node --max-semi-space-size=16
// A batch is garbage once written. Semi-spaces capped at 16 MB let V8 collect it young instead of
// growing the young generation to its default: a million-row backfill peaks near 155 MB, not 240 MB
// (measured with `sluice backfill` on the demo's contacts). NODE_OPTIONS can override it.

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  // Sluice runs its TypeScript directly, which Node does from 22.18 on.
  process.stderr.write(
    `sluice: needs Node.js 22.18 or newer, this is ${process.version}; in this repository run it through npm ` +
      '(`npm run sluice -- <command>`), which uses the Node 24 the project pins\n',
  );
  process.exit(1);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
