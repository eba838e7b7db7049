// The syncs table: one row per sync, updated in place from each snapshot.

import { $, call, clock, confirmAction, duration, h, nowish, num, state, toast } from './common.js';

// ---- syncs ------------------------------------------------------------------------------------

const rows = new Map();

export function openSyncs(main) {
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

export function updateSyncs() {
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
    const since = s.runningSince === null ? null : now - s.runningSince;
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
