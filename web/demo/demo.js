// The demo shop's "login": a select of demo customers, each token minted by the local web
// server's /dev/token (a real site returns its own JWT from its own session here).
// `?customer=cust_x` picks another customer (the browser tests use customers of their own).

const chat = document.getElementById('chat');
const select = document.getElementById('customer');
const language = document.getElementById('language');
const params = new URLSearchParams(location.search);
const STORE = 'demo-shop:customer';

let customer = params.get('customer') || localStorage.getItem(STORE) || 'cust_alice';
if (![...select.options].some((o) => o.value === customer)) select.add(new Option(customer, customer));
select.value = customer;
if (params.get('lang')) language.value = params.get('lang');

// The token provider the widget calls: cached until asked to refresh (after a 401).
let cached = null;
async function demoChatToken({ refresh } = {}) {
  if (cached && !refresh) return cached;
  const res = await fetch(`/dev/token?sub=${encodeURIComponent(customer)}`, { cache: 'no-store' });
  if (!res.ok) throw new Error(`login failed: ${res.status}`);
  cached = (await res.json()).token;
  return cached;
}
// Named by the element's token-provider attribute...
window.demoChatToken = demoChatToken;

async function configure() {
  // Where the chat API is: the local stack says (a real site writes its API's URL in the page).
  const config = await (await fetch('/dev/config.json', { cache: 'no-store' })).json();
  if (language.value) chat.setAttribute('lang', language.value);
  chat.setAttribute('api-base', config.chat_url);
  // ...and set as the property, which also starts the widget if it was waiting for a login.
  chat.tokenProvider = demoChatToken;
}

select.addEventListener('change', () => {
  // Logging out: the widget forgets the last customer's conversation and unsent messages.
  chat.reset();
  customer = select.value;
  localStorage.setItem(STORE, customer);
  cached = null;
  chat.tokenProvider = demoChatToken;
});
language.addEventListener('change', () => {
  if (language.value) chat.setAttribute('lang', language.value);
  else chat.removeAttribute('lang');
});
document.getElementById('logout').addEventListener('click', () => {
  chat.reset();
  cached = null;
  chat.tokenProvider = demoChatToken;
});

configure();
