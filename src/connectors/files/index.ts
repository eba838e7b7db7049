import { z } from 'zod';
import type { Connector } from '../../core/ports.ts';

// Placeholder until the files connector lands: it registers the type and refuses to open.
const connection = z.object({ dir: z.string().default('.') });

export const filesConnector: Connector<z.output<typeof connection>> = {
  type: 'files',
  connection,
};
