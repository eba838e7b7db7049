// The lanes view: each lane's running and waiting runs, and its turns on a time axis.

import { $, clock, colourOf, duration, h, nowish, state } from './common.js';

// ---- lanes ------------------------------------------------------------------------------------

const SPANS = [
  ['auto', 'since the first turn'],
  ['60000', 'last minute'],
  ['300000', 'last 5 minutes'],
  ['600000', 'last 10 minutes'],
];

export function renderLanes(main) {
  if (!main.querySelector('#lanes')) {
    cards.clear();
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
      h(
        'div',
        { class: 'toolbar' },
        h('input', {
          type: 'search',
          id: 'lane-filter',
          placeholder: 'filter by lane or sync',
          'aria-label': 'Filter lanes by lane or sync name',
          value: state.laneFilter ?? '',
          oninput: (e) => {
            state.laneFilter = e.target.value;
            renderLanes(main);
          },
        }),
        h('label', {}, 'Time axis ', span),
      ),
      h('div', { id: 'lanes' }),
    );
  }
  const holder = $('#lanes', main);
  if (!state.snapshot) return;
  const { lanes, windowMs } = state.snapshot;
  const now = nowish();
  const filter = state.laneFilter ?? '';
  const matches = (l) =>
    !filter ||
    l.lane.includes(filter) ||
    l.turns.some((t) => t.sync.includes(filter)) ||
    l.running.some((r) => r.sync.includes(filter)) ||
    l.waiting.some((w) => w.sync.includes(filter));
  const shown = lanes.filter(
    (l) => (l.bundle !== null || l.running.length || l.waiting.length || l.turns.length) && matches(l),
  );
  // Auto: from a little before the first turn in the window, at least 10 s, at most the window.
  const first = Math.min(now, ...shown.flatMap((l) => l.turns.map((t) => t.start)));
  const span =
    state.laneSpan && state.laneSpan !== 'auto'
      ? Number(state.laneSpan)
      : Math.min(windowMs, Math.max(10_000, (now - first) * 1.05));
  const from = now - span;
  // Each lane's card is kept from one redraw to the next (its parts updated), so a keyboard focus
  // on its list of turns stays where it is while the time axis moves on.
  const order = shown.map((lane) => {
    const card = cardOf(lane);
    const running = lane.running.length
      ? lane.running
          .map((r) => `running ${r.sync}${r.since ? ` for ${duration(now - r.since)}` : ''}`)
          .join(', ')
      : 'free';
    const waiting = lane.waiting.length
      ? ` · waiting behind it: ${lane.waiting.map((w) => `${w.sync} (${w.trigger}${w.dueAt > now ? `, due ${clock(w.dueAt)}` : ''})`).join(', ')}`
      : '';
    card.status.textContent = running + waiting;
    const axis = timeline(lane.turns, from, now);
    card.timeline.replaceWith(axis);
    card.timeline = axis;
    const syncs = [...new Set(lane.turns.map((t) => t.sync).concat(lane.running.map((r) => r.sync)))];
    const legendKey = syncs.join(',');
    if (card.legendKey !== legendKey) {
      card.legendKey = legendKey;
      card.legend.replaceChildren(
        ...syncs.map((s) => {
          const swatch = h('span', { class: 'swatch' });
          swatch.style.background = colourOf(s);
          return h('span', {}, swatch, s);
        }),
      );
    }
    const turnsKey = lane.turns.map((t) => `${t.runId}:${t.status}`).join(',');
    if (card.turnsKey !== turnsKey) {
      card.turnsKey = turnsKey;
      card.summary.textContent = `${lane.turns.length} turns in the last ${Math.round(windowMs / 60000)} minutes`;
      card.list.replaceChildren(
        ...lane.turns.map((t) =>
          h(
            'li',
            { 'data-sync': t.sync, 'data-run': t.runId },
            `${clock(t.start)}–${t.end ? clock(t.end) : 'now'} ${t.sync} (run ${t.runId}, ${t.trigger}, ${t.status})`,
          ),
        ),
      );
    }
    return card.section;
  });
  const same = order.length === holder.children.length && order.every((el, i) => holder.children[i] === el);
  if (!same) holder.replaceChildren(...order);
}

const cards = new Map();

function cardOf(lane) {
  let card = cards.get(lane.lane);
  if (card) return card;
  const summary = h('summary');
  const list = h('ol', { class: 'turns small' });
  card = {
    summary,
    list,
    status: h('p', { class: 'small' }),
    timeline: h('span'),
    legend: h('div', { class: 'legend' }),
    legendKey: null,
    turnsKey: null,
  };
  card.section = h(
    'section',
    { class: 'lane card', 'data-lane': lane.lane },
    h('h3', { text: lane.bundle !== null ? `bundle ${lane.bundle}` : lane.lane }),
    card.status,
    card.timeline,
    card.legend,
    h('details', {}, summary, list),
  );
  cards.set(lane.lane, card);
  return card;
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
    svg.append(h('svg:line', { class: 'axis', x1: x(m), x2: x(m), y1: 0, y2: 30 }));
    // A tick too near the right edge for its label (which starts there) goes unlabelled.
    if (x(m) <= W - 80) svg.append(h('svg:text', { x: x(m) + 2, y: 42, text: label }));
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
