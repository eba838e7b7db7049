import { createHash } from 'node:crypto';

import { EMBEDDED } from './assets.ts';

/**
 * The page's static files. They are edited in `static/` and embedded in `assets.ts` (see
 * test/dashboard/embed-assets.ts), so they ship inside the compiled package; decoded on first use.
 */
const TYPES = { js: 'text/javascript; charset=UTF-8', css: 'text/css; charset=UTF-8' } as const;

type Asset = { body: string; type: string; etag: string };
const cache = new Map<string, Asset>();

/** True for the name of one of the page's files (`app.js`, `syncs.js`, `app.css`…). */
export function isAsset(name: string): boolean {
  return Object.hasOwn(EMBEDDED, name);
}

export function asset(name: string): Asset {
  let found = cache.get(name);
  if (!found) {
    const body = Buffer.from(EMBEDDED[name] ?? '', 'base64').toString('utf8');
    const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`;
    found = { body, type: name.endsWith('.css') ? TYPES.css : TYPES.js, etag };
    cache.set(name, found);
  }
  return found;
}

/** Headers every dashboard page carries: its own files only, never framed, no referrer to other sites. */
export const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // `same-origin`, not `no-referrer`: under that a browser sends `Origin: null` with the page's forms.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
} as const;

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );

function shell(page: string, title: string, body: string): string {
  const css = asset('app.css').etag.slice(1, -1);
  const js = asset('app.js').etag.slice(1, -1);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/dashboard/app.css?v=${css}">
<script type="module" src="/dashboard/app.js?v=${js}"></script>
${modules()}
</head>
<body data-page="${page}">
${body}
</body>
</html>
`;
}

/** The modules app.js imports, fetched beside it rather than after it. */
function modules(): string {
  return Object.keys(EMBEDDED)
    .filter((name) => name.endsWith('.js') && name !== 'app.js')
    .map((name) => `<link rel="modulepreload" href="/dashboard/${name}">`)
    .join('\n');
}

/** No API token is configured: the dashboard is closed, and the page says how to open it. */
export function noTokenPage(): string {
  return shell(
    'no-token',
    'Sluice — set an API token',
    `<main class="narrow">
<h1>Sluice</h1>
<h2>The dashboard needs an API token</h2>
<p>The dashboard is behind the same tokens as the REST API, and none is configured, so it stays
closed. Add one to <code>sluice.config.ts</code> (read from the environment, never written in the file)
and restart <code>sluice serve</code>:</p>
<pre><code>export default defineConfig({
  // …
  server: { apiTokens: [process.env.SLUICE_API_TOKEN!] },
});</code></pre>
<p>Then sign in here with that token. Anyone with it can run, reset and edit, as through the API.</p>
</main>`,
  );
}

/** The sign-in form: an API token, kept in an HttpOnly, SameSite=Strict cookie once accepted. */
export function signInPage(error: string | null = null): string {
  return shell(
    'sign-in',
    'Sluice — sign in',
    `<main class="narrow">
<h1>Sluice</h1>
<form id="sign-in" method="post" action="/ui/session" class="card">
<h2>Sign in</h2>
<p>Use one of the API tokens in <code>server.apiTokens</code>.</p>
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<p id="sign-in-error" class="error" role="alert">${error ? escapeHtml(error) : ''}</p>
<button type="submit" class="primary">Sign in</button>
</form>
</main>`,
  );
}

/**
 * The dashboard itself. The first snapshot comes inside the page (a JSON data block, which is not
 * run as script), so the tables are drawn without waiting for the live feed to connect; the script
 * keeps them current from the feed.
 */
export function appPage(snapshot = 'null'): string {
  return shell(
    'app',
    'Sluice',
    `<a class="skip" href="#view">Skip to content</a>
<header class="top">
<h1>Sluice</h1>
<nav aria-label="Views">
<a href="#syncs" data-view="syncs">Syncs</a>
<a href="#lanes" data-view="lanes">Lanes</a>
<a href="#runs" data-view="runs">Runs</a>
<a href="#dead-letters" data-view="dead-letters">Dead letters</a>
<a href="#store" data-view="store">Data store</a>
</nav>
<span id="live" class="live" role="status" aria-live="polite">connecting…</span>
<form method="post" action="/ui/session/end" id="sign-out"><button type="submit" class="link">Sign out</button></form>
</header>
<main id="view" tabindex="-1"></main>
<p id="toast" class="toast" role="status" aria-live="polite"></p>
<script type="application/json" id="initial-snapshot">${snapshot.replaceAll('<', '\\u003c')}</script>
<dialog id="confirm"><form method="dialog">
<p id="confirm-text"></p>
<div class="actions"><button value="cancel" type="submit">Cancel</button>
<button value="ok" type="submit" class="danger" id="confirm-ok">Confirm</button></div>
</form></dialog>`,
  );
}
