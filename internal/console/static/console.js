// longrun console: plain JavaScript, no dependencies, no build step.
//
// Security: the API key arrives in the URL's fragment (#key=…), which browsers
// never send to a server; it is moved at once to sessionStorage (this tab
// only, gone when it closes) and the fragment is stripped from the address
// bar and history. It is sent only as an Authorization: Bearer header, never
// in a query string, so it reaches no log and no Referer. Actions are
// CSRF-safe because another site cannot make the browser add that header.
// Everything shown is built with textContent, never innerHTML.
'use strict';

const KEY = 'longrun.apiKey';
const POLL_MS = 1000;

// --- the key -------------------------------------------------------------

function takeKeyFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const k = params.get('key');
  if (k) {
    sessionStorage.setItem(KEY, k);
    history.replaceState(null, '', location.pathname + location.search);
  }
}

const apiKey = () => sessionStorage.getItem(KEY) || '';

class HTTPError extends Error {
  constructor(status, detail) { super(detail || ('HTTP ' + status)); this.status = status; }
}

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + apiKey() };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  const resp = await fetch(path, init);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!resp.ok) {
    if (resp.status === 401) { sessionStorage.removeItem(KEY); signIn('That API key was refused: ' + ((data && data.detail) || 'unauthorized') + '.'); }
    throw new HTTPError(resp.status, (data && data.detail) || text);
  }
  return data;
}

// --- DOM helpers -------------------------------------------------------------

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v; // CSSOM: allowed by the CSP, unlike a style attribute
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const kid of kids.flat()) if (kid) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return el;
}

const app = () => document.getElementById('app');
const badge = (status) => h('span', { class: 'badge s-' + status, 'data-status': status }, status);
// Job kinds come from another part of longrun: read whichever field exists.
const kindOf = (e) => e.job || e.kind || e.jobKind || '';

function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
function fmtDuration(start, stop) {
  if (!start) return '';
  let ms = (stop ? new Date(stop) : new Date()) - new Date(start);
  if (ms < 0) ms = 0;
  if (ms < 1000) return ms + ' ms';
  const sec = Math.floor(ms / 1000);
  if (sec < 60) return (ms / 1000).toFixed(1) + ' s';
  const m = Math.floor(sec / 60), r = sec % 60;
  if (m < 60) return m + 'm ' + r + 's';
  return Math.floor(m / 60) + 'h ' + (m % 60) + 'm';
}
const pretty = (v) => { try { return JSON.stringify(typeof v === 'string' ? JSON.parse(v) : v, null, 2); } catch (_) { return String(v); } };

// --- polling -----------------------------------------------------------------

let timer = null;
function poll(fn) {
  clearTimeout(timer);
  const tick = async () => {
    try { await fn(); } catch (e) { if (e.status === 401) return; showError(e); }
    timer = setTimeout(tick, POLL_MS);
  };
  tick();
}
function showError(e) {
  const n = document.getElementById('notice');
  if (n) { n.hidden = false; n.textContent = e.message; }
}
function clearError() { const n = document.getElementById('notice'); if (n) n.hidden = true; }

// --- sign in -------------------------------------------------------------------

function signIn(message) {
  clearTimeout(timer);
  document.getElementById('signout').hidden = true;
  const input = h('input', { type: 'password', id: 'key', autocomplete: 'off', placeholder: 'lr_…', required: true });
  app().replaceChildren(h('div', { class: 'panel signin' },
    h('h1', {}, 'Sign in'),
    message ? h('p', { class: 'error' }, message) : null,
    h('p', { class: 'muted' }, 'Paste an API key. `longrun dev` prints a console link that signs you in; `longrun keys create` makes more keys. The key stays in this tab only.'),
    h('form', { onsubmit: (ev) => { ev.preventDefault(); sessionStorage.setItem(KEY, input.value.trim()); route(); } },
      h('label', { for: 'key' }, 'API key'), input, h('button', { class: 'primary', type: 'submit' }, 'Sign in'))));
  input.focus();
}

