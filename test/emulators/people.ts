import type { Contact, HubSpotEmulator } from './hubspot.ts';

/**
 * Realistic-looking contacts for the HubSpot emulator (dev-only seed data, all made up): names,
 * emails, companies, job titles, phones and cities from small lists with a seeded generator, and
 * `lastmodifieddate` values in whole seconds shared by about `perSecond` contacts each, scattered
 * across ids. A few get an invalid email (as an old import might have left them), so a target that
 * validates emails refuses them.
 */
export type SeedOptions = {
  perSecond?: number;
  invalidEmails?: number;
  seed?: number;
  /** The earliest lastmodifieddate, ms. */
  since?: number;
};

const FIRST =
  'James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy Anthony Betty Mark Sandra Paul Ashley Amelie Lucas Sofia Mateo Chloe Noah Yuki Hiroshi Aisha Omar Ingrid Lars Priya Arjun Zoe Hugo'.split(
    ' ',
  );
const LAST =
  'Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Dubois Muller Rossi Tanaka Kowalski Jensen Silva Novak Schmidt'.split(
    ' ',
  );
const COMPANY_A =
  'Acme Globex Initech Umbrella Stark Wayne Hooli Vandelay Soylent Cyberdyne Tyrell Wonka Aperture Monarch Oscorp Nakatomi Gekko Initrode Contoso Fabrikam'.split(
    ' ',
  );
const COMPANY_B = ['Inc', 'LLC', 'Ltd', 'GmbH', 'Group', 'Labs', 'Systems', 'Partners', 'Holdings', 'Co'];
const TITLES = [
  'Account Executive',
  'Marketing Manager',
  'CTO',
  'Head of Sales',
  'Software Engineer',
  'Operations Lead',
  'CFO',
  'Customer Success Manager',
  'Product Manager',
  'Founder',
];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'mail.test', 'corp.example'];
const PLACES: readonly (readonly [string, string])[] = [
  ['New York', 'United States'],
  ['Austin', 'United States'],
  ['Toronto', 'Canada'],
  ['London', 'United Kingdom'],
  ['Paris', 'France'],
  ['Berlin', 'Germany'],
  ['Madrid', 'Spain'],
  ['Amsterdam', 'Netherlands'],
  ['Tokyo', 'Japan'],
  ['Sydney', 'Australia'],
  ['Sao Paulo', 'Brazil'],
  ['Bangalore', 'India'],
];
const BAD_EMAILS = [
  'maria.lopez@@example.com',
  'no-at-sign.example.com',
  'john smith@example.com',
  'sales@',
  '@example.org',
  'anna@example',
  'dup..dot@ example.com',
];

/** mulberry32: small, fast, seedable. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Adds `count` contacts; returns the ids of those given an invalid email. */
export function seedContacts(emu: HubSpotEmulator, count: number, options: SeedOptions = {}): number[] {
  const next = random(options.seed ?? 1);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const perSecond = Math.max(1, options.perSecond ?? 500);
  const seconds = Math.max(1, Math.ceil(count / perSecond));
  const since = options.since ?? Date.UTC(2024, 0, 1);
  const invalid = Math.min(options.invalidEmails ?? 0, count);
  const badAt = new Set(Array.from({ length: invalid }, (_, i) => Math.floor(((i + 0.5) * count) / invalid)));
  const bad: number[] = [];
  for (let i = 0; i < count; i++) {
    const c = emu.insert((id) => {
      const firstname = pick(FIRST);
      const lastname = pick(LAST);
      const [city, country] = pick(PLACES);
      const modified = since + Math.floor(next() * seconds) * 1000;
      const created = modified - Math.floor(next() * 900 * 86_400) * 1000;
      const fields: Omit<Contact, 'id'> = {
        email: badAt.has(i)
          ? BAD_EMAILS[bad.length % BAD_EMAILS.length]!
          : `${firstname}.${lastname}${id}@${pick(DOMAINS)}`.toLowerCase(),
        firstname,
        lastname,
        jobtitle: pick(TITLES),
        city,
        country,
        created,
        modified,
      };
      if (next() >= 0.1) fields.company = `${pick(COMPANY_A)} ${pick(COMPANY_B)}`;
      if (next() >= 0.2) fields.phone = `+1-555-${String(Math.floor(next() * 10_000_000)).padStart(7, '0')}`;
      return fields;
    });
    if (badAt.has(i)) bad.push(c.id);
  }
  return bad;
}
