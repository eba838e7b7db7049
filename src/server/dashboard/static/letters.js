// The dead letters view: open letters per sync; retry one or all.

import { $, call, h, num, state, syncOptions, toast } from './common.js';

// ---- dead letters -----------------------------------------------------------------------------

export function openLetters(main) {
  const f = state.lettersFilter;
  const sync = h(
    'select',
    {
      id: 'letters-sync',
      onchange: (e) => {
        f.sync = e.target.value;
        loadLetters();
      },
    },
    syncOptions(f.sync),
  );
  main.append(
    h('h2', { text: 'Dead letters' }),
    h('div', { class: 'toolbar' }, h('label', {}, 'Sync ', sync), h('span', { id: 'retry-all' })),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'letters' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Letter', 'Sync', 'Run', 'Batch', 'Cursor range', 'Key', 'Reason', 'Attempts', 'Record', ''].map(
              (t) => h('th', { scope: 'col', text: t }),
            ),
          ),
        ),
        h('tbody', { id: 'letter-rows' }),
      ),
    ),
    h('p', { id: 'letters-result', role: 'status', class: 'small' }),
  );
  loadLetters();
}

const lettersKey = () => (state.snapshot ? state.snapshot.syncs.map((s) => s.deadLetters).join(',') : '');

export function refreshLettersIfChanged() {
  if (lettersKey() !== state.seen.letters) loadLetters();
}

let loads = 0;

async function loadLetters() {
  // A newer load (the filter changed, a retry ended) wins: an older answer arriving late is dropped.
  const mine = ++loads;
  state.seen.letters = lettersKey();
  const f = state.lettersFilter;
  const q = new URLSearchParams({ limit: '500' });
  if (f.sync) q.set('sync', f.sync);
  try {
    const letters = await call('GET', `/ui/dead-letters?${q}`);
    const tbody = $('#letter-rows');
    if (!tbody || mine !== loads) return;
    const syncs = [...new Set(letters.map((l) => l.sync))];
    $('#retry-all').replaceChildren(
      ...syncs.map((s) =>
        h('button', {
          type: 'button',
          'data-action': 'retry-all',
          'data-sync': s,
          text: `Retry all ${num(letters.filter((l) => l.sync === s).length)} of ${s}`,
          onclick: () => retry(`/ui/syncs/${encodeURIComponent(s)}/dead-letters/retry`, `all of ${s}`),
        }),
      ),
    );
    tbody.replaceChildren(
      ...letters.map((l) =>
        h(
          'tr',
          { 'data-letter': l.id, 'data-sync': l.sync },
          h('td', { class: 'num', text: l.id }),
          h('td', { text: l.sync }),
          h('td', { class: 'num', text: l.runId }),
          h('td', { class: 'num', text: l.batch }),
          h('td', { class: 'mono small', text: `${l.cursorFromText ?? 'start'} → ${l.cursorToText ?? '—'}` }),
          h('td', { class: 'mono small', text: l.keyText ?? '(no key)' }),
          h('td', { class: 'reason', text: l.reason }),
          h('td', { class: 'num', text: l.attempts }),
          h(
            'td',
            {},
            l.recordText
              ? h(
                  'details',
                  {},
                  h('summary', { text: 'record' }),
                  h('pre', { class: 'record', text: l.recordText }),
                )
              : '—',
          ),
          h(
            'td',
            {},
            h('button', {
              type: 'button',
              'data-action': 'retry',
              'aria-label': `Retry dead letter ${l.id} of ${l.sync}`,
              text: 'Retry',
              onclick: () => retry(`/ui/dead-letters/${l.id}/retry`, `letter ${l.id}`),
            }),
          ),
        ),
      ),
    );
    if (letters.length === 0)
      tbody.append(h('tr', {}, h('td', { colspan: 10, class: 'muted', text: 'No open dead letters.' })));
  } catch (err) {
    toast(`dead letters: ${err.message}`, true);
  }
}

async function retry(path, what) {
  const out = $('#letters-result');
  out.textContent = `retrying ${what}…`;
  try {
    const r = await call('POST', path);
    out.textContent = `Retried ${what}: ${num(r.retried)} taken up, ${num(r.written)} written, ${num(r.rejectedAgain)} failed again, ${num(r.gone)} gone from the source.`;
  } catch (err) {
    out.textContent = `Retry of ${what} failed: ${err.message}`;
  }
  await loadLetters();
}