// --- the list --------------------------------------------------------------------

const STATUSES = ['', 'RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'];

function listPage() {
  const params = new URLSearchParams(location.search);
  let status = params.get('status') || '';
  let kind = params.get('kind') || '';
  const statusSel = h('select', { id: 'status', onchange: () => { status = statusSel.value; sync(); } },
    STATUSES.map((st) => h('option', { value: st, selected: st === status }, st || 'All statuses')));
  const kindSel = h('select', { id: 'kind', hidden: true, onchange: () => { kind = kindSel.value; sync(); } });
  const body = h('tbody', { id: 'rows' });
  const table = h('table', { id: 'executions' }, h('thead', {}, h('tr', {},
    h('th', {}, 'Status'), h('th', { class: 'kind-col', hidden: true }, 'Kind'), h('th', {}, 'Name'),
    h('th', {}, 'Execution'), h('th', {}, 'Started'), h('th', {}, 'Duration'))), body);
  let pages = 1; // pages of 100 shown; "Load more" adds one
  const more = h('button', { id: 'more', hidden: true, onclick: () => { pages++; poll(load); } }, 'Load more');
  app().replaceChildren(
    h('div', { class: 'toolbar' }, h('h1', { class: 'grow' }, 'Executions'), kindSel, statusSel),
    h('div', { id: 'notice', class: 'notice', hidden: true }),
    h('div', { class: 'panel', style: 'padding:0' }, table),
    h('div', { class: 'toolbar' }, more));
  const kinds = new Set();
  function sync() {
    const q = new URLSearchParams();
    if (status) q.set('status', status);
    if (kind) q.set('kind', kind);
    history.replaceState(null, '', '/ui/' + (q.toString() ? '?' + q : ''));
    pages = 1;
    poll(load);
  }
  async function load() {
    const all = [];
    let token = '';
    for (let i = 0; i < pages; i++) {
      const q = new URLSearchParams({ limit: '100' });
      if (status) q.set('status', status);
      if (token) q.set('nextToken', token);
      const page = await api('GET', '/executions?' + q);
      all.push(...(page.executions || []));
      token = page.nextToken || '';
      if (!token) break;
    }
    more.hidden = !token;
    clearError();
    all.forEach((e) => { if (kindOf(e)) kinds.add(kindOf(e)); });
    const showKind = kinds.size > 0;
    table.querySelectorAll('.kind-col').forEach((el) => { el.hidden = !showKind; });
    kindSel.hidden = !showKind;
    if (showKind && kindSel.options.length !== kinds.size + 1) {
      kindSel.replaceChildren(h('option', { value: '' }, 'All kinds'), [...kinds].sort().map((k) => h('option', { value: k, selected: k === kind }, k)));
    }
    const rows = all.filter((e) => !kind || kindOf(e) === kind);
    if (rows.length === 0) {
      body.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, status ? 'No ' + status + ' executions.' : 'No executions yet. Start one with `longrun start`.')));
      return;
    }
    body.replaceChildren(...rows.map((e) => h('tr', { 'data-id': e.executionId },
      h('td', {}, badge(e.status)),
      h('td', { class: 'kind-col', hidden: !showKind }, kindOf(e)),
      h('td', {}, e.name || h('span', { class: 'muted' }, '—')),
      h('td', { class: 'mono' }, h('a', { href: '/ui/executions/' + encodeURIComponent(e.executionId) }, e.executionId)),
      h('td', {}, fmtTime(e.startDate)),
      h('td', {}, fmtDuration(e.startDate, e.stopDate)))));
  }
  poll(load);
}

// --- one execution ------------------------------------------------------------------

