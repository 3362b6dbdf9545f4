/**
 * The status page's static files (HTML, CSS, browser JS), served by
 * status-page.ts. Kept as strings so `tsc` ships them in dist/ with no copy
 * step. The browser code renders every value with textContent (card labels come
 * from removable media and are untrusted) and follows /events (SSE).
 */

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Field agent — status</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>Field agent</h1>
  <span id="link" class="pill" data-state="connecting">…</span>
  <span id="summary" class="summary"></span>
  <span id="live" class="live" data-live="false" title="live updates">● live</span>
</header>
<main>
  <section aria-labelledby="cards-h">
    <h2 id="cards-h">Cards</h2>
    <p id="no-cards" class="muted">No card or hot folder yet. Insert a card to start the offload.</p>
    <p id="notice" class="result" role="status"></p>
    <div id="card-list"></div>
  </section>
  <section aria-labelledby="queue-h">
    <h2 id="queue-h">To the studio</h2>
    <p id="queue-text" class="queue"></p>
    <button id="sync-now" type="button" hidden>Sync now</button>
    <button id="sync-toggle" type="button" hidden>Pause sync</button>
    <p id="sync-result" class="result" role="status"></p>
  </section>
  <section aria-labelledby="errors-h">
    <h2 id="errors-h">Errors</h2>
    <p id="no-errors" class="muted">None.</p>
    <ul id="error-list"></ul>
  </section>
