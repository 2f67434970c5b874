// Streams read by the pages of other origins (SSECORSOrigins,
// test/browser/cors.conf.in), in a real Chromium.  The streams are on
// http://localhost:PORT; the pages on http://localhost:CORS_PORT (listed)
// and http://127.0.0.1:CORS_PORT (not listed), the same server's second
// port.  Checks:
//   - the listed origin's EventSource withCredentials sends the browser's
//     cookie for localhost (the stream refuses a request without it), is
//     answered with its origin and Allow-Credentials, and receives an event
//     published meanwhile; without withCredentials no cookie goes (the
//     server's log says 403);
//   - the page of an origin not listed gets an error and no event, though
//     the server served it the stream (its access log says 200): CORS is
//     not access control, the browser is;
//   - SSECORSOrigins *: any page reads without credentials, and its
//     EventSource withCredentials fails (never * with credentials);
//   - no console error, failed request or error status but those.
// Usage:
//   node cors.mjs STREAM_URL CORS_PORT ACCESS_LOG
// Exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

const base = process.argv[2] || 'http://localhost:8080/';
const corsPort = process.argv[3];
const accessLog = process.argv[4];
if (!corsPort || !accessLog) {
  console.error('usage: node cors.mjs STREAM_URL CORS_PORT ACCESS_LOG');
  process.exit(2);
}
const listed = `http://localhost:${corsPort}`;
const other = `http://127.0.0.1:${corsPort}`;
const chan = `cors-${randomUUID().slice(0, 8)}`;
const stream = (path, from) => new URL(`${path}?channel=${chan}&from=${from}`, base).href;
// the streams that must fail, by their from= marker
const mustFail = ['nocred', 'unlisted', 'anycred'];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update',
         '--disable-sync'],
});
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok' : 'not ok'} - ${what}`);
  if (!ok) failed++;
};
const problems = [];
const expected = [];            // console errors of the streams that must fail
const headers = {};             // from= marker -> the stream's response headers
let closing = false;
const marker = (url) => (url.match(/[?&]from=([a-z]+)/) || [])[1];

async function page(ctx, origin, name) {
  const p = await ctx.newPage();
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = `${m.text()} ${m.location()?.url || ''}`;
    if (mustFail.includes(marker(text))) expected.push(text);
    else problems.push(`${name}: console error: ${text}`);
  });
  p.on('pageerror', (e) => problems.push(`${name}: uncaught: ${e.message}`));
  p.on('requestfailed', (r) => {
    if (!closing && !mustFail.includes(marker(r.url()))) {
      problems.push(`${name}: request failed: ${r.url()} (${r.failure()?.errorText})`);
    }
  });
  p.on('response', async (r) => {
    const m = marker(r.url());
    if (m) headers[m] = { status: r.status(), ...(await r.allHeaders().catch(() => ({}))) };
    if (r.status() >= 400) problems.push(`${name}: ${r.status()} for ${r.url()}`);
  });
  await p.goto(`${origin}/cors-test/page.html`);
  return p;
}

// Open an EventSource in the page as window.streams[name]: 'open', or
// 'closed' / 'error' (its readyState then) when it failed first, or
// 'timeout'.
const open = (p, name, url, withCredentials) => p.evaluate(([name, url, cred]) =>
  new Promise((resolve) => {
    const es = new EventSource(url, { withCredentials: cred });
    const s = (window.streams ||= {})[name] = { es, got: [], opened: false };
    es.onmessage = (e) => s.got.push(e.data);
    es.onopen = () => { s.opened = true; resolve('open'); };
    es.onerror = () => { if (!s.opened) resolve(es.readyState === 2 ? 'closed' : 'error'); };
    setTimeout(() => resolve('timeout'), 10000);
  }), [name, url, withCredentials]);
// a stream's response headers, once the response event has them (2 s)
async function headersOf(m) {
  for (let i = 0; i < 20 && !headers[m]; i++) await new Promise((r) => setTimeout(r, 100));
  return headers[m] || {};
}
// the status the server's access log gives this run's stream from=m
function logged(m) {
  const line = readFileSync(accessLog, 'utf8').split('\n')
    .find((l) => l.includes(`channel=${chan}&from=${m} HTTP/1.1"`));
  return line && Number(line.split('HTTP/1.1" ')[1].split(' ')[0]);
}
const got = (p, name) => p.evaluate((name) => window.streams[name].got, name);
const until = (p, name, n) => p.waitForFunction(([name, n]) => window.streams[name].got.length >= n,
  [name, n], { timeout: 10000 }).then(() => true, () => false);

