import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * The HubSpot emulator's contacts (dev-only; never the real service): compact in memory (a million
 * fit), looked up by id and by unique property, with
 * - email matched case-insensitively (HubSpot keeps one contact per address, whatever its case);
 * - a search index that lags writes by up to `searchLagMs`, each write by its own delay (so a later
 *   change may be searchable before an earlier one): until then search sees the contact as it was
 *   before (or not at all, if it is new), as HubSpot's index takes in changes several seconds after
 *   they are made;
 * - the contacts kept in a JSON Lines file when `file` is given: every change is appended, and a new
 *   emulator on the same file starts with them.
 */
export type Contact = {
  id: number;
  email: string;
  firstname: string;
  lastname: string;
  created: number;
  modified: number;
} & Record<string, string | number>;

/** A contact and, until its last write reaches the search index (`visibleAt`), the version search still sees. */
type Entry = { c: Contact; visibleAt: number; indexed: Contact | null };

/** Properties every HubSpot account has on contacts (the subset the emulator knows). */
export const STANDARD_PROPERTIES = [
  'email',
  'firstname',
  'lastname',
  'company',
  'jobtitle',
  'phone',
  'mobilephone',
  'website',
  'address',
  'city',
  'state',
  'zip',
  'country',
  'lifecyclestage',
  'hs_lead_status',
  'createdate',
  'lastmodifieddate',
  'hs_object_id',
];

export type ContactStoreOptions = {
  /** Custom properties defined in the account, beyond the standard ones. */
  customProperties?: readonly string[];
  /** Custom properties defined as unique (usable as `idProperty`). */
  uniqueProperties?: readonly string[];
  searchLagMs?: number;
  file?: string | null;
};

export class ContactStore {
  /** In id order. */
  readonly contacts: Contact[] = [];
  readonly known: Set<string>;
  readonly unique: Set<string>;
  searchLagMs: number;
  private readonly entries = new Map<number, Entry>();
  /** Entries whose last write has not reached the search index yet. */
  private readonly pending = new Map<number, Entry>();
  private readonly byProp = new Map<string, Map<string, Contact>>([['email', new Map()]]);
  private readonly file: string | null;
  nextId = 1;

  constructor(options: ContactStoreOptions = {}) {
    this.known = new Set([...STANDARD_PROPERTIES, ...(options.customProperties ?? [])]);
    this.unique = new Set(['email', 'hs_object_id', ...(options.uniqueProperties ?? [])]);
    for (const u of this.unique) this.known.add(u);
    this.searchLagMs = options.searchLagMs ?? 0;
    this.file = options.file ?? null;
    if (this.file && existsSync(this.file)) this.load(this.file);
  }

  /** Whether the store started from a file that had contacts. */
  get restored(): boolean {
    return this.contacts.length > 0 && this.file !== null;
  }

  /** Adds contacts without writing the file per contact (seeding); call `save()` after. */
  seed(c: Contact): void {
    this.place(c, 0);
    this.nextId = Math.max(this.nextId, c.id + 1);
  }

  /** Writes every contact to the file (after seeding). */
  save(): void {
    if (!this.file) return;
    writeFileSync(this.file, this.contacts.map((c) => `${JSON.stringify(c)}\n`).join(''));
  }

  get(id: number): Contact | undefined {
    return this.entries.get(id)?.c;
  }

  /** The contact whose unique `property` has `value` (emails case-insensitively). */
  findBy(property: string, value: string): Contact | undefined {
    if (property === 'hs_object_id') return this.get(Number(value));
    return this.index(property).get(fold(property, value));
  }

  /** A new contact (the next id), written now. */
  create(fields: Omit<Contact, 'id'>, at = Date.now()): Contact {
    const c = { ...fields, id: this.nextId++ } as Contact;
    this.place(c, at);
    this.persist([c]);
    return c;
  }

  /**
   * Changes a contact as a write would: search keeps the previous version until this write reaches
   * the index, `lagMs` later (by default a delay of its own, up to `searchLagMs`).
   */
  modify(c: Contact, fields: Record<string, string | number>, at = Date.now(), lagMs?: number): void {
    const e = this.entries.get(c.id)!;
    const lag = lagMs ?? this.lagOf(c.id, at);
    if (lag > 0 && at >= e.visibleAt) e.indexed = { ...c };
    for (const p of this.byProp.keys()) {
      const before = c[p];
      if (before !== undefined && p in fields) this.byProp.get(p)!.delete(fold(p, String(before)));
    }
    Object.assign(c, fields);
    e.visibleAt = at + lag;
    if (lag > 0) this.pending.set(c.id, e);
    this.reindex(c);
    this.persist([c]);
  }

  /**
   * The contacts as the search index has them at `now`, in id order: each as it was before a write
   * that has not reached the index yet (absent if it is new). Without such writes, the contacts.
   */
  searchable(now: number): readonly Contact[] {
    for (const [id, e] of this.pending) if (now >= e.visibleAt) this.pending.delete(id);
    if (this.pending.size === 0) return this.contacts;
    const out: Contact[] = [];
    for (const c of this.contacts) {
      const p = this.pending.get(c.id);
      const seen = p ? p.indexed : c;
      if (seen) out.push(seen);
    }
    return out;
  }

  /** A write's own delay before search sees it: spread over [0, searchLagMs], the same for the same write. */
  private lagOf(id: number, at: number): number {
    if (this.searchLagMs <= 0) return 0;
    return Math.floor(this.searchLagMs * ((Math.imul(id ^ at, 2654435761) >>> 0) / 2 ** 32));
  }

  private place(c: Contact, at: number): void {
    this.contacts.push(c);
    const lag = at === 0 ? 0 : this.lagOf(c.id, at);
    const e: Entry = { c, visibleAt: at + lag, indexed: null };
    this.entries.set(c.id, e);
    if (lag > 0) this.pending.set(c.id, e);
    this.reindex(c);
  }

  private index(property: string): Map<string, Contact> {
    let m = this.byProp.get(property);
    if (!m) {
      m = new Map();
      this.byProp.set(property, m);
      for (const c of this.contacts)
        if (c[property] !== undefined) m.set(fold(property, String(c[property])), c);
    }
    return m;
  }

  private reindex(c: Contact): void {
    for (const [p, m] of this.byProp) {
      const v = c[p];
      if (v !== undefined && v !== '') m.set(fold(p, String(v)), c);
    }
  }

  private persist(changed: Contact[]): void {
    if (this.file) appendFileSync(this.file, changed.map((c) => `${JSON.stringify(c)}\n`).join(''));
  }

  private load(file: string): void {
    const latest = new Map<number, Contact>();
    for (const line of readFileSync(file, 'utf8').split('\n'))
      if (line) {
        const c = JSON.parse(line) as Contact;
        latest.set(c.id, c);
      }
    for (const c of [...latest.values()].sort((a, b) => a.id - b.id)) this.seed(c);
  }
}

/** Emails are one address whatever their case; other unique values are compared as they are. */
export function fold(property: string, value: string): string {
  return property === 'email' ? value.toLowerCase() : value;
}
