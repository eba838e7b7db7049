import { ConnectorError } from '../../core/errors.ts';

/**
 * HubSpot refuses a whole batch whose inputs name a property the account does not have: a 400
 * `VALIDATION_ERROR` whose message embeds the per-property details as JSON
 * (`Property values were not valid: [{"isValid":false,"error":"PROPERTY_DOESNT_EXIST","name":"x",…}]`),
 * some answers also listing them in `errors[]` with `code: PROPERTY_DOESNT_EXIST`. The names of those
 * properties, or none.
 */
export function unknownProperties(body: unknown): string[] {
  if (!body || typeof body !== 'object') return [];
  const names = new Set<string>();
  const b = body as { message?: unknown; errors?: unknown };
  if (typeof b.message === 'string' && b.message.includes('PROPERTY_DOESNT_EXIST')) {
    const start = b.message.indexOf('[');
    const details = start >= 0 ? parseDetails(b.message.slice(start)) : [];
    for (const d of details)
      if (d.error === 'PROPERTY_DOESNT_EXIST' && typeof d.name === 'string') names.add(d.name);
  }
  if (Array.isArray(b.errors)) {
    for (const e of b.errors as { code?: unknown; context?: { propertyName?: unknown } }[]) {
      const named = e?.context?.propertyName;
      if (e?.code === 'PROPERTY_DOESNT_EXIST' && Array.isArray(named))
        for (const n of named) if (typeof n === 'string') names.add(n);
    }
  }
  return [...names];
}

function parseDetails(text: string): { error?: unknown; name?: unknown }[] {
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    // Not the JSON HubSpot documents: nothing to name; the caller treats the 400 as any other.
    return [];
  }
}

/** The sync sends properties HubSpot does not have: a config mistake, reported as such. */
export class UnknownPropertyError extends ConnectorError {
  readonly properties: readonly string[];
  constructor(properties: readonly string[], body: unknown) {
    const list = properties.map((p) => `"${p}"`).join(', ');
    super(
      'HUBSPOT_PROPERTY_UNKNOWN',
      `HubSpot has no contact propert${properties.length === 1 ? 'y' : 'ies'} ${list}: create ${properties.length === 1 ? 'it' : 'them'} in HubSpot, or leave ${properties.length === 1 ? 'it' : 'them'} out of the records (the target's \`omit\` option, or the sync's map). Nothing of this batch was written.`,
      { cause: body },
    );
    this.name = 'UnknownPropertyError';
    this.properties = properties;
  }
}
