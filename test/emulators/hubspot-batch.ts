import { randomUUID } from 'node:crypto';
import { type Contact, type ContactStore, fold } from './hubspot-store.ts';
import type { EmulatorResponse } from './server.ts';
import { validEmail } from './server.ts';

/**
 * HubSpot's contact write and read-by-id endpoints, as documented (dev-only emulation):
 *   POST /crm/v3/objects/contacts/batch/upsert  ≤100 inputs by `idProperty` (a unique property)
 *   POST /crm/v3/objects/contacts/batch/update  ≤100 inputs by record id
 *   POST /crm/v3/objects/contacts/batch/read    ≤100 inputs by record id, or by `idProperty`
 *   GET  /crm/v3/objects/contacts/{id}[?idProperty=email]
 * Whole-batch refusals (400 VALIDATION_ERROR): more than 100 inputs, a property the account does not
 * have (`PROPERTY_DOESNT_EXIST`, the details embedded in the message as HubSpot does), one contact
 * named twice (`Duplicate IDs found in batch input`, emails compared case-insensitively), an
 * `idProperty` that is not unique. Per-input refusals (207 with `errors`): invalid emails, unknown ids.
 */
export type UpsertInput = { id: string; idProperty?: string; properties?: Record<string, string> };
export type BatchBody = {
  inputs?: UpsertInput[];
  properties?: string[];
  idProperty?: string;
};

const DEFAULT_PROPS = ['email', 'firstname', 'lastname'];

export function error(
  status: number,
  category: string,
  message: string,
  extra: object = {},
): EmulatorResponse {
  return { status, body: { status: 'error', message, correlationId: randomUUID(), category, ...extra } };
}

/** The checks that refuse a whole batch, or null. */
function refuseBatch(
  store: ContactStore,
  inputs: UpsertInput[] | undefined,
  idProperty: (i: UpsertInput) => string,
): EmulatorResponse | null {
  if (!Array.isArray(inputs) || inputs.length === 0)
    return error(400, 'VALIDATION_ERROR', 'inputs must be a non-empty array');
  if (inputs.length > 100)
    return error(400, 'VALIDATION_ERROR', `Batch size ${inputs.length} exceeds the limit of 100`);
  const unknown = new Set<string>();
  for (const i of inputs)
    for (const p of Object.keys(i.properties ?? {})) if (!store.known.has(p)) unknown.add(p);
  if (unknown.size) {
    const details = [...unknown].map((name) => ({
      isValid: false,
      message: `Property "${name}" does not exist`,
      error: 'PROPERTY_DOESNT_EXIST',
      name,
      localizedErrorMessage: `Property "${name}" does not exist`,
    }));
    return error(400, 'VALIDATION_ERROR', `Property values were not valid: ${JSON.stringify(details)}`);
  }
  for (const i of inputs) {
    const p = idProperty(i);
    if (!store.unique.has(p))
      return error(
        400,
        'VALIDATION_ERROR',
        `Unable to perform update/upsert by non-unique 0-1 property ${p}`,
      );
  }
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const i of inputs) {
    const key = fold(idProperty(i), String(i.id));
    if (seen.has(key)) dups.add(String(i.id));
    seen.add(key);
  }
  if (dups.size)
    return error(
      400,
      'VALIDATION_ERROR',
      `Duplicate IDs found in batch input: [${[...dups].join(', ')}]. IDs must be unique`,
      { context: { ids: [...dups] } },
    );
  return null;
}

function invalidEmail(input: UpsertInput, email: string): unknown {
  const detail = [
    { isValid: false, message: `Email address ${email} is invalid`, error: 'INVALID_EMAIL', name: 'email' },
  ];
  // A StandardError: `errors` (details) and `links` are part of its documented shape.
  return {
    status: 'error',
    category: 'VALIDATION_ERROR',
    message: `Property values were not valid: ${JSON.stringify(detail)}`,
    context: { ids: [input.id] },
    errors: [{ message: detail[0]!.message, code: 'INVALID_EMAIL', context: { propertyName: ['email'] } }],
    links: {},
  };
}

function answer(results: unknown[], errors: unknown[], startedAt: string): EmulatorResponse {
  const out = { status: 'COMPLETE', results, startedAt, completedAt: new Date().toISOString() };
  if (errors.length === 0) return { status: 200, body: out };
  return { status: 207, body: { ...out, numErrors: errors.length, errors } };
}

type Render = (c: Contact, props: readonly string[]) => Record<string, unknown>;

