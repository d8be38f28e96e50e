// The chat widget in a real browser against the local stack (issue 22, tests 1, 2, 4 and 5 for the
// widget): the demo shop embeds it as a company would; every customer and order is this run's own,
// so the tests neither depend on each other nor on what else ran against the stack.

import assert from 'node:assert/strict';

import { demo, sleep, unique } from './helpers.mjs';

// A customer like Alice: one order on time and one late, so "where is my order?" asks which.
async function customerWithOrders(ctx, prefix) {
  const id = unique(prefix);
  await demo(ctx, '/_admin/customers', { id, email: `${id}@example.com`, name: 'Browser Tester' });
  const onTime = `W${id.slice(-8).toUpperCase()}1`, late = `W${id.slice(-8).toUpperCase()}2`;
  await demo(ctx, '/_admin/orders', { id: onTime, customer_id: id, total_cents: 2999, placed_days_ago: 3, promised_in_days: 2 });
  await demo(ctx, '/_admin/orders', { id: late, customer_id: id, total_cents: 4599, placed_days_ago: 12, promised_in_days: -4, carrier: 'FedEx' });
  return { id, onTime, late };
}

// What the widget shows: every message of its log, from inside its open shadow root.
function messages(page) {
  return page.evaluate(() => [...document.querySelector('switchboard-chat').shadowRoot.querySelectorAll('#log .msg')].map((m) => ({
    seq: m.dataset.seq ? Number(m.dataset.seq) : null,
    role: m.dataset.role,
    pending: m.hasAttribute('data-pending'),
    text: m.querySelector('.text').textContent,
    html: m.querySelector('.text').innerHTML,
    links: [...m.querySelectorAll('.text a')].map((a) => ({ href: a.href, text: a.textContent, target: a.target, rel: a.rel })),
    buttons: [...m.querySelectorAll('.quick-replies button')].map((b) => ({ label: b.textContent, value: b.dataset.value, disabled: b.disabled })),
  })));
}