function executionPage(id) {
  const root = h('div', { id: 'execution' });
  app().replaceChildren(h('p', {}, h('a', { href: '/ui/' }, '← Executions')), h('div', { id: 'notice', class: 'notice', hidden: true }), root);
  let busy = false;
  async function act(method, path, label) {
    busy = true;
    try { await api(method, path); clearError(); } catch (e) { if (e.status !== 401) showError(new Error(label + ': ' + e.message)); }
    busy = false;
    last = '';
    await load();
  }
  let last = '';
  async function load() {
    const [e, trace] = await Promise.all([
      api('GET', '/executions/' + encodeURIComponent(id)),
      api('GET', '/ui/api/executions/' + encodeURIComponent(id) + '/trace'),
    ]);
    document.title = (e.name || e.executionId) + ' · longrun';
    // Redraw only on a change, so open payloads stay open; the clock ticks anyway.
    const now = JSON.stringify([e, trace, busy]);
    if (now === last) {
      const d = document.getElementById('duration');
      if (d && !e.stopDate) d.textContent = fmtDuration(e.startDate);
      return;
    }
    last = now;
    const running = e.status === 'RUNNING';
    const canRedeliver = !running && e.callbackUrl && e.webhook && e.webhook.state !== 'pending';
    root.replaceChildren(
      h('div', { class: 'head' },
        h('div', { class: 'grow' },
          h('h1', {}, e.name || 'Execution'),
          h('div', { class: 'mono muted' }, e.executionId)),
        badge(e.status),
        running ? h('button', { id: 'stop', class: 'danger', disabled: busy, onclick: () => { if (confirm('Stop this execution? It ends ABORTED.')) act('DELETE', '/executions/' + encodeURIComponent(id), 'Stop'); } }, 'Stop') : null,
        e.callbackUrl ? h('button', { id: 'redeliver', disabled: busy || !canRedeliver, title: canRedeliver ? 'Send the final webhook again (same webhook-id)' : 'Available once the execution has ended and its webhook is delivered or given up', onclick: () => act('POST', '/executions/' + encodeURIComponent(id) + '/redeliver', 'Redeliver') }, 'Redeliver webhook') : null),
      h('div', { class: 'cols' },
        h('div', {},
          summary(e),
          running || e.progress ? progress(e) : null,
          payloads(e),
          webhook(e)),
        h('div', {},
          h('div', { class: 'panel' }, h('h2', {}, 'State machine'), graph(trace.graph), legend()),
          historyTable(trace.history))));
  }
  poll(load);
}

function summary(e) {
  const kind = kindOf(e);
  return h('div', { class: 'panel' }, h('dl', { class: 'kv' },
    kind ? [h('dt', {}, 'Kind'), h('dd', {}, kind)] : null,
    h('dt', {}, 'Started'), h('dd', {}, fmtTime(e.startDate)),
    h('dt', {}, e.stopDate ? 'Ended' : 'Running for'), h('dd', { id: 'duration' }, e.stopDate ? fmtTime(e.stopDate) + ' (' + fmtDuration(e.startDate, e.stopDate) + ')' : fmtDuration(e.startDate)),
    e.callbackUrl ? [h('dt', {}, 'Callback'), h('dd', { class: 'mono' }, e.callbackUrl)] : null,
    h('dt', {}, 'ARN'), h('dd', { class: 'mono' }, e.executionArn)));
}

function progress(e) {
  const p = e.progress || { percent: 0 };
  const pct = Math.max(0, Math.min(100, Math.floor(p.percent))); // 99.7 is not done: as the CLI rounds
  return h('div', { class: 'panel', id: 'progress' }, h('h2', {}, 'Progress'),
    h('div', { class: 'progress' }, h('div', { style: 'width:' + pct + '%' })),
    h('div', {}, h('strong', {}, pct + '%'), p.message ? ' · ' + p.message : ''),
    p.updatedAt ? h('div', { class: 'muted' }, 'reported ' + fmtTime(p.updatedAt)) : null);
}

