// A page's EventSource sees that the history it resumed from was lost
// (SSEHistoryLostEvent On, set on the demo's /demo/stream), in a real
// Chromium (Debian's, driven by playwright-core), against a running
// `make run` server.  A browser cannot choose the Last-Event-ID of its
// first connection: it sends the id of the last event it received when it
// reconnects by itself.  So the demo page (htdocs/index.html) connects and
// receives a broadcast "ping" (id P); its stream is closed by the server
// (DELETE on the publish API); while the browser waits to reconnect (its
// new request is held back here until then), more events than SSEHistory
// keeps (100 by default) are published on the channel, so P leaves the
// history; the browser reconnects with Last-Event-ID P and the page's
// addEventListener('sse-history-lost', ...) must fire once, with P as its
// data and its lastEventId still P (the event has no id), and the demo
// must log "History lost (resumed after id P): reloading state".  Then a
// reconnect the history covers must fire no such event, and a second
// EventSource opened with the lastEventId query argument (the polyfills'
// way, docs/resuming.md) after P must get it on its first connection.
// The page must log no console error and no request of it may fail.
// Usage:
//   node history-lost.mjs URL        (URL: http://localhost:8080/)
// Exits non-zero on any failure.
import { chromium } from 'playwright-core';

const base = new URL(process.argv[2] || 'http://localhost:8080/');
const CHANNEL = 'my_channel';           // conf/sse-demo.conf's /demo/stream
// more events than SSEHistory keeps by default on a channel (100)
const HISTORY = Number(process.env.SSE_HISTORY || 100);

let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok' : 'not ok'} - ${what}`);
  if (!ok) failed++;
};

async function post(path, init = {}) {
  const res = await fetch(new URL(path, base), { method: 'POST', ...init });
  if (!res.ok) throw new Error(`${init.method || 'POST'} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}
const publish = (event, data) => post(`publish?channel=${CHANNEL}`, {
  headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ event, data }),
});
const cut = () => post(`publish?channel=${CHANNEL}`, { method: 'DELETE' });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await (await browser.newContext()).newPage();
  const problems = [];
  page.on('pageerror', e => problems.push(`uncaught: ${e.message}`));
  page.on('console', m => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('requestfailed', r => {
    // the stream the test closes itself (es.close()) ends as aborted
    if (r.url().includes('?lastEventId=') && r.failure()?.errorText === 'net::ERR_ABORTED') return;
    if (!page.closing) problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`);
  });
  page.on('response', r => {
    if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`);
  });
  await page.goto(base.href);
  await page.waitForFunction(() => document.getElementById('status').textContent ===
    'Connected (Listening on my_channel)', null, { timeout: 10000 }).catch(() => {});
  check(await page.textContent('#status') === 'Connected (Listening on my_channel)',
        'the demo page connected');
  // what the page's EventSource (the demo's evtSource) sees, from now on
  await page.evaluate(() => {
    const t = window.seen = { pings: [], lost: [], opens: 0, errors: 0 };
    evtSource.addEventListener('ping', e => t.pings.push(e.lastEventId));
    evtSource.addEventListener('sse-history-lost', e =>
      t.lost.push({ data: e.data, lastEventId: e.lastEventId }));
    evtSource.addEventListener('open', () => t.opens++);
    evtSource.addEventListener('error', () => t.errors++);
  });
  const seen = () => page.evaluate(() => window.seen);

  // P: the last id the page receives before its stream is cut
  const ping = await post('demo/broadcast');
  await page.waitForFunction(id => window.seen.pings.includes(id), ping.id,
                             { timeout: 5000 }).catch(() => {});
  check((await seen()).pings.at(-1) === ping.id, `the page received the broadcast, id ${ping.id}`);

  // the browser's next request for the stream waits here until the
  // history has moved on
  let release;
  const gate = new Promise(ok => { release = ok; });
  let held = 0;
  await page.route(u => u.pathname === '/demo/stream', async route => {
    held++;
    await gate;
    await route.continue();
  });
  const closed = await cut();
  check(closed.closed >= 1, `DELETE closed the page's stream (${JSON.stringify(closed)})`);
  await page.waitForFunction(() => window.seen.errors >= 1, null, { timeout: 5000 }).catch(() => {});
  check((await seen()).errors >= 1, 'the page\'s EventSource noticed and will reconnect');
  for (let i = 0; i <= HISTORY; i++) await publish('filler', `filler ${i}`);
  release();
  await page.waitForFunction(() => window.seen.lost.length >= 1, null, { timeout: 10000 })
    .catch(() => {});
  let s = await seen();
  check(held >= 1 && s.opens >= 1, `the browser reconnected by itself (${held} request held, ` +
        `${s.opens} open)`);
  check(s.lost.length === 1 && s.lost[0].data === ping.id,
        `sse-history-lost fired once with the id the browser resumed after, ${ping.id} ` +
        `(${JSON.stringify(s.lost)})`);
  check(s.lost.length === 1 && s.lost[0].lastEventId === ping.id,
        `the event has no id: the page's last id stays ${ping.id} (${s.lost[0]?.lastEventId})`);
  const line = `History lost (resumed after id ${ping.id}): reloading state`;
  await page.waitForFunction(l => document.getElementById('log').textContent.includes(l), line,
                             { timeout: 3000 }).catch(() => {});
  check((await page.textContent('#log')).includes(line), `the demo logs "${line}"`);
  await page.unrouteAll();

  // a reconnect the history covers: no such event
  const opens = s.opens;
  const ping2 = await post('demo/broadcast');
  await page.waitForFunction(id => window.seen.pings.includes(id), ping2.id,
                             { timeout: 5000 }).catch(() => {});
  await cut();
  const ping3 = await post('demo/broadcast');      // missed, then replayed
  await page.waitForFunction(([id, n]) => window.seen.pings.includes(id) &&
                             window.seen.opens > n, [ping3.id, opens], { timeout: 10000 })
    .catch(() => {});
  s = await seen();
  check(s.opens > opens && s.pings.includes(ping3.id) && s.lost.length === 1,
        `a reconnect after ${ping2.id} gets the missed ${ping3.id} and no sse-history-lost ` +
        `(${s.lost.length} so far)`);

  // the polyfills' way: the id as the lastEventId query argument
  const viaQuery = await page.evaluate(id => new Promise(ok => {
    const es = new EventSource(`/demo/stream?lastEventId=${encodeURIComponent(id)}`);
    const timer = setTimeout(() => { es.close(); ok(null); }, 5000);
    es.addEventListener('sse-history-lost', e => {
      clearTimeout(timer);
      es.close();
      ok(e.data);
    });
  }), ping.id);
  check(viaQuery === ping.id, `a new EventSource with ?lastEventId=${ping.id} gets ` +
        `sse-history-lost with that id on its first connection (${viaQuery})`);

  await page.waitForTimeout(300);
  check(problems.length === 0, 'no console error, uncaught exception or failed request'
        + (problems.length ? `: ${problems.join('; ')}` : ''));
  page.closing = true;
} finally {
  await browser.close();
}
console.log(failed ? `${failed} failed` : 'all passed');
process.exit(failed ? 1 : 0);
