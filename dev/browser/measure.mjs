// Figures for docs/widget.md and docs/cost.md, measured in Debian's chromium against the local
// stack (CHAT_URL, WEB_URL, DEMO_URL from its ready file):
//   node dev/browser/measure.mjs render [runs=15]     time to first render of the widget
//   node dev/browser/measure.mjs idle [seconds=150]   requests an open, idle widget makes
//
// render: from navigation start to the widget's shadow root holding its launcher (what a visitor
// first sees), in a fresh browser context each run (no HTTP cache, no localStorage); prints the
// median and the spread. idle: a conversation of one exchange, then the page left alone and
// visible; every request to the chat API counted per minute.

import { context, launch } from './run.mjs';

const [what = 'render', arg] = process.argv.slice(2);
const ctx = context();
const { browser, close } = await launch();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

try {
  if (what === 'render') {
    const runs = Number(arg || 15);
    const times = [];
    for (let i = 0; i < runs; i++) {
      const bc = await browser.createBrowserContext();
      const page = await bc.newPage();
      // The page records the moment the shadow root first holds the launcher, against the
      // navigation's own clock (performance.now() counts from navigation start).
      await page.evaluateOnNewDocument(() => {
        const seen = () => {
          const root = document.querySelector('switchboard-chat')?.shadowRoot;
          if (root?.getElementById('launcher')?.textContent && !window.__rendered) window.__rendered = performance.now();
        };
        new MutationObserver(seen).observe(document, { subtree: true, childList: true, characterData: true });
        const tick = () => (window.__rendered ? null : (seen(), requestAnimationFrame(tick)));
        requestAnimationFrame(tick);
      });
      await page.goto(`${ctx.webUrl}/demo/`, { waitUntil: 'load' });
      await page.waitForFunction(() => window.__rendered);
      times.push(await page.evaluate(() => window.__rendered));
      await bc.close();
    }
    const ms = times.map((t) => Math.round(t));
    console.log(JSON.stringify({ figure: 'time_to_first_render_ms', runs, median: median(ms), min: Math.min(...ms), max: Math.max(...ms), all: ms }));
  } else if (what === 'idle') {
    const seconds = Number(arg || 150);
    const id = `cust_idle_${Date.now().toString(36)}`;
    await fetch(`${ctx.demoUrl}/_admin/customers`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, email: `${id}@example.com` }),
    });
    const bc = await browser.createBrowserContext();
    const page = await bc.newPage();
    const requests = [];
    page.on('request', (r) => {
      if (r.url().startsWith(ctx.chatUrl) && r.method() !== 'OPTIONS') requests.push({ t: Date.now(), m: r.method(), u: r.url() });
    });
    page.on('console', (m) => m.type() === 'error' && console.error('console:', m.text()));
    await page.goto(`${ctx.webUrl}/demo/?customer=${id}`, { waitUntil: 'load' });
    await page.click('pierce/#launcher');
    await page.type('pierce/#input', 'hello');
    await page.keyboard.press('Enter');
    await page.waitForSelector('pierce/#panel:not([hidden])');
    // Polled: waitForSelector watches the document's mutations, which a shadow root's are not.
    await page.waitForFunction(() => document.querySelector('switchboard-chat').shadowRoot.querySelector('.msg[data-role=bot]'),
      { timeout: 60000, polling: 200 }).catch(async (e) => {
      const log = await page.evaluate(() => document.querySelector('switchboard-chat').shadowRoot.querySelector('#panel').innerText);
      throw new Error(`no answer to the first message; the widget shows: ${log}`, { cause: e });
    });
    const t0 = Date.now();
    requests.length = 0;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const perMinute = [];
    for (let m = 0; m * 60000 < seconds * 1000; m++) perMinute.push(requests.filter((q) => q.t - t0 >= m * 60000 && q.t - t0 < (m + 1) * 60000).length);
    const gaps = requests.map((q, i) => (i ? q.t - requests[i - 1].t : q.t - t0));
    console.log(JSON.stringify({
      figure: 'idle_requests', seconds, total: requests.length, per_minute: perMinute,
      gaps_ms: gaps, methods: [...new Set(requests.map((q) => q.m))],
    }));
    await bc.close();
  } else {
    throw new Error(`unknown measurement ${what}: render or idle`);
  }
} finally {
  await close();
}