// Waits until `pred(messages)` holds; the message on timeout shows what the widget had.
async function until(page, what, pred, timeout = 30000) {
  const end = Date.now() + timeout;
  let last = [];
  while (Date.now() < end) {
    last = await messages(page);
    const hit = pred(last);
    if (hit) return hit;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}; the widget shows ${JSON.stringify(last.map(({ html, ...m }) => m), null, 1)}`);
}

// Waits for `selector` in the widget's shadow root, polling: waitForSelector re-checks on the
// document's mutations, and a shadow root's are not among them.
function inShadow(page, selector) {
  return page.waitForFunction((sel) => document.querySelector('switchboard-chat')?.shadowRoot?.querySelector(sel),
    { polling: 100, timeout: 10000 }, selector);
}

function shadowFocus(page) {
  return page.evaluate(() => {
    const host = document.querySelector('switchboard-chat');
    return document.activeElement === host ? host.shadowRoot.activeElement?.id ?? null : null;
  });
}

async function openShop(ctx, page, customer) {
  await page.goto(`${ctx.webUrl}/demo/?customer=${encodeURIComponent(customer)}`, { waitUntil: 'load' });
  await inShadow(page, '#launcher');
}

async function openWidget(page) {
  await page.click('pierce/#launcher');
  await inShadow(page, '#panel:not([hidden])');
  // Focus moves into the panel, to the message box.
  assert.equal(await shadowFocus(page), 'input', 'opening the panel focuses the message box');
}

async function say(page, text) {
  await page.focus('pierce/#input');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter'); // Enter sends
}

// A quick-reply button whose label or value names `want` (an order id, "yes"), still answerable.
function button(want) {
  const re = want instanceof RegExp ? want : new RegExp(`(^|\\W)${want}(\\W|$)`, 'i');
  return (ms) => {
    const m = ms.at(-1);
    return m && m.role === 'bot' && m.buttons.find((b) => !b.disabled && (re.test(b.value) || re.test(b.label)));
  };
}

async function press(page, b) {
  const handles = await page.$$('pierce/.quick-replies button:not([disabled])');
  for (const h of handles) {
    if (await h.evaluate((e, v) => e.dataset.value === v, b.value)) return h.click();
  }
  throw new Error(`no enabled quick reply ${b.value}`);
}

// The conversation as the API stores it, read with the customer's own token.
async function stored(ctx, customer, conversation) {
  const token = await ctx.token(customer);
  const { status, body } = await ctx.api('GET', `/v1/conversations/${encodeURIComponent(conversation)}/messages?after=0&limit=100`, { token });
  assert.equal(status, 200, JSON.stringify(body));
  return body.messages;
}

function conversationId(page, ctx) {
  return page.evaluate((base) => localStorage.getItem(`switchboard-chat:${base}:conversation`), ctx.chatUrl);
}

export const tests = {
  // Test 1: where is my order → pick the late one with a button → "yes" to the refund → the
  // refund job's confirmation appears without a reload. Also: the first token is refused and the
  // widget asks the login for a fresh one; links; older buttons disabled; axe; screenshot.
  async 'order, refund by buttons, asynchronous confirmation'(ctx) {
    const { id, onTime, late } = await customerWithOrders(ctx, 'cust_wq');
    const page = await ctx.newPage('widget-1');
    // The shop's first token is a stale one: the API answers 401 and the widget must call the
    // provider with {refresh: true} and retry once.
    let tokenCalls = 0;
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      if (req.isInterceptResolutionHandled()) return;
      if (req.url().includes('/dev/token') && tokenCalls++ === 0) {
        return req.respond({ status: 200, contentType: 'application/json', body: JSON.stringify({ token: 'eyJhbGciOiJIUzI1NiJ9.e30.stale' }) });
      }
      req.continue();
    });
    await openShop(ctx, page, id);
    await page.evaluate(() => (window.__sameDocument = true)); // gone if the page reloads
    await openWidget(page);

    await say(page, 'where is my order?');
    const pick = await until(page, `a quick reply for #${late}`, button(late));
    assert.ok(tokenCalls >= 2, `the provider was asked for a fresh token after the 401 (${tokenCalls} calls)`);
    let ms = await messages(page);
    assert.deepEqual(ms[0], { ...ms[0], role: 'customer', text: 'where is my order?', pending: false });
    assert.ok(ms.at(-1).buttons.some((b) => b.label.includes(onTime) || b.value.includes(onTime)), 'both orders are offered');
    await press(page, pick);

    // The customer is shown to have said the button's label; the bot answers about that order
    // with its tracking link and a yes/no refund offer.
    const yes = await until(page, 'the refund offer with a "yes" button', button(/^(yes|sí|oui|ja)$/i));
    ms = await messages(page);
    const chose = ms.findLast((m) => m.role === 'customer');
    assert.equal(chose.text, pick.label);
    const offer = ms.at(-1);
    assert.match(offer.text, new RegExp(`#${late}`));
    const track = `https://track.example.com/fedex/1Z${late}`;
    assert.ok(ms.some((m) => m.links.some((a) => a.href === track && a.text === track && a.target === '_blank' && a.rel === 'noopener noreferrer')),
      `the tracking URL is a link opening in a new tab: ${JSON.stringify(ms.map((m) => m.links))}`);
    // The "which order?" buttons stay in the history, no longer answerable.
    const older = ms.find((m) => m.buttons.some((b) => b.value === pick.value));
    assert.ok(older.buttons.every((b) => b.disabled), 'older quick replies are disabled');

    await press(page, yes);
    await until(page, 'the refund requested', (m) => m.some((x) => x.role === 'bot' && /requested a refund/.test(x.text)));
    // Written later by the refund job: the widget's polling shows it.
    await until(page, 'the asynchronous refund confirmation', (m) => m.some((x) => x.role === 'bot' && /has been issued/.test(x.text) && x.text.includes(`#${late}`)), 90000);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload happened');
    ms = await messages(page);
    const seqs = ms.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'messages in seq order');
    assert.equal(new Set(seqs).size, seqs.length, 'each message once');
    assert.ok(ms.every((m) => !m.pending));

    // What the widget shows is what the API stored.
    const conv = await conversationId(page, ctx);
    const api = (await stored(ctx, id, conv)).filter((m) => !m.internal);
    assert.deepEqual(ms.map((m) => [m.seq, m.role, m.text]), api.map((m) => [m.seq, m.role, m.text]));

    await ctx.axe(page);
    await ctx.screenshot(page, 'widget-conversation');
  },

  // Test 2: the same conversation after a reload, buttons included (from the cache and re-read
  // from the API); a message sent while the API is unreachable is kept (across a reload too) and
  // delivered exactly once, even when a first attempt reached the API but its answer was lost.
  async 'reload keeps the conversation; offline messages delivered once'(ctx) {
    const { id, late } = await customerWithOrders(ctx, 'cust_wr');
    const page = await ctx.newPage('widget-2');
    await openShop(ctx, page, id);
    await openWidget(page);
    await say(page, 'where is my order?');
    await until(page, 'the "which order?" buttons', button(late));
    const before = await messages(page);
    const conv = await conversationId(page, ctx);
    assert.ok(conv, 'the conversation id is kept in localStorage');

    const same = (ms) => ms.length === before.length && ms.every((m, i) => m.seq === before[i].seq && m.text === before[i].text
      && JSON.stringify(m.buttons) === JSON.stringify(before[i].buttons)) && ms;
    await page.reload({ waitUntil: 'load' });
    await until(page, 'the same conversation after a reload', same);
    assert.equal(await conversationId(page, ctx), conv);
    // Without the cache: the history (its buttons too) is re-read from the API.
    await page.evaluate((base) => localStorage.removeItem(`switchboard-chat:${base}:history`), ctx.chatUrl);
    await page.reload({ waitUntil: 'load' });
    await until(page, 'the conversation re-read from the API', same);

    // Shift+Enter is a new line, not a send.
    await page.click('pierce/#launcher');
    await page.focus('pierce/#input');
    await page.keyboard.type('line one');
    await page.keyboard.down('Shift');
    await page.keyboard.press('Enter');
    await page.keyboard.up('Shift');
    await page.keyboard.type('line two');
    assert.equal(await page.$eval('pierce/#input', (e) => e.value), 'line one\nline two');
    assert.equal((await messages(page)).length, before.length, 'Shift+Enter sent nothing');
    await page.$eval('pierce/#input', (e) => (e.value = ''));

    // The API goes away: the first attempt reaches it but its answer is lost (the worst case for
    // duplicates), every later one fails to connect.
    let mode = 'down', delivered = 0;
    await page.setRequestInterception(true);
    page.on('request', async (req) => {
      if (req.isInterceptResolutionHandled()) return;
      // CORS preflights go through: the POST behind one is what must reach the API once.
      if (!req.url().startsWith(ctx.chatUrl) || mode === 'up' || req.method() === 'OPTIONS') return req.continue();
      if (req.method() === 'POST' && delivered === 0) {
        delivered++;
        await fetch(req.url(), { method: 'POST', headers: req.headers(), body: req.postData() });
        return req.abort('connectionreset');
      }
      return req.abort('internetdisconnected');
    });
    const text = '<b>Still there?</b> one more question';
    await say(page, text);
    await until(page, 'the unsent message shown as pending', (ms) => ms.at(-1).pending && ms.at(-1).text === text);
    await page.waitForFunction(() => document.querySelector('switchboard-chat').shadowRoot.querySelector('#status').textContent.length > 0);
    assert.equal(delivered, 1, 'the first attempt reached the API');
    // Kept across a reload while still down.
    await page.reload({ waitUntil: 'load' });
    await until(page, 'the unsent message still pending after a reload', (ms) => ms.at(-1)?.pending && ms.at(-1).text === text);
    await sleep(2000);

    mode = 'up';
    await until(page, 'the message delivered', (ms) => ms.some((m) => m.role === 'customer' && m.text === text && !m.pending && m.seq), 45000);
    const ms = await messages(page);
    assert.ok(ms.every((m) => !m.html.includes('<b>')), 'message text is shown as text, never parsed as HTML');
    await sleep(3000); // any retry still under way would land now
    const api = await stored(ctx, id, conv);
    assert.equal(api.filter((m) => m.role === 'customer' && m.text === text).length, 1, 'stored exactly once');
    assert.equal((await messages(page)).filter((m) => m.text === text).length, 1, 'shown exactly once');
  },

  // 429: the widget waits the Retry-After the API asked for before sending again.
  async 'rate limited: Retry-After honoured'(ctx) {
    const id = unique('cust_wt');
    await demo(ctx, '/_admin/customers', { id, email: `${id}@example.com` });
    const page = await ctx.newPage('widget-429');
    const posts = [];
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      if (req.isInterceptResolutionHandled()) return;
      if (req.url().startsWith(ctx.chatUrl) && req.method() === 'POST') {
        posts.push(Date.now());
        if (posts.length === 1) {
          return req.respond({
            status: 429, contentType: 'application/problem+json',
            headers: { 'retry-after': '3', 'access-control-allow-origin': ctx.webUrl, 'access-control-expose-headers': 'retry-after' },
            body: JSON.stringify({ type: 'about:blank', title: 'Too Many Requests', status: 429 }),
          });
        }
      }
      req.continue();
    });
    await openShop(ctx, page, id);
    await openWidget(page);
    await say(page, 'hello');
    await until(page, 'the message delivered after the wait', (ms) => ms.some((m) => m.role === 'customer' && m.seq), 20000);
    assert.ok(posts.length >= 2);
    assert.ok(posts[1] - posts[0] >= 2900, `sent again after ${posts[1] - posts[0]} ms, not the 3 s asked`);
  },

  // Test 4 and 5 for the widget on its own: axe with the panel closed and open in every state it
  // shows (typing, quick replies), keyboard use (Escape closes and returns focus to the launcher),
  // chrome strings in the page's language; screenshots.
  async 'accessibility, keyboard, languages, screenshots'(ctx) {
    const { id, late } = await customerWithOrders(ctx, 'cust_wa');
    const page = await ctx.newPage('widget-a11y');
    await openShop(ctx, page, id);
    await ctx.axe(page);
    await ctx.screenshot(page, 'widget-closed');

    // Keyboard only: Tab to the launcher, Enter opens, Escape closes and gives focus back.
    await page.focus('pierce/#launcher');
    await page.keyboard.press('Enter');
    await inShadow(page, '#panel:not([hidden])');
    assert.equal(await shadowFocus(page), 'input');
    await page.keyboard.press('Escape');
    await inShadow(page, '#panel[hidden]');
    assert.equal(await shadowFocus(page), 'launcher', 'Escape returns focus to the launcher');
    await page.keyboard.press('Enter');
    await inShadow(page, '#panel:not([hidden])');
    const label = await page.$eval('pierce/#input', (e) => e.labels[0]?.textContent);
    assert.ok(label, 'the message box has a label');
    const log = await page.$eval('pierce/#log', (e) => [e.getAttribute('role'), e.getAttribute('aria-live')]);
    assert.deepEqual(log, ['log', 'polite']);

    await say(page, 'where is my order?');
    await until(page, 'quick replies', button(late));
    await ctx.axe(page);
    await ctx.screenshot(page, 'widget-open');

    // The chrome in Spanish when the page says so (the bot's words come from the API).
    await page.evaluate(() => document.querySelector('switchboard-chat').setAttribute('lang', 'es'));
    assert.equal(await page.$eval('pierce/#send', (e) => e.textContent), 'Enviar');
    assert.equal(await page.$eval('pierce/#input', (e) => e.placeholder), 'Escribe tu mensaje…');
    // A site's own wording wins.
    await page.evaluate(() => (document.querySelector('switchboard-chat').strings = { send: 'Go' }));
    assert.equal(await page.$eval('pierce/#send', (e) => e.textContent), 'Go');

    // Reduced motion: no animation runs.
    await page.emulateMediaFeatures([{ name: 'prefers-reduced-motion', value: 'reduce' }]);
    const anim = await page.$eval('pierce/#panel', (e) => getComputedStyle(e).animationName);
    assert.equal(anim, 'none');
  },
};

// The handoff state the API reports is shown in the status line (a person is on the way).
tests['handoff state in the status line'] = async (ctx) => {
  const id = unique('cust_wh');
  await demo(ctx, '/_admin/customers', { id, email: `${id}@example.com` });
  const page = await ctx.newPage('widget-handoff');
  await openShop(ctx, page, id);
  await openWidget(page);
  await say(page, 'can I talk to a person please?');
  await until(page, 'the bot\'s answer', (ms) => ms.some((m) => m.role === 'bot'));
  const waiting = 'Waiting for a person to join…';
  await page.waitForFunction((want) => document.querySelector('switchboard-chat').shadowRoot.querySelector('#status').textContent === want,
    { polling: 200, timeout: 20000 }, waiting);
  assert.equal(await page.$eval('pierce/#status', (e) => e.getAttribute('role')), 'status');
};

// The runner's single-entry form: every test above in order.
export async function run(ctx) {
  for (const fn of Object.values(tests)) await fn(ctx);
}
