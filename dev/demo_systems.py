#!/usr/bin/env python3
"""A stand-in for a company's own systems, for the local stack and the tests (never deployed).

- Customers (CRM) over REST:  GET /customers/{id}, GET /customers?email=,
                              GET /customers?vendor=stripe&vendor_customer_id=cus_...,
                              GET /customers?phone=%2B14155550101 (E.164; the CRM's numbers are
                              compared by their digits; 400 unless E.164) -> {"customers": [...]}
- Orders over REST:           GET /orders?customer_id=, GET /orders/{id}
- Inventory over GraphQL:     POST /graphql  (product(sku), products)
- Payments over REST:         POST /payments/refunds  (requires Idempotency-Key; a repeated key
                              returns the first answer and refunds nothing more)
- Email over REST:            POST /emails  (requires Idempotency-Key; a repeated key sends nothing)
- A billing page:             GET /billing (where the bot sends customers to update a card)
- The messaging providers' send APIs (credentials from the command line, by default
  dev/channel.py's DEV_CHANNEL_SECRETS and DEV_CHANNEL_IDS), answering and refusing in the
  providers' shapes and within their documented limits:
    WhatsApp Cloud API        POST /whatsapp[/v21.0]/{phone_number_id}/messages (Bearer token;
                              401 without; 400 for another phone_number_id) -> 200
                              {"messaging_product":"whatsapp","contacts":[{input,wa_id}],
                              "messages":[{"id":"wamid..."}]}; text, interactive (button, list)
                              and template messages
    Twilio Messages           POST /twilio[/2010-04-01]/Accounts/{sid}/Messages.json (form; HTTP
                              Basic account SID + auth token, 401 code 20003 without) -> 201 the
                              Message resource {sid:"SM...", status:"queued", to, from, body, ...};
                              From must be the account's number (or whatsapp:+ it)
    Telegram Bot API          POST /telegram/bot{token}/sendMessage (JSON or form; 401
                              {"ok":false,...} for another token) -> {"ok":true,"result":
                              {message_id, from, chat, date, text, reply_markup?}}
- Subscription boxes (the second example bot's own system, examples/bots/subscriptions/):
                              GET /boxes/customers/{id}/subscription (404: none),
                              POST /boxes/subscriptions/{id}/pauses (skips the next box; requires
                              Idempotency-Key; a repeated key answers as the first time and skips
                              nothing more; 409 unless the subscription is ACTIVE)
- Inspection for tests:       GET /_admin/channels/sent?channel=whatsapp|twilio|telegram&to=
                              (both optional; `to` matches a number however written, a Telegram
                              chat id as text) -> {"sent": [{channel, to, from, id, body (the call's
                              fields, parsed), at}], "calls": [{channel, to, status, at, fault?,
                              error?}] (every call, refused and faulted ones too)};
                              DELETE /_admin/channels/sent?channel=&to= forgets those (without a
                              query, all: tests running in parallel clear their own recipient's),
                              GET /_admin/refunds, GET /_admin/emails, GET /health,
                              GET /_admin/boxes (every pause call with its key, the changes
                              made per key, the subscriptions),
                              GET /_admin/inflight (requests a delay fault is holding, with the
                              caller's TCP port, so a test can find the process making them)
- Set-up for tests:           POST /_admin/customers ({id, email, name?, phone?}: a CRM customer of
                              the test's own, so what is sent to the CRM's address stays the
                              test's; `phone` in E.164, none without);
                              POST /_admin/orders (an order of the test's own: {id, customer_id,
                              total_cents?, status?, placed_days_ago?, promised_in_days?,
                              carrier?}: placed 9 days ago, promised 2 days ago, so late and in
                              transit, or `status` "delivered"/"cancelled"; a `carrier` gives it
                              a tracking link as the seeded orders have); POST /_admin/refunds/forget ({order_id}:
                              the payments API forgets the idempotency keys of that order's
                              refunds, as Stripe does after 24 hours; the refunds stay listed);
                              POST /_admin/faults ({path, match?, status?, delay_ms?, times?,
                              for_ms?, retry_after?}): the next `times` POSTs to `path` whose JSON body
                              contains `match` (GETs of /orders...: whose query does) wait `delay_ms`, then
                              answer `status` (if set) instead of doing their work; with `for_ms`,
                              every such request for that long instead (a system down for a while);
                              the answer holds the fault's `id`, and DELETE /_admin/faults/{id} disarms it;
                              a provider's send (after its credentials are checked) matches on its
                              fields (JSON or form; values compared as text) and its exact path or
                              "/whatsapp", "/twilio", "/telegram" for any of that channel's sends,
                              and answers in the provider's error shape (a 429 with Retry-After:
                              `retry_after`, default 1 second, which Telegram also puts in its body);
                              POST /_admin/boxes/subscriptions ({id, customer_id, state?}: a
                              subscription of the test's own, ACTIVE unless `state` says)

Dates are seeded relative to start-up, so some orders are always late.
"""

import argparse
import base64
import hmac
import json
import math
import os
import re
import secrets
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlparse

