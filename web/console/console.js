// The agent console: the queue of conversations waiting for a person, and one conversation's
// transcript with the actions of the handoff state machine (docs/console.md).
//
// No framework and no build step: the file is served as it is, under a Content-Security-Policy
// without 'unsafe-inline', so nothing here writes HTML from data (no innerHTML; text nodes only)
// and nothing sets inline styles. Links in messages are made only from the message's `links`.
//
// The one file a company edits is config.js: where the chat API is, and how to get the agent's
// JWT from the company's own login.
import { apiBase as configuredBase, token as configuredToken } from "./config.js";

const API = String(configuredBase).replace(/\/+$/, "");

// Polling while the page is visible: the queue changes on a scale of minutes, a conversation an
// agent is reading on a scale of seconds. Hidden pages poll nothing (see Poller).
const QUEUE_EVERY_MS = 5000;
const TRANSCRIPT_EVERY_MS = 2000;
const MAX_BACKOFF_MS = 30000;
const PAGE = 100; // the API's largest page of messages
const QUEUE_LIMIT = 100; // and of handoffs
// A reply is retried this many times on a network error, a 5xx or a 429, always with the same
// client_message_id, so the conversation gets it once however many attempts reach the API.
const SEND_ATTEMPTS = 4;

const STATE_LABELS = {
  bot: "With the bot",
  waiting: "Waiting for a person",
  with_agent: "With an agent",
  resolved: "Resolved",
};
const REASON_LABELS = { human_agent: "Asked for a person" };

const $ = (id) => document.getElementById(id);
const CHANNEL_NAMES = { whatsapp: "WhatsApp", twilio: "SMS (Twilio)", telegram: "Telegram" };
const el = {
  whoami: $("whoami"),
  waiting: $("waiting"),
  mine: $("mine"),
  waitingCount: $("waiting-count"),
  mineCount: $("mine-count"),
  waitingEmpty: $("waiting-empty"),
  mineEmpty: $("mine-empty"),
  queueUpdated: $("queue-updated"),
  heading: $("conversation-heading"),
  meta: $("conversation-meta"),
  state: $("state"),
  transcript: $("transcript"),
  takeOver: $("take-over"),
  release: $("release"),
  resolve: $("resolve"),
  form: $("reply-form"),
  reply: $("reply"),
  send: $("send-reply"),
  status: $("status"),
};

// ---------------------------------------------------------------------------------------------
// The API: bearer token from config.js, problem details turned into errors, one refresh on 401.

class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    const title = problem?.title || (status ? `HTTP ${status}` : "Network error");
    const detail = problem?.detail || (status ? "" : "the chat API could not be reached");
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.problem = problem;
    // Seconds, as the API sends it with a 429.
    this.retryAfter = Number.parseInt(retryAfter ?? "", 10) || 0;
  }

  get transient() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

let tokenPromise = null;
let currentToken = null;

function getToken() {
  if (!tokenPromise) tokenPromise = fetchToken(false);
  return tokenPromise;
}

// After a 401: ask the company's login for a fresh token, unless another request already did
// since `stale` was handed out (several polls may fail with the same expired token at once).
function refreshToken(stale) {
  if (currentToken !== stale && tokenPromise) return tokenPromise;
  tokenPromise = fetchToken(true);
  return tokenPromise;
}

async function fetchToken(refresh) {
  try {
    const jwt = await configuredToken({ refresh });
    if (typeof jwt !== "string" || !jwt) throw new Error("config.js token() returned no token");
    currentToken = jwt;
    showWho(jwt); // a refreshed token may be another session's (signed in again as someone else)
    return jwt;
  } catch (e) {
    tokenPromise = null; // try the login again next time rather than caching the failure
    throw e;
  }
}

