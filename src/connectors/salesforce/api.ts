import type { Auth } from '../http/auth.ts';
import { OAuth2 } from '../http/auth.ts';
import type { HttpClient, HttpRequest, HttpResponse } from '../http/client.ts';
import { HttpError } from '../http/errors.ts';

export type QueryAnswer = {
  totalSize: number;
  done: boolean;
  nextRecordsUrl?: string;
  records: Record<string, unknown>[];
};
export type SaveResult = {
  id?: string;
  success: boolean;
  created?: boolean;
  errors: { statusCode: string; message: string; fields?: string[] }[];
};

/**
 * A Salesforce org reached through the shared HTTP client. With OAuth the API lives at the
 * `instance_url` the token endpoint names, so the base URL is taken from the token response.
 */
export class SalesforceApi {
  readonly client: HttpClient;
  readonly version: string;
  private readonly auth: Auth;

  constructor(client: HttpClient, auth: Auth, version: string) {
    this.client = client;
    this.auth = auth;
    this.version = version;
  }

  get dataPath(): string {
    return `/services/data/v${this.version}`;
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    if (this.auth instanceof OAuth2) {
      if (!this.auth.last) {
        const auth = this.auth;
        await this.client.withRetries(() => auth.fetchToken(req.signal), req.signal);
      }
      const instance = this.auth.last?.instance_url;
      if (typeof instance === 'string') this.client.baseUrl = instance.replace(/\/+$/, '');
    }
    if (!this.client.baseUrl)
      throw new HttpError('HTTP_AUTH', 'no Salesforce instance URL: give instanceUrl or use OAuth');
    return this.client.request(req);
  }

  /** Runs a SOQL query and follows `nextRecordsUrl` (queryMore) until done. */
  async query(soql: string, signal: AbortSignal, batchSize?: number): Promise<QueryAnswer> {
    const headers = batchSize ? { 'sforce-query-options': `batchSize=${batchSize}` } : undefined;
    let res = await this.request({
      method: 'GET',
      path: `${this.dataPath}/query`,
      query: { q: soql },
      headers,
      signal,
    });
    const first = asQuery(res.body);
    const records = [...first.records];
    let answer = first;
    while (!answer.done && answer.nextRecordsUrl) {
      res = await this.request({ method: 'GET', path: answer.nextRecordsUrl, headers, signal });
      answer = asQuery(res.body);
      records.push(...answer.records);
    }
    return { totalSize: first.totalSize, done: true, records };
  }
}

function asQuery(body: unknown): QueryAnswer {
  const b = body as QueryAnswer | null;
  if (!b || typeof b.done !== 'boolean' || !Array.isArray(b.records)) {
    throw new HttpError('HTTP_BAD_RESPONSE', 'Salesforce query answer has no records/done', { body });
  }
  return b;
}

/** A SOQL string literal. */
export function soqlString(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A SOQL datetime literal (unquoted, UTC) from what Salesforce sent, e.g. 2024-01-01T00:00:00.000+0000. */
export function soqlDate(v: string | number): string {
  const ms = typeof v === 'number' ? v : Date.parse(v.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  if (Number.isNaN(ms)) throw new HttpError('HTTP_BAD_RESPONSE', `not a Salesforce datetime: ${v}`);
  // The documented format has whole seconds (YYYY-MM-DDThh:mm:ssZ), which is what Salesforce stores.
  const iso = new Date(ms).toISOString();
  return ms % 1000 === 0 ? iso.replace('.000Z', 'Z') : iso;
}

/** Field names go into SOQL text: only plain API names are allowed. */
export function soqlField(name: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_]*(__c|__r)?(\.[A-Za-z][A-Za-z0-9_]*)*$/.test(name)) {
    throw new HttpError('HTTP_CLIENT', `not a Salesforce field name: ${name}`);
  }
  return name;
}
