// The Sluice dashboard's script: plain browser JavaScript, no framework, no build step, no network
// beyond this server. The server pushes snapshots over Server-Sent Events (/ui/events); views that
// list history (runs, dead letters, the data store) read it when they open and when a snapshot says
// it changed. Every change is a same-origin fetch carrying the dashboard header (see session.ts).

const HEADER = { 'x-sluice-dashboard': '1' };

const $ = (selector, root = document) => root.querySelector(selector);

/** An element: `h('td', { class: 'num', text: '3' }, child…)`; `on…` attributes are listeners. */
function h(tag, attrs = {}, ...children) {
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

async function call(method, path, body) {
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
const num = (n) => (n === null || n === undefined ? '—' : nf.format(Math.round(n)));

function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return ms < 1000 ? `${Math.round(ms)} ms` : `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

const clock = (ms) =>
  new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

function toast(message, isError = false) {
  const el = $('#toast');
  el.textContent = message;
  el.classList.toggle('error', isError);
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    el.textContent = '';
  }, 6000);
}

/** Asks in a modal dialog; resolves true when confirmed. */
function confirmAction(text, okLabel) {
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
const colourOf = (sync) => {
  const names = state.snapshot ? state.snapshot.syncs.map((s) => s.sync) : [];
  const i = names.indexOf(sync);
  return PALETTE[(i < 0 ? sync.length : i) % PALETTE.length];
};

// ---- sign-in page -----------------------------------------------------------------------------

function signInPage() {
  const form = $('#sign-in');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const error = $('#sign-in-error');
    error.textContent = '';
    try {
      await call('POST', '/ui/session', JSON.stringify({ token: $('#token').value }));
      location.replace('/');
    } catch (err) {
      error.textContent = `Not signed in: ${err.message}`;
      $('#token').select();
    }
  });
}

// ---- the app ----------------------------------------------------------------------------------

const state = {
  snapshot: null,
  view: 'syncs',
  runsFilter: { sync: '', status: '' },
  lettersFilter: { sync: '' },
  selectedKey: null,
  /** What the history views last saw, to read them again only when it moved. */
  seen: { runs: '', letters: '' },
};

const VIEWS = {
  syncs: { title: 'Syncs', open: openSyncs, update: updateSyncs },
  lanes: { title: 'Lanes', open: renderLanes, update: renderLanes },
  runs: { title: 'Runs', open: openRuns, update: refreshRunsIfChanged },
  'dead-letters': { title: 'Dead letters', open: openLetters, update: refreshLettersIfChanged },
  store: { title: 'Data store', open: openStore, update: () => {} },
};

/** The server's clock now: the snapshot's, moved on by the time since it arrived. */
function nowish() {
  return state.snapshot ? state.snapshot.now + (Date.now() - (state.receivedAt ?? Date.now())) : Date.now();
}

function appPage() {
  window.addEventListener('hashchange', route);
  // Durations, lags and the time axis move on between snapshots (a quiet feed sends none).
  setInterval(() => {
    if (state.view === 'syncs' || state.view === 'lanes') VIEWS[state.view].update($('#view'));
  }, 1000);
  // The page arrives with its first snapshot; the live feed takes over from there.
  const initial = JSON.parse($('#initial-snapshot').textContent);
  if (initial) {
    state.snapshot = initial;
    state.receivedAt = Date.now();
  }
  connect();
  route();
}

function route() {
  const name = location.hash.slice(1);
  state.view = Object.hasOwn(VIEWS, name) ? name : 'syncs';
  for (const a of document.querySelectorAll('nav a'))
    if (a.dataset.view === state.view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  document.title = `${VIEWS[state.view].title} — Sluice`;
  const main = $('#view');
  main.replaceChildren();
  main.dataset.view = state.view;
  VIEWS[state.view].open(main);
  if (route.done) main.focus({ preventScroll: true });
  route.done = true;
}

function connect() {
  const live = $('#live');
  // The page's first snapshot came with it: the feed need not send it again.
  const since = state.snapshot ? `?since=${state.snapshot.now}` : '';
  const source = new EventSource(`/ui/events${since}`);
  source.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live on';
  });
  source.addEventListener('snapshot', (event) => {
    state.snapshot = JSON.parse(event.data);
    state.receivedAt = Date.now();
    live.textContent = `live · ${clock(state.snapshot.now)}`;
    live.className = 'live on';
    VIEWS[state.view].update($('#view'));
  });
  source.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.className = 'live off';
    // A closed stream (the session ended) is not retried by the browser: find out why.
    if (source.readyState === EventSource.CLOSED)
      call('GET', '/ui/snapshot').then(
        () => setTimeout(connect, 2000),
        () => setTimeout(connect, 5000),
      );
  });
}

// ---- syncs ------------------------------------------------------------------------------------

const rows = new Map();

function openSyncs(main) {
  rows.clear();
  const tbody = h('tbody', { id: 'sync-rows' });
  const filter = h('input', {
    type: 'search',
    id: 'sync-filter',
    placeholder: 'filter by name',
    'aria-label': 'Filter syncs by name',
    oninput: (e) => {
      state.syncFilter = e.target.value;
      updateSyncs();
    },
  });
  filter.value = state.syncFilter ?? '';
  main.append(
    h('h2', { text: 'Syncs' }),
    h('div', { class: 'toolbar' }, filter),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'stack', id: 'syncs' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Sync', 'Phase', 'Progress', 'Rate', 'ETA', 'Lag', 'State', 'Next run', ''].map((t) =>
              h('th', { scope: 'col', text: t }),
            ),
          ),
        ),
        tbody,
      ),
    ),
    h('p', {
      class: 'muted small',
      text: '~ marks an approximate figure: the backfill total is an estimate, not a count.',
    }),
  );
  updateSyncs();
}

function syncRow(name) {
  let row = rows.get(name);
  if (row) return row;
  const cell = (label, cls) => h('td', { 'data-label': label, class: cls });
  row = {
    tr: h('tr', { 'data-sync': name }),
    name: cell('Sync'),
    phase: cell('Phase'),
    progress: cell('Progress', 'progress'),
    rate: cell('Rate', 'num'),
    eta: cell('ETA', 'num'),
    lag: cell('Lag', 'num'),
    state: cell('State'),
    next: cell('Next run', 'small'),
    actions: cell(''),
  };
  const fill = h('span');
  row.bar = h(
    'div',
    {
      class: 'bar',
      role: 'progressbar',
      'aria-label': `${name} backfill progress`,
      'aria-valuemin': 0,
      'aria-valuemax': 100,
    },
    fill,
  );
  row.fill = fill;
  row.counts = h('div', { class: 'small muted' });
  row.progress.append(h('div', { class: 'progress-box' }, row.bar, row.counts));
  row.actions.append(
    h(
      'div',
      { class: 'actions' },
      h('button', {
        type: 'button',
        'data-action': 'run',
        'aria-label': `Run ${name} now`,
        text: 'Run',
        onclick: () => requestRun(name),
      }),
      h('button', {
        type: 'button',
        class: 'danger',
        'data-action': 'reset',
        'aria-label': `Reset ${name}`,
        text: 'Reset',
        onclick: () => resetSync(name),
      }),
    ),
  );
  row.tr.append(
    row.name,
    row.phase,
    row.progress,
    row.rate,
    row.eta,
    row.lag,
    row.state,
    row.next,
    row.actions,
  );
  rows.set(name, row);
  return row;
}

function updateSyncs() {
  const tbody = $('#sync-rows');
  if (!tbody || !state.snapshot) return;
  const { syncs } = state.snapshot;
  const now = nowish();
  const drift = now - state.snapshot.now;
  const order = [];
  for (const s of syncs) {
    const row = syncRow(s.sync);
    order.push(row.tr);
    row.name.replaceChildren(
      h('strong', { text: s.sync }),
      s.bundle ? h('div', { class: 'small muted', text: `bundle ${s.bundle}` }) : '',
    );
    row.phase.textContent = s.phase;
    const live = s.live;
    const done = live ? live.backfillDone : s.backfillDone;
    const estimate = live ? live.backfillEstimate : s.backfillEstimate;
    const exact = live ? live.estimateExact : s.estimateExact;
    const caughtUp = s.phase === 'incremental';
    let ratio = caughtUp ? 1 : estimate ? Math.min(1, done / estimate) : (s.progress ?? 0);
    if (!Number.isFinite(ratio)) ratio = 0;
    const pct = Math.round(ratio * 1000) / 10;
    row.fill.style.width = `${pct}%`;
    row.bar.setAttribute('aria-valuenow', String(pct));
    row.bar.setAttribute('aria-valuetext', `${pct}%${exact || caughtUp ? '' : ' (approximate)'}`);
    row.bar.classList.toggle('done', caughtUp || pct >= 100);
    row.bar.classList.toggle('approx', !exact && !caughtUp);
    row.tr.hidden = state.syncFilter ? !s.sync.includes(state.syncFilter) : false;
    const approx = exact || caughtUp ? '' : '~';
    row.counts.textContent = caughtUp
      ? `backfill done · ${num(s.backfillDone)} records`
      : `${num(done)} / ${estimate === null || estimate === undefined ? '?' : `${approx}${num(estimate)}`} · ${pct}%`;
    const last = s.lastRun;
    const lastRate = last?.endedAt
      ? (last.counters.read * 1000) / Math.max(1, Date.parse(last.endedAt) - Date.parse(last.startedAt))
      : null;
    row.rate.textContent = live
      ? `${num(live.rate)}/s`
      : lastRate !== null && !caughtUp
        ? `${num(lastRate)}/s`
        : '—';
    row.rate.title = live ? 'this run' : lastRate !== null && !caughtUp ? 'its last run' : '';
    // The backfill's pace since it started, turns of other syncs in its lane included.
    const eta = s.backfillEtaMs;
    row.eta.textContent = eta === null ? '—' : `${approx}${duration(eta)}`;
    row.eta.title =
      eta === null
        ? ''
        : `at the pace kept since the backfill started${approx ? '; approximate: the total is an estimate' : ''}`;
    row.lag.textContent = s.lagMs === null ? '—' : duration(s.lagMs + drift);
    row.state.replaceChildren(...stateOf(s, now).filter(Boolean));
    row.next.textContent = nextOf(s.next, now);
  }
  // Rows are moved only when the order changed: a row taken out of the page loses the keyboard focus.
  const same = order.length === tbody.children.length && order.every((tr, i) => tbody.children[i] === tr);
  if (!same) tbody.replaceChildren(...order);
}

function stateOf(s, now) {
  if (s.chainBroken)
    return [
      h('span', { class: 'state state-broken', text: 'chain broken' }),
      h('div', { class: 'reason', text: s.chainBroken }),
    ];
  if (s.state === 'running') {
    const since = s.lastRun ? now - Date.parse(s.lastRun.startedAt) : null;
    return [
      h('span', { class: 'state state-running', text: 'running' }),
      since === null ? null : h('div', { class: 'small muted', text: `for ${duration(since)}` }),
    ];
  }
  if (s.state === 'queued')
    return [
      h('span', {
        class: `state state-${s.waitingForLane ? 'waiting' : 'queued'}`,
        text: s.waitingForLane ? 'waiting for its lane' : 'queued',
      }),
    ];
  if (s.state === 'failed')
    return [
      h('span', { class: 'state state-failed', text: 'failed' }),
      h('div', { class: 'reason', text: s.error ?? '' }),
    ];
  return [
    h('span', { class: 'state state-idle', text: 'idle' }),
    s.deadLetters
      ? h('div', {
          class: 'small',
          text: `${num(s.deadLetters)} dead letter${s.deadLetters === 1 ? '' : 's'}`,
        })
      : null,
  ];
}

function nextOf(next, now) {
  if (!next) return 'on request';
  if (next.at === null) return next.what;
  let due = next.at;
  // An interval's next tick, worked out from the last run: rolled on past the present.
  if (next.everyMs) while (due < now) due += Math.ceil((now - due) / next.everyMs) * next.everyMs;
  const at = due <= now ? 'now' : `${clock(due)} (in ${duration(due - now)})`;
  return `${next.approximate ? '~' : ''}${at} · ${next.what}`;
}

async function requestRun(sync) {
  try {
    const r = await call('POST', `/ui/syncs/${encodeURIComponent(sync)}/runs`);
    toast(`${sync}: run requested (request ${r.requestId}, lane ${r.lane})`);
  } catch (err) {
    toast(`${sync}: ${err.message}`, true);
  }
}

async function resetSync(sync) {
  const ok = await confirmAction(
    `Reset ${sync}? Its checkpoint and dead letters are forgotten, and its next run starts the backfill over.`,
    `Reset ${sync}`,
  );
  if (!ok) return;
  try {
    await call('POST', `/ui/syncs/${encodeURIComponent(sync)}/reset`);
    toast(`${sync}: reset; the next run starts the backfill over`);
  } catch (err) {
    toast(`${sync}: ${err.message}`, true);
  }
}

// ---- lanes ------------------------------------------------------------------------------------

const SPANS = [
  ['auto', 'since the first turn'],
  ['60000', 'last minute'],
  ['300000', 'last 5 minutes'],
  ['600000', 'last 10 minutes'],
];

function renderLanes(main) {
  if (!main.querySelector('#lanes')) {
    const span = h(
      'select',
      {
        id: 'lanes-span',
        onchange: (e) => {
          state.laneSpan = e.target.value;
          renderLanes(main);
        },
      },
      SPANS.map(([v, t]) => h('option', { value: v, text: t, selected: v === (state.laneSpan ?? 'auto') })),
    );
    main.replaceChildren(
      h('h2', { text: 'Lanes' }),
      h('p', {
        class: 'muted',
        text: 'Each lane runs one run at a time; the bars are its turns, oldest on the left.',
      }),
      h('div', { class: 'toolbar' }, h('label', {}, 'Time axis ', span)),
      h('div', { id: 'lanes' }),
    );
  }
  const holder = $('#lanes', main);
  if (!state.snapshot) return;
  const { lanes, windowMs } = state.snapshot;
  const now = nowish();
  const shown = lanes.filter(
    (l) => l.bundle !== null || l.running.length || l.waiting.length || l.turns.length,
  );
  // Auto: from a little before the first turn in the window, at least 10 s, at most the window.
  const first = Math.min(now, ...shown.flatMap((l) => l.turns.map((t) => t.start)));
  const span =
    state.laneSpan && state.laneSpan !== 'auto'
      ? Number(state.laneSpan)
      : Math.min(windowMs, Math.max(10_000, (now - first) * 1.05));
  const from = now - span;
  state.openLanes ??= new Set();
  holder.replaceChildren(
    ...shown.map((lane) => {
      const syncs = [...new Set(lane.turns.map((t) => t.sync).concat(lane.running.map((r) => r.sync)))];
      const details = h(
        'details',
        { open: state.openLanes.has(lane.lane) },
        h('summary', {
          text: `${lane.turns.length} turns in the last ${Math.round(windowMs / 60000)} minutes`,
        }),
        h(
          'ol',
          { class: 'turns small' },
          lane.turns.map((t) =>
            h(
              'li',
              { 'data-sync': t.sync, 'data-run': t.runId },
              `${clock(t.start)}–${t.end ? clock(t.end) : 'now'} ${t.sync} (run ${t.runId}, ${t.trigger}, ${t.status})`,
            ),
          ),
        ),
      );
      details.addEventListener('toggle', () => {
        if (details.open) state.openLanes.add(lane.lane);
        else state.openLanes.delete(lane.lane);
      });
      const running = lane.running.length
        ? lane.running
            .map((r) => `running ${r.sync}${r.since ? ` for ${duration(now - r.since)}` : ''}`)
            .join(', ')
        : 'free';
      const waiting = lane.waiting.length
        ? ` · waiting behind it: ${lane.waiting.map((w) => `${w.sync} (${w.trigger}${w.dueAt > now ? `, due ${clock(w.dueAt)}` : ''})`).join(', ')}`
        : '';
      return h(
        'section',
        { class: 'lane card', 'data-lane': lane.lane },
        h('h3', { text: lane.bundle !== null ? `bundle ${lane.bundle}` : lane.lane }),
        h('p', { class: 'small' }, running, waiting),
        timeline(lane.turns, from, now),
        h(
          'div',
          { class: 'legend' },
          syncs.map((s) => h('span', {}, h('span', { class: 'swatch', 'data-colour': colourOf(s) }), s)),
        ),
        details,
      );
    }),
  );
  for (const swatch of holder.querySelectorAll('.swatch')) swatch.style.background = swatch.dataset.colour;
}

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].map((s) => s * 1000);

function timeline(turns, from, now) {
  const W = 1000;
  const H = 46;
  const x = (t) => ((Math.max(from, t) - from) / (now - from)) * W;
  const svg = h('svg:svg', {
    class: 'timeline',
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': `turns, oldest first: ${turns.map((t) => t.sync).join(', ') || 'none'}`,
  });
  const step = STEPS.find((s) => (now - from) / s <= 10) ?? 600_000;
  for (let m = Math.ceil(from / step) * step; m <= now; m += step) {
    const label = step < 60_000 ? clock(m) : clock(m).slice(0, 5);
    svg.append(
      h('svg:line', { class: 'axis', x1: x(m), x2: x(m), y1: 0, y2: 30 }),
      h('svg:text', { x: Math.min(x(m) + 2, W - 52), y: 42, text: label }),
    );
  }
  for (const t of turns) {
    if ((t.end ?? now) < from) continue;
    const x0 = x(t.start);
    const w = Math.max(2, x(t.end ?? now) - x0);
    const rect = h('svg:rect', {
      x: x0,
      y: 4,
      width: w,
      height: 24,
      rx: 2,
      fill: colourOf(t.sync),
      'data-sync': t.sync,
      'data-run': t.runId,
      opacity: t.status === 'running' ? 0.6 : 1,
    });
    rect.append(
      h('svg:title', {
        text: `${t.sync} · run ${t.runId} · ${t.trigger} · ${t.status} · ${clock(t.start)}–${t.end ? clock(t.end) : 'now'}`,
      }),
    );
    svg.append(rect);
  }
  return svg;
}

// ---- runs -------------------------------------------------------------------------------------

function syncOptions(selected) {
  const names = state.snapshot ? state.snapshot.syncs.map((s) => s.sync) : [];
  return [
    h('option', { value: '', text: 'all' }),
    ...names.map((n) => h('option', { value: n, text: n, selected: n === selected })),
  ];
}

function openRuns(main) {
  const f = state.runsFilter;
  const sync = h(
    'select',
    {
      id: 'runs-sync',
      onchange: (e) => {
        f.sync = e.target.value;
        loadRuns();
      },
    },
    syncOptions(f.sync),
  );
  const status = h(
    'select',
    {
      id: 'runs-status',
      onchange: (e) => {
        f.status = e.target.value;
        loadRuns();
      },
    },
    ['', 'running', 'succeeded', 'failed', 'timed_out', 'abandoned'].map((s) =>
      h('option', { value: s, text: s || 'all', selected: s === f.status }),
    ),
  );
  main.append(
    h('h2', { text: 'Records read per second, last hour (one-minute averages)' }),
    h('div', { class: 'card' }, h('div', { id: 'rates' }, 'loading…')),
    h('h2', { text: 'Runs' }),
    h('div', { class: 'toolbar' }, h('label', {}, 'Sync ', sync), h('label', {}, 'Status ', status)),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'runs' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            [
              'Run',
              'Sync',
              'Trigger',
              'Status',
              'Started',
              'Duration',
              'Batches',
              'Read',
              'Written',
              'Unchanged',
              'Rejected',
              'Error',
            ].map((t) => h('th', { scope: 'col', text: t })),
          ),
        ),
        h('tbody', { id: 'run-rows' }),
      ),
    ),
  );
  loadRuns();
}

const runsKey = () =>
  state.snapshot ? state.snapshot.syncs.map((s) => `${s.lastRun?.id}:${s.lastRun?.status}`).join(',') : '';

function refreshRunsIfChanged() {
  const key = runsKey();
  if (key === state.seen.runs) return;
  clearTimeout(refreshRunsIfChanged.timer);
  refreshRunsIfChanged.timer = setTimeout(loadRuns, 300);
}

async function loadRuns() {
  state.seen.runs = runsKey();
  const f = state.runsFilter;
  const q = new URLSearchParams({ limit: '100' });
  if (f.sync) q.set('sync', f.sync);
  if (f.status) q.set('status', f.status);
  try {
    const [runs, rates] = await Promise.all([call('GET', `/ui/runs?${q}`), call('GET', '/ui/rates')]);
    const tbody = $('#run-rows');
    if (!tbody) return;
    tbody.replaceChildren(
      ...runs.map((r) => {
        const ms = (r.endedAt ? Date.parse(r.endedAt) : Date.now()) - Date.parse(r.startedAt);
        const c = r.counters;
        return h(
          'tr',
          { 'data-run': r.id, 'data-sync': r.sync },
          h('td', { class: 'num', text: r.id }),
          h('td', { text: r.sync }),
          h('td', { text: r.trigger }),
          h('td', {
            class: `state state-${r.status === 'succeeded' ? 'idle' : r.status === 'running' ? 'running' : 'failed'}`,
            text: r.status + (r.more ? ' (more)' : ''),
          }),
          h('td', { class: 'small', text: when(r.startedAt) }),
          h('td', { class: 'num', text: duration(ms) }),
          h('td', { class: 'num', text: num(c.batches) }),
          h('td', { class: 'num', text: num(c.read) }),
          h('td', { class: 'num', text: num(c.written) }),
          h('td', { class: 'num', text: num(c.unchanged) }),
          h('td', { class: 'num', text: num(c.rejected) }),
          h('td', { class: 'reason', text: r.errorCode ? `${r.errorCode}: ${r.errorMessage}` : '' }),
        );
      }),
    );
    if (runs.length === 0)
      tbody.append(h('tr', {}, h('td', { colspan: 12, class: 'muted', text: 'No runs match.' })));
    renderRates(rates);
  } catch (err) {
    toast(`runs: ${err.message}`, true);
  }
}

function renderRates(rates) {
  const holder = $('#rates');
  if (!holder) return;
  let series = rates.series;
  if (state.runsFilter.sync) series = series.filter((s) => s.sync === state.runsFilter.sync);
  series = series
    .map((s) => ({ ...s, total: s.perSecond.reduce((a, b) => a + b, 0) }))
    .sort((a, b) => b.total - a.total);
  const shown = series.slice(0, 8);
  if (shown.length === 0) {
    holder.replaceChildren(h('p', { class: 'muted', text: 'Nothing was read in the last hour.' }));
    return;
  }
  const W = 1000;
  const H = 180;
  const pad = { l: 48, b: 18, t: 8 };
  const max = Math.max(1, ...shown.flatMap((s) => s.perSecond));
  const n = shown[0].perSecond.length;
  const x = (i) => pad.l + (i / (n - 1)) * (W - pad.l - 4);
  const y = (v) => H - pad.b - (v / max) * (H - pad.b - pad.t);
  const svg = h('svg:svg', {
    class: 'chart',
    viewBox: `0 0 ${W} ${H}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': `records per second per minute over the last hour: ${shown.map((s) => `${s.sync} peak ${num(Math.max(...s.perSecond))}/s`).join(', ')}`,
  });
  for (const frac of [0, 0.5, 1])
    svg.append(
      h('svg:line', { class: 'grid', x1: pad.l, x2: W, y1: y(max * frac), y2: y(max * frac) }),
      h('svg:text', { x: 2, y: y(max * frac) + 3, text: num(max * frac) }),
    );
  for (const m of [0, 15, 30, 45])
    svg.append(h('svg:text', { x: x(Math.min(n - 1, m)) - 10, y: H - 4, text: `-${60 - m}m` }));
  svg.append(h('svg:text', { x: W - 4, y: H - 4, 'text-anchor': 'end', text: 'now' }));
  for (const s of shown)
    svg.append(
      h('svg:polyline', {
        fill: 'none',
        stroke: colourOf(s.sync),
        'stroke-width': 2,
        'vector-effect': 'non-scaling-stroke',
        'data-sync': s.sync,
        points: s.perSecond.map((v, i) => `${x(i)},${y(v)}`).join(' '),
      }),
    );
  const legend = h(
    'div',
    { class: 'legend' },
    shown.map((s) =>
      h(
        'span',
        {},
        h('span', { class: 'swatch', 'data-colour': colourOf(s.sync) }),
        `${s.sync} (peak ${num(Math.max(...s.perSecond))}/s)`,
      ),
    ),
  );
  if (series.length > shown.length)
    legend.append(
      h('span', {
        class: 'muted',
        text: `and ${series.length - shown.length} more: filter by sync to see one`,
      }),
    );
  holder.replaceChildren(svg, legend);
  for (const swatch of holder.querySelectorAll('.swatch')) swatch.style.background = swatch.dataset.colour;
}

// ---- dead letters -----------------------------------------------------------------------------

function openLetters(main) {
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

function refreshLettersIfChanged() {
  if (lettersKey() !== state.seen.letters) loadLetters();
}

async function loadLetters() {
  state.seen.letters = lettersKey();
  const f = state.lettersFilter;
  const q = new URLSearchParams({ limit: '500' });
  if (f.sync) q.set('sync', f.sync);
  try {
    const letters = await call('GET', `/ui/dead-letters?${q}`);
    const tbody = $('#letter-rows');
    if (!tbody) return;
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

// ---- data store -------------------------------------------------------------------------------

function openStore(main) {
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

// ---- start ------------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  const page = document.body.dataset.page;
  if (page === 'sign-in') signInPage();
  else if (page === 'app') appPage();
});