export function upsert(store: ContactStore, body: BatchBody | null, render: Render): EmulatorResponse {
  const inputs = body?.inputs;
  const refused = refuseBatch(store, inputs, (i) => i.idProperty ?? 'hs_object_id');
  if (refused) return refused;
  const startedAt = new Date().toISOString();
  const results: unknown[] = [];
  const errors: unknown[] = [];
  for (const input of inputs!) {
    const idProperty = input.idProperty ?? 'hs_object_id';
    const email = input.properties?.email ?? (idProperty === 'email' ? input.id : undefined);
    if (email !== undefined && !validEmail(email)) {
      errors.push(invalidEmail(input, email));
      continue;
    }
    const props: Record<string, string> = { ...input.properties };
    if (idProperty !== 'hs_object_id') props[idProperty] = input.id;
    const existing = store.findBy(idProperty, input.id);
    const now = Date.now();
    if (existing) {
      // An existing contact keeps the address it has when matched by another case of it.
      if (idProperty === 'email' && input.properties?.email === undefined) delete props.email;
      store.modify(existing, { ...props, modified: now });
      results.push({ ...render(existing, Object.keys(props)), new: false });
    } else {
      const c = store.create({
        email: '',
        firstname: '',
        lastname: '',
        ...props,
        created: now,
        modified: now,
      });
      results.push({ ...render(c, Object.keys(props)), new: true });
    }
  }
  return answer(results, errors, startedAt);
}

/** Batch update by record id: unknown ids and invalid emails come back as errors (207). */
export function update(store: ContactStore, body: BatchBody | null, render: Render): EmulatorResponse {
  const inputs = body?.inputs;
  const refused = refuseBatch(store, inputs, (i) => i.idProperty ?? 'hs_object_id');
  if (refused) return refused;
  const startedAt = new Date().toISOString();
  const results: unknown[] = [];
  const errors: unknown[] = [];
  for (const input of inputs!) {
    const c = store.findBy(input.idProperty ?? 'hs_object_id', input.id);
    const email = input.properties?.email;
    if (!c) {
      errors.push({
        status: 'error',
        category: 'OBJECT_NOT_FOUND',
        message: `Object ${input.id} not found`,
        context: { ids: [input.id] },
        errors: [],
        links: {},
      });
      continue;
    }
    if (email !== undefined && !validEmail(email)) {
      errors.push(invalidEmail(input, email));
      continue;
    }
    store.modify(c, { ...(input.properties ?? {}), modified: Date.now() });
    results.push(render(c, Object.keys(input.properties ?? {})));
  }
  return answer(results, errors, startedAt);
}

/** Batch read by record id or by a unique `idProperty`; ids not found are errors of a 207. */
export function read(store: ContactStore, body: BatchBody | null, render: Render): EmulatorResponse {
  const inputs = body?.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0)
    return error(400, 'VALIDATION_ERROR', 'inputs must be a non-empty array');
  if (inputs.length > 100)
    return error(400, 'VALIDATION_ERROR', `Batch size ${inputs.length} exceeds the limit of 100`);
  const idProperty = body?.idProperty ?? 'hs_object_id';
  if (!store.unique.has(idProperty))
    return error(400, 'VALIDATION_ERROR', `${idProperty} is not a unique property`);
  const props = body?.properties?.length ? body.properties : DEFAULT_PROPS;
  const startedAt = new Date().toISOString();
  const results: unknown[] = [];
  const missing: string[] = [];
  for (const { id } of inputs) {
    const c = store.findBy(idProperty, String(id));
    if (c) results.push(render(c, props));
    else missing.push(String(id));
  }
  const errors = missing.length
    ? [
        {
          status: 'error',
          category: 'OBJECT_NOT_FOUND',
          message:
            'Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.',
          context: { ids: missing },
          errors: [],
          links: {},
        },
      ]
    : [];
  return answer(results, errors, startedAt);
}

/** GET one contact by record id, or by a unique property with `?idProperty=`. */
export function getOne(
  store: ContactStore,
  id: string,
  q: URLSearchParams,
  render: Render,
): EmulatorResponse {
  const idProperty = q.get('idProperty') ?? 'hs_object_id';
  if (!store.unique.has(idProperty))
    return error(400, 'VALIDATION_ERROR', `${idProperty} is not a unique property`);
  const c = store.findBy(idProperty, id);
  if (!c) return error(404, 'OBJECT_NOT_FOUND', 'resource not found');
  const props = q.get('properties')?.split(',').filter(Boolean) ?? DEFAULT_PROPS;
  return { status: 200, body: render(c, props) };
}
