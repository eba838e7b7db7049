// The data store view: keys by prefix; view, edit (JSON checked first) and delete.

import { $, call, confirmAction, h, state, toast, when } from './common.js';

// ---- data store -------------------------------------------------------------------------------

export function openStore(main) {
  const prefix = h('input', {
    id: 'store-prefix',
    type: 'text',
    placeholder: 'prefix',
    'aria-label': 'Key prefix',
    oninput: () => loadKeys(),
  });
  const newKey = h('input', {
    id: 'store-new-key',
    type: 'text',
    placeholder: 'new key',
    'aria-label': 'New key',
  });
  main.append(
    h('h2', { text: 'Data store' }),
    h(
      'div',
      { class: 'toolbar' },
      prefix,
      h(
        'form',
        {
          class: 'actions',
          onsubmit: (e) => {
            e.preventDefault();
            if (newKey.value) editKey(newKey.value, 'null');
          },
        },
        newKey,
        h('button', { type: 'submit', text: 'New key' }),
      ),
    ),
    h(
      'div',
      { class: 'split' },
      h('div', { class: 'card' }, h('ul', { class: 'keys', id: 'keys', 'aria-label': 'Keys' })),
      h(
        'div',
        { class: 'card', id: 'editor' },
        h('p', { class: 'muted', text: 'Choose a key to view or edit it.' }),
      ),
    ),
  );
  loadKeys();
}

async function loadKeys() {
  const prefix = $('#store-prefix')?.value ?? '';
  try {
    const entries = await call('GET', `/ui/store${prefix ? `?prefix=${encodeURIComponent(prefix)}` : ''}`);
    const list = $('#keys');
    if (!list) return;
    list.replaceChildren(
      ...entries.map((e) =>
        h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              'data-key': e.key,
              'aria-pressed': e.key === state.selectedKey ? 'true' : 'false',
              onclick: () => editKey(e.key, e.text, e.updatedAt),
            },
            e.key,
          ),
        ),
      ),
    );
    if (entries.length === 0) list.append(h('li', { class: 'muted', text: 'No keys.' }));
    return entries;
  } catch (err) {
    toast(`data store: ${err.message}`, true);
    return [];
  }
}

function editKey(key, text, updatedAt) {
  state.selectedKey = key;
  for (const b of document.querySelectorAll('#keys button'))
    b.setAttribute('aria-pressed', b.dataset.key === key ? 'true' : 'false');
  const area = h('textarea', {
    id: 'store-value',
    'aria-label': `Value of ${key} (JSON)`,
    spellcheck: 'false',
    'aria-describedby': 'store-error',
  });
  area.value = text;
  const error = h('p', { id: 'store-error', class: 'error', role: 'alert' });
  const validate = () => {
    try {
      JSON.parse(area.value);
      error.textContent = '';
      area.removeAttribute('aria-invalid');
      return true;
    } catch (err) {
      error.textContent = `Not valid JSON: ${err.message}`;
      area.setAttribute('aria-invalid', 'true');
      return false;
    }
  };
  area.addEventListener('input', validate);
  const save = async () => {
    if (!validate()) return;
    try {
      await call('PUT', `/ui/store/${encodeURIComponent(key)}`, area.value);
      toast(`${key}: saved`);
      const entries = await loadKeys();
      const saved = entries.find((e) => e.key === key);
      if (saved) editKey(key, saved.text, saved.updatedAt);
    } catch (err) {
      error.textContent = err.message;
    }
  };
  const del = async () => {
    if (
      !(await confirmAction(
        `Delete the key ${key}? Syncs reading it will find nothing there.`,
        `Delete ${key}`,
      ))
    )
      return;
    try {
      await call('DELETE', `/ui/store/${encodeURIComponent(key)}`);
      toast(`${key}: deleted`);
      state.selectedKey = null;
      $('#editor').replaceChildren(h('p', { class: 'muted', text: `${key} deleted.` }));
      await loadKeys();
    } catch (err) {
      error.textContent = err.message;
    }
  };
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) save();
  });
  $('#editor').replaceChildren(
    h('h3', { class: 'mono', text: key }),
    updatedAt
      ? h('p', { class: 'small muted', text: `updated ${when(updatedAt)}` })
      : h('p', { class: 'small muted', text: 'new key: not saved yet' }),
    area,
    error,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', class: 'primary', id: 'store-save', text: 'Save', onclick: save }),
      updatedAt
        ? h('button', { type: 'button', class: 'danger', id: 'store-delete', text: 'Delete', onclick: del })
        : null,
      h('span', { class: 'small muted', text: 'Ctrl+Enter saves' }),
    ),
  );
  area.focus();
}
