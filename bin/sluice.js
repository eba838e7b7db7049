#!/usr/bin/env -S node --max-semi-space-size=16
// A batch is garbage once written. Semi-spaces capped at 16 MB let V8 collect it young instead of
// growing the young generation to its default: a million-row backfill peaks near 155 MB, not 240 MB
// (measured with `sluice backfill` on the demo's contacts). NODE_OPTIONS can override it.
import { main } from '../src/cli/main.ts';

process.exitCode = await main(process.argv);
