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

// What a status line shows, read from the widget's shadow root.
function status(page) {
  return page.$eval('pierce/#status', (e) => e.textContent);
}

// The chat API's requests (not preflights) the page makes, with their bearer tokens.
function isApi(ctx, req) {
  return req.url().startsWith(ctx.chatUrl) && req.method() !== 'OPTIONS';
}

const bearer = (req) => (req.headers().authorization || '').replace(/^Bearer /, '');

function b64url(obj) {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

// Tokens: one already expired is replaced before it is used (in AWS its 401 may come without CORS
// headers, unreadable); and when the API's 401 really is unreadable (a network error to fetch),
// the widget asks the provider for a fresh token before its retry instead of retrying forever.
tests['expiring token refreshed ahead; a 401 without CORS headers recovered'] = async (ctx) => {
  const id = unique('cust_wx');
  await demo(ctx, '/_admin/customers', { id, email: `${id}@example.com` });
  const page = await ctx.newPage('widget-expiry');
  const stale = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: id, exp: Math.floor(Date.now() / 1000) - 10 })}.sig`;
  let tokenCalls = 0;
  const refused = new Set([stale]); // tokens the API "no longer accepts"
  const sent = [];
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (req.isInterceptResolutionHandled()) return;
    if (req.url().includes('/dev/token') && tokenCalls++ === 0) {
      return req.respond({ status: 200, contentType: 'application/json', body: JSON.stringify({ token: stale }) });
    }
    if (isApi(ctx, req)) {
      sent.push(bearer(req));
      // API Gateway's JWT authorizer: a 401 with no CORS headers, which fetch sees as a TypeError.
      if (refused.has(bearer(req))) return req.respond({ status: 401, body: '' });
    }
    req.continue();
  });
  await openShop(ctx, page, id);
  await openWidget(page);
  await say(page, 'hello there');
  await until(page, 'the first message delivered', (ms) => ms.some((m) => m.role === 'customer' && m.seq && !m.pending));
  assert.ok(!sent.includes(stale), 'the expired token was replaced before any request used it');
  assert.ok(tokenCalls >= 2, `the provider was asked again (${tokenCalls} calls)`);

  // Now every token the widget holds is refused without CORS headers.
  for (const t of sent) refused.add(t);
  const calls = tokenCalls;
  await sleep(1100); // a new token (a new iat) from the dev login
  await say(page, 'and another thing');
  await until(page, 'the second message delivered after a fresh token', (ms) => ms.some((m) => m.role === 'customer' && m.text === 'and another thing' && m.seq && !m.pending), 30000);
  assert.ok(tokenCalls > calls, 'the provider was asked for a fresh token after the unreadable 401');
  assert.ok(!/Retrying/.test(await status(page)), 'no longer retrying');
};

// A message sent while the widget is still reading its stored state (the login is slow) goes to
// the stored conversation, after its messages, not into a new one.
tests['message sent before loading finished joins the stored conversation'] = async (ctx) => {
  const id = unique('cust_wl');
  await demo(ctx, '/_admin/customers', { id, email: `${id}@example.com` });
  const page = await ctx.newPage('widget-early');
  await openShop(ctx, page, id);
  await openWidget(page);
  await say(page, 'hello');
  await until(page, 'the bot\'s answer', (ms) => ms.some((m) => m.role === 'bot'));
  const conv = await conversationId(page, ctx);
  const before = (await messages(page)).length;

  await page.setRequestInterception(true);
  page.on('request', async (req) => {
    if (req.isInterceptResolutionHandled()) return;
    if (req.url().includes('/dev/token')) await sleep(3000); // a slow login
    req.continue();
  });
  await page.reload({ waitUntil: 'load' });
  await inShadow(page, '#launcher');
  await page.click('pierce/#launcher');
  const text = 'sent before the widget loaded';
  await say(page, text);
  assert.equal(await page.evaluate(() => document.querySelector('switchboard-chat').loaded), false, 'sent while still loading');
  const ms = await until(page, 'the early message delivered with the conversation shown',
    (ms) => ms.some((m) => m.text === text && m.seq && !m.pending) && ms.length > before + 1 && ms);
  assert.equal(await conversationId(page, ctx), conv, 'the same conversation');
  assert.ok((await stored(ctx, id, conv)).some((m) => m.role === 'customer' && m.text === text), 'stored in the stored conversation');
  const seqs = ms.filter((m) => m.seq).map((m) => m.seq);
  assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), 'each message once, in order');
  assert.ok(ms.findIndex((m) => m.text === text) >= before, 'after the earlier messages');
};

// A message refused twice (the provider's fresh token refused too) waits, saying "please sign in",
// and goes by itself once the API accepts a token again: here, at the next successful poll.
tests['message refused with 401 sent after the next successful poll'] = async (ctx) => {
  const id = unique('cust_wu');
  await demo(ctx, '/_admin/customers', { id, email: `${id}@example.com` });
  const page = await ctx.newPage('widget-401');
  await openShop(ctx, page, id);
  await openWidget(page);
  await say(page, 'hello');
  await until(page, 'the bot\'s answer', (ms) => ms.some((m) => m.role === 'bot'));

  let refuse = true, refusedPosts = 0;
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (req.isInterceptResolutionHandled()) return;
    if (refuse && isApi(ctx, req) && req.method() === 'POST') {
      refusedPosts++;
      return req.respond({
        status: 401, contentType: 'application/problem+json', headers: { 'access-control-allow-origin': ctx.webUrl },
        body: JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status: 401 }),
      });
    }
    req.continue();
  });
  const text = 'sent once the login works';
  await say(page, text);
  await page.waitForFunction(() => document.querySelector('switchboard-chat').shadowRoot.querySelector('#status').textContent === 'Please sign in to chat.',
    { polling: 100, timeout: 10000 });
  assert.ok(refusedPosts >= 2, 'refused, and refused again with a fresh token');
  refuse = false;
  // Nothing else happens on the page: the widget's own polling finds the API working again.
  await until(page, 'the message delivered without another send', (ms) => ms.some((m) => m.text === text && m.seq && !m.pending), 45000);
  assert.ok(refusedPosts < 20, `bounded retries while refused (${refusedPosts})`);
};

// The same with no conversation yet (so no polling): setting `tokenProvider` again sends it.
tests['message refused with 401 sent when tokenProvider is set again'] = async (ctx) => {
  const id = unique('cust_wv');
  await demo(ctx, '/_admin/customers', { id, email: `${id}@example.com` });
  const page = await ctx.newPage('widget-401-provider');
  let refuse = true;
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (req.isInterceptResolutionHandled()) return;
    if (refuse && isApi(ctx, req)) {
      return req.respond({
        status: 401, contentType: 'application/problem+json', headers: { 'access-control-allow-origin': ctx.webUrl },
        body: JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status: 401 }),
      });
    }
    req.continue();
  });
  await openShop(ctx, page, id);
  await openWidget(page);
  const text = 'my first message';
  await say(page, text);
  await page.waitForFunction(() => document.querySelector('switchboard-chat').shadowRoot.querySelector('#status').textContent === 'Please sign in to chat.',
    { polling: 100, timeout: 10000 });
  refuse = false;
  await page.evaluate(() => (document.querySelector('switchboard-chat').tokenProvider = window.demoChatToken));
  await until(page, 'the message delivered', (ms) => ms.some((m) => m.text === text && m.seq && !m.pending), 15000);
};

// History paging: a customer's page leaves out the agents' internal notes, so a full server page
// may hold fewer messages (even none); `next_after` says the server read on, and the widget reads
// the next page at once rather than at its next poll.
tests['history paging follows next_after, not the message count'] = async (ctx) => {
  const id = unique('cust_wp');
  await demo(ctx, '/_admin/customers', { id, email: `${id}@example.com` });
  const page = await ctx.newPage('widget-paging');
  await openShop(ctx, page, id);
  const conv = `conv_${unique('p')}`;
  await page.evaluate((base, c) => localStorage.setItem(`switchboard-chat:${base}:conversation`, c), ctx.chatUrl, conv);
  const asked = [];
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (req.isInterceptResolutionHandled()) return;
    if (isApi(ctx, req) && req.url().includes('/messages?')) {
      const after = Number(new URL(req.url()).searchParams.get('after'));
      asked.push({ after, at: Date.now() });
      // The server read 100 (all internal notes, dropped), then one more the customer sees.
      const body = after < 100 ? { messages: [], next_after: 100, handoff: 'bot', working: false }
        : after < 101 ? { messages: [{ seq: 101, role: 'bot', text: 'past the notes', created_at: new Date().toISOString() }], next_after: 101, handoff: 'bot', working: false }
          : { messages: [], next_after: after, handoff: 'bot', working: false };
      return req.respond({ status: 200, contentType: 'application/json', headers: { 'access-control-allow-origin': ctx.webUrl }, body: JSON.stringify(body) });
    }
    req.continue();
  });
  await page.reload({ waitUntil: 'load' });
  await until(page, 'the message past the notes', (ms) => ms.some((m) => m.seq === 101));
  // The page read before the reload may still be polling from 0 as it goes (a busy machine):
  // what counts is that a read from 0 is followed at once by one from next_after, never by
  // another from the count of messages shown (0).
  const next = asked.findIndex((a) => a.after === 100);
  assert.ok(next > 0, `a read from next_after (asked: ${JSON.stringify(asked.map((a) => a.after))})`);
  assert.equal(asked[next - 1].after, 0);
  assert.ok(asked[next].at - asked[next - 1].at < 700, `the next page read at once (${asked[next].at - asked[next - 1].at} ms), not at the next poll`);
};

// The runner's single-entry form: every test above in order.
export async function run(ctx) {
  for (const fn of Object.values(tests)) await fn(ctx);
}
