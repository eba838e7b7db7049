import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';
import { API_TOKEN, HOOK_TOKEN, startServe, writeServeConfig } from './process.ts';

const BIG = '9007199254740993'; // 2^53 + 1: a double would make it …992

async function serveContacts() {
  const dir = tempDir('api-json');
  seedContacts(join(dir, 'a.db'), 10);
  writeServeConfig(dir);
  const serve = await startServe(dir);
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${serve.url}/api${path}`, {
      ...init,
      headers: { authorization: `Bearer ${API_TOKEN}`, ...init.headers },
    });
  return { serve, api };
}

describe('sluice serve: JSON in and out of the REST API and webhooks', () => {
  it('answers malformed JSON with 400 and the parse error', async () => {
    const { serve, api } = await serveContacts();

    for (const [path, method] of [
      ['/store/owner', 'PUT'],
      ['/syncs/contacts/runs', 'POST'],
    ] as const) {
      const res = await api(path, { method, body: '{"payload": {"id": 7' });
      const answer = (await res.json()) as { error: string; code: string };
      expect(res.status, `${method} ${path}: ${answer.error}`).toBe(400);
      expect(answer.code).toBe('BAD_REQUEST');
      expect(answer.error).toMatch(/^malformed JSON body: .*JSON/);
    }
    expect((await api('/store/owner', { method: 'PUT' })).status).toBe(400);
    expect((await api('/requests/not-a-number')).status).toBe(400);
    serve.child.kill('SIGTERM');
    expect((await serve.exited).code).toBe(0);
  }, 60_000);

  it('keeps integers beyond 2^53 exact in the data store, API run payloads and webhook payloads', async () => {
    const { serve, api } = await serveContacts();
    // The data store, an API run's payload and a webhook's payload, each read back as text.
    const put = await api('/store/owner', { method: 'PUT', body: `{"id":${BIG}}` });
    expect(put.status).toBe(200);
    expect(await put.text()).toBe(`{"key":"owner","value":{"id":${BIG}}}`);
    expect(await (await api('/store/owner')).text()).toBe(`{"key":"owner","value":{"id":${BIG}}}`);
    expect(await (await api('/store?prefix=own')).text()).toContain(`{"id":${BIG}}`);

    const run = await api('/syncs/contacts/runs', { method: 'POST', body: `{"payload":{"contact":${BIG}}}` });
    expect(run.status).toBe(202);
    const { requestId } = (await run.json()) as { requestId: number };
    expect(await (await api(`/requests/${requestId}`)).text()).toContain(`"payload":{"contact":${BIG}}`);

    const hook = await fetch(`${serve.url}/hooks/contacts`, {
      method: 'POST',
      body: `{"contact":${BIG}}`,
      headers: { authorization: `Bearer ${HOOK_TOKEN}` },
    });
    expect(hook.status).toBe(202);
    const hooked = (await hook.json()) as { requestId: number };
    expect(await (await api(`/requests/${hooked.requestId}`)).text()).toContain(
      `"payload":{"contact":${BIG}}`,
    );
    await until('both runs', async () => {
      const runs = (await (await api('/runs?sync=contacts')).json()) as { trigger: string; status: string }[];
      return runs.filter((r) => r.status === 'succeeded').length >= 2;
    });

    serve.child.kill('SIGTERM');
    expect((await serve.exited).code).toBe(0);
  }, 60_000);
});
