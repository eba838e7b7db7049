import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/store.ts';
import { tempDir } from '../support/tmp.ts';
import { storeConformance } from './conformance.ts';

storeConformance('SqliteStore', async ({ now }) =>
  SqliteStore.open(join(tempDir('store'), 'state.db'), { now }),
);
