#!/usr/bin/env -S node --max-semi-space-size=16 --heap-growing-percent=50
// A batch is garbage once written. Semi-spaces capped at 16 MB let V8 collect it young instead of
// growing the young generation to its default: a million-row backfill peaks near 155 MB, not 240 MB
// (measured with `sluice backfill` on the demo's contacts). A batch whose reading allocates about as
// much as a semi-space holds (PostgreSQL's driver: ~3 KB a row) is promoted anyway; old space then
// grows by half of what survived before the next full collection, not by V8's default of up to 4x:
// the ordinary PostgreSQL path at 1M rows peaks near 178 MB, not 245 MB. NODE_OPTIONS can override the
// semi-spaces, not the growing factor (V8 refuses it there): run `node <flags> bin/sluice.js` to change both.

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
