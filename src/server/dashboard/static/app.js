// The Sluice dashboard's script: plain browser JavaScript, no framework, no build step, no network
// beyond this server. The server pushes snapshots over Server-Sent Events (/ui/events); views that
// list history (runs, dead letters, the data store) read it when they open and when a snapshot says
// it changed. Every change is a same-origin fetch carrying the dashboard header (see session.ts).

import { $, call, clock, state } from './common.js';
import { renderLanes } from './lanes.js';
import { openLetters, refreshLettersIfChanged } from './letters.js';
import { openRuns, refreshRunsIfChanged } from './runs.js';
import { openStore } from './store.js';
import { openSyncs, updateSyncs } from './syncs.js';

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

const VIEWS = {
  syncs: { title: 'Syncs', open: openSyncs, update: updateSyncs },
  lanes: { title: 'Lanes', open: renderLanes, update: renderLanes },
  runs: { title: 'Runs', open: openRuns, update: refreshRunsIfChanged },
  'dead-letters': { title: 'Dead letters', open: openLetters, update: refreshLettersIfChanged },
  store: { title: 'Data store', open: openStore, update: () => {} },
};

function appPage() {
  window.addEventListener('hashchange', route);
  // Durations, lags and the time axis move on between snapshots (a quiet feed sends none).
  setInterval(() => {
    if (document.hidden) return;
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

// ---- start ------------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  const page = document.body.dataset.page;
  if (page === 'sign-in') signInPage();
  else if (page === 'app') appPage();
});