function payloads(e) {
  return h('div', { class: 'panel' },
    h('h2', {}, 'Input'), h('pre', { id: 'input' }, pretty(e.input)),
    e.output !== undefined && e.output !== null ? [h('h2', { style: 'margin-top:12px' }, 'Output'), h('pre', { id: 'output' }, pretty(e.output))] : null,
    e.error ? [h('h2', { style: 'margin-top:12px' }, 'Error'), h('div', { id: 'error', class: 'error mono' }, e.error), e.cause ? h('pre', { id: 'cause' }, e.cause) : null] : null);
}

function webhook(e) {
  if (!e.callbackUrl) return null;
  const w = e.webhook;
  if (!w) return h('div', { class: 'panel' }, h('h2', {}, 'Webhook'), h('p', { class: 'muted' }, 'Sent when the execution ends.'));
  return h('div', { class: 'panel', id: 'webhook' },
    h('h2', {}, 'Webhook ', h('span', { class: 'muted' }, '· ' + w.type + ' · ' + w.state)),
    h('table', { id: 'attempts' },
      h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'At'), h('th', {}, 'Status'), h('th', {}, 'Latency'))),
      h('tbody', {}, (w.attempts || []).map((a, i) => h('tr', { class: 'attempt' },
        h('td', {}, i + 1), h('td', {}, fmtTime(a.at)),
        h('td', { class: a.statusCode >= 200 && a.statusCode < 300 ? '' : 'error' }, a.statusCode || a.error || 'no response'),
        h('td', {}, a.latencyMs + ' ms'))))),
    w.nextAttempt ? h('p', { class: 'muted' }, 'Next attempt ' + fmtTime(w.nextAttempt)) : null);
}

function historyTable(events) {
  return h('div', { class: 'panel' }, h('h2', {}, 'History'),
    h('table', { class: 'history', id: 'history' },
      h('thead', {}, h('tr', {}, h('th', {}, 'ID'), h('th', {}, 'Time'), h('th', {}, 'Type'), h('th', {}, 'State'), h('th', {}, 'Details'))),
      h('tbody', {}, events.map((ev) => h('tr', {},
        h('td', {}, ev.id),
        h('td', { class: 'mono' }, new Date(ev.timestamp).toISOString().slice(11, 23)),
        h('td', {}, ev.type),
        h('td', {}, ev.state || ''),
        h('td', {}, ev.detail ? h('details', {}, h('summary', {}, 'payload'), h('pre', {}, pretty(ev.detail))) : ''))))));
}

// --- the graph -------------------------------------------------------------------------

function legend() {
  const item = (cls, color, text) => h('span', {}, h('i', { style: 'border-color:' + color + ';background:' + cls }), text);
  return h('div', { class: 'legend' }, item('#ecfdf5', '#16a34a', 'path taken'), item('#eff6ff', '#2563eb', 'current'),
    item('#fef2f2', '#dc2626', 'failed'), item('#f3f4f6', '#4b5563', 'stopped'), item('#fff', '#cbd0d8', 'not reached'));
}