import graphql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The channels' dev credentials and ids: what dev/channel.py signs with and the stack configures.
from channel import DEV_CHANNEL_IDS, DEV_CHANNEL_SECRETS  # noqa: E402


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(now):
    day = timedelta(days=1)
    customers = [
        {"id": "cust_alice", "name": "Alice Martin", "email": "alice@example.com", "email_verified": True, "phone": "+1 415 555 0101",
         "vendor_ids": {"stripe": "cus_alice01", "billing": "acct_alice"}},
        {"id": "cust_bob", "name": "Bob Chen", "email": "bob@example.com", "email_verified": True, "phone": "+1 415 555 0102",
         "vendor_ids": {"stripe": "cus_bob02"}},
        {"id": "cust_carol", "name": "Carol Diaz", "email": "carol@example.com", "email_verified": True, "phone": "+1 415 555 0103",
         "vendor_ids": {"stripe": "cus_carol03"}},
        {"id": "cust_dave", "name": "Dave Okafor", "email": "dave@example.com", "email_verified": True, "phone": "+1 415 555 0104",
         "vendor_ids": {}},
        # Erin and Frank are what vendors' webhooks are about in the tests (nobody else chats as them).
        {"id": "cust_erin", "name": "Erin Novak", "email": "erin@example.com", "email_verified": True, "phone": "+1 415 555 0105",
         "vendor_ids": {"stripe": "cus_erin05", "billing": "acct_erin"}},
        {"id": "cust_frank", "name": "Frank Ito", "email": "frank@example.com", "email_verified": True, "phone": "+1 415 555 0106",
         "vendor_ids": {"billing": "acct_frank"}},
        # Gina signed up but never confirmed her address: no vendor event may be routed to her by
        # it (someone else can type it at a payment provider).
        {"id": "cust_gina", "name": "Gina Park", "email": "gina@example.com", "email_verified": False,
         "phone": "+1 415 555 0107", "vendor_ids": {}},
        # Hana gave no phone number: a message from any number is nobody's in the CRM.
        {"id": "cust_hana", "name": "Hana Weber", "email": "hana@example.com", "email_verified": True, "phone": None,
         "vendor_ids": {}},
    ]

    def order(oid, cust, status, placed_days_ago, promised_in_days, total, items, carrier="UPS", delivered_days_ago=None):
        o = {
            "id": oid,
            "customer_id": cust,
            "status": status,
            "placed_at": iso(now - placed_days_ago * day),
            "promised_by": iso(now + promised_in_days * day),
            "delivered_at": iso(now - delivered_days_ago * day) if delivered_days_ago is not None else None,
            "carrier": carrier if status != "processing" else None,
            "tracking_url": f"https://track.example.com/{carrier.lower()}/1Z{oid}" if status != "processing" else None,
            "total": {"amount_cents": total, "currency": "USD"},
            "items": items,
        }
        return o

    orders = [
        # Alice: two recent orders, one on time and one late -> "which order?" then a refund offer.
        order("1001", "cust_alice", "in_transit", 3, 2, 2999, [{"name": "Wireless Mouse", "quantity": 1}]),
        order("1002", "cust_alice", "in_transit", 12, -4, 4599,
              [{"name": "Noise-Cancelling Headphones", "quantity": 1}, {"name": "USB-C Cable", "quantity": 2}],
              carrier="FedEx"),
        order("0987", "cust_alice", "delivered", 200, -190, 1250, [{"name": "Phone Case", "quantity": 1}],
              delivered_days_ago=191),
        # Bob: one late order -> answered directly with a refund offer.
        order("1003", "cust_bob", "in_transit", 9, -2, 8900, [{"name": "Espresso Grinder", "quantity": 1}]),
        # Carol: delivered, and one still being prepared.
        order("1004", "cust_carol", "delivered", 10, -5, 1999, [{"name": "Yoga Mat", "quantity": 1}],
              delivered_days_ago=6),
        order("1005", "cust_carol", "processing", 1, 5, 3450, [{"name": "Desk Lamp", "quantity": 1}]),
        order("1006", "cust_erin", "in_transit", 2, 3, 1599, [{"name": "Water Bottle", "quantity": 1}]),
        order("1007", "cust_frank", "processing", 1, 4, 6400, [{"name": "Running Shoes", "quantity": 1}]),
    ]
    products = [
        # Prices as many shops' APIs send them: a decimal string and its currency.
        {"sku": "MOUSE-01", "name": "Wireless Mouse", "available": 42,
         "price": {"amount": "24.99", "currencyCode": "USD"}},
        {"sku": "HEAD-02", "name": "Noise-Cancelling Headphones", "available": 0,
         "price": {"amount": "89.00", "currencyCode": "USD"}},
        {"sku": "LAMP-03", "name": "Desk Lamp", "available": 7,
         "price": {"amount": "34.50", "currencyCode": "USD"}},
    ]
    return customers, orders, products


def subscription(sid, customer_id, state, now, plan="Veggie box for two", price="39.90", days=5):
    return {
        "id": sid, "customer_id": customer_id, "state": state,
        "plan": {"name": plan, "price": price, "currency": "USD"},
        "next_delivery": iso(now + timedelta(days=days)) if state == "ACTIVE" else None,
        "skipped": 0, "gift": False,
    }


def seed_subscriptions(now):
    return [
        subscription("sub_alice", "cust_alice", "ACTIVE", now),
        subscription("sub_bob", "cust_bob", "PAUSED", now, plan="Family box", price="69.00"),
        subscription("sub_carol", "cust_carol", "CANCELLED", now),
    ]


SCHEMA = graphql.build_schema(
    """
    type Money { amount: String!, currencyCode: String! }
    type Product { sku: String!, name: String!, available: Int!, price: Money }
    type Query { product(sku: String!): Product, products: [Product!]! }
    """
)


# --- The messaging providers' send APIs ------------------------------------------------------
# Stand-ins for WhatsApp Cloud API's POST /{phone_number_id}/messages, Twilio's
# POST /2010-04-01/Accounts/{sid}/Messages.json and Telegram's POST /bot{token}/sendMessage:
# they check the credentials and the limits the providers document, record what was accepted,
# and answer (or fail) in the providers' own shapes, so the functions' senders meet real forms.

class ChannelSettings:
    """The credentials and business addresses the stand-ins accept (the dev ones by default)."""

    def __init__(self, whatsapp_access_token=DEV_CHANNEL_SECRETS["whatsapp_access_token"],
                 whatsapp_phone_number_ids=(DEV_CHANNEL_IDS["whatsapp_phone_number_id"],),
                 twilio_account_sid=DEV_CHANNEL_SECRETS["twilio_account_sid"],
                 twilio_auth_token=DEV_CHANNEL_SECRETS["twilio_auth_token"],
                 twilio_numbers=(DEV_CHANNEL_IDS["twilio_number"],),
                 telegram_bot_token=DEV_CHANNEL_SECRETS["telegram_bot_token"]):
        self.whatsapp_access_token = whatsapp_access_token
        self.whatsapp_phone_number_ids = set(whatsapp_phone_number_ids)
        self.twilio_account_sid = twilio_account_sid
        self.twilio_auth_token = twilio_auth_token
        self.twilio_numbers = set(twilio_numbers)
        self.telegram_bot_token = telegram_bot_token


