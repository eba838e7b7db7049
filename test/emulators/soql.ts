/**
 * The subset of SOQL the Salesforce emulator understands — enough for keyset reads and what
 * jsforce sends for simple queries:
 *   SELECT a, b | COUNT() FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC], …] [LIMIT n]
 * with cond built from `field op literal`, `field IN (literal, …)`, AND, OR and parentheses; literals
 * are 'text', numbers, null, true/false and datetimes (2024-01-01T00:00:00Z, with optional .sss and
 * ±hh:mm).
 */
export type Value = string | number | boolean | null;
export type Cond =
  | { kind: 'cmp'; field: string; op: string; value: Value }
  | { kind: 'in'; field: string; values: Value[] }
  | { kind: 'and' | 'or'; parts: Cond[] };
export type Query = {
  fields: string[];
  count: boolean;
  from: string;
  where: Cond | null;
  order: { field: string; dir: 1 | -1 }[];
  limit: number | null;
};

export class SoqlError extends Error {}

const TOKEN =
  /\s*(?:(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))|('(?:[^'\\]|\\.)*')|(<=|>=|!=|<>|=|<|>|\(|\)|,)|(-?\d+(?:\.\d+)?)|([A-Za-z_][\w.]*))/y;

type Tok = { t: 'date' | 'str' | 'sym' | 'num' | 'word'; v: string };

function tokenize(q: string): Tok[] {
  const out: Tok[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < q.trimEnd().length) {
    const m = TOKEN.exec(q);
    if (!m)
      throw new SoqlError(
        `unexpected text at ${TOKEN.lastIndex}: ${q.slice(TOKEN.lastIndex, TOKEN.lastIndex + 20)}`,
      );
    if (m[1]) out.push({ t: 'date', v: m[1] });
    else if (m[2]) out.push({ t: 'str', v: m[2].slice(1, -1).replace(/\\(.)/g, '$1') });
    else if (m[3]) out.push({ t: 'sym', v: m[3] });
    else if (m[4]) out.push({ t: 'num', v: m[4] });
    else out.push({ t: 'word', v: m[5]! });
  }
  return out;
}

export function parseSoql(text: string): Query {
  const toks = tokenize(text);
  let i = 0;
  const peek = () => toks[i];
  const isWord = (w: string) => peek()?.t === 'word' && peek()!.v.toUpperCase() === w;
  const expectWord = (w: string) => {
    if (!isWord(w)) throw new SoqlError(`expected ${w} at token ${i}`);
    i++;
  };
  const word = () => {
    const t = toks[i++];
    if (t?.t !== 'word') throw new SoqlError(`expected a field name at token ${i - 1}`);
    return t.v;
  };
  expectWord('SELECT');
  const fields: string[] = [];
  let count = false;
  if (isWord('COUNT') && toks[i + 1]?.v === '(' && toks[i + 2]?.v === ')') {
    count = true;
    i += 3;
  } else {
    do fields.push(word());
    while (toks[i]?.v === ',' && ++i);
  }
  expectWord('FROM');
  const from = word();
  let where: Cond | null = null;
  const literal = (): Value => {
    const t = toks[i++];
    if (!t) throw new SoqlError('expected a value');
    if (t.t === 'date') return Date.parse(t.v.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
    if (t.t === 'str') return t.v;
    if (t.t === 'num') return Number(t.v);
    if (t.t === 'word' && /^(null|true|false)$/i.test(t.v))
      return t.v.toLowerCase() === 'null' ? null : t.v.toLowerCase() === 'true';
    throw new SoqlError(`unexpected ${t.v}`);
  };
  const factor = (): Cond => {
    if (toks[i]?.v === '(') {
      i++;
      const c = or();
      if (toks[i++]?.v !== ')') throw new SoqlError('expected )');
      return c;
    }
    const field = word();
    if (isWord('IN')) {
      i++;
      if (toks[i++]?.v !== '(') throw new SoqlError('expected ( after IN');
      const values: Value[] = [literal()];
      while (toks[i]?.v === ',' && ++i) values.push(literal());
      if (toks[i++]?.v !== ')') throw new SoqlError('expected ) after the IN list');
      return { kind: 'in', field, values };
    }
    const op = toks[i++];
    if (op?.t !== 'sym') throw new SoqlError(`expected an operator after ${field}`);
    return { kind: 'cmp', field, op: op.v === '<>' ? '!=' : op.v, value: literal() };
  };
  const and = (): Cond => {
    const parts = [factor()];
    while (isWord('AND')) {
      i++;
      parts.push(factor());
    }
    return parts.length === 1 ? parts[0]! : { kind: 'and', parts };
  };
  const or = (): Cond => {
    const parts = [and()];
    while (isWord('OR')) {
      i++;
      parts.push(and());
    }
    return parts.length === 1 ? parts[0]! : { kind: 'or', parts };
  };
  if (isWord('WHERE')) {
    i++;
    where = or();
  }
  const order: Query['order'] = [];
  if (isWord('ORDER')) {
    i++;
    expectWord('BY');
    do {
      const field = word();
      let dir: 1 | -1 = 1;
      if (isWord('ASC')) i++;
      else if (isWord('DESC')) {
        i++;
        dir = -1;
      }
      order.push({ field, dir });
    } while (toks[i]?.v === ',' && ++i);
  }
  let limit: number | null = null;
  if (isWord('LIMIT')) {
    i++;
    limit = Number(literal());
  }
  if (i < toks.length) throw new SoqlError(`unexpected ${toks[i]!.v}`);
  return { fields, count, from, where, order, limit };
}

export function compare(a: Value, b: Value): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : 1;
}

/** Every field a query names: selected, filtered on, ordered by. */
export function fieldsOf(q: Query): string[] {
  const out = [...q.fields, ...q.order.map((o) => o.field)];
  const walk = (c: Cond | null): void => {
    if (!c) return;
    if (c.kind === 'cmp' || c.kind === 'in') out.push(c.field);
    else for (const p of c.parts) walk(p);
  };
  walk(q.where);
  return out;
}

export function evaluate(cond: Cond, get: (field: string) => Value): boolean {
  if (cond.kind === 'in') {
    const v = get(cond.field);
    return v !== null && cond.values.some((x) => x !== null && compare(v, x) === 0);
  }
  if (cond.kind !== 'cmp')
    return cond.kind === 'and'
      ? cond.parts.every((p) => evaluate(p, get))
      : cond.parts.some((p) => evaluate(p, get));
  const v = get(cond.field);
  if (cond.op === '=')
    return v === cond.value || (v !== null && cond.value !== null && compare(v, cond.value) === 0);
  if (cond.op === '!=') return compare(v, cond.value) !== 0;
  if (v === null || cond.value === null) return false;
  const c = compare(v, cond.value);
  return cond.op === '<' ? c < 0 : cond.op === '<=' ? c <= 0 : cond.op === '>' ? c > 0 : c >= 0;
}
