import { z } from 'zod';
import { getPath } from './settings.ts';
import type { ResponseHeaders } from './transport.ts';

export const pagingSchema = z.discriminatedUnion('style', [
  /** The body names the next page's token; it is sent back as `param`. */
  z.strictObject({
    style: z.literal('cursor'),
    param: z.string().default('cursor'),
    nextPath: z.string().default('next_cursor'),
    sizeParam: z.string().default('limit'),
  }),
  z.strictObject({
    style: z.literal('offset'),
    offsetParam: z.string().default('offset'),
    sizeParam: z.string().default('limit'),
  }),
  z.strictObject({
    style: z.literal('page'),
    pageParam: z.string().default('page'),
    sizeParam: z.string().default('per_page'),
    firstPage: z.number().int().min(0).default(1),
  }),
  /** RFC 8288 `Link: <…>; rel="next"` headers, as GitHub and many others send. */
  z.strictObject({ style: z.literal('link'), sizeParam: z.string().default('per_page') }),
]);

export type Paging = z.output<typeof pagingSchema>;

/** Where a listing stands: the token to send next (a cursor, offset, page number or next URL), null at the start. */
export type PageToken = string | number | null;

export type PageRequest = { path: string; query: Record<string, string | number> };

/** The request for the page at `token`, `size` records long. */
export function pageRequest(paging: Paging, path: string, token: PageToken, size: number): PageRequest {
  switch (paging.style) {
    case 'cursor':
      return {
        path,
        query: { [paging.sizeParam]: size, ...(token === null ? {} : { [paging.param]: token }) },
      };
    case 'offset':
      return { path, query: { [paging.sizeParam]: size, [paging.offsetParam]: token ?? 0 } };
    case 'page':
      return { path, query: { [paging.sizeParam]: size, [paging.pageParam]: token ?? paging.firstPage } };
    case 'link':
      // The next link already carries every parameter; only the first page needs ours.
      return token === null
        ? { path, query: { [paging.sizeParam]: size } }
        : { path: String(token), query: {} };
  }
}

/** The token of the page after this one, or null when the listing is done. */
export function nextToken(
  paging: Paging,
  token: PageToken,
  size: number,
  got: number,
  body: unknown,
  headers: ResponseHeaders,
): PageToken {
  switch (paging.style) {
    case 'cursor': {
      const next = getPath(body, paging.nextPath);
      return typeof next === 'string' || typeof next === 'number' ? (next === '' ? null : next) : null;
    }
    case 'offset':
      return got < size ? null : Number(token ?? 0) + got;
    case 'page':
      return got < size ? null : Number(token ?? paging.firstPage) + 1;
    case 'link':
      return nextLink(headers.get('link'));
  }
}

/** The `rel="next"` target of a Link header. */
export function nextLink(header: string | null): string | null {
  if (!header) return null;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?/i.test(m[2] ?? '')) return m[1] ?? null;
  }
  return null;
}
