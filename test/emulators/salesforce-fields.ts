/**
 * The Contact fields the Salesforce emulator knows, with the checks Salesforce makes on a save
 * (dev-only emulation, from the documented field types and error codes):
 * - a field the object does not have refuses the whole call: 400 `INVALID_FIELD`
 *   ("No such column 'X' on sobject of type Contact");
 * - text longer than its field: `STRING_TOO_LONG`; a value outside a restricted picklist:
 *   `INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`; a bad email: `INVALID_EMAIL_ADDRESS`;
 * - a duplicate rule (off unless configured) matching an existing contact by email:
 *   `DUPLICATES_DETECTED`;
 * - read-only fields (Id, CreatedDate, SystemModstamp…) written: `INVALID_FIELD_FOR_INSERT_UPDATE`.
 */
export type FieldType =
  | { type: 'string'; length: number }
  | { type: 'email' }
  | { type: 'phone' }
  | { type: 'picklist'; values: readonly string[]; restricted: boolean }
  | { type: 'id' }
  | { type: 'datetime' }
  | { type: 'boolean' };

const text = (length: number): FieldType => ({ type: 'string', length });

/** Standard Contact fields (the subset emulated), by API name. */
export const STANDARD_FIELDS: Record<string, FieldType> = {
  Id: { type: 'id' },
  FirstName: text(40),
  LastName: text(80),
  Salutation: { type: 'picklist', values: ['Mr.', 'Ms.', 'Mrs.', 'Dr.', 'Prof.'], restricted: false },
  Email: { type: 'email' },
  Title: text(128),
  Department: text(80),
  Phone: { type: 'phone' },
  MobilePhone: { type: 'phone' },
  MailingStreet: text(255),
  MailingCity: text(40),
  MailingState: text(80),
  MailingPostalCode: text(20),
  MailingCountry: text(80),
  Description: text(32_000),
  LeadSource: {
    type: 'picklist',
    values: ['Web', 'Phone Inquiry', 'Partner Referral', 'Purchased List', 'Other'],
    restricted: true,
  },
  AccountId: { type: 'id' },
  CreatedDate: { type: 'datetime' },
  LastModifiedDate: { type: 'datetime' },
  SystemModstamp: { type: 'datetime' },
  IsDeleted: { type: 'boolean' },
};

const READ_ONLY = new Set(['id', 'createddate', 'lastmodifieddate', 'systemmodstamp', 'isdeleted']);

/** Custom fields the emulator's org has unless told otherwise: the ones the tests, bench and demo use. */
export const DEFAULT_CUSTOM_FIELDS: Record<string, FieldType> = {
  External_Id__c: text(255),
  HubSpot_Id__c: text(255),
  Company__c: text(255),
};

export type FieldError = { statusCode: string; message: string; fields: string[] };

export class ContactFields {
  private readonly byLower = new Map<string, [string, FieldType]>();

  constructor(custom: Record<string, FieldType> = DEFAULT_CUSTOM_FIELDS) {
    for (const [name, t] of Object.entries({ ...STANDARD_FIELDS, ...custom }))
      this.byLower.set(name.toLowerCase(), [name, t]);
  }

  /** The field's API name as declared (SOQL and JSON names are case-insensitive), or undefined. */
  name(field: string): string | undefined {
    return this.byLower.get(field.toLowerCase())?.[0];
  }

  /** Fields of a record (or a SELECT) the object does not have. */
  unknown(fields: Iterable<string>): string[] {
    return [...fields].filter((f) => f !== 'attributes' && !this.byLower.has(f.toLowerCase()));
  }

  /** What Salesforce would refuse in one record's values, or null. */
  check(record: Record<string, unknown>, field: string): FieldError | null {
    for (const [k, v] of Object.entries(record)) {
      if (k === 'attributes') continue;
      const known = this.byLower.get(k.toLowerCase());
      if (!known) continue;
      const [name, t] = known;
      if (READ_ONLY.has(name.toLowerCase()) && name !== 'Id')
        return bad('INVALID_FIELD_FOR_INSERT_UPDATE', `Unable to create/update fields: ${name}.`, [name]);
      if (v === null || v === undefined || v === '') continue;
      const s = String(v);
      if (t.type === 'string' && s.length > t.length)
        return bad(
          'STRING_TOO_LONG',
          `${name}: data value too large: ${s.slice(0, 40)}${s.length > 40 ? '…' : ''} (max length=${t.length})`,
          [name],
        );
      if (t.type === 'email' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s))
        return bad('INVALID_EMAIL_ADDRESS', `${name}: invalid email address: ${s}`, [name]);
      if (t.type === 'phone' && s.length > 40)
        return bad('STRING_TOO_LONG', `${name}: data value too large: ${s} (max length=40)`, [name]);
      if (t.type === 'picklist' && t.restricted && !t.values.includes(s))
        return bad(
          'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST',
          `${name}: bad value for restricted picklist field: ${s}`,
          [name],
        );
    }
    if (field && (record[field] === undefined || record[field] === null || record[field] === ''))
      return bad('REQUIRED_FIELD_MISSING', `Required fields are missing: [${field}]`, [field]);
    return null;
  }
}

export const bad = (statusCode: string, message: string, fields: string[]): FieldError => ({
  statusCode,
  message,
  fields,
});
