// The Mercure demo page (htdocs/mercure.html) in a real Chromium against
// the hub of conf/mercure-demo.conf:
//   - two tabs of one browser (context A) and one of another (context B,
//     no cookie: an anonymous subscriber);
//   - the first tab gets a token (cgi-bin/mercure-token.cgi): the cookie is
//     HttpOnly, SameSite=Strict, for the hub's path only, and the second
//     tab of A takes it up too;
//   - an update published from one tab reaches every tab, itself included;
//   - a private update reaches the tabs holding the token, not B's;
//   - an update published from here (a JWT signed with MERCURE_KEY) reaches
//     every tab, and one signed with another key is refused;
//   - no console error, uncaught exception or failed request (but the one
//     anonymous stream each tab of A closes itself to subscribe again with
//     the token, which Chromium reports as aborted).
// Usage:
//   MERCURE_KEY=<the hub's key> node mercure.mjs URL
// Exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { createHmac, randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';

const base = process.argv[2] || 'http://localhost:8080/';
const page_url = new URL('mercure.html', base).href;
const hub = new URL('/.well-known/mercure', base).href;
const key = process.env.MERCURE_KEY;
if (!key) {
  console.error('mercure.mjs: MERCURE_KEY (the hub\'s key) is not set');
  process.exit(2);
}
const tag = randomUUID().slice(0, 8);    // this run's updates, told apart

// An HS256 JWT, as an application's server would sign it.
const b64url = (b) => Buffer.from(b).toString('base64url');
function jwt(claims, secret) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
async function publish(secret, fields) {
  const token = jwt({ mercure: { publish: ['https://example.com/demo/{room}'] } }, secret);
  const r = await fetch(hub, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
    body: new URLSearchParams(fields),
  });
  return { status: r.status, body: await r.text() };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--ignore-certificate-errors'],
});
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok' : 'not ok'} - ${what}`);
  if (!ok) failed++;
};
const problems = [];
let closing = false;
async function open(ctx, name) {
  const p = await ctx.newPage();
  p.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${name}: console error: ${m.text()}`);
  });
  p.on('pageerror', (e) => problems.push(`${name}: uncaught: ${e.message}`));
  p.aborted = 0;
  p.on('requestfailed', (r) => {
    if (closing) return;
    if (r.url().startsWith(hub + '?') && r.failure()?.errorText === 'net::ERR_ABORTED') p.aborted++;
    else problems.push(`${name}: request failed: ${r.url()} (${r.failure()?.errorText})`);
  });
  p.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${name}: ${r.status()} for ${r.url()}`);
  });
  await p.goto(page_url);
  p.name = name;
  return p;
}
// Waits for the tab's #id to match re (10 s); true when it did.
const until = (p, id, re) => p.waitForFunction(
  ([id, src]) => new RegExp(src).test(document.getElementById(id).textContent),
  [id, re.source], { timeout: 10000 }).then(() => true, () => false);
const logOf = (p) => p.textContent('#log');