</main>
</body>
</html>
`;

export const STATUS_PAGE_CSS = `:root { color-scheme: light dark; --ok: #1a7f37; --warn: #b35900; --bad: #c62828; --busy: #1f6feb; --muted: #777; --bg2: rgba(127,127,127,.12); }
* { box-sizing: border-box; }
body { font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; }
header { display: flex; gap: 12px; align-items: center; padding: 12px 20px; border-bottom: 1px solid var(--bg2); flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 14px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 18px 0 8px; }
main { padding: 0 20px 20px; max-width: 900px; }
.pill { border-radius: 999px; padding: 2px 10px; font-size: 13px; color: #fff; background: var(--muted); }
.pill[data-state="connected"] { background: var(--ok); }
.pill[data-state="connecting"] { background: var(--busy); }
.pill[data-state="offline"] { background: var(--warn); }
.pill[data-state="paused"] { background: var(--muted); }
.summary { flex: 1; }
.live { font-size: 12px; color: var(--muted); }
.live[data-live="true"] { color: var(--ok); }
.muted { color: var(--muted); }
.card { border: 1px solid var(--bg2); border-radius: 10px; padding: 12px 14px; margin-bottom: 10px; }
.card[data-safe="true"] { border-color: var(--ok); }
.card-head { display: flex; justify-content: space-between; align-items: center; gap: 8px; }
.card-head h3 { margin: 0; font-size: 16px; overflow-wrap: anywhere; flex: 1; }
.result { margin: 4px 0 0; font-size: 13px; font-weight: 600; }
.result:empty { display: none; }
.result[data-ok="false"] { color: var(--bad); }
.actions { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 8px; }
.actions button { font-size: 13px; padding: 2px 10px; }
.badge { font-size: 12px; font-weight: 600; border-radius: 6px; padding: 2px 8px; background: var(--warn); color: #fff; white-space: nowrap; }
.card[data-safe="true"] .badge { background: var(--ok); }
.card[data-kind="hot-folder"] .badge, .card[data-kind="folder"] .badge { background: var(--muted); }
.warnings { margin: 6px 0 0; padding-left: 18px; font-size: 13px; }
.warnings:empty { display: none; }
.warnings .path { font-weight: 600; overflow-wrap: anywhere; }
.warnings code { color: var(--warn); }
.bar { position: relative; height: 10px; background: var(--bg2); border-radius: 5px; overflow: hidden; margin: 10px 0 6px; }
.bar .fill { position: absolute; left: 0; top: 0; bottom: 0; width: 0; transition: width .3s; }
.bar .copied { background: var(--busy); opacity: .45; }
.bar .verified { background: var(--busy); }
.card[data-safe="true"] .bar .verified { background: var(--ok); }
.nums, .stages { display: flex; gap: 16px; flex-wrap: wrap; font-size: 13px; }
.stages { color: var(--muted); }
.reason { margin: 6px 0 0; font-size: 13px; }
.queue { font-size: 15px; }
#error-list { padding-left: 18px; font-size: 13px; }
#error-list code { color: var(--bad); }
button { font: inherit; padding: 4px 12px; border-radius: 6px; border: 1px solid var(--muted); background: transparent; cursor: pointer; }
`;

export const STATUS_PAGE_JS = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  const bytes = (n) => { let i = 0; let v = n; while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; } return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + ' ' + units[i]; };
  const duration = (s) => { s = Math.max(0, Math.round(s)); const h = Math.floor(s / 3600); const m = Math.floor((s % 3600) / 60); const sec = String(s % 60).padStart(2, '0'); return h > 0 ? h + ':' + String(m).padStart(2, '0') + ':' + sec : m + ':' + sec; };
  const pct = (a, b) => (b > 0 ? Math.min(100, (100 * a) / b) : 100);
  // A command button: POST, then its result (or the coded error and what to do) in out.
  function wire(b, url, out, ok, after) {
    b.addEventListener('click', async () => {
      b.disabled = true;
      out.textContent = b.textContent + '…';
      out.dataset.ok = 'true';
      try {
        const r = await fetch(url, { method: 'POST' });
        const body = await r.json().catch(() => ({}));
        out.dataset.ok = String(r.ok);
        out.textContent = r.ok ? ok(body) : (body.code || 'HTTP ' + r.status) + ': ' + (body.message || 'the agent refused');
        if (after) after(body, r.ok);
      } catch (e) {
        out.dataset.ok = 'false';
        out.textContent = 'The agent did not answer (' + e.message + '): is field-agent still running?';
      }
      b.disabled = false;
    });
    return b;
  }
  function button(cls, text, url, out, ok, after) {
    const b = el('button', cls, text);
    b.type = 'button';
    b.hidden = true;
    return wire(b, url, out, ok, after);
  }
  const forgotten = (b) => b.label + ' forgotten: no longer listed. No file was deleted.';
  const verified = (b) => 'Verified: ' + b.copiesChecked + ' copies read again, ' + b.copiesOk + ' intact, ' + b.lost.length + ' lost' + (b.lost.length > 0 ? ' (keep the card and ingest it again).' : '.');
  const linkText = { connected: 'Studio connected', connecting: 'Connecting to studio…', offline: 'Studio offline', paused: 'Sync paused' };

  function cardView(card) {
    let view = document.querySelector('[data-card-id="' + CSS.escape(card.id) + '"]');
    if (!view) {
      view = el('article', 'card');
      view.dataset.cardId = card.id;
      const head = el('div', 'card-head');
      const result = el('p', 'result');
      result.setAttribute('role', 'status');
      const q = '?card=' + encodeURIComponent(card.id);
      const ej = button('eject', 'Eject', '/api/eject' + q, result, () => 'Ejected: you can remove the card.');
      head.append(el('h3', 'label'), ej, el('span', 'badge'));
      const force = button('forget-force', 'Forget anyway', '/api/forget' + q + '&force=1', $('notice'), forgotten);
      const forget = button('forget', 'Forget', '/api/forget' + q, result, forgotten, (_body, ok) => { force.hidden = ok; });
      const actions = el('div', 'actions');
      actions.append(
        button('resolve', 'Mark warnings reviewed', '/api/resolve' + q, result, (b) => b.resolved + ' warning' + (b.resolved === 1 ? '' : 's') + ' marked as reviewed.'),
        button('verify', 'Verify copies', '/api/verify' + q, result, verified),
        forget,
        force,
      );
      const bar = el('div', 'bar');
      bar.append(el('div', 'fill copied'), el('div', 'fill verified'));
      const nums = el('div', 'nums');
      nums.append(el('span', 'progress'), el('span', 'speed'), el('span', 'eta'));
      const stages = el('div', 'stages');
      stages.append(el('span', 'n-verified'), el('span', 'n-queued'), el('span', 'n-studio'), el('span', 'n-offsite'));
      view.append(head, bar, nums, stages, el('p', 'reason'), el('ul', 'warnings'), actions, result);
      $('card-list').append(view);
    }
    return view;
  }

  function renderCard(card, s) {
    const v = cardView(card);
    const removable = card.kind === undefined || card.kind === 'card';
    const q = (sel) => v.querySelector(sel);
    const cmd = s.commands || {};
    // Eject only a card that is mounted now (a card seen earlier has nothing to unmount).
    q('.eject').hidden = !(s.eject && removable && card.safeToFormat && card.present === true);
    q('.resolve').hidden = !(cmd.resolve && (card.warnings || []).length > 0);
    q('.verify').hidden = !cmd.verify;
    // Forget what is not in the reader now (a card seen long ago, a folder, a hot folder).
    q('.forget').hidden = !(cmd.forget && card.present !== true);
    if (q('.forget').hidden) q('.forget-force').hidden = true;
    v.dataset.safe = String(card.safeToFormat);
    v.dataset.kind = card.kind || 'card';
    q('.label').textContent = card.label;
    // A hot folder or a folder is not a card: no format verdict, only what it is.
    q('.badge').textContent = card.kind === 'hot-folder' ? 'Hot folder' : card.kind === 'folder' ? 'Folder' : card.safeToFormat ? 'Safe to format' : 'Do not format';
    q('.fill.copied').style.width = pct(card.copiedBytes, card.bytes) + '%';
    q('.fill.verified').style.width = pct(card.verifiedFiles, card.files) + '%';
    q('.progress').textContent = card.copiedFiles + ' / ' + card.files + ' files · ' + bytes(card.copiedBytes) + ' / ' + bytes(card.bytes) + ' (' + Math.floor(pct(card.copiedBytes, card.bytes)) + '%)';
    const busy = card.copiedBytes < card.bytes;
    q('.speed').textContent = busy && card.speedBytesPerSec > 0 ? bytes(card.speedBytesPerSec) + '/s' : '';
    q('.eta').textContent = busy && card.etaSeconds !== null && card.etaSeconds !== undefined ? 'ETA ' + duration(card.etaSeconds) : busy ? '' : 'offloaded';
    q('.n-verified').textContent = 'verified ' + card.verifiedFiles + ' / ' + card.files;
    q('.n-queued').textContent = 'queued for studio ' + card.queuedFiles;
    q('.n-studio').textContent = 'at studio ' + card.atStudioFiles;
    q('.n-offsite').textContent = card.offsiteFiles === undefined ? '' : 'offsite ' + card.offsiteFiles;
    q('.reason').textContent = card.reason;
    q('.warnings').replaceChildren(...(card.warnings || []).map((w) => { const li = el('li'); li.append(el('span', 'path', w.path), document.createTextNode(' — '), el('code', '', w.code), document.createTextNode(' ' + w.message)); return li; }));
  }

  function render(s) {
    const seen = new Set();
    for (const card of s.cards) { renderCard(card, s); seen.add(card.id); }
    for (const v of document.querySelectorAll('.card')) if (!seen.has(v.dataset.cardId)) v.remove();
    $('no-cards').hidden = s.cards.length > 0;
    const link = $('link');
    link.dataset.state = s.link.state;
    link.textContent = (linkText[s.link.state] || s.link.state) + (s.link.studio ? ' · ' + s.link.studio : '') +
      (s.link.offlineSince ? ' · not reachable since ' + new Date(s.link.offlineSince).toLocaleString() : '');
    $('queue-text').textContent = s.queue.files === 0 ? 'Nothing waiting: the studio has everything offloaded.' : s.queue.files + ' files (' + bytes(s.queue.bytes) + ') waiting to go to the studio.';
    const cards = s.cards.filter((c) => c.kind === undefined || c.kind === 'card');
    const unsafe = cards.filter((c) => !c.safeToFormat).length;
    $('summary').textContent = cards.length === 0 ? '' : unsafe === 0 ? 'Every card is safe to format.' : unsafe + ' of ' + cards.length + ' card' + (cards.length === 1 ? '' : 's') + ' not yet safe to format.';
    const list = $('error-list');
    list.replaceChildren(...s.errors.slice(-10).reverse().map((e) => { const li = el('li'); li.append(el('code', '', e.code), document.createTextNode(' ' + e.message + ' '), el('span', 'muted', new Date(e.at).toLocaleTimeString())); return li; }));
    $('no-errors').hidden = s.errors.length > 0;
    $('sync-now').hidden = !(s.commands && s.commands.syncNow);
    const toggle = $('sync-toggle');
    toggle.hidden = !s.controls;
    toggle.textContent = s.link.state === 'paused' ? 'Resume sync' : 'Pause sync';
    document.title = (unsafe > 0 ? '● ' : '') + 'Field agent — status';
  }

  wire($('sync-now'), '/api/sync-now', $('sync-result'), (b) => 'Synced: ' + b.receipts + ' receipt' + (b.receipts === 1 ? '' : 's') + ', ' + b.filesSent + ' file' + (b.filesSent === 1 ? '' : 's') + ' sent (' + bytes(b.bytesSent) + ')' + (b.failed > 0 ? ', ' + b.failed + ' refused: they are tried again.' : '.'));
  $('sync-toggle').addEventListener('click', () => {
    const paused = $('link').dataset.state === 'paused';
    fetch(paused ? '/api/resume' : '/api/pause', { method: 'POST' });
  });

  function connect() {
    const es = new EventSource('/events');
    es.addEventListener('status', (ev) => { $('live').dataset.live = 'true'; render(JSON.parse(ev.data)); });
    es.onerror = () => { $('live').dataset.live = 'false'; };
  }
  connect();
})();
`;
