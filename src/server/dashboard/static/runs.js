// The runs view: history with filters, and records read per second over the last hour.

import { $, call, colourOf, duration, h, num, state, syncOptions, toast, when } from './common.js';

// ---- runs -------------------------------------------------------------------------------------

export function openRuns(main) {
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

export function refreshRunsIfChanged() {
  const key = runsKey();
  if (key === state.seen.runs) return;
  clearTimeout(refreshRunsIfChanged.timer);
  refreshRunsIfChanged.timer = setTimeout(loadRuns, 300);
}

let loads = 0;

async function loadRuns() {
  // A newer load (the filter changed meanwhile) wins: an older answer arriving late is dropped.
  const mine = ++loads;
  state.seen.runs = runsKey();
  const f = state.runsFilter;
  const q = new URLSearchParams({ limit: '100' });
  if (f.sync) q.set('sync', f.sync);
  if (f.status) q.set('status', f.status);
  try {
    const [runs, rates] = await Promise.all([call('GET', `/ui/runs?${q}`), call('GET', '/ui/rates')]);
    const tbody = $('#run-rows');
    if (!tbody || mine !== loads) return;
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