CHANNEL_ROUTES = [
    # The real bases: https://graph.facebook.com/v21.0, https://api.twilio.com/2010-04-01 and
    # https://api.telegram.org; here {demo}/whatsapp (a version segment may follow),
    # {demo}/twilio (the 2010-04-01 segment may follow) and {demo}/telegram.
    ("whatsapp", re.compile(r"/whatsapp(?:/v\d+\.\d+)?/([^/]+)/messages")),
    ("twilio", re.compile(r"/twilio(?:/2010-04-01)?/Accounts/([^/]+)/Messages\.json")),
    ("telegram", re.compile(r"/telegram/bot([^/]+)/sendMessage")),
]


def channel_route(path):
    """(channel, the id in the path) of a send call, or None."""
    for channel, pattern in CHANNEL_ROUTES:
        m = pattern.fullmatch(path)
        if m:
            return channel, m.group(1)
    return None


def same_secret(given, expected):
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def provider_error(channel, status, message, code=None, retry_after=None):
    """(status, body, headers) of a failure as the provider words it."""
    headers = {"Retry-After": str(retry_after)} if status == 429 and retry_after else {}
    if channel == "whatsapp":
        # Graph API errors: {"error": {message, type, code, error_data?, fbtrace_id}}.
        code = code or {429: 130429, 401: 190}.get(status, 131000 if status >= 500 else 100)
        error = {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code,
                 "fbtrace_id": secrets.token_urlsafe(16)}
        if code not in (190, 2500):
            error["error_data"] = {"messaging_product": "whatsapp", "details": message}
        return status, {"error": error}, headers
    if channel == "twilio":
        # Twilio REST errors: {code, message, more_info, status}.
        code = code or {401: 20003, 404: 20404, 429: 20429}.get(status, 20500 if status >= 500 else 21000)
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status}, headers
    # Telegram: {ok: false, error_code, description, parameters?}.
    body = {"ok": False, "error_code": status, "description": message}
    if status == 429:
        body["parameters"] = {"retry_after": retry_after or 1}
    return status, body, headers


FAULT_WORDS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
               503: "Service Unavailable", 504: "Gateway Timeout"}


def fault_error(channel, status, retry_after):
    words = FAULT_WORDS.get(status, "injected fault")
    if channel == "telegram" and status == 429:
        words = f"Too Many Requests: retry after {retry_after}"
    elif channel == "whatsapp" and status == 429:
        words = "Rate limit hit"
    return provider_error(channel, status, words, retry_after=retry_after)


class Refused(Exception):
    """A send the provider refuses: (status, message, provider's code)."""

    def __init__(self, status, message, code=None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def whatsapp_check(body):
    """Refuses what the Cloud API refuses of a text, interactive or template message."""
    def bad(message, code=131009):
        raise Refused(400, message, code)

    if body.get("messaging_product") != "whatsapp":
        bad("The parameter messaging_product is required and must be 'whatsapp'.", 100)
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        bad("The parameter to is required.", 100)
    kind = body.get("type", "text")
    if kind == "text":
        text = (body.get("text") or {}).get("body") if isinstance(body.get("text"), dict) else None
        if not isinstance(text, str) or not text:
            bad("The parameter text['body'] is required.", 100)
        if len(text) > 4096:
            bad("Param text['body'] must be at most 4096 characters long.")
    elif kind == "interactive":
        i = body.get("interactive")
        if not isinstance(i, dict):
            bad("The parameter interactive is required.", 100)
        text = (i.get("body") or {}).get("text") if isinstance(i.get("body"), dict) else None
        if not isinstance(text, str) or not text:
            bad("The parameter interactive['body']['text'] is required.", 100)
        if len(text) > 1024:
            bad("Param interactive['body']['text'] must be at most 1024 characters long.")
        action = i.get("action") if isinstance(i.get("action"), dict) else {}
        if i.get("type") == "button":
            buttons = action.get("buttons")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
                bad("Param interactive['action']['buttons'] must have 1 to 3 buttons.")
            ids, titles = set(), set()
            for b in buttons:
                reply = b.get("reply") if isinstance(b, dict) and b.get("type") == "reply" else None
                if not isinstance(reply, dict):
                    bad("Each button must be {type: 'reply', reply: {id, title}}.")
                bid, title = reply.get("id"), reply.get("title")
                if not isinstance(bid, str) or not 1 <= len(bid) <= 256:
                    bad("A button's reply id must be 1 to 256 characters long.")
                if not isinstance(title, str) or not 1 <= len(title) <= 20:
                    bad("A button's title must be 1 to 20 characters long.")
                if bid in ids or title in titles:
                    bad("Buttons' ids and titles must be unique.")
                ids.add(bid)
                titles.add(title)
        elif i.get("type") == "list":
            label = action.get("button")
            if not isinstance(label, str) or not 1 <= len(label) <= 20:
                bad("Param interactive['action']['button'] must be 1 to 20 characters long.")
            sections = action.get("sections")
            if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
                bad("Param interactive['action']['sections'] must have 1 to 10 sections.")
            rows = []
            for sec in sections:
                if not isinstance(sec, dict) or not isinstance(sec.get("rows"), list) or not sec["rows"]:
                    bad("Each section must have rows.")
                title = sec.get("title")
                if len(sections) > 1 and not title:
                    bad("Sections need titles when there are several.")
                if title is not None and (not isinstance(title, str) or len(title) > 24):
                    bad("A section's title must be at most 24 characters long.")
                rows += sec["rows"]
            if len(rows) > 10:
                bad("A list may have at most 10 rows in all.")
            ids = set()
            for r in rows:
                rid, title = (r.get("id"), r.get("title")) if isinstance(r, dict) else (None, None)
                if not isinstance(rid, str) or not 1 <= len(rid) <= 200:
                    bad("A row's id must be 1 to 200 characters long.")
                if not isinstance(title, str) or not 1 <= len(title) <= 24:
                    bad("A row's title must be 1 to 24 characters long.")
                if len(r.get("description") or "") > 72:
                    bad("A row's description must be at most 72 characters long.")
                if rid in ids:
                    bad("Rows' ids must be unique.")
                ids.add(rid)
        else:
            bad("Param interactive['type'] must be button or list here (the stand-in's).", 100)
    elif kind == "template":
        t = body.get("template")
        lang = t.get("language") if isinstance(t, dict) else None
        if not isinstance(t, dict) or not t.get("name") or not isinstance(lang, dict) or not lang.get("code"):
            bad("The parameter template requires name and language.code.", 100)
    else:
        bad(f"Param type '{kind}' is not one the stand-in takes (text, interactive, template).", 100)


def twilio_segments(text):
    """How many SMS segments a body takes: GSM-7 160 (153 when split), UCS-2 70 (67)."""
    if not text:
        return 1
    single, part = (160, 153) if all(ord(c) < 128 for c in text) else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / part)


