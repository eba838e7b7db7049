// Shared by the dashboard's views: the page's state, elements, the server's routes, formatting.

const HEADER = { 'x-sluice-dashboard': '1' };

export const $ = (selector, root = document) => root.querySelector(selector);

/** An element: `h('td', { class: 'num', text: '3' }, child…)`; `on…` attributes are listeners. */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') el.textContent = String(value);
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export async function call(method, path, body) {
  const init = { method, headers: { ...HEADER }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = body;
  }
  const res = await fetch(path, init);
  if (res.status === 401 && document.body.dataset.page === 'app') {
    // The session ended (signed out elsewhere, the token removed from the config): sign in again.
    location.reload();
    throw new Error('signed out');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!res.ok) throw new Error(data?.error ?? `${res.status} ${res.statusText}`);
  return data;
}

// ---- formatting -------------------------------------------------------------------------------

const nf = new Intl.NumberFormat('en-US');
export const num = (n) => (n === null || n === undefined ? '—' : nf.format(Math.round(n)));

export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return ms < 1000 ? `${Math.round(ms)} ms` : `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

export const clock = (ms) =>
  new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

export function toast(message, isError = false) {
  const el = $('#toast');
  el.textContent = message;
  el.classList.toggle('error', isError);
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    el.textContent = '';
  }, 6000);
}

/** Asks in a modal dialog; resolves true when confirmed. */
export function confirmAction(text, okLabel) {
  const dialog = $('#confirm');
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) =>
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }),
  );
}

// Eight colours apart in hue, assigned to syncs by their order, the same in every view.
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
export const colourOf = (sync) => {
  const names = state.snapshot ? state.snapshot.syncs.map((s) => s.sync) : [];
  const i = names.indexOf(sync);
  return PALETTE[(i < 0 ? sync.length : i) % PALETTE.length];
};

export const state = {
  snapshot: null,
  view: 'syncs',
  runsFilter: { sync: '', status: '' },
  lettersFilter: { sync: '' },
  selectedKey: null,
  /** What the history views last saw, to read them again only when it moved. */
  seen: { runs: '', letters: '' },
};

/** The server's clock now: the snapshot's, moved on by the time since it arrived. */
export function nowish() {
  return state.snapshot ? state.snapshot.now + (Date.now() - (state.receivedAt ?? Date.now())) : Date.now();
}

export function syncOptions(selected) {
  const names = state.snapshot ? state.snapshot.syncs.map((s) => s.sync) : [];
  return [
    h('option', { value: '', text: 'all' }),
    ...names.map((n) => h('option', { value: n, text: n, selected: n === selected })),
  ];
}
