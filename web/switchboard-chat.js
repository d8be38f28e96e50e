// <switchboard-chat>: Switchboard's customer chat widget. One dependency-free ES module, no build
// step: a site adds
//   <script type="module" src="https://chat.example.com/switchboard-chat.js"></script>
//   <switchboard-chat api-base="https://api.example.com" token-provider="getChatToken"></switchboard-chat>
// and answers `getChatToken({refresh})` with its own customer's JWT. docs/widget.md explains the
// attributes, theming, strings, the CSP and CORS a site needs, and why the widget polls.

const DEFAULT_STRINGS = {
  en: {
    title: 'Chat with us', open: 'Open chat', close: 'Close chat', label: 'Message',
    placeholder: 'Type your message…', send: 'Send', typing: 'Typing…', you: 'You',
    bot: 'Assistant', agent: 'Agent', sending: 'Sending…', failed: 'Not sent',
    offline: 'You are offline. Your messages will be sent when you are back.',
    retrying: 'Connection lost. Retrying; your messages are kept.',
    slow: 'Many messages at once. Sending again in a moment.',
    waiting: 'Waiting for a person to join…', with_agent: 'You are chatting with a person.',
    resolved: 'This conversation was resolved. Write again any time.',
    signin: 'Please sign in to chat.', rejected: 'This message could not be sent.',
    options: 'Suggested replies', history: 'Conversation',
  },
  es: {
    title: 'Chatea con nosotros', open: 'Abrir el chat', close: 'Cerrar el chat', label: 'Mensaje',
    placeholder: 'Escribe tu mensaje…', send: 'Enviar', typing: 'Escribiendo…', you: 'Tú',
    bot: 'Asistente', agent: 'Agente', sending: 'Enviando…', failed: 'No enviado',
    offline: 'Sin conexión. Tus mensajes se enviarán cuando vuelvas a estar en línea.',
    retrying: 'Conexión perdida. Reintentando; tus mensajes se conservan.',
    slow: 'Demasiados mensajes a la vez. Se enviará de nuevo en un momento.',
    waiting: 'Esperando a que se una una persona…', with_agent: 'Estás hablando con una persona.',
    resolved: 'Esta conversación se ha resuelto. Escríbenos cuando quieras.',
    signin: 'Inicia sesión para chatear.', rejected: 'No se ha podido enviar este mensaje.',
    options: 'Respuestas sugeridas', history: 'Conversación',
  },
  fr: {
    title: 'Discutez avec nous', open: 'Ouvrir le chat', close: 'Fermer le chat', label: 'Message',
    placeholder: 'Écrivez votre message…', send: 'Envoyer', typing: 'En train d’écrire…', you: 'Vous',
    bot: 'Assistant', agent: 'Conseiller', sending: 'Envoi…', failed: 'Non envoyé',
    offline: 'Vous êtes hors ligne. Vos messages partiront à votre retour.',
    retrying: 'Connexion perdue. Nouvel essai ; vos messages sont conservés.',
    slow: 'Trop de messages à la fois. Nouvel envoi dans un instant.',
    waiting: 'En attente d’un conseiller…', with_agent: 'Vous discutez avec un conseiller.',
    resolved: 'Cette conversation est résolue. Écrivez-nous quand vous voulez.',
    signin: 'Connectez-vous pour discuter.', rejected: 'Ce message n’a pas pu être envoyé.',
    options: 'Réponses suggérées', history: 'Conversation',
  },
  de: {
    title: 'Chatten Sie mit uns', open: 'Chat öffnen', close: 'Chat schließen', label: 'Nachricht',
    placeholder: 'Ihre Nachricht…', send: 'Senden', typing: 'Schreibt…', you: 'Sie',
    bot: 'Assistent', agent: 'Mitarbeiter', sending: 'Wird gesendet…', failed: 'Nicht gesendet',
    offline: 'Sie sind offline. Ihre Nachrichten werden gesendet, sobald Sie wieder online sind.',
    retrying: 'Verbindung unterbrochen. Neuer Versuch; Ihre Nachrichten bleiben erhalten.',
    slow: 'Zu viele Nachrichten auf einmal. Gleich neuer Versuch.',
    waiting: 'Warten auf einen Mitarbeiter…', with_agent: 'Sie chatten mit einem Mitarbeiter.',
    resolved: 'Diese Unterhaltung ist erledigt. Schreiben Sie jederzeit wieder.',
    signin: 'Bitte melden Sie sich an, um zu chatten.', rejected: 'Diese Nachricht konnte nicht gesendet werden.',
    options: 'Antwortvorschläge', history: 'Unterhaltung',
  },
};