E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def twilio_check(form, numbers):
    for name in ("To", "From", "Body"):
        if isinstance(form.get(name), list):
            raise Refused(400, f"'{name}' is given more than once.", 21000)
    to, sender, body = form.get("To"), form.get("From"), form.get("Body")
    if not to:
        raise Refused(400, "A 'To' phone number is required.", 21604)
    if not sender and not form.get("MessagingServiceSid"):
        raise Refused(400, "A 'From' phone number is required.", 21603)
    if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
        raise Refused(400, "Message body is required.", 21602)
    if body and len(body) > 1600:
        raise Refused(400, "The concatenated message body exceeds the 1600 character limit.", 21617)
    to_whatsapp = to.startswith("whatsapp:")
    if not E164.fullmatch(to.removeprefix("whatsapp:")):
        raise Refused(400, f"The 'To' number {to} is not a valid phone number.", 21211)
    if sender:
        if to_whatsapp != sender.startswith("whatsapp:"):
            raise Refused(400, "Invalid From and To pair. From and To should be of the same channel.", 21910)
        if sender.removeprefix("whatsapp:") not in numbers:
            if to_whatsapp:
                raise Refused(400, "Twilio could not find a Channel with the specified From address", 63007)
            raise Refused(400, f"The From phone number {sender} is not a valid, SMS-capable inbound phone number "
                               "or short code for your account.", 21606)


def telegram_check(fields):
    chat_id = fields.get("chat_id")
    if chat_id is None or chat_id == "":
        raise Refused(400, "Bad Request: chat_id is empty")
    if not re.fullmatch(r"-?[0-9]{1,20}|@[A-Za-z0-9_]{5,32}", str(chat_id)):
        raise Refused(400, "Bad Request: chat not found")
    text = fields.get("text")
    if not isinstance(text, str) or not text.strip():
        raise Refused(400, "Bad Request: message text is empty")
    if len(text) > 4096:
        raise Refused(400, "Bad Request: message is too long")
    markup = fields.get("reply_markup")
    if isinstance(markup, str):  # form-encoded calls send it as JSON text
        try:
            markup = json.loads(markup)
        except ValueError:
            raise Refused(400, "Bad Request: can't parse reply keyboard markup JSON object")
        fields["reply_markup"] = markup
    if markup is not None:
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise Refused(400, "Bad Request: can't parse inline keyboard button: InlineKeyboardMarkup expected")
        for button in (b for r in rows for b in r):
            if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
                raise Refused(400, "Bad Request: can't parse inline keyboard button: Text buttons are unallowed "
                                   "in the inline keyboard")
            data = button.get("callback_data")
            if data is None and not button.get("url"):
                raise Refused(400, "Bad Request: can't parse inline keyboard button: Text buttons are unallowed "
                                   "in the inline keyboard")
            if data is not None and (not isinstance(data, str) or not 1 <= len(data.encode()) <= 64):
                raise Refused(400, "Bad Request: BUTTON_DATA_INVALID")


def same_recipient(channel, recorded, wanted):
    """Whether a recorded `to` is the one asked for: a phone number in any of its writings
    (with or without "+", Twilio's "whatsapp:" prefix); a Telegram chat id as text."""
    if channel == "telegram":
        return str(recorded) == str(wanted)
    digits = re.sub(r"[^0-9]", "", str(recorded).removeprefix("whatsapp:"))
    return bool(digits) and digits == re.sub(r"[^0-9]", "", str(wanted).removeprefix("whatsapp:"))


class Systems:
    def __init__(self):
        self.customers, self.orders, self.products = seed(datetime.now(timezone.utc))
        self.subscriptions = seed_subscriptions(datetime.now(timezone.utc))
        self.box_calls = []  # every POST .../pauses: {idempotency_key, path, body}
        self.box_pauses_by_key = {}  # Idempotency-Key -> the answer of the change it made
        self.box_changes = {}  # Idempotency-Key -> changes made with it (exactly once: 1)
        self.lock = threading.Lock()
        self.refunds_by_key = {}  # Idempotency-Key -> (request fingerprint, response)
        self.refunds_forgotten = []  # refunds whose keys were forgotten (POST /_admin/refunds/forget)
        self.refund_calls = []  # every POST /payments/refunds, for tests counting calls
        self.emails_by_key = {}  # Idempotency-Key -> the email sent
        self.email_calls = []
        self.faults = []  # armed by tests through POST /_admin/faults
        self.inflight = {}  # id -> a request a delay fault is holding
        self.channels = ChannelSettings()  # the providers' credentials the stand-ins check (main sets them)
        self.channel_sent = []  # messages the providers' stand-ins accepted, in order
        self.channel_calls = []  # every call to them, refused or faulted ones too
        self.telegram_message_ids = {}  # chat id -> the last message_id the bot sent there

    def take_fault(self, path, body, loose=False):
        """Uses up one arming of the first fault for this request, or returns None. `loose`
        compares values as text (a Telegram chat_id is a number or its digits)."""
        def same(a, b):
            return a == b or (loose and a is not None and str(a) == str(b))

        with self.lock:
            now = time.monotonic()
            for f in self.faults:
                if f["path"] != path or not all(same(body.get(k), v) for k, v in f["match"].items()):
                    continue
                if f["until"] is not None:
                    if now < f["until"]:
                        return dict(f)
                elif f["times"] > 0:
                    f["times"] -= 1
                    return dict(f)
        return None

    def graphql_root(self):
        products = self.products
        return {
            "product": lambda info, sku: next((p for p in products if p["sku"] == sku), None),
            "products": lambda info: products,
        }


