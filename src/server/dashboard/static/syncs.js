// The syncs table: one row per sync, updated in place from each snapshot.

import { $, call, clock, confirmAction, duration, h, nowish, num, state, toast } from './common.js';

const rows = new Map();

export function openSyncs(main) {
  rows.clear();
  const tbody = h('tbody', {
    id: 'sync-rows',
    // One listener for every row's buttons.
    onclick: (e) => {
      const button = e.target.closest('button[data-action]');
      const sync = button?.closest('tr')?.dataset.sync;
      if (!sync) return;
      if (button.dataset.action === 'run') requestRun(sync);
      else if (button.dataset.action === 'reset') resetSync(sync);
    },
  });
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

const escapeHtml = (text) =>
  String(text).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );

/**
 * A row's markup: built as text and parsed by the browser in one go for every new row (200 rows
 * of elements made one by one from script cost several times more), then filled in by `fill`.
 */
function rowHtml(s) {
  const name = escapeHtml(s.sync);
  const bundle = s.bundle ? `<div class="small muted">bundle ${escapeHtml(s.bundle)}</div>` : '';
  return `<tr data-sync="${name}"><td data-label="Sync"><strong>${name}</strong>${bundle}</td>
<td data-label="Phase"></td>
<td data-label="Progress" class="progress"><div class="progress-box"><div class="bar" role="progressbar" aria-label="${name} backfill progress" aria-valuemin="0" aria-valuemax="100"><span></span></div><div class="small muted"></div></div></td>
<td data-label="Rate" class="num"></td><td data-label="ETA" class="num"></td><td data-label="Lag" class="num"></td>
<td data-label="State"><span class="state"></span><div class="small"></div></td>
<td data-label="Next run" class="small"></td>
<td><div class="actions"><button type="button" data-action="run" aria-label="Run ${name} now">Run</button><button type="button" class="danger" data-action="reset" aria-label="Reset ${name}">Reset</button></div></td></tr>`;
}

/** The parts of a row that change, found once. */
function partsOf(tr) {
  const [, phase, progress, rate, eta, lag, stateCell, next] = tr.cells;
  const bar = progress.querySelector('.bar');
  return {
    tr,
    phase,
    bar,
    fill: bar.firstElementChild,
    counts: bar.nextElementSibling,
    rate,
    eta,
    lag,
    stateLabel: stateCell.firstElementChild,
    stateDetail: stateCell.lastElementChild,
    next,
  };
}

export function updateSyncs() {
  const tbody = $('#sync-rows');
  if (!tbody || !state.snapshot) return;
  const { syncs } = state.snapshot;
  const now = nowish();
  const drift = now - state.snapshot.now;
  const fresh = syncs.filter((s) => !rows.has(s.sync));
  if (fresh.length > 0) {
    const holder = document.createElement('tbody');
    holder.innerHTML = fresh.map(rowHtml).join('');
    for (const tr of [...holder.rows]) rows.set(tr.dataset.sync, partsOf(tr));
  }
  const order = [];
  for (const s of syncs) {
    const row = rows.get(s.sync);
    order.push(row.tr);
    fill(row, s, now, drift);
  }
  // Rows are moved only when the order changed: a row taken out of the page loses the keyboard focus.
  const same = order.length === tbody.children.length && order.every((tr, i) => tbody.children[i] === tr);
  if (!same) tbody.replaceChildren(...order);
}

function fill(row, s, now, drift) {
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
  const [kind, label, detail, detailClass] = stateOf(s, now);
  row.stateLabel.className = `state state-${kind}`;
  row.stateLabel.textContent = label;
  row.stateDetail.className = detailClass;
  row.stateDetail.textContent = detail;
  row.next.textContent = nextOf(s.next, now);
}

/** What the state cell says: [kind, label, detail, the detail's class]. */
function stateOf(s, now) {
  if (s.chainBroken) return ['broken', 'chain broken', s.chainBroken, 'reason'];
  if (s.state === 'running') {
    const since = s.runningSince === null ? '' : `for ${duration(now - s.runningSince)}`;
    return ['running', 'running', since, 'small muted'];
  }
  if (s.state === 'queued')
    return s.waitingForLane
      ? ['waiting', 'waiting for its lane', '', 'small']
      : ['queued', 'queued', '', 'small'];
  if (s.state === 'failed') return ['failed', 'failed', s.error ?? '', 'reason'];
  const letters = s.deadLetters ? `${num(s.deadLetters)} dead letter${s.deadLetters === 1 ? '' : 's'}` : '';
  return ['idle', 'idle', letters, 'small'];
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