function graph(g) {
  const pad = 30;
  const byId = Object.fromEntries(g.nodes.map((n) => [n.id, n]));
  const svg = s('svg', { class: 'graph', id: 'graph', viewBox: `${-pad} ${-10} ${g.width + 2 * pad + 60} ${g.height + 20}`, role: 'img', 'aria-label': 'state machine' });
  const edges = s('g', {});
  const nodes = s('g', {});
  // Groups first, so their members draw on top.
  const sorted = [...g.nodes].sort((a, b) => (b.type === 'Map' || b.type === 'Parallel') - (a.type === 'Map' || a.type === 'Parallel'));
  for (const n of sorted) {
    if (n.type === 'Start' || n.type === 'End') {
      const visited = g.edges.some((e) => e.taken && (e.from === n.id || e.to === n.id));
      nodes.append(s('g', { class: 'term' + (visited ? ' visited' : ''), 'data-node': n.id },
        s('circle', { cx: n.x + n.w / 2, cy: n.y + n.h / 2, r: n.w / 2 }),
        s('title', {}, n.name)));
      continue;
    }
    const group = n.type === 'Map' || n.type === 'Parallel';
    const el = s('g', { class: 'node' + (group ? ' group' : '') + (n.status ? ' ' + n.status : ''), 'data-node': n.id, 'data-status': n.status || '' },
      s('rect', { x: n.x, y: n.y, width: n.w, height: n.h, rx: 8 }),
      s('text', { x: n.x + (group ? 10 : n.w / 2), y: n.y + (group ? 18 : 17), 'text-anchor': group ? 'start' : 'middle' }, n.name),
      s('text', { class: 'type', x: n.x + (group ? n.w - 10 : n.w / 2), y: n.y + (group ? 18 : 32), 'text-anchor': group ? 'end' : 'middle' }, n.type),
      s('title', {}, n.name + ' (' + n.type + ')' + (n.status ? ': ' + n.status : '')));
    nodes.append(el);
  }
  for (const e of g.edges) {
    const a = byId[e.from], b = byId[e.to];
    if (!a || !b) continue;
    let d, tip;
    if (e.back) {
      // Around the right side, back up to the target.
      const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x + b.w, y2 = b.y + b.h / 2;
      const out = Math.max(x1, x2) + 40;
      d = `M${x1},${y1} C${out},${y1} ${out},${y2} ${x2 + 6},${y2}`;
      tip = [x2, y2, 'left'];
    } else {
      const x1 = a.x + a.w / 2, y1 = a.y + a.h, x2 = b.x + b.w / 2, y2 = b.y;
      // A forward edge that skips rows would run behind the states in
      // between, as if it went through them: it goes around their left.
      const between = g.nodes.filter((n) => n !== a && n !== b && n.type !== 'Map' && n.type !== 'Parallel' &&
        n.y >= y1 && n.y + n.h <= y2 && n.x < Math.max(x1, x2) && n.x + n.w > Math.min(x1, x2));
      if (between.length > 0) {
        const ya = a.y + a.h / 2, yb = b.y + b.h / 2;
        const out = Math.max(-pad + 5, Math.min(a.x, b.x, ...between.map((n) => n.x)) - 30);
        d = `M${a.x},${ya} C${out},${ya} ${out},${yb} ${b.x - 6},${yb}`;
        tip = [b.x, yb, 'right'];
      } else {
        const my = (y1 + y2) / 2;
        d = `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2 - 6}`;
        tip = [x2, y2, 'down'];
      }
    }
    const cls = (e.taken ? ' taken' : '') + ' ' + e.kind;
    edges.append(s('path', { class: 'edge' + cls, d, 'data-from': e.from, 'data-to': e.to }));
    const [x, y, dir] = tip;
    const pts = dir === 'down' ? `${x - 5},${y - 7} ${x + 5},${y - 7} ${x},${y}`
      : dir === 'right' ? `${x - 7},${y - 5} ${x - 7},${y + 5} ${x},${y}` : `${x + 7},${y - 5} ${x + 7},${y + 5} ${x},${y}`;
    edges.append(s('polygon', { class: 'arrow' + (e.taken ? ' taken' : ''), points: pts }));
  }
  svg.append(edges, nodes);
  return svg;
}

// --- routing -----------------------------------------------------------------------------

function route() {
  if (!apiKey()) { signIn(); return; }
  const out = document.getElementById('signout');
  out.hidden = false;
  out.onclick = () => { sessionStorage.removeItem(KEY); signIn('Signed out.'); };
  const m = location.pathname.match(/^\/ui\/executions\/([^/]+)$/);
  if (m) executionPage(decodeURIComponent(m[1]));
  else listPage();
}

takeKeyFromFragment();
window.addEventListener('hashchange', () => { takeKeyFromFragment(); route(); });
route();
