/** The CRM search API's filter operators and sort, as the HubSpot emulator evaluates them. */
export type Filter = {
  propertyName: string;
  operator: string;
  value?: string | number;
  values?: (string | number)[];
};

type Contactish = { id: number };

/** Dates filter by epoch-ms or ISO text; numbers numerically; the rest as text. */
function comparable(v: string | number): number | string {
  if (typeof v === 'number') return v;
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  if (/^\d{4}-\d\d-\d\dT/.test(v)) return Date.parse(v);
  return v.toLowerCase();
}

function cmp(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

/** `matches` with the filter's own value parsed once: a search over a million contacts tests it a million times. */
export function compileFilter(f: Filter): (value: string | number | null) => boolean {
  if (f.operator === 'HAS_PROPERTY' || f.operator === 'NOT_HAS_PROPERTY' || f.value === undefined)
    return (value) => matches(value, f);
  const want = comparable(f.value);
  if (f.operator === 'IN') return (value) => matches(value, f);
  return (value) =>
    value !== null && holds(f.operator, cmp(typeof value === 'number' ? value : comparable(value), want));
}

export function matches(value: string | number | null, f: Filter): boolean {
  switch (f.operator) {
    case 'HAS_PROPERTY':
      return value !== null && value !== '';
    case 'NOT_HAS_PROPERTY':
      return value === null || value === '';
    case 'IN':
      return value !== null && (f.values ?? []).some((v) => cmp(comparable(value), comparable(v)) === 0);
  }
  if (value === null || f.value === undefined) return false;
  return holds(f.operator, cmp(comparable(value), comparable(f.value)));
}

/** Whether a comparison result `c` (negative, zero, positive) satisfies a comparing operator. */
function holds(operator: Filter['operator'], c: number): boolean {
  switch (operator) {
    case 'EQ':
      return c === 0;
    case 'NEQ':
      return c !== 0;
    case 'LT':
      return c < 0;
    case 'LTE':
      return c <= 0;
    case 'GT':
      return c > 0;
    case 'GTE':
      return c >= 0;
    default:
      return false;
  }
}

/**
 * Search results sorted by the one sort rule. Ties are NOT returned in id order (HubSpot promises
 * no order among equal values), so a client that assumes one loses records here as it would there.
 */
export function searchOrder<C extends Contactish>(
  sort: { propertyName: string; direction: string } | undefined,
  value: (c: C, p: string) => string | number | null,
): (a: C, b: C) => number {
  const scramble = (c: C) => Math.imul(c.id, 2654435761) >>> 0;
  if (!sort) return (a, b) => a.id - b.id;
  const dir = sort.direction === 'DESCENDING' ? -1 : 1;
  return (a, b) => {
    const va = value(a, sort.propertyName);
    const vb = value(b, sort.propertyName);
    const c =
      va === null || vb === null
        ? (va === null ? -1 : 1) * (va === vb ? 0 : 1)
        : cmp(comparable(va), comparable(vb));
    return dir * c || scramble(a) - scramble(b);
  };
}
