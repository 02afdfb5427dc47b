// Drives the longrun web console in headless Chromium for TestBrowser
// (internal/console/browser_test.go), which passes its setup in CONSOLE_TEST.
// Every check throws on failure; the exit status tells the Go test.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import path from 'node:path';

const cfg = JSON.parse(process.env.CONSOLE_TEST);
const { ids } = cfg;
const T = { timeout: 15000 };

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});

// Every request any page makes, to check that no key ever rides in a URL.
const urls = [];
const consoleErrors = [];
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on('request', (r) => urls.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('dialog', (d) => d.accept());
  return page;
}
const step = (name) => console.log('ok   ' + name);

try {
  const page = await newPage();

  // The printed URL signs in, then the key leaves the address bar.
  await page.goto(cfg.consoleURL);
  await page.waitForSelector('#rows tr[data-id]', T);
  assert.ok(!page.url().includes('#key='), 'the key stays in the address bar: ' + page.url());
  assert.equal(await page.evaluate(() => sessionStorage.getItem('longrun.apiKey')), cfg.keys[0]);
  step('the console URL signs in and strips the key from the address bar');

  // Every status, newest first.
  for (const [name, status] of [['succeeded', 'SUCCEEDED'], ['failed', 'FAILED'], ['running', 'RUNNING'], ['aborted', 'ABORTED'], ['timedOut', 'TIMED_OUT']]) {
    await page.waitForSelector(`#rows tr[data-id="${ids[name]}"] [data-status="${status}"]`, T);
  }
  const order = await page.$$eval('#rows tr[data-id]', (rows) => rows.map((r) => r.dataset.id));
  assert.ok(order.indexOf(ids.aborted) < order.indexOf(ids.succeeded), 'newest first: ' + order.join(' '));
  step('the list shows executions of every status, newest first');

  // Filtered by status.
  await page.selectOption('#status', 'FAILED');
  await page.waitForFunction((id) => {
    const rows = [...document.querySelectorAll('#rows tr[data-id]')];
    return rows.length === 1 && rows[0].dataset.id === id;
  }, ids.failed, T);
  assert.ok(page.url().endsWith('/ui/?status=FAILED'), page.url());
  await page.selectOption('#status', '');
  await page.waitForSelector(`#rows tr[data-id="${ids.succeeded}"]`, T);
  step('the status filter shows only FAILED executions');
  await page.screenshot({ path: path.join(cfg.screenshots, 'console-list.png') });

  // A succeeded execution: the path lit, the history, the output.
  await page.click(`#rows tr[data-id="${ids.succeeded}"] a`);
  await page.waitForSelector('#graph', T);
  await page.waitForSelector('#history tbody tr', T);
  const nodeStatus = (id) => page.$eval(`#graph [data-node="${id}"]`, (n) => n.dataset.status);
  assert.equal(await nodeStatus('Work'), 'visited');
  assert.equal(await nodeStatus('Finalize'), 'visited');
  assert.equal(await nodeStatus('FinalizeFailure'), '');
  assert.equal(await page.$$eval('#graph path.edge.taken', (p) => p.length), 4, 'start -> Kind -> Work -> Finalize -> end');
  assert.ok(await page.$('#graph path.edge.taken[data-from="Work"][data-to="Finalize"]'));
  const types = await page.$$eval('#history tbody tr td:nth-child(3)', (tds) => tds.map((t) => t.textContent));
  for (const want of ['ExecutionStarted', 'TaskStateEntered', 'TaskSucceeded', 'ExecutionSucceeded']) assert.ok(types.includes(want), want + ' in ' + types);
  assert.match(await page.textContent('#output'), /"bowl": "ready"/);
  step('a SUCCEEDED execution shows its graph with the path lit, its history and output');

  // Redeliver: a new attempt appears without a reload.
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.waitForSelector('#attempts tbody tr.attempt', T);
  const before = await page.$$eval('#attempts tbody tr.attempt', (r) => r.length);
  await page.click('#redeliver');
  await page.waitForFunction((n) => document.querySelectorAll('#attempts tbody tr.attempt').length > n, before, T);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page reloaded');
  step(`redeliver adds an attempt (${before} -> more) without a reload`);

  // A failed execution: the failed state marked, error and cause shown.
  await page.goto(cfg.base + '/ui/executions/' + ids.failed);
  await page.waitForSelector('#graph [data-node="Work"][data-status="failed"]', T);
  assert.equal(await nodeStatus('FinalizeFailure'), 'visited');
  assert.equal(await page.textContent('#error'), 'Noodles.Overcooked');
  assert.match(await page.textContent('#cause'), /40 minutes/);
  step('a FAILED execution marks the state that failed and shows error and cause');

  // A running one: current state, progress; the screenshot of the page.
  await page.goto(cfg.base + '/ui/executions/' + ids.running);
  await page.waitForSelector('#graph [data-node="Work"][data-status="current"]', T);
  assert.match(await page.textContent('#progress'), /42%.*boiling water/);
  await page.screenshot({ path: path.join(cfg.screenshots, 'console-execution.png'), fullPage: true });
  step('a RUNNING execution marks its current state and shows rounded progress');

  // Stop one: it turns ABORTED without a reload.
  await page.goto(cfg.base + '/ui/executions/' + ids.toStop);
  await page.waitForSelector('#stop', T);
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.click('#stop');
  await page.waitForSelector('#execution .head [data-status="ABORTED"]', T);
  await page.waitForSelector('#graph [data-node="Work"][data-status="aborted"]', T);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page reloaded');
  assert.equal(await page.$('#stop'), null, 'Stop is still offered');
  step('Stop turns the execution ABORTED without a reload');

  // Another tenant sees none of it.
  const other = await newPage();
  await other.goto(cfg.otherURL);
  await other.waitForSelector('#rows .empty', T);
  assert.equal(await other.$$eval('#rows tr[data-id]', (r) => r.length), 0);
  await other.goto(cfg.base + '/ui/executions/' + ids.succeeded);
  await other.waitForFunction(() => { const n = document.getElementById('notice'); return n && !n.hidden && /does not exist/.test(n.textContent); }, null, T);
  assert.equal(await other.$('#graph'), null);
  step("another tenant's key sees none of the first tenant's executions");

  // No key: a sign-in form; a wrong key: refused, with the form again.
  const anon = await newPage();
  await anon.goto(cfg.base + '/ui/');
  await anon.waitForSelector('form #key', T);
  await anon.fill('#key', 'lr_not-a-key');
  await anon.click('form button[type=submit]');
  await anon.waitForSelector('.signin .error', T);
  await anon.fill('#key', cfg.keys[0]);
  await anon.click('form button[type=submit]');
  await anon.waitForSelector('#rows tr[data-id]', T);
  step('without a key the page shows a sign-in form; a refused key says so');

  for (const u of urls) for (const k of cfg.keys) assert.ok(!u.includes(k), 'a request URL carries the API key: ' + u);
  assert.deepEqual(consoleErrors.filter((e) => !/status of (401|404|409)/.test(e)), [], 'errors in the browser console');
  step(`no API key in any of ${urls.length} request URLs; no script errors`);
} finally {
  await browser.close();
}