// Polling (docs/widget.md says why not WebSocket push): 1 s after a send or anything new, ×2 per
// empty answer up to 30 s; tighter while an answer is promised (`working`) or a person is on the
// other end, where a 30 s lag would show.
const POLL_FIRST = 1000, POLL_MAX = 30000, POLL_WORKING = 8000, POLL_HANDOFF = 5000;
const RETRY_MAX = 30000; // an unsent message is retried at 1, 2, 4 … 30 s (and at once when back online)
const TIMEOUT = 30000; // a hung request must not hold the outbox forever
const CACHE_MAX = 200; // messages kept in localStorage; older ones are re-read only if needed
const PAGE = 100; // messages asked for per history page
// A token is replaced this long before its `exp`: in AWS an expired token's 401 comes from API
// Gateway's JWT authorizer, possibly without CORS headers, so the browser shows the widget a
// network error, never the 401 (docs/widget.md, "Tokens").
const EXPIRY_MARGIN = 60000;
const BLIND_REFRESH = 60000; // at most one refresh a minute after an unexplained network error
const AHEAD_REFRESH = 10000; // at most one refresh-ahead per 10 s (a provider of short-lived tokens)

const CSS = `
:host{--sb-accent:#1f5fbf;--sb-accent-fg:#fff;--sb-bg:#fff;--sb-fg:#1a1a1a;--sb-muted:#555;
--sb-bot-bg:#eef1f5;--sb-border:#c4cad3;--sb-focus:#1f5fbf;--sb-radius:12px;
--sb-font:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;--sb-width:360px;--sb-height:520px;
--sb-z:2147483000;font-family:var(--sb-font);color:var(--sb-fg)}
*{box-sizing:border-box}
[hidden]{display:none!important}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);clip-path:inset(50%);white-space:nowrap}
button,textarea{font:inherit}
:focus-visible{outline:3px solid var(--sb-focus);outline-offset:2px}
#launcher{position:fixed;right:20px;bottom:20px;z-index:var(--sb-z);border:0;border-radius:999px;
padding:12px 18px;background:var(--sb-accent);color:var(--sb-accent-fg);cursor:pointer;
box-shadow:0 4px 14px rgba(0,0,0,.25);font-weight:600}
#panel{position:fixed;right:20px;bottom:80px;z-index:var(--sb-z);width:var(--sb-width);
max-width:calc(100vw - 24px);height:var(--sb-height);max-height:calc(100vh - 100px);display:flex;
flex-direction:column;background:var(--sb-bg);color:var(--sb-fg);border:1px solid var(--sb-border);
border-radius:var(--sb-radius);box-shadow:0 8px 30px rgba(0,0,0,.25);overflow:hidden;
animation:sb-in .18s ease-out}
@keyframes sb-in{from{opacity:0;transform:translateY(8px)}}
#head{display:flex;align-items:center;gap:8px;padding:10px 12px;background:var(--sb-accent);color:var(--sb-accent-fg)}
h2{flex:1;margin:0;font-size:1rem}
#close{border:0;background:transparent;color:inherit;font-size:1.4rem;line-height:1;padding:2px 8px;cursor:pointer;border-radius:6px}
#close:focus-visible{outline-color:var(--sb-accent-fg)}
#log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;scroll-behavior:smooth}
.msg{max-width:85%;display:flex;flex-direction:column;gap:6px}
.msg[data-role=customer]{align-self:flex-end}
.text{padding:8px 12px;border-radius:var(--sb-radius);white-space:pre-wrap;overflow-wrap:anywhere;
background:var(--sb-bot-bg);color:var(--sb-fg)}
.msg[data-role=customer] .text{background:var(--sb-accent);color:var(--sb-accent-fg)}
.msg[data-role=customer] a{color:inherit}
.msg[data-role=agent] .text{border:2px solid var(--sb-accent)}
.msg[data-pending] .text{background:var(--sb-bg);color:var(--sb-fg);border:2px dashed var(--sb-accent)}
.note{font-size:.8rem;color:var(--sb-muted);align-self:flex-end}
a{color:var(--sb-accent)}
.quick-replies{display:flex;flex-wrap:wrap;gap:6px}
.quick-replies button{border:2px solid var(--sb-accent);background:var(--sb-bg);color:var(--sb-accent);
border-radius:999px;padding:4px 12px;cursor:pointer}
.quick-replies button:disabled{cursor:default;border-color:var(--sb-border);color:var(--sb-muted)}
.quick-replies button.chosen{background:var(--sb-accent);color:var(--sb-accent-fg);border-color:var(--sb-accent)}
#typing{padding:0 12px 6px;color:var(--sb-muted);font-size:.85rem}
#typing i{display:inline-block;width:6px;height:6px;margin-right:3px;border-radius:50%;background:currentColor;
animation:sb-dot 1s infinite ease-in-out}
#typing i:nth-child(2){animation-delay:.15s}#typing i:nth-child(3){animation-delay:.3s}
@keyframes sb-dot{50%{opacity:.2}}
#status{padding:0 12px;font-size:.85rem;color:var(--sb-muted)}
#status:empty{display:none}
form{display:flex;gap:8px;padding:10px 12px;border-top:1px solid var(--sb-border)}
#input{flex:1;resize:none;min-height:40px;max-height:120px;padding:8px;border:1px solid var(--sb-muted);
border-radius:8px;background:var(--sb-bg);color:var(--sb-fg)}
#send{border:0;border-radius:8px;padding:0 14px;background:var(--sb-accent);color:var(--sb-accent-fg);cursor:pointer;font-weight:600}
@media (max-width:480px){#panel{right:0;left:0;bottom:0;width:100vw;max-width:100vw;height:100vh;max-height:100vh;border-radius:0}}
@media (prefers-reduced-motion:reduce){*,#panel{animation:none!important;transition:none!important}#log{scroll-behavior:auto}}
`;

