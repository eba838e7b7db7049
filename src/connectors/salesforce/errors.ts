import { ConnectorError } from '../../core/errors.ts';

/**
 * Salesforce refuses a whole call naming a field the object does not have:
 * `400 [{ "errorCode": "INVALID_FIELD", "message": "No such column 'Foo__c' on sobject of type Contact" }]`.
 * The names of those fields, or none.
 */
export function unknownFields(body: unknown): string[] {
  if (!Array.isArray(body)) return [];
  const names: string[] = [];
  for (const e of body as { errorCode?: unknown; message?: unknown; fields?: unknown }[]) {
    if (e?.errorCode !== 'INVALID_FIELD') continue;
    if (Array.isArray(e.fields) && e.fields.length) names.push(...e.fields.map(String));
    else {
      const m = typeof e.message === 'string' ? /No such column '([^']+)'/.exec(e.message) : null;
      names.push(m?.[1] ?? String(e.message));
    }
  }
  return [...new Set(names)];
}

/** The sync sends fields the object does not have: a config mistake, reported as such. */
export class UnknownFieldError extends ConnectorError {
  readonly fields: readonly string[];
  constructor(object: string, fields: readonly string[], cause: unknown) {
    const list = fields.map((f) => `"${f}"`).join(', ');
    super(
      'SALESFORCE_FIELD_UNKNOWN',
      `Salesforce ${object} has no field ${list} (or this user cannot write it): add it to the object, or leave it out of the records (the target's \`omit\` option, or the sync's map). Nothing of this batch was written.`,
      { cause },
    );
    this.name = 'UnknownFieldError';
    this.fields = fields;
  }
}

/** Records still refused with `UNABLE_TO_LOCK_ROW` after the retries: momentary, so the batch is tried again later. */
export class RowsLockedError extends ConnectorError {
  constructor(count: number, attempts: number, message: string) {
    super(
      'SALESFORCE_ROW_LOCKED',
      `Salesforce could not lock ${count} record${count === 1 ? '' : 's'} after ${attempts} attempts (${message}); another transaction holds them, so the batch will be tried again`,
      { transient: true },
    );
    this.name = 'RowsLockedError';
  }
}
