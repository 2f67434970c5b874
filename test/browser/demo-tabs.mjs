// Opens the demo page in N tabs of a real Chromium (Debian's, driven by
// playwright-core), presses the button in the first tab and checks that
// every tab received the broadcast and that the first tab was told
// "Broadcasted to N clients.", and that no tab saw a console error, an
// uncaught exception or a failed request (a 404 for the favicon counts).
// Usage:
//   node demo-tabs.mjs URL [TABS] [SCREENSHOT.png]
// Exits non-zero on any failure.
import { chromium } from 'playwright-core';

const url = process.argv[2] || 'http://localhost:8080/';
const tabs = Number(process.argv[3] || 2);
const shot = process.argv[4];

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
try {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const pages = [];
  const problems = [];
  for (let i = 0; i < tabs; i++) {
    const p = await ctx.newPage();
    const tab = `tab ${i + 1}`;
    p.on('console', (m) => {
      if (m.type() === 'error') problems.push(`${tab}: console error: ${m.text()}`);
    });
    p.on('pageerror', (e) => problems.push(`${tab}: uncaught: ${e.message}`));
    p.on('requestfailed', (r) => {
      // an EventSource the test itself ends by closing the tab is not one
      if (!pages.closing) problems.push(`${tab}: request failed: ${r.url()} (${r.failure()?.errorText})`);
    });
    p.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${tab}: ${r.status()} for ${r.url()}`);
    });
    await p.goto(url);
    pages.push(p);
  }
  for (const [i, p] of pages.entries()) {
    await p.waitForFunction(() =>
      document.getElementById('status').textContent ===
        'Connected (Listening on my_channel)', null, { timeout: 10000 })
      .catch(() => {});
    check(await p.textContent('#status') === 'Connected (Listening on my_channel)',
          `tab ${i + 1} connected`);
  }
  await pages[0].click('#btn-ping');
  await pages[0].waitForFunction(() =>
    /Log: Broadcasted to \d+ clients\./.test(document.getElementById('log').textContent),
    null, { timeout: 10000 }).catch(() => {});
  const log0 = await pages[0].textContent('#log');
  const m = log0.match(/Log: Broadcasted to (\d+) clients\./);
  check(m && Number(m[1]) === tabs, `first tab logs "Broadcasted to ${tabs} clients." (${m ? m[0] : log0})`);
  for (const [i, p] of pages.entries()) {
    await p.waitForFunction(() =>
      /Received: Server time: \d\d:\d\d:\d\d/.test(document.getElementById('log').textContent),
      null, { timeout: 10000 }).catch(() => {});
    check(/Received: Server time: \d\d:\d\d:\d\d/.test(await p.textContent('#log')),
          `tab ${i + 1} received the broadcast`);
  }
  if (shot) await pages[0].screenshot({ path: shot });
  // the favicon is asked for after the load, without waiting on it
  await pages[0].waitForTimeout(500);
  check(problems.length === 0,
        `no console error, uncaught exception or failed request in any tab`
        + (problems.length ? `: ${problems.join('; ')}` : ''));
  pages.closing = true;
} finally {
  await browser.close();
}
console.log(failed ? `${failed} failed` : 'all passed');
process.exit(failed ? 1 : 0);