let sheet; // one constructed stylesheet for every instance: allowed by a CSP without 'unsafe-inline'

// Builds an element: tag with id/class and attributes, never markup from strings.
function h(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null && v !== false) e.setAttribute(k, v === true ? '' : v);
  e.append(...kids);
  return e;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The JWT's claims, never trusted for anything (the API checks the token): `sub` tells whose
// cached conversation this is, `exp` when to ask for a new token. An opaque token gives {}.
function claimsOf(token) {
  try {
    const c = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return c && typeof c === 'object' ? c : {};
  } catch {
    return {};
  }
}

const subjectOf = (token) => claimsOf(token).sub ?? null;

// Whether the token expires within EXPIRY_MARGIN (false when it says nothing of when).
function expiresSoon(token) {
  const exp = claimsOf(token).exp;
  return typeof exp === 'number' && exp * 1000 - Date.now() < EXPIRY_MARGIN;
}

class NoToken extends Error {}

class RetryLater extends Error {
  constructor(ms, why) {
    super(why);
    this.ms = ms;
    this.why = why;
  }
}

export class SwitchboardChat extends HTMLElement {
  static observedAttributes = ['open', 'lang', 'title', 'api-base'];

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    }
    root.adoptedStyleSheets = [sheet];
    this.$ = {};
    const el = (name, node) => (this.$[name] = node);
    root.append(
      el('launcher', h('button', { id: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'panel' })),
      el('panel', h('section', { id: 'panel', role: 'dialog', 'aria-labelledby': 'title', hidden: true },
        // A div, not <header>: inside the page it would be a second banner landmark.
        h('div', { id: 'head' },
          el('title', h('h2', { id: 'title' })),
          el('close', h('button', { id: 'close', type: 'button' }, '×'))),
        el('log', h('div', { id: 'log', role: 'log', 'aria-live': 'polite', 'aria-labelledby': 'title', tabindex: '0' })),
        el('typing', h('div', { id: 'typing', hidden: true }, h('i'), h('i'), h('i'), el('typingText', h('span')))),
        el('status', h('div', { id: 'status', role: 'status', 'aria-live': 'polite' })),
        el('form', h('form', {},
          el('label', h('label', { for: 'input', class: 'sr' })),
          el('input', h('textarea', { id: 'input', rows: '1', maxlength: '4000', autocomplete: 'off' })),
          el('send', h('button', { id: 'send', type: 'submit' })))))),
    );
    this.$.launcher.addEventListener('click', () => this.toggle());
    this.$.close.addEventListener('click', () => this.toggle(false));
    this.$.panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.toggle(false);
      }
    });
    this.$.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.sendInput();
    });
    this.$.input.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter is a new line; not while an input method is composing a word.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.sendInput();
      }
    });
    this.$.log.addEventListener('click', (e) => {
      const b = e.target.closest?.('.quick-replies button');
      if (b && !b.disabled) {
        b.classList.add('chosen');
        this.send(b.textContent, b.dataset.value);
      }
    });
    this.onVisibility = () => (document.hidden ? clearTimeout(this.pollTimer) : this.poll());
    this.onOnline = () => {
      this.retryNow?.();
      this.poll();
    };
    this.onOffline = () => this.setStatus('offline');
    this.reset(false);
    this._strings = null;
    this._provider = null;
  }

  // A property set before the module loaded sits on the instance and hides the accessor.
  upgrade(prop) {
    if (Object.prototype.hasOwnProperty.call(this, prop)) {
      const v = this[prop];
      delete this[prop];
      this[prop] = v;
    }
  }

  connectedCallback() {
    this.upgrade('tokenProvider');
    this.upgrade('strings');
    this.render();
    this.toggle(this.hasAttribute('open'), false);
    document.addEventListener('visibilitychange', this.onVisibility);
    addEventListener('online', this.onOnline);
    addEventListener('offline', this.onOffline);
    // After the page's other module scripts ran: they may define the token provider.
    setTimeout(() => this.start());
  }

  disconnectedCallback() {
    document.removeEventListener('visibilitychange', this.onVisibility);
    removeEventListener('online', this.onOnline);
    removeEventListener('offline', this.onOffline);
    clearTimeout(this.pollTimer);
  }

  attributeChangedCallback(name, old, val) {
    if (name === 'open' && this.$) this.toggle(val != null, false);
    else if (name === 'api-base' && old != null && old !== val) {
      this.reset(false);
      this.start();
    } else this.render();
  }

  get tokenProvider() {
    return this._provider || globalThis[this.getAttribute('token-provider')] || null;
  }

  set tokenProvider(fn) {
    this._provider = fn;
    this.token = null;
    if (!this.isConnected) return;
    // Messages left unsent for want of a token go now (start() sends them at its end).
    if (!this.started) this.start();
    else if (this.loaded && this.outbox.length) this.flush();
  }

  get strings() {
    return this._strings;
  }

  set strings(s) {
    this._strings = s;
    if (this.$) this.render();
  }

  get base() {
    return (this.getAttribute('api-base') || '').replace(/\/+$/, '');
  }

  key(what) {
    return `switchboard-chat:${this.base}:${what}`;
  }

  // The chrome's language: the `lang` attribute, else the conversation's (the API detects it),
  // else the browser's; English when none of ours.
  t(name) {
    const want = (this.getAttribute('lang') || this.language || navigator.language || 'en').slice(0, 2).toLowerCase();
    return this._strings?.[name] ?? (DEFAULT_STRINGS[want] || DEFAULT_STRINGS.en)[name] ?? DEFAULT_STRINGS.en[name];
  }

  render() {
    if (!this.$) return;
    const $ = this.$, open = !$.panel.hidden;
    $.title.textContent = this.getAttribute('title') || this.t('title');
    $.launcher.textContent = open ? this.t('close') : this.t('open');
    $.close.setAttribute('aria-label', this.t('close'));
    $.label.textContent = this.t('label');
    $.input.placeholder = this.t('placeholder');
    $.send.textContent = this.t('send');
    $.typingText.textContent = this.t('typing');
    $.status.textContent = this.statusKey ? this.t(this.statusKey) : '';
    for (const n of $.log.querySelectorAll('.who')) n.textContent = this.t(n.parentNode.dataset.role === 'customer' ? 'you' : n.parentNode.dataset.role) + ': ';
    for (const n of $.log.querySelectorAll('.quick-replies')) n.setAttribute('aria-label', this.t('options'));
  }

  toggle(open = this.$.panel.hidden, focus = true) {
    const $ = this.$;
    $.panel.hidden = !open;
    $.launcher.setAttribute('aria-expanded', String(open));
    if (open !== this.hasAttribute('open')) this.toggleAttribute('open', open);
    this.render();
    if (open) {
      // Focus moves into the panel, to where one types; the newest message in view.
      if (focus) $.input.focus();
      $.log.scrollTop = $.log.scrollHeight;
      this.poll();
    } else if (focus) $.launcher.focus();
  }

  // Forgets the conversation, its cache and unsent messages (call on the site's logout).
  reset(clearStorage = true) {
    if (clearStorage && this.base) for (const k of ['conversation', 'history', 'outbox']) localStorage.removeItem(this.key(k));
    clearTimeout(this.pollTimer);
    this.conv = null;
    this.after = 0;
    this.messages = []; // confirmed, by seq
    this.outbox = [];
    this.language = null;
    this.handoff = 'bot';
    this.working = false;
    this.inflight = 0;
    this.token = null;
    this.refreshNext = false; // the next request asks the provider for a fresh token first
    this.blindRefreshAt = 0;
    this.aheadRefreshAt = 0;
    this.owner = undefined;
    this.started = null;
    this.loaded = false; // nothing is written to localStorage before the stored state was read
    this.generation = (this.generation || 0) + 1; // work of an earlier session stops at its next step
    if (this.$) {
      this.$.log.replaceChildren();
      this.setStatus(null);
      this.showTyping();
    }
  }

  // Loads the cached conversation (only if it is this user's), catches up from the API and sends
  // what was left unsent. Runs once per session; again after a provider is set.
  start() {
    if (this.started || !this.base || !this.tokenProvider) {
      if (!this.tokenProvider) this.setStatus('signin');
      return this.started;
    }
    const gen = this.generation;
    this.started = (async () => {
      try {
        await this.getToken();
      } catch {
        this.started = null;
        this.setStatus('signin');
        return;
      }
      if (gen !== this.generation) return;
      this.setStatus(null);
      const read = (k, d) => {
        try {
          return JSON.parse(localStorage.getItem(this.key(k))) ?? d;
        } catch {
          return d;
        }
      };
      const history = read('history', {});
      if (history.owner && this.owner && history.owner !== this.owner) {
        // Someone else's conversation on this browser (a shared computer, a login change):
        // neither shown nor sent as this user.
        for (const k of ['conversation', 'history', 'outbox']) localStorage.removeItem(this.key(k));
      } else {
        this.conv = localStorage.getItem(this.key('conversation'));
        if (this.conv && history.id === this.conv) {
          this.after = history.after || 0;
          this.language = history.language || null;
          this.handoff = history.handoff || 'bot';
          this.ingest(history.messages || []);
        }
        // Stored unsent messages go first; any typed before this ran follow them.
        const stored = read('outbox', []);
        const ids = new Set(stored.map((i) => i.id));
        this.outbox = [...stored, ...this.outbox.filter((i) => !ids.has(i.id))];
        for (const item of this.outbox) this.renderPending(item);
        // Pending bubbles after every confirmed message, in the outbox's order.
        for (const item of this.outbox) this.$.log.append(this.pendingEl(item.id));
      }
      this.loaded = true;
      this.save();
      this.render();
      this.refreshReplies();
      if (this.conv) await this.sync();
      this.flush();
      this.schedule(POLL_FIRST);
    })();
    return this.started;
  }

  // One token at a time: concurrent requests wait for the same provider call. A token about to
  // expire is replaced first ({refresh:true}: the provider's cached one is the one expiring), at
  // most once per AHEAD_REFRESH so a provider of short-lived tokens is not called per request.
  getToken(refresh = false) {
    if (this.refreshNext) refresh = true;
    if (!refresh && this.token && expiresSoon(this.token) && Date.now() - this.aheadRefreshAt > AHEAD_REFRESH) {
      this.aheadRefreshAt = Date.now();
      refresh = true;
    }
    if (!refresh && this.token) return Promise.resolve(this.token);
    if (refresh) this.refreshNext = false;
    if (!this.tokenPromise) {
      const fn = this.tokenProvider;
      if (typeof fn !== 'function') return Promise.reject(new NoToken('no token provider'));
      this.tokenPromise = Promise.resolve(fn({ refresh }))
        .then((t) => {
          if (!t || typeof t !== 'string') throw new Error('token provider gave no token');
          // Whose conversation the cache holds (a refresh may be the first token with a subject).
          const sub = subjectOf(t);
          if (sub) this.owner = sub;
          return (this.token = t);
        })
        .finally(() => (this.tokenPromise = null));
    }
    return this.tokenPromise;
  }

  // A request with the site's JWT; after a 401 the provider is asked for a fresh one
  // ({refresh:true}) and the request is made once more. A network error while the browser says
  // it is online may be a 401 without CORS headers (API Gateway's JWT authorizer): the request
  // after it (the caller's retry) asks for a fresh token first, at most once per BLIND_REFRESH.
  async api(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      const token = await this.getToken(attempt > 0);
      const headers = { authorization: `Bearer ${token}` };
      if (body) headers['content-type'] = 'application/json';
      let res;
      try {
        res = await fetch(this.base + path, {
          method, headers, body: body && JSON.stringify(body), credentials: 'omit', cache: 'no-store',
          signal: AbortSignal.timeout(TIMEOUT),
        });
      } catch (e) {
        // fetch's network failures (CORS refusals included) are TypeErrors; a timeout is not.
        if (e instanceof TypeError && navigator.onLine && Date.now() - this.blindRefreshAt > BLIND_REFRESH) {
          this.blindRefreshAt = Date.now();
          this.refreshNext = true;
        }
        throw e;
      }
      if (res.status === 401 && attempt === 0) continue;
      if (res.status === 429) {
        const secs = Number(res.headers.get('retry-after'));
        throw new RetryLater((Number.isFinite(secs) && secs > 0 ? secs : 5) * 1000, 'slow');
      }
      return res;
    }
  }

  setStatus(key) {
    this.statusKey = key || this.handoffKey();
    if (this.$) this.$.status.textContent = this.statusKey ? this.t(this.statusKey) : '';
  }

  handoffKey() {
    return ['waiting', 'with_agent', 'resolved'].includes(this.handoff) ? this.handoff : null;
  }

  showTyping() {
    this.$.typing.hidden = !(this.inflight > 0 || this.working);
  }

  save() {
    if (!this.base || !this.loaded) return;
    try {
      if (this.conv) localStorage.setItem(this.key('conversation'), this.conv);
      localStorage.setItem(this.key('history'), JSON.stringify({
        owner: this.owner ?? null, id: this.conv, after: this.after, language: this.language,
        handoff: this.handoff, messages: this.messages.slice(-CACHE_MAX),
      }));
      localStorage.setItem(this.key('outbox'), JSON.stringify(this.outbox));
    } catch {
      // Storage full or refused (private mode): the widget still works for this page's life.
    }
  }

  sendInput() {
    const text = this.$.input.value.trim();
    if (!text) return;
    this.$.input.value = '';
    this.send(text);
  }

  // Queues a message: kept in localStorage until the API has it, retried with the same
  // client_message_id (so a retry after a lost answer stores nothing twice), sent in order.
  send(text, quickReply) {
    const item = { id: crypto.randomUUID(), text };
    if (quickReply != null) item.quick_reply = quickReply;
    this.outbox.push(item);
    this.save();
    this.renderPending(item);
    this.refreshReplies();
    // Until start() has read the stored conversation, only queued: sent then, at its end, into
    // that conversation (flushing now would fix this message's conversation while it is unknown).
    if (!this.started) this.start();
    else if (this.loaded) this.flush();
  }

  async flush() {
    if (this.flushing) return;
    this.flushing = true;
    const gen = this.generation;
    let backoff = 1000;
    try {
      while (this.outbox.length && gen === this.generation) {
        const item = this.outbox[0];
        // Which conversation: fixed at the first attempt, so a retry repeats exactly that request.
        if (!('conv' in item)) {
          item.conv = this.conv;
          this.save();
        }
        const body = { text: item.text, client_message_id: item.id };
        if (item.conv) body.conversation_id = item.conv;
        if (item.quick_reply != null) body.quick_reply = item.quick_reply;
        const lang = this.getAttribute('lang');
        if (lang && !item.conv) body.language = lang.slice(0, 2).toLowerCase();
        this.inflight++;
        this.showTyping();
        let wait = 0;
        try {
          const res = await this.api('POST', '/v1/messages', body);
          if (gen !== this.generation) return;
          if (res.ok) {
            const turn = await res.json();
            this.outbox.shift();
            // A new conversation (the first message, or the old one gone): its seqs start again
            // at 1, so what was read of another one must not count (ingest would drop them as
            // seen, polling would read from the old cursor).
            if (turn.conversation_id !== this.conv) this.switchTo(turn.conversation_id);
            if (turn.language) this.language = turn.language;
            this.ingest([turn.message, ...(turn.replies || [])]);
            this.save();
            this.setStatus(null);
            this.render();
            backoff = 1000;
            this.schedule(POLL_FIRST);
          } else if (res.status >= 500 || res.status === 409 || res.status === 408) {
            wait = backoff; // the API's trouble or a concurrent write: the same request again
          } else if (res.status === 401) {
            // The site's login refused even a fresh token: kept, and sent once a provider works
            // (a new tokenProvider, or the next successful poll: see sync()).
            this.token = null;
            this.started = null;
            this.setStatus('signin');
            return;
          } else if ((res.status === 404 || res.status === 403) && item.conv) {
            // The conversation is gone (erased, expired) or not this user's: start a new one.
            this.forget();
          } else {
            // Refused for good (too long, malformed): saying so beats retrying forever.
            this.outbox.shift();
            this.save();
            const el = this.pendingEl(item.id);
            el?.append(h('span', { class: 'note' }, this.t('failed')));
            el?.removeAttribute('data-pending');
            this.setStatus('rejected');
          }
        } catch (e) {
          if (gen !== this.generation) return;
          if (e instanceof RetryLater) {
            wait = e.ms;
            this.setStatus('slow');
          } else if (e instanceof NoToken) {
            this.setStatus('signin');
            return;
          } else {
            wait = backoff; // network down, DNS, timeout: retried until it goes through
          }
        } finally {
          this.inflight--;
          this.showTyping();
        }
        if (wait) {
          if (this.statusKey !== 'slow') this.setStatus(navigator.onLine ? 'retrying' : 'offline');
          backoff = Math.min(backoff * 2, RETRY_MAX);
          await new Promise((r) => {
            const timer = setTimeout(r, wait);
            this.retryNow = () => {
              clearTimeout(timer);
              r();
            };
          });
          this.retryNow = null;
        }
      }
    } finally {
      this.flushing = false;
      if (gen !== this.generation && this.outbox.length) this.flush();
    }
  }

  // Reads what was written since `after` (deferred answers, refunds, agents), page by page.
  // Resolves true when something new arrived.
  async sync() {
    if (!this.conv || this.syncing) return false;
    this.syncing = true;
    const gen = this.generation;
    let got = false;
    try {
      for (let pages = 0; pages < 50; pages++) {
        const asked = this.after;
        const res = await this.api('GET', `/v1/conversations/${encodeURIComponent(this.conv)}/messages?after=${asked}&limit=${PAGE}`);
        if (gen !== this.generation) return false;
        if (res.status === 404 || res.status === 403) {
          // Not there (erased) or not this user's: forget it rather than poll it forever.
          this.forget();
          return false;
        }
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const page = await res.json();
        this.working = !!page.working;
        if (page.handoff) this.handoff = page.handoff;
        if (page.language) this.language = page.language;
        if (this.ingest(page.messages || [])) got = true;
        // More to read when the server's page was full. Not told by counting messages: a
        // customer's page leaves out agents' internal notes, so a full page may hold fewer.
        // `next_after` is the last seq the server read and seqs only grow, so a full page of
        // PAGE spans at least PAGE seqs (a gap of expired ones costs at most one empty read).
        const next = Number(page.next_after) || 0;
        this.after = Math.max(this.after, next);
        if (!(next > asked && next - asked >= PAGE)) break;
      }
      if (!this.outbox.length || this.statusKey !== 'retrying') this.setStatus(null);
      this.render();
      this.save();
      // The API answered this token: messages left unsent after a refused one go now. Bounded by
      // the polling's pace; a provider that keeps failing fails the poll too, and sends nothing.
      if (this.outbox.length && this.loaded && !this.flushing) this.flush();
    } catch (e) {
      if (e instanceof RetryLater) this.slowUntil = Date.now() + e.ms;
      else if (!this.outbox.length) this.setStatus(navigator.onLine ? null : 'offline');
    } finally {
      this.syncing = false;
      this.showTyping();
    }
    return got;
  }

  // Another conversation from now on: nothing read of the old one counts or stays shown.
  switchTo(id) {
    this.conv = id;
    this.after = 0;
    this.messages = [];
    this.handoff = 'bot';
    this.working = false;
    for (const n of [...this.$.log.children]) if (!n.hasAttribute('data-pending')) n.remove();
  }

  // Drops the conversation (not the unsent messages: they start a new one).
  forget() {
    this.conv = null;
    this.after = 0;
    this.messages = [];
    this.handoff = 'bot';
    this.working = false;
    for (const i of this.outbox) delete i.conv;
    for (const n of [...this.$.log.children]) if (!n.hasAttribute('data-pending')) n.remove();
    localStorage.removeItem(this.key('conversation'));
    this.save();
    this.setStatus(null);
  }

  schedule(delay) {
    clearTimeout(this.pollTimer);
    if (!this.conv || !this.isConnected || document.hidden) return;
    const cap = this.handoff === 'waiting' || this.handoff === 'with_agent' ? POLL_HANDOFF : this.working ? POLL_WORKING : POLL_MAX;
    this.delay = Math.min(delay, cap);
    const wait = Math.max(this.delay, (this.slowUntil || 0) - Date.now());
    this.pollTimer = setTimeout(() => this.poll(), wait);
  }

  // Reads now and plans the next read: back to 1 s when something came, else twice as long.
  async poll() {
    clearTimeout(this.pollTimer);
    if (!this.conv || document.hidden) return;
    const got = await this.sync();
    this.schedule(got ? POLL_FIRST : (this.delay || POLL_FIRST) * 2);
  }

  // Adds messages in seq order (each once); a customer message replaces its pending bubble.
  ingest(list) {
    let added = false;
    for (const m of list) {
      if (!m || typeof m.seq !== 'number' || m.internal) continue;
      if (this.messages.some((x) => x.seq === m.seq)) continue;
      let i = this.messages.length;
      while (i > 0 && this.messages[i - 1].seq > m.seq) i--;
      this.messages.splice(i, 0, m);
      this.after = Math.max(this.after, m.seq);
      const el = this.renderMessage(m);
      if (m.client_message_id) this.pendingEl(m.client_message_id)?.remove();
      const next = [...this.$.log.children].find((n) => (n.dataset.seq ? +n.dataset.seq > m.seq : n.hasAttribute('data-pending')));
      this.$.log.insertBefore(el, next || null);
      added = true;
    }
    if (added) {
      this.refreshReplies();
      this.$.log.scrollTop = this.$.log.scrollHeight;
    }
    return added;
  }

  pendingEl(id) {
    return [...this.$.log.querySelectorAll('.msg[data-pending]')].find((n) => n.dataset.cmid === id);
  }

  renderPending(item) {
    if (this.pendingEl(item.id)) return;
    const el = this.renderMessage({ role: 'customer', text: item.text });
    el.dataset.pending = '';
    el.dataset.cmid = item.id;
    el.append(h('span', { class: 'note' }, this.t('sending')));
    this.$.log.append(el);
    this.$.log.scrollTop = this.$.log.scrollHeight;
  }

  renderMessage(m) {
    const role = ['customer', 'bot', 'agent'].includes(m.role) ? m.role : 'bot';
    const el = h('div', { class: 'msg', 'data-role': role });
    if (m.seq != null) el.dataset.seq = m.seq;
    const who = h('span', { class: 'sr who' }, this.t(role === 'customer' ? 'you' : role) + ': ');
    el.append(who, h('div', { class: 'text' }, ...this.linkify(String(m.text ?? ''), m.links)));
    if (Array.isArray(m.quick_replies) && m.quick_replies.length) {
      const box = h('div', { class: 'quick-replies', role: 'group', 'aria-label': this.t('options') });
      for (const q of m.quick_replies) box.append(h('button', { type: 'button', 'data-value': String(q.value ?? q.label) }, String(q.label ?? q.value)));
      el.append(box);
    }
    return el;
  }

  // Text nodes everywhere; only the http(s) URLs the API listed in `links`, where they occur in
  // the text, become links (the text itself is never parsed as HTML).
  linkify(text, links) {
    const urls = (Array.isArray(links) ? links : []).map((l) => l && String(l.url)).filter((u) => {
      try {
        return /^https?:$/.test(new URL(u).protocol) && text.includes(u);
      } catch {
        return false;
      }
    }).sort((a, b) => b.length - a.length);
    if (!urls.length) return [text];
    const out = [];
    let rest = text;
    while (rest) {
      let at = -1, url = null;
      for (const u of urls) {
        const i = rest.indexOf(u);
        if (i >= 0 && (at < 0 || i < at)) (at = i), (url = u);
      }
      if (at < 0) break;
      if (at) out.push(rest.slice(0, at));
      out.push(h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, url));
      rest = rest.slice(at + url.length);
    }
    if (rest) out.push(rest);
    return out;
  }

  // Only the newest bot message's buttons can be answered, and only until the customer replied;
  // older ones stay in the history, disabled.
  refreshReplies() {
    const msgs = [...this.$.log.children];
    let live = null;
    for (let i = msgs.length - 1; i >= 0 && msgs[i].dataset.role === 'bot'; i--) {
      if (msgs[i].querySelector('.quick-replies')) {
        live = msgs[i];
        break;
      }
    }
    for (const b of this.$.log.querySelectorAll('.quick-replies button')) b.disabled = !live || !live.contains(b);
  }
}

if (!customElements.get('switchboard-chat')) customElements.define('switchboard-chat', SwitchboardChat);
