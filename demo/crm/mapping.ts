/**
 * The demo's mapping from a HubSpot contact (as the hubspot source emits it: `id` beside its
 * properties, all strings or null) to a Salesforce Contact. The generated sluice.config.ts imports
 * it, and the demo's verification applies it to what it fetches from HubSpot, so both sides are
 * compared field by field. A Salesforce Contact has no company field (companies are Accounts), so
 * the company name goes into a custom text field, `Company__c`, as integrations often do.
 */
export type HubSpotRow = Record<string, unknown>;
export type SalesforceContact = Record<string, string | null>;

/** The HubSpot properties the source reads. */
export const HUBSPOT_PROPERTIES = [
  'email',
  'firstname',
  'lastname',
  'company',
  'jobtitle',
  'phone',
  'city',
  'country',
] as const;

/** The Salesforce external id field holding the HubSpot id: the target upserts by it. */
export const EXTERNAL_ID = 'HubSpot_Id__c';

/** The Salesforce fields the mapping fills, in a fixed order (for hashing). */
export const SALESFORCE_FIELDS = [
  EXTERNAL_ID,
  'FirstName',
  'LastName',
  'Email',
  'Company__c',
  'Title',
  'Phone',
  'MailingCity',
  'MailingCountry',
] as const;

const text = (v: unknown): string | null => (v === null || v === undefined || v === '' ? null : String(v));

export function toSalesforceContact(c: HubSpotRow): SalesforceContact {
  return {
    [EXTERNAL_ID]: String(c.id),
    FirstName: text(c.firstname),
    // LastName is required on a Salesforce Contact.
    LastName: text(c.lastname) ?? '(unknown)',
    Email: text(c.email)?.toLowerCase() ?? null,
    Company__c: text(c.company),
    Title: text(c.jobtitle),
    Phone: text(c.phone),
    MailingCity: text(c.city),
    MailingCountry: text(c.country),
  };
}