async function api(method, path, body) {
  let refreshed = false;
  for (;;) {
    const jwt = await getToken();
    const headers = { authorization: `Bearer ${jwt}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    let res;
    try {
      res = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit", // the JWT is the only credential; no cookies cross to the API
      });
    } catch {
      throw new ApiError(0, null);
    }
    // One refresh per request: a token the login just issued that is still refused will not be
    // accepted the second time either, and looping would hammer the login.
    if (res.status === 401 && !refreshed) {
      refreshed = true;
      await refreshToken(jwt);
      continue;
    }
    const type = res.headers.get("content-type") || "";
    const data = type.includes("json") ? await res.json().catch(() => null) : null;
    if (!res.ok) throw new ApiError(res.status, data, res.headers.get("retry-after"));
    return data;
  }
}

const enc = encodeURIComponent;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The caller's own claims, read (not verified: the API verifies) to show who is signed in and to
// pick the agent's own conversations out of those held by agents.
function claims(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

function newMessageId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Not a secure context (plain http on a LAN name): still 122 random bits.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// The status line (role=status, polite): results of actions and problems, never alert().

let statusText = "";
function status(text, kind = "info") {
  // The same text again is not re-announced: a poll failing every few seconds says it once.
  if (text === statusText) return;
  statusText = text;
  el.status.textContent = text;
  el.status.dataset.kind = kind;
}

function clearStatusIf(kind) {
  if (el.status.dataset.kind === kind) status("", "info");
}

// ---------------------------------------------------------------------------------------------
// Polling that stops while the page is hidden and backs off on errors.

class Poller {
  constructor(name, fn, everyMs) {
    this.name = name;
    this.fn = fn;
    this.everyMs = everyMs;
    this.timer = null;
    this.running = false;
    this.active = false;
    this.failures = 0;
  }

  start() {
    this.active = true;
    this.now();
  }

  stop() {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = null;
  }

  // Poll at once (after an action, or when the page becomes visible again).
  now() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.running) {
      this.again = true; // the poll under way may predate the change: one more when it ends
      return;
    }
    this.tick();
  }

  async tick() {
    this.timer = null;
    if (!this.active || document.hidden) return; // visibilitychange calls now() when shown
    this.running = true;
    this.again = false;
    let delay = this.everyMs;
    try {
      await this.fn();
      if (this.failures) clearStatusIf(`error-${this.name}`);
      this.failures = 0;
    } catch (e) {
      this.failures += 1;
      delay = Math.min(MAX_BACKOFF_MS, this.everyMs * 2 ** this.failures);
      if (e instanceof ApiError && e.retryAfter) delay = Math.max(delay, e.retryAfter * 1000);
      // Said once, not with a countdown: the status line is announced whenever its text changes.
      status(`${this.name === "queue" ? "Could not refresh the queue" : "Could not refresh the conversation"} (${e.message}); retrying.`, `error-${this.name}`);
    } finally {
      this.running = false;
    }
    if (this.active && !document.hidden) this.timer = setTimeout(() => this.tick(), this.again ? 0 : delay);
  }
}

// ---------------------------------------------------------------------------------------------
// Who is signed in.

const me = { sub: null, role: null };

function showWho(jwt) {
  const c = claims(jwt);
  me.sub = c.sub || null;
  const roles = [].concat(c.role ?? c.roles ?? []);
  me.role = roles.includes("admin") ? "admin" : roles.includes("agent") ? "agent" : null;
  el.whoami.textContent = me.sub ? `Signed in as ${me.sub}${me.role ? ` (${me.role})` : ""}` : "Signed in";
  if (me.role) clearStatusIf("warn-role");
}

async function signIn() {
  try {
    await getToken();
    if (!me.role) {
      // The role may sit under another claim name (JwtRoleClaim): only a hint, the API decides.
      status("This token carries no agent or admin role in a “role” claim; the API may refuse it.", "warn-role");
    }
  } catch (e) {
    el.whoami.textContent = "Not signed in";
    status(`Could not get a token from the login (${e.message}).`, "error");
  }
}

// ---------------------------------------------------------------------------------------------
// The queue: waiting conversations (oldest first, as the API orders them) and the agent's own.

const queue = { waiting: [], held: [], fetchedAt: 0 };

async function refreshQueue() {
  const [waiting, held] = await Promise.all([
    api("GET", `/v1/handoffs?state=waiting&limit=${QUEUE_LIMIT}`),
    api("GET", `/v1/handoffs?state=with_agent&limit=${QUEUE_LIMIT}`),
  ]);
  queue.waiting = waiting?.handoffs ?? [];
  queue.held = held?.handoffs ?? [];
  queue.fetchedAt = Date.now();
  renderQueue();
  if (open) renderHeader();
}

function queueEntry(id) {
  return queue.waiting.find((h) => h.conversation_id === id) || queue.held.find((h) => h.conversation_id === id);
}

// How long it has waited now: the server's count plus the time since we asked (no clock skew
// between the agent's machine and the server).
function waitedSecs(h) {
  return (h.waited_secs ?? 0) + Math.max(0, Math.floor((Date.now() - queue.fetchedAt) / 1000));
}

function duration(secs) {
  if (secs < 60) return `${secs} s`;
  const min = Math.floor(secs / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} days`;
}

function reasonLabel(reason) {
  if (!reason) return "Handed off";
  return REASON_LABELS[reason] || reason.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

function renderQueue() {
  const mine = queue.held.filter((h) => h.agent_id && h.agent_id === me.sub);
  renderList(el.waiting, queue.waiting, "waiting");
  renderList(el.mine, mine, "mine");
  el.waitingCount.textContent = String(queue.waiting.length);
  el.mineCount.textContent = String(mine.length);
  // Until the queue has been read once, its lists say so rather than "nobody is waiting".
  if (queue.fetchedAt) {
    el.waitingEmpty.textContent = "Nobody is waiting.";
    el.mineEmpty.textContent = "You hold no conversation.";
  }
  el.waitingEmpty.hidden = queue.waiting.length > 0;
  el.mineEmpty.hidden = mine.length > 0;
  // One page of the API's (100): more waiting than that shows the oldest, and says so.
  const more = queue.waiting.length >= QUEUE_LIMIT ? ` · showing the oldest ${QUEUE_LIMIT} waiting` : "";
  if (queue.fetchedAt) el.queueUpdated.textContent = `Updated ${new Date(queue.fetchedAt).toLocaleTimeString()}${more}`;
  document.title = `${queue.waiting.length ? `(${queue.waiting.length}) ` : ""}Agent console · Switchboard`;
}

// Items are kept and updated in place, and moved only when the order changes, so a keyboard user
// whose focus is on an item does not lose it every few seconds.
function renderList(list, items, kind) {
  const existing = new Map([...list.children].map((li) => [li.dataset.conversation, li]));
  const wanted = items.map((h) => {
    const li = existing.get(h.conversation_id) || newQueueItem(h.conversation_id);
    existing.delete(h.conversation_id);
    fillQueueItem(li, h, kind);
    return li;
  });
  for (const li of existing.values()) li.remove();
  const same = wanted.length === list.children.length && wanted.every((li, i) => list.children[i] === li);
  if (!same) wanted.forEach((li) => list.appendChild(li));
}

function newQueueItem(id) {
  const li = document.createElement("li");
  li.className = "handoff";
  li.dataset.conversation = id;
  const a = document.createElement("a");
  a.href = `#conversation=${enc(id)}`;
  for (const part of ["customer", "reason", "order", "waited"]) {
    const span = document.createElement("span");
    span.className = part;
    a.appendChild(span);
  }
  li.appendChild(a);
  return li;
}

function fillQueueItem(li, h, kind) {
  const a = li.firstElementChild;
  li.dataset.state = h.state || (kind === "mine" ? "with_agent" : "waiting");
  setText(a.querySelector(".customer"), h.customer_id || "Unknown customer");
  setText(a.querySelector(".reason"), reasonLabel(h.reason) + (h.language ? ` · ${h.language}` : ""));
  setText(a.querySelector(".order"), h.order_id ? `Order #${h.order_id}` : "No order named");
  setText(a.querySelector(".waited"), `${kind === "mine" ? "Yours for" : "Waiting"} ${duration(waitedSecs(h))}`);
  if (open && open.id === h.conversation_id) a.setAttribute("aria-current", "true");
  else a.removeAttribute("aria-current");
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// ---------------------------------------------------------------------------------------------
// One open conversation: its transcript, read on with the `after` cursor.

let open = null; // { id, after, handoff, seen: Set of seqs }

function conversationFromHash() {
  const m = /^#conversation=([^&]+)/.exec(location.hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

function openFromHash() {
  const id = conversationFromHash();
  if (id && (!open || open.id !== id)) openConversation(id);
}

function openConversation(id) {
  transcriptPoller.stop();
  open = { id, after: 0, handoff: null, seen: new Set(), first: true, channel: null };
  pending = null;
  el.transcript.replaceChildren();
  el.reply.value = "";
  renderHeader();
  setHandoff(null);
  renderQueue();
  el.heading.focus();
  transcriptPoller.start();
}

function renderHeader() {
  if (!open) return;
  const h = queueEntry(open.id);
  setText(el.heading, h?.customer_id ? `Conversation with ${h.customer_id}` : "Conversation");
  const parts = [`Id ${open.id}`];
  if (h) {
    parts.push(reasonLabel(h.reason));
    if (h.order_id) parts.push(`order #${h.order_id}`);
    if (h.state === "waiting") parts.push(`waiting ${duration(waitedSecs(h))}`);
    if (h.state === "with_agent" && h.agent_id) parts.push(h.agent_id === me.sub ? "held by you" : `held by ${h.agent_id}`);
  }
  // A messaging channel's conversation: replies go out there, and until the customer proved
  // their account the bot answered nothing account-bound.
  const ch = open.channel;
  if (ch) parts.push(`via ${CHANNEL_NAMES[ch.provider] ?? ch.provider}${ch.verified ? "" : " (account not verified)"}`);
  setText(el.meta, parts.join(" · "));
}

async function refreshTranscript() {
  const conv = open;
  if (!conv) return;
  // The first read marks the log busy, so a screen reader does not read out the whole history
  // as "new"; later reads announce only what arrived.
  if (conv.first) el.transcript.setAttribute("aria-busy", "true");
  try {
    for (;;) {
      const data = await api("GET", `/v1/conversations/${enc(conv.id)}/messages?after=${conv.after}&limit=${PAGE}`);
      if (conv !== open) return; // another conversation was opened meanwhile
      const messages = data?.messages ?? [];
      messages.forEach(addMessage);
      conv.after = Math.max(conv.after, data?.next_after ?? 0, ...messages.map((m) => m.seq));
      if (data && "handoff" in data) setHandoff(data.handoff);
      if (data?.channel && JSON.stringify(data.channel) !== JSON.stringify(conv.channel)) {
        conv.channel = data.channel;
        renderHeader();
      }
      el.transcript.dataset.working = data?.working ? "true" : "false";
      if (messages.length < PAGE) break;
    }
    if (conv.first && conv.handoff == null) {
      // A backend without the handoff field: the queue says what it knows.
      setHandoff(queueEntry(conv.id)?.state ?? null);
    }
  } catch (e) {
    if (conv.first && e instanceof ApiError && (e.status === 404 || e.status === 403)) {
      status(`Cannot open conversation ${conv.id} (${e.message}).`, "error");
      transcriptPoller.stop();
      return;
    }
    throw e;
  } finally {
    if (conv === open && conv.first) {
      conv.first = false;
      el.transcript.removeAttribute("aria-busy");
      el.transcript.scrollTop = el.transcript.scrollHeight;
    }
  }
}

const ROLE_LABELS = { customer: "Customer", bot: "Bot", agent: "Agent" };

function addMessage(m) {
  if (!open || typeof m?.seq !== "number" || open.seen.has(m.seq)) return;
  open.seen.add(m.seq);
  const node = document.createElement("article");
  node.className = "msg";
  node.dataset.seq = String(m.seq);
  node.dataset.role = String(m.role);
  if (m.internal) node.dataset.internal = "true";
  if (m.role === "agent" && m.agent_id === me.sub) node.dataset.mine = "true";

  const head = document.createElement("p");
  head.className = "who";
  const role = document.createElement("span");
  role.className = "role";
  role.textContent = ROLE_LABELS[m.role] || String(m.role);
  head.appendChild(role);
  const who = m.role === "agent" ? m.agent_id : m.role === "customer" ? queueEntry(open.id)?.customer_id : null;
  if (who) {
    const id = document.createElement("span");
    id.className = "id";
    id.textContent = m.role === "agent" && who === me.sub ? `${who} (you)` : who;
    head.appendChild(id);
  }
  if (m.created_at) {
    const t = document.createElement("time");
    t.dateTime = m.created_at;
    const d = new Date(m.created_at);
    t.textContent = Number.isNaN(d.getTime()) ? m.created_at : d.toLocaleString();
    head.appendChild(t);
  }
  node.appendChild(head);

  if (m.internal) {
    const badge = document.createElement("p");
    badge.className = "internal-badge";
    badge.textContent = "Only agents see this";
    node.appendChild(badge);
  }

  const text = document.createElement("p");
  text.className = "text";
  text.append(...textWithLinks(String(m.text ?? ""), m.links));
  node.appendChild(text);

  if (Array.isArray(m.quick_replies) && m.quick_replies.length) {
    // The agent sees what the bot offered; these are not buttons here (only the customer answers).
    const offered = document.createElement("div");
    offered.className = "offered";
    const label = document.createElement("p");
    label.className = "offered-label";
    label.textContent = "The bot offered:";
    const list = document.createElement("ul");
    for (const q of m.quick_replies) {
      const li = document.createElement("li");
      li.textContent = String(q?.label ?? q?.value ?? "");
      list.appendChild(li);
    }
    offered.append(label, list);
    node.appendChild(offered);
  }

  // In seq order, wherever it belongs: an agent's own reply is shown at once, before the poll
  // that brings the customer's message written just before it.
  const after = [...el.transcript.children].find((c) => Number(c.dataset.seq) > m.seq);
  const stick = el.transcript.scrollHeight - el.transcript.scrollTop - el.transcript.clientHeight < 40;
  el.transcript.insertBefore(node, after || null);
  if (stick && !after) el.transcript.scrollTop = el.transcript.scrollHeight;
}

// The message text as text nodes, with exactly the substrings the message lists in `links` (and
// only http/https ones) made into links. Nothing in the text itself is ever parsed.
function textWithLinks(text, links) {
  const urls = (Array.isArray(links) ? links : [])
    .filter((l) => typeof l?.url === "string" && /^https?:\/\//i.test(l.url) && text.includes(l.url))
    .sort((a, b) => b.url.length - a.url.length); // the longest first where two start alike
  const out = [];
  let i = 0;
  while (i < text.length) {
    let best = null;
    let at = text.length;
    for (const l of urls) {
      const j = text.indexOf(l.url, i);
      if (j !== -1 && j < at) {
        at = j;
        best = l;
      }
    }
    if (!best) break;
    if (at > i) out.push(document.createTextNode(text.slice(i, at)));
    const a = document.createElement("a");
    a.href = best.url;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    a.textContent = best.url;
    if (best.label && best.label !== best.url) a.title = String(best.label);
    out.push(a);
    i = at + best.url.length;
  }
  if (i < text.length) out.push(document.createTextNode(text.slice(i)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The state machine: bot → waiting → with_agent → resolved → bot; release from waiting or
// with_agent → bot. Buttons are enabled only where the transition exists; the API decides
// anyway (a 409 is shown in the status line).

let busy = false; // an action or a send under way

function setHandoff(h) {
  if (open) open.handoff = h;
  el.state.dataset.state = h || "none";
  const held = open && queueEntry(open.id);
  let label = h ? STATE_LABELS[h] || h : open ? "Unknown" : "–";
  if (h === "with_agent" && held?.agent_id) label += held.agent_id === me.sub ? " (you)" : ` (${held.agent_id})`;
  setText(el.state, label);
  updateButtons();
}

// Held by another agent: only they reply; an admin may still hand it back or resolve it.
function heldByOther() {
  const h = open && queueEntry(open.id);
  return Boolean(h && h.state === "with_agent" && h.agent_id && me.sub && h.agent_id !== me.sub);
}

function updateButtons() {
  const h = open?.handoff;
  const known = h != null;
  const other = heldByOther();
  const overrule = other && me.role !== "admin";
  // Unknown state (a backend that does not say): offer what may apply, the API decides.
  el.takeOver.disabled = busy || !open || (known && !["bot", "waiting", "resolved"].includes(h));
  el.release.disabled = busy || !open || (known && !["waiting", "with_agent"].includes(h)) || overrule;
  el.resolve.disabled = busy || !open || h !== "with_agent" || overrule;
  const canReply = Boolean(open) && h === "with_agent" && !other;
  el.reply.disabled = !canReply;
  el.send.disabled = busy || !canReply;
}

const ACTIONS = {
  takeover: { button: "takeOver", to: "with_agent", doing: "Taking over…", done: "You have taken over: the bot stays silent until you hand it back or resolve it.", failed: "Could not take over" },
  release: { button: "release", to: "bot", doing: "Handing back to the bot…", done: "Handed back: the bot answers the customer again.", failed: "Could not hand back" },
  resolve: { button: "resolve", to: "resolved", doing: "Marking resolved…", done: "Resolved: the bot answers the customer's next message.", failed: "Could not mark it resolved" },
};

async function act(name) {
  const conv = open;
  const action = ACTIONS[name];
  if (!conv || busy) return;
  busy = true;
  updateButtons();
  status(action.doing, "info");
  try {
    const summary = await api("POST", `/v1/conversations/${enc(conv.id)}/${name}`);
    if (conv === open) setHandoff(summary?.handoff ?? action.to);
    status(action.done, "info");
  } catch (e) {
    status(`${action.failed}: ${e.message}`, "error");
  } finally {
    busy = false;
    updateButtons();
    // Someone else may have changed it (a 409): read the state and queue again either way.
    transcriptPoller.now();
    queuePoller.now();
  }
  // A disabled button drops keyboard focus to the page: put it where the agent goes next.
  if (conv === open) {
    if (!el.reply.disabled) el.reply.focus();
    else if (document.activeElement === document.body || document.activeElement?.disabled) {
      const next = [el.takeOver, el.release, el.resolve].find((b) => !b.disabled);
      (next || el.heading).focus();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Replies: one client_message_id per message, reused on every retry of it (and when the agent
// presses Send again after a failure, as long as the text is unchanged), so it is stored once.

let pending = null; // { conv, text, id }

async function sendReply() {
  const conv = open;
  if (!conv || busy) return;
  const text = el.reply.value.trim();
  if (!text) {
    status("Write a reply first.", "warn");
    el.reply.focus();
    return;
  }
  if (!pending || pending.conv !== conv.id || pending.text !== text) pending = { conv: conv.id, text, id: newMessageId() };
  const p = pending;
  busy = true;
  updateButtons();
  status("Sending…", "info");
  try {
    let res;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await api("POST", `/v1/conversations/${enc(p.conv)}/agent-messages`, { text: p.text, client_message_id: p.id });
        break;
      } catch (e) {
        if (!(e instanceof ApiError) || !e.transient || attempt >= SEND_ATTEMPTS) throw e;
        await sleep(Math.max(e.retryAfter * 1000, 1000 * 2 ** (attempt - 1)));
      }
    }
    if (pending === p) pending = null;
    if (conv === open) {
      addMessage(res?.message);
      if (el.reply.value.trim() === p.text) el.reply.value = "";
    }
    status("Reply sent.", "info");
  } catch (e) {
    const again = e instanceof ApiError && e.transient ? " Press Send to try again: it will not be posted twice." : "";
    status(`Your reply was not sent: ${e.message}.${again}`, "error");
  } finally {
    busy = false;
    updateButtons();
    transcriptPoller.now();
  }
}

// ---------------------------------------------------------------------------------------------

const queuePoller = new Poller("queue", refreshQueue, QUEUE_EVERY_MS);
const transcriptPoller = new Poller("transcript", refreshTranscript, TRANSCRIPT_EVERY_MS);

function wire() {
  el.takeOver.addEventListener("click", () => act("takeover"));
  el.release.addEventListener("click", () => act("release"));
  el.resolve.addEventListener("click", () => act("resolve"));
  el.form.addEventListener("submit", (e) => {
    e.preventDefault();
    sendReply();
  });
  el.reply.addEventListener("keydown", (e) => {
    // Enter writes a new line (replies often have several); Ctrl/Cmd+Enter sends.
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      sendReply();
    }
  });
  window.addEventListener("hashchange", openFromHash);
  // A queue link to the conversation already open changes no hash: still take the agent there.
  document.getElementById("queue").addEventListener("click", (e) => {
    const a = e.target.closest?.("a[href^='#conversation=']");
    if (a && open && a.closest(".handoff")?.dataset.conversation === open.id) {
      e.preventDefault();
      el.heading.focus();
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return; // the pollers stop rescheduling themselves
    queuePoller.now();
    if (open) transcriptPoller.now();
  });
}

async function main() {
  wire();
  updateButtons();
  await signIn();
  queuePoller.start();
  openFromHash();
}

main();