class Handler(BaseHTTPRequestHandler):
    systems: Systems = None
    server_version = "demo-systems/1"

    def log_message(self, fmt, *args):  # quiet: the launcher shows our own lines only
        pass

    def send_json(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1 << 20:
            raise ValueError("body too large")
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")

    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query)
        s = self.systems
        if url.path == "/health":
            return self.send_json(200, {"ok": True})
        if url.path.startswith("/orders"):
            # A slow order system for latency-budget tests: faults match on the query's values.
            fault = s.take_fault(url.path, {k: v[0] for k, v in q.items()})
            if fault:
                time.sleep(fault["delay_ms"] / 1000)
                if fault["status"]:
                    return self.send_json(int(fault["status"]), {"error": "injected fault"})
        if url.path == "/customers":
            vendor = (q.get("vendor") or [None])[0]
            phone = (q.get("phone") or [None])[0]
            if vendor:
                vid = (q.get("vendor_customer_id") or [""])[0]
                found = [c for c in s.customers if c["vendor_ids"].get(vendor) == vid]
            elif phone is not None:
                if not E164.fullmatch(phone):
                    # An unescaped "+" in a query string reads as a space.
                    hint = " (send '+' as %2B)" if phone.startswith(" ") else ""
                    return self.send_json(400, {"error": f"phone is E.164, e.g. +14155550101{hint}"})
                # The CRM keeps numbers as they were typed ("+1 415 555 0101"): compared by digits.
                with s.lock:
                    found = [c for c in s.customers
                             if c.get("phone") and "+" + re.sub(r"[^0-9]", "", c["phone"]) == phone]
            else:
                email = (q.get("email") or [""])[0].lower()
                found = [c for c in s.customers if c["email"] == email]
            return self.send_json(200, {"customers": found})
        if url.path == "/billing":
            return self.send_json(200, {"page": "billing portal (demo): update your payment method here"})
        m = re.fullmatch(r"/customers/([^/]+)", url.path)
        if m:
            c = next((c for c in s.customers if c["id"] == m.group(1)), None)
            return self.send_json(200, c) if c else self.send_json(404, {"error": "no such customer"})
        if url.path == "/orders":
            cust = (q.get("customer_id") or [None])[0]
            if not cust:
                return self.send_json(400, {"error": "customer_id is required"})
            return self.send_json(200, {"orders": [o for o in s.orders if o["customer_id"] == cust]})
        m = re.fullmatch(r"/orders/([^/]+)", url.path)
        if m:
            o = next((o for o in s.orders if o["id"] == m.group(1)), None)
            return self.send_json(200, o) if o else self.send_json(404, {"error": "no such order"})
        if url.path == "/_admin/emails":
            with s.lock:
                return self.send_json(200, {"calls": s.email_calls, "sent": list(s.emails_by_key.values())})
        if url.path == "/_admin/channels/sent":
            records, error = self.channel_records(q)
            return self.send_json(400, {"error": error}) if error else self.send_json(200, records)
        if url.path == "/_admin/inflight":
            with s.lock:
                return self.send_json(200, {"requests": list(s.inflight.values())})
        if url.path == "/_admin/boxes":
            with s.lock:
                return self.send_json(200, {"calls": s.box_calls, "changes": s.box_changes,
                                            "subscriptions": s.subscriptions})
        m = re.fullmatch(r"/boxes/customers/([^/]+)/subscription", url.path)
        if m:
            with s.lock:
                sub = next((x for x in s.subscriptions if x["customer_id"] == m.group(1)), None)
            return self.send_json(200, {"subscription": sub}) if sub else self.send_json(404, {"error": "no subscription"})
        if url.path == "/_admin/refunds":
            with s.lock:
                return self.send_json(200, {
                    "calls": s.refund_calls,
                    "refunds": s.refunds_forgotten + [r for _, r in s.refunds_by_key.values()],
                })
        return self.send_json(404, {"error": f"no route {url.path}"})

    def do_DELETE(self):
        url = urlparse(self.path)
        s = self.systems
        if url.path == "/_admin/channels/sent":
            records, error = self.channel_records(parse_qs(url.query), remove=True)
            if error:
                return self.send_json(400, {"error": error})
            return self.send_json(200, {"cleared": len(records["sent"]), "cleared_calls": len(records["calls"])})
        prefix = "/_admin/faults/"
        if not url.path.startswith(prefix):
            return self.send_json(404, {"error": f"no route {url.path}"})
        fault_id = url.path[len(prefix):]
        with s.lock:
            kept = [f for f in s.faults if f["id"] != fault_id]
            found = len(kept) != len(s.faults)
            s.faults = kept
        if not found:
            return self.send_json(404, {"error": f"no fault {fault_id}"})
        return self.send_json(200, {"deleted": fault_id})

    def do_POST(self):
        url = urlparse(self.path)
        s = self.systems
        route = channel_route(url.path)
        if route:
            return self.channel_send(url.path, *route)
        try:
            body = self.read_json()
        except ValueError as e:
            return self.send_json(400, {"error": f"invalid JSON: {e}"})
        if url.path == "/_admin/orders":
            return self.add_order(body)
        if url.path == "/_admin/customers":
            return self.add_customer(body)
        if url.path == "/_admin/refunds/forget":
            order_id = body.get("order_id")
            if not isinstance(order_id, str):
                return self.send_json(400, {"error": "order_id (string) is expected"})
            with s.lock:
                keys = [k for k, (_, r) in s.refunds_by_key.items() if r["order_id"] == order_id]
                for k in keys:
                    s.refunds_forgotten.append(s.refunds_by_key.pop(k)[1])
            return self.send_json(200, {"forgotten": keys})
        if url.path == "/_admin/boxes/subscriptions":
            if not isinstance(body.get("id"), str) or not isinstance(body.get("customer_id"), str):
                return self.send_json(400, {"error": "id and customer_id (strings) are required"})
            state = body.get("state") or "ACTIVE"
            if state not in ("ACTIVE", "PAUSED", "CANCELLED"):
                return self.send_json(400, {"error": "state is ACTIVE, PAUSED or CANCELLED"})
            sub = subscription(body["id"], body["customer_id"], state, datetime.now(timezone.utc))
            with s.lock:
                if any(x["id"] == sub["id"] or x["customer_id"] == sub["customer_id"] for x in s.subscriptions):
                    return self.send_json(409, {"error": "a subscription with this id or customer exists"})
                s.subscriptions.append(sub)
            return self.send_json(201, sub)
        if url.path == "/_admin/faults":
            for_ms = body.get("for_ms")
            fault = {"path": body.get("path"), "match": body.get("match") or {}, "status": body.get("status"),
                     "delay_ms": int(body.get("delay_ms") or 0), "times": int(body.get("times") or 1),
                     "until": time.monotonic() + int(for_ms) / 1000 if for_ms is not None else None,
                     "retry_after": int(body.get("retry_after") or 1), "id": uuid.uuid4().hex}
            if not isinstance(fault["path"], str) or not isinstance(fault["match"], dict):
                return self.send_json(400, {"error": "path (string) and match (object) are expected"})
            with s.lock:
                s.faults.append(fault)
            return self.send_json(201, fault)
        fault = s.take_fault(url.path, body)
        if fault:
            self.hold(fault, url.path, body)
            if fault["status"]:
                with s.lock:
                    calls = s.refund_calls if url.path == "/payments/refunds" else s.email_calls
                    calls.append({"idempotency_key": self.headers.get("Idempotency-Key"), "body": body,
                                  "fault": fault["status"], "to": body.get("to")})
                return self.send_json(int(fault["status"]), {"error": "injected fault"})
        if url.path == "/graphql":
            result = graphql.graphql_sync(
                SCHEMA, body.get("query", ""), root_value=s.graphql_root(),
                variable_values=body.get("variables"), operation_name=body.get("operationName"),
            )
            out = {"data": result.data}
            if result.errors:
                out["errors"] = [{"message": e.message} for e in result.errors]
            return self.send_json(200, out)
        if url.path == "/emails":
            key = self.headers.get("Idempotency-Key")
            with s.lock:
                s.email_calls.append({"idempotency_key": key, "to": body.get("to")})
                if not key:
                    return self.send_json(400, {"error": "Idempotency-Key header is required"})
                if not body.get("to") or not body.get("subject"):
                    return self.send_json(400, {"error": "to and subject are required"})
                if key not in s.emails_by_key:
                    s.emails_by_key[key] = {"id": "em_" + uuid.uuid4().hex[:12], "to": body["to"],
                                            "subject": body["subject"], "text": body.get("text", "")}
                return self.send_json(202, s.emails_by_key[key])
        m = re.fullmatch(r"/boxes/subscriptions/([^/]+)/pauses", url.path)
        if m:
            return self.pause_box(m.group(1), body)
        if url.path == "/payments/refunds":
            key = self.headers.get("Idempotency-Key")
            with s.lock:
                s.refund_calls.append({"idempotency_key": key, "body": body})
                if not key:
                    return self.send_json(400, {"error": "Idempotency-Key header is required"})
                fingerprint = json.dumps(body, sort_keys=True)
                if key in s.refunds_by_key:
                    first, response = s.refunds_by_key[key]
                    if first != fingerprint:
                        return self.send_json(422, {"error": "Idempotency-Key reused with a different request"})
                    return self.send_json(200, response, {"Idempotent-Replayed": "true"})
                order = next((o for o in s.orders if o["id"] == body.get("order_id")), None)
                if order is None:
                    return self.send_json(404, {"error": "no such order"})
                amount = body.get("amount") or order["total"]
                if amount.get("amount_cents", 0) > order["total"]["amount_cents"]:
                    return self.send_json(400, {"error": "refund exceeds the order total"})
                response = {"id": "re_" + uuid.uuid4().hex[:16], "status": "succeeded", "amount": amount,
                            "order_id": order["id"]}
                s.refunds_by_key[key] = (fingerprint, response)
                return self.send_json(200, response)
        return self.send_json(404, {"error": f"no route {url.path}"})

    def hold(self, fault, path, body):
        """Waits a delay fault's time, listed in /_admin/inflight meanwhile."""
        s = self.systems
        held = uuid.uuid4().hex
        with s.lock:
            s.inflight[held] = {"path": path, "body": body, "peer_port": self.client_address[1]}
        try:
            time.sleep(fault["delay_ms"] / 1000)
        finally:
            with s.lock:
                s.inflight.pop(held, None)

    def channel_send(self, path, channel, path_id):
        """A provider's send API: credentials, then faults, then the provider's own checks; what
        it accepts is recorded for GET /_admin/channels/sent."""
        s = self.systems
        cfg = s.channels
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1 << 20:
            return self.send_json(*provider_error(channel, 413, "Request entity too large")[:2])
        raw = self.rfile.read(length) if length else b""
        json_body = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() == "application/json"
        try:
            if channel == "twilio" or (channel == "telegram" and not json_body):
                # Twilio takes forms only; Telegram forms or JSON (and the query's fields).
                pairs = parse_qsl(raw.decode(), keep_blank_values=True)
                if channel == "telegram":
                    pairs = parse_qsl(urlparse(self.path).query, keep_blank_values=True) + pairs
                fields = {}
                for k, v in pairs:
                    fields.setdefault(k, []).append(v)
                fields = {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
            else:
                fields = json.loads(raw or b"{}")
                if not isinstance(fields, dict):
                    raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            fields = None
        to = fields.get({"whatsapp": "to", "twilio": "To", "telegram": "chat_id"}[channel]) if fields else None
        # The credentials first, as the providers do (the recipient is noted for the inspection).
        refused = self.channel_refusal(channel, cfg, path_id)
        if refused:
            return self.channel_answer(channel, to, *refused)
        if fields is None:
            words = "Bad Request: can't parse JSON object" if channel == "telegram" else "Invalid request body"
            status, body, headers = provider_error(channel, 400, words)
            return self.channel_answer(channel, None, status, body, headers)
        # A fault armed for this exact path, or for every send of the channel ("/whatsapp",
        # "/twilio", "/telegram": no id or token to know).
        fault = (s.take_fault(path, fields, loose=True) or s.take_fault(f"/{channel}", fields, loose=True))
        if fault:
            self.hold(fault, path, fields)
            if fault["status"]:
                status, body, headers = fault_error(channel, int(fault["status"]), fault["retry_after"])
                return self.channel_answer(channel, to, status, body, headers, fault=True)
        try:
            if channel == "whatsapp":
                whatsapp_check(fields)
            elif channel == "twilio":
                twilio_check(fields, cfg.twilio_numbers)
            else:
                telegram_check(fields)
        except Refused as e:
            return self.channel_answer(channel, to, *provider_error(channel, e.status, e.message, e.code))

        now = datetime.now(timezone.utc)
        if channel == "whatsapp":
            message_id = "wamid." + base64.b64encode(secrets.token_bytes(30)).decode()
            status, answer = 200, {"messaging_product": "whatsapp",
                                   "contacts": [{"input": to, "wa_id": re.sub(r"[^0-9]", "", to)}],
                                   "messages": [{"id": message_id}]}
            business = path_id
        elif channel == "twilio":
            message_id = ("MM" if fields.get("MediaUrl") else "SM") + secrets.token_hex(16)
            created = format_datetime(now, usegmt=True).replace("GMT", "+0000")
            body_text = fields.get("Body") or ""
            status, answer = 201, {
                "account_sid": path_id, "api_version": "2010-04-01", "body": body_text,
                "date_created": created, "date_sent": None, "date_updated": created,
                "direction": "outbound-api", "error_code": None, "error_message": None,
                "from": fields.get("From"), "messaging_service_sid": fields.get("MessagingServiceSid"),
                "num_media": "1" if fields.get("MediaUrl") else "0", "num_segments": str(twilio_segments(body_text)),
                "price": None, "price_unit": "USD", "sid": message_id, "status": "queued",
                "subresource_uris": {"media": f"/2010-04-01/Accounts/{path_id}/Messages/{message_id}/Media.json"},
                "to": to, "uri": f"/2010-04-01/Accounts/{path_id}/Messages/{message_id}.json"}
            business = fields.get("From") or fields.get("MessagingServiceSid")
        else:
            chat = int(to) if re.fullmatch(r"-?[0-9]+", str(to)) else to
            with s.lock:
                message_id = s.telegram_message_ids.get(str(to), 0) + 1
                s.telegram_message_ids[str(to)] = message_id
            bot_id = int(cfg.telegram_bot_token.split(":")[0])
            result = {"message_id": message_id,
                      "from": {"id": bot_id, "is_bot": True, "first_name": "Switchboard (dev)",
                               "username": DEV_CHANNEL_IDS["telegram_bot_username"]},
                      "chat": {"id": chat, "type": "private" if isinstance(chat, int) and chat > 0 else "group"},
                      "date": int(now.timestamp()), "text": fields["text"]}
            if fields.get("reply_markup") is not None:
                result["reply_markup"] = fields["reply_markup"]
            status, answer = 200, {"ok": True, "result": result}
            business = str(bot_id)
        with s.lock:
            s.channel_sent.append({"channel": channel, "to": to, "from": business, "id": str(message_id),
                                   "body": fields, "at": now.isoformat(timespec="milliseconds")})
        return self.channel_answer(channel, to, status, answer, {})

    def channel_refusal(self, channel, cfg, path_id):
        """(status, body, headers) when the call's credentials are not the account's, else None."""
        auth = self.headers.get("Authorization") or ""
        if channel == "whatsapp":
            if not auth.startswith("Bearer "):
                return provider_error(channel, 401, "An active access token must be used to query information "
                                                    "about the current user.", 2500)
            if not same_secret(auth[len("Bearer "):].strip(), cfg.whatsapp_access_token):
                return provider_error(channel, 401, "Invalid OAuth access token - Cannot parse access token", 190)
            if path_id not in cfg.whatsapp_phone_number_ids:
                return provider_error(channel, 400, f"Unsupported post request. Object with ID '{path_id}' does not "
                                                    "exist, cannot be loaded due to missing permissions, or does "
                                                    "not support this operation.", 100)
            return None
        if channel == "twilio":
            user = password = None
            if auth.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(auth[len("Basic "):].strip()).decode().partition(":")
                except ValueError:
                    pass
            if not (same_secret(user, cfg.twilio_account_sid) and same_secret(password, cfg.twilio_auth_token)):
                return provider_error(channel, 401, "Authenticate", 20003)
            if path_id != cfg.twilio_account_sid:
                return provider_error(channel, 404, f"The requested resource /2010-04-01/Accounts/{path_id}"
                                                    "/Messages.json was not found", 20404)
            return None
        if not same_secret(path_id, cfg.telegram_bot_token):
            return provider_error(channel, 401, "Unauthorized")
        return None

    def channel_answer(self, channel, to, status, body, headers, fault=False):
        s = self.systems
        call = {"channel": channel, "to": to, "status": status, "at": datetime.now(timezone.utc).isoformat(
            timespec="milliseconds")}
        if fault:
            call["fault"] = True
        if status >= 300:
            call["error"] = body
        with s.lock:
            s.channel_calls.append(call)
        return self.send_json(status, body, headers)

    def channel_records(self, query, remove=False):
        """The recorded sends and calls a ?channel=&to= query picks (removing them with
        `remove`), or an error message."""
        s = self.systems
        channel = (query.get("channel") or [None])[0]
        to = (query.get("to") or [None])[0]
        if channel is not None and channel not in ("whatsapp", "twilio", "telegram"):
            return None, "channel is whatsapp, twilio or telegram"

        def picked(r):
            return (channel is None or r["channel"] == channel) and (
                to is None or (r["to"] is not None and same_recipient(r["channel"], r["to"], to)))

        with s.lock:
            sent = [r for r in s.channel_sent if picked(r)]
            calls = [c for c in s.channel_calls if picked(c)]
            if remove:
                s.channel_sent = [r for r in s.channel_sent if not picked(r)]
                s.channel_calls = [c for c in s.channel_calls if not picked(c)]
        return {"sent": sent, "calls": calls}, None

    def pause_box(self, sid, body):
        s = self.systems
        key = self.headers.get("Idempotency-Key")
        with s.lock:
            # Checked and applied under one lock: a retry arriving while the first request is
            # still held by a delay fault finds its change made, not a second one to make.
            s.box_calls.append({"idempotency_key": key, "subscription_id": sid, "body": body})
            if not key:
                return self.send_json(400, {"error": "Idempotency-Key header is required"})
            if key in s.box_pauses_by_key:
                return self.send_json(201, s.box_pauses_by_key[key], {"Idempotent-Replayed": "true"})
            sub = next((x for x in s.subscriptions if x["id"] == sid), None)
            if sub is None:
                return self.send_json(404, {"error": "no such subscription"})
            if sub["state"] != "ACTIVE" or not sub["next_delivery"]:
                return self.send_json(409, {"error": f"the subscription is {sub['state'].lower()}"})
            skipped = sub["next_delivery"]
            nxt = datetime.strptime(skipped, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) + timedelta(days=7)
            sub["next_delivery"] = iso(nxt)
            sub["skipped"] += 1
            answer = {"id": "pause_" + uuid.uuid4().hex[:12], "subscription_id": sid, "skipped_delivery": skipped,
                      "reason": body.get("reason")}
            s.box_pauses_by_key[key] = answer
            s.box_changes[key] = s.box_changes.get(key, 0) + 1
            return self.send_json(201, answer)

    def add_order(self, body):
        s = self.systems
        if not body.get("id") or not body.get("customer_id"):
            return self.send_json(400, {"error": "id and customer_id are required"})
        status = body.get("status") or "in_transit"
        if status not in ("in_transit", "delivered", "cancelled"):
            return self.send_json(400, {"error": "status is in_transit, delivered or cancelled"})
        placed, promised = body.get("placed_days_ago", 9), body.get("promised_in_days", -2)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in (placed, promised)):
            return self.send_json(400, {"error": "placed_days_ago and promised_in_days are whole days"})
        carrier = body.get("carrier")
        if carrier is not None and (not isinstance(carrier, str) or not carrier.isalnum()):
            return self.send_json(400, {"error": "carrier is a name of letters and digits"})
        now = datetime.now(timezone.utc)
        oid = str(body["id"])
        order = {
            "id": oid, "customer_id": body["customer_id"], "status": status,
            "placed_at": iso(now - timedelta(days=placed)), "promised_by": iso(now + timedelta(days=promised)),
            "delivered_at": iso(now) if status == "delivered" else None, "carrier": carrier or "UPS",
            "tracking_url": f"https://track.example.com/{carrier.lower()}/1Z{oid}" if carrier else None,
            "total": {"amount_cents": int(body.get("total_cents") or 1000), "currency": "USD"},
            "items": [{"name": "Test Item", "quantity": 1}],
        }
        with s.lock:
            if any(o["id"] == order["id"] for o in s.orders):
                return self.send_json(409, {"error": "an order with this id exists"})
            s.orders.append(order)
        return self.send_json(201, order)

    def add_customer(self, body):
        s = self.systems
        if not isinstance(body.get("id"), str) or not isinstance(body.get("email"), str):
            return self.send_json(400, {"error": "id and email (strings) are required"})
        phone = body.get("phone")
        if phone is not None and not (isinstance(phone, str) and E164.fullmatch(phone)):
            return self.send_json(400, {"error": "phone is E.164, e.g. +14155550101"})
        customer = {"id": body["id"], "name": body.get("name") or "Test Customer", "email": body["email"],
                    "email_verified": True, "phone": phone, "vendor_ids": {}}
        with s.lock:
            if any(c["id"] == customer["id"] for c in s.customers):
                return self.send_json(409, {"error": "a customer with this id exists"})
            s.customers.append(customer)
        return self.send_json(201, customer)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4580)
    # What the providers' stand-ins accept: the functions must be configured with the same.
    ap.add_argument("--whatsapp-access-token", default=DEV_CHANNEL_SECRETS["whatsapp_access_token"])
    ap.add_argument("--whatsapp-phone-number-id", default=DEV_CHANNEL_IDS["whatsapp_phone_number_id"],
                    help="the business's phone number ids replies may be sent from (comma-separated)")
    ap.add_argument("--twilio-account-sid", default=DEV_CHANNEL_SECRETS["twilio_account_sid"])
    ap.add_argument("--twilio-auth-token", default=DEV_CHANNEL_SECRETS["twilio_auth_token"])
    ap.add_argument("--twilio-number", default=DEV_CHANNEL_IDS["twilio_number"],
                    help="the account's numbers replies may come From (comma-separated; also as whatsapp:+...)")
    ap.add_argument("--telegram-bot-token", default=DEV_CHANNEL_SECRETS["telegram_bot_token"])
    args = ap.parse_args()
    Handler.systems = Systems()
    Handler.systems.channels = ChannelSettings(
        whatsapp_access_token=args.whatsapp_access_token,
        whatsapp_phone_number_ids=args.whatsapp_phone_number_id.split(","),
        twilio_account_sid=args.twilio_account_sid, twilio_auth_token=args.twilio_auth_token,
        twilio_numbers=args.twilio_number.split(","), telegram_bot_token=args.telegram_bot_token)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"demo systems listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