try {
  const ctx = await browser.newContext();
  // the cookie the streams' host set at a login, say (for localhost:
  // every port; SameSite=Lax: sent from http://localhost:CORS_PORT, a
  // page of the same site)
  await ctx.addCookies([{ name: 'sse_cors', value: 'yes', domain: 'localhost', path: '/',
                          sameSite: 'Lax' }]);
  const a = await page(ctx, listed, `page of ${listed}`);
  const b = await page(ctx, other, `page of ${other}`);

  const s1 = await open(a, 'cred', stream('/cors-test/stream', 'cred'), true);
  check(s1 === 'open', `${listed}: EventSource withCredentials on its listed origin opens (${s1})`);
  const h = await headersOf('cred');
  check(h['access-control-allow-origin'] === listed && h['access-control-allow-credentials'] === 'true',
        `... answered Access-Control-Allow-Origin: ${listed}, Allow-Credentials: true `
        + `(${h['access-control-allow-origin']}, ${h['access-control-allow-credentials']})`);
  // Require's 403 comes before the stream handler, without CORS headers:
  // the page sees only an error; the server's log the status
  const s2 = await open(a, 'nocred', stream('/cors-test/stream', 'nocred'), false);
  check(s2 !== 'open' && logged('nocred') === 403,
        `... without withCredentials no cookie goes: ${logged('nocred')} (${s2})`);

  const s3 = await open(b, 'unlisted', stream('/cors-test/open', 'unlisted'), true);
  check(s3 === 'closed' || s3 === 'error', `${other} (not listed): EventSource fails (${s3})`);
  const s4 = await open(b, 'any', stream('/cors-test/any', 'any'), false);
  const ha = await headersOf('any');
  check(s4 === 'open' && ha['access-control-allow-origin'] === '*'
        && !ha['access-control-allow-credentials'],
        `${other} on SSECORSOrigins *: EventSource without credentials opens, `
        + `Access-Control-Allow-Origin: * (${s4}, ${ha['access-control-allow-origin']})`);
  const s5 = await open(b, 'anycred', stream('/cors-test/any', 'anycred'), true);
  check(s5 === 'closed' || s5 === 'error', `... withCredentials fails: never * with credentials (${s5})`);

  // an event published now
  const r = await fetch(new URL(`/publish?channel=${chan}`, base), {
    method: 'POST', body: new URLSearchParams({ data: `hello-${chan}` }) });
  const pub = await r.json().catch(() => ({}));
  check(r.status === 200, `published (${r.status} ${JSON.stringify(pub)})`);
  check(await until(a, 'cred', 1), `${listed}: the page received the event`);
  check(JSON.stringify(await got(a, 'cred')) === JSON.stringify([`hello-${chan}`]),
        `... just it (${JSON.stringify(await got(a, 'cred'))})`);
  check(await until(b, 'any', 1), `${other} on *: the page received the event`);
  await a.waitForTimeout(1000);
  for (const [p, name] of [[a, 'nocred'], [b, 'unlisted'], [b, 'anycred']]) {
    check((await got(p, name)).length === 0, `${name}: no event reached the page`);
  }

  // the server served the unlisted origin all the same (CORS is not access
  // control): 200 in its access log
  check(logged('unlisted') === 200, `the server answered the unlisted origin ${logged('unlisted')} (the browser blocked it)`);
  check(logged('anycred') === 200, `... and the * stream with credentials ${logged('anycred')} too`);
  check(mustFail.every((m) => expected.some((t) => marker(t) === m && /CORS policy/.test(t))),
        `Chromium says why: blocked by CORS policy (${expected.filter((t) => /CORS/.test(t)).length} messages)`);
  check(problems.length === 0,
        'no other console error, uncaught exception, failed request or error status'
        + (problems.length ? `: ${problems.join('; ')}` : ''));
  closing = true;
  for (const p of [a, b]) await p.evaluate(() => Object.values(window.streams).forEach((s) => s.es.close()));
} finally {
  await browser.close();
}
console.log(failed ? `${failed} failed` : 'all passed');
process.exit(failed ? 1 : 0);