try {
  const ctxA = await browser.newContext({ ignoreHTTPSErrors: true });
  const ctxB = await browser.newContext({ ignoreHTTPSErrors: true });
  const a1 = await open(ctxA, 'A tab 1');
  const a2 = await open(ctxA, 'A tab 2');
  const b1 = await open(ctxB, 'B tab 1');
  const tabs = [a1, a2, b1];
  for (const p of tabs) {
    check(await until(p, 'status', /^Connected \(anonymous\)$/), `${p.name} subscribed anonymously`);
  }

  // A token for context A, from the application.
  await a1.click('#btn-token');
  check(await until(a1, 'token', /^Token until /), 'A tab 1 got a token');
  for (const p of [a1, a2]) {
    check(await until(p, 'status', /^Connected \(with a token\)$/), `${p.name} subscribed again with the token`);
  }
  const [cookie] = (await ctxA.cookies()).filter((c) => c.name === 'mercureAuthorization');
  check(cookie && cookie.httpOnly && cookie.sameSite === 'Strict'
        && cookie.path === '/.well-known/mercure' && cookie.expires > Date.now() / 1000,
        `the token is an HttpOnly, SameSite=Strict cookie for the hub's path (${JSON.stringify(cookie && { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, path: cookie.path })})`);
  check(!(await a1.evaluate(() => document.cookie)).includes('mercureAuthorization'),
        'the page\'s script cannot read the token');
  check((await ctxB.cookies()).length === 0, 'context B has no cookie');
  check(await b1.isDisabled('#btn-publish'), 'B tab 1 (no token) cannot press Publish');

  // A public update from tab 1: every tab, the publisher included.
  await a1.fill('#room', 'lobby');
  await a1.fill('#text', `hello-${tag}`);
  await a1.click('#btn-publish');
  check(await until(a1, 'log', /Log: published urn:uuid:/), 'A tab 1 was told the update\'s id');
  for (const p of tabs) {
    check(await until(p, 'log', new RegExp(`Received: \\[lobby\\] hello-${tag}`)),
          `${p.name} received the public update from A tab 1`);
  }

  // A private update from tab 2, then a public one: the token holders get
  // both; B gets the second (so it would have had the first by then).
  await a2.fill('#room', 'kitchen');
  await a2.fill('#text', `secret-${tag}`);
  await a2.check('#private');
  await a2.click('#btn-publish');
  check(await until(a2, 'log', /Log: published urn:uuid:/), 'A tab 2 published a private update');
  await a2.uncheck('#private');
  await a2.fill('#text', `after-${tag}`);
  await a2.click('#btn-publish');
  for (const p of [a1, a2]) {
    check(await until(p, 'log', new RegExp(`\\[kitchen\\] secret-${tag} \\(private\\)`)),
          `${p.name} (token) received the private update`);
  }
  for (const p of tabs) {
    check(await until(p, 'log', new RegExp(`\\[kitchen\\] after-${tag}`)),
          `${p.name} received the public update after it`);
  }
  check(!(await logOf(b1)).includes(`secret-${tag}`), 'B tab 1 (anonymous) did not receive the private update');

  // From a server: a JWT signed here with the hub's key.
  const pub = await publish(key, { topic: 'https://example.com/demo/garden', data: `from-node-${tag}` });
  check(pub.status === 200 && /^urn:uuid:[0-9a-f-]{36}$/.test(pub.body),
        `a publish signed with MERCURE_KEY answered 200 and an id (${pub.status} ${pub.body})`);
  for (const p of tabs) {
    check(await until(p, 'log', new RegExp(`Received: from-node-${tag}`)), `${p.name} received the update published from node`);
  }
  // From PHP: Symfony's Mercure component (Debian's php-symfony-mercure),
  // as a Symfony application behind this Apache publishes.
  const php = spawnSync('php', [new URL('../t/mercure/publish.php', import.meta.url).pathname, hub,
    jwt({ mercure: { publish: ['https://example.com/demo/{room}'] } }, key)], {
    input: JSON.stringify({ topics: ['https://example.com/demo/porch'],
                            data: JSON.stringify({ room: 'porch', text: `from-symfony-${tag}` }) }),
    encoding: 'utf8' });
  check(php.status === 0 && /^urn:uuid:/.test(php.stdout),
        `Symfony's Hub::publish answered with the id (${php.status} ${php.stdout}${php.stderr})`);
  for (const p of tabs) {
    check(await until(p, 'log', new RegExp(`\\[porch\\] from-symfony-${tag}`)),
          `${p.name} received the update Symfony published`);
  }
  const bad = await publish(key + 'x', { topic: 'https://example.com/demo/garden', data: `forged-${tag}` });
  check(bad.status === 401, `a publish signed with another key is refused with 401 (${bad.status})`);

  // the favicon is asked for after the load, without waiting on it
  await a1.waitForTimeout(500);
  check(a1.aborted === 1 && a2.aborted === 1 && b1.aborted === 0,
        `only the anonymous streams that A's tabs replaced were closed (${tabs.map((p) => p.aborted)})`);
  check(problems.length === 0,
        'no console error, uncaught exception or failed request in any tab'
        + (problems.length ? `: ${problems.join('; ')}` : ''));
  closing = true;
} finally {
  await browser.close();
}
console.log(failed ? `${failed} failed` : 'all passed');
process.exit(failed ? 1 : 0);
