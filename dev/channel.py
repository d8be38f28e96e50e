#!/usr/bin/env python3
"""Sends signed inbound messages to the local webhook function, as WhatsApp, Twilio and Telegram
would (never deployed).

  .venv/bin/python dev/channel.py send whatsapp --from +14155550101 --text "where is my parcel?"
  .venv/bin/python dev/channel.py send whatsapp --from +14155550101 --button refund_yes --label "Yes"
  .venv/bin/python dev/channel.py send twilio --from +14155550102 --text "is the lamp back in stock"
  .venv/bin/python dev/channel.py send twilio --from whatsapp:+14155550102 --media
  .venv/bin/python dev/channel.py send telegram --chat 700100200 --text "hello, I need a hand"
  .venv/bin/python dev/channel.py send telegram --chat 700100200 --callback order_1001
  .venv/bin/python dev/channel.py handshake                  # WhatsApp's GET subscription check
  .venv/bin/python dev/channel.py sign-twilio --url U --token T --form 'k=v&k2=v2'

Each delivery prints its status and the function's answer; the exit status is 0 when every one
was answered 2xx. --times N delivers the very same bytes N times (a provider's redelivery);
--message-id sends a new delivery with an id already used (a replay).

The payloads follow the providers' documented webhooks: WhatsApp Cloud API
`entry[].changes[].value.messages[]` (or `statuses[]`) with `metadata.phone_number_id`, signed
with X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the app secret); Twilio's
form-encoded fields (MessageSid, AccountSid, From, To, Body, NumMedia, ...) signed with
X-Twilio-Signature by the official `twilio` package's RequestValidator over the public URL;
Telegram's Update (`message`, `edited_message`, `callback_query`) with the
X-Telegram-Bot-Api-Secret-Token header.

The local stack's channel secrets live here (DEV_CHANNEL_SECRETS; like dev/webhook.py's
DEV_WEBHOOK_SECRETS, for development only), with the business's own ids (DEV_CHANNEL_IDS); the
demo systems' stand-ins for the providers' send APIs check the same values.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Not real credentials: shaped as the providers' are, so parsers and length checks see the
# same forms as in production.
DEV_CHANNEL_SECRETS = {
    # Meta app secret: the HMAC key of X-Hub-Signature-256.
    "whatsapp_app_secret": "local-whatsapp-app-secret-do-not-deploy",
    # What the GET subscription handshake must present as hub.verify_token.
    "whatsapp_verify_token": "local-whatsapp-verify-token-do-not-deploy",
    # The Cloud API's Bearer token for POST /{phone_number_id}/messages.
    "whatsapp_access_token": "EAAlocalWhatsappAccessTokenDoNotDeploy0123456789",
    # Twilio's account SID ("AC" + 32 hex) and auth token (32 hex): HTTP Basic for the REST API,
    # and the auth token is also the key of X-Twilio-Signature.
    "twilio_account_sid": "AC" + "0123456789abcdef" * 2,
    "twilio_auth_token": "fedcba9876543210" * 2,
    # Telegram bot token ("<bot id>:<35 characters>"): it is in the Bot API's path.
    "telegram_bot_token": "123456:ABC-localTelegramBotTokenDoNotDeplo",
    # The secret_token given to setWebhook, echoed in X-Telegram-Bot-Api-Secret-Token
    # (1-256 of A-Z a-z 0-9 _ -).
    "telegram_secret_token": "local-telegram-secret-token-do-not-deploy",
}

# The business's own addresses on each channel (phone numbers in the fictional 555-01xx range).
DEV_CHANNEL_IDS = {
    # The WhatsApp Business Account and its phone number's Cloud API id (what replies are sent
    # from: POST /{phone_number_id}/messages) and displayed number.
    "whatsapp_business_account_id": "100200300400500",
    "whatsapp_phone_number_id": "109876543210987",
    "whatsapp_display_phone_number": "14155550190",
    # The Twilio number customers text (and message on WhatsApp as "whatsapp:+14155550191").
    "twilio_number": "+14155550191",
    # The bot's own Telegram user id is the token's first part.
    "telegram_bot_id": "123456",
    "telegram_bot_username": "switchboard_dev_bot",
}

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:9000/lambda-url/webhook"


def webhook_base(url=None):
    """The webhook function's base URL: --url, $WEBHOOK_URL (the local stack's ready file
    has it), or the local stack's default."""
    return (url or os.environ.get("WEBHOOK_URL") or DEFAULT_WEBHOOK_URL).rstrip("/")


def channel_url(base, provider):
    return f"{base}/channels/{provider}"


# --- WhatsApp Cloud API ---------------------------------------------------------------------

def wamid():
    """A WhatsApp message id as the Cloud API writes them: "wamid." and base64."""
    return "wamid." + base64.b64encode(secrets.token_bytes(30)).decode()


def wa_id(phone):
    """WhatsApp's id of a user: the phone number's digits, without "+"."""
    digits = "".join(c for c in phone if c.isdigit())
    if not 7 <= len(digits) <= 15:
        raise SystemExit(f"--from {phone!r}: a phone number in E.164, e.g. +14155550101")
    return digits


def whatsapp_message(args, user, message_id, ts):
    msg = {"from": user, "id": message_id, "timestamp": str(ts)}
    if args.text is not None:
        msg.update(type="text", text={"body": args.text})
    elif args.button is not None:
        label = args.label if args.label is not None else args.button
        # A press answers one of our messages: WhatsApp names it in `context`.
        context = {"from": DEV_CHANNEL_IDS["whatsapp_display_phone_number"], "id": wamid()}
        if args.button_kind == "template":
            msg.update(context=context, type="button", button={"payload": args.button, "text": label})
        else:
            kind = "list_reply" if args.button_kind == "list" else "button_reply"
            reply = {"id": args.button, "title": label}
            if kind == "list_reply":
                reply["description"] = ""
            msg.update(context=context, type="interactive", interactive={"type": kind, kind: reply})
    elif args.image:
        msg.update(type="image", image={
            "caption": args.caption or "", "mime_type": "image/jpeg",
            "sha256": base64.b64encode(hashlib.sha256(message_id.encode()).digest()).decode(),
            "id": str(secrets.randbelow(10**15) + 10**15)})
    elif args.location:
        lat, lon = args.location
        msg.update(type="location", location={"latitude": lat, "longitude": lon})
    else:
        raise SystemExit("say what the customer sends: --text, --button, --image or --location")
    return msg


def whatsapp_payload(args):
    user = wa_id(args.sender)
    ts = int(time.time())
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DEV_CHANNEL_IDS["whatsapp_display_phone_number"],
                     "phone_number_id": args.to or DEV_CHANNEL_IDS["whatsapp_phone_number_id"]},
    }
    if args.status:
        # A delivery receipt of one of our messages: not a customer's message.
        value["statuses"] = [{"id": args.message_id or wamid(), "status": args.status, "timestamp": str(ts),
                              "recipient_id": user}]
    else:
        value["contacts"] = [{"profile": {"name": args.name}, "wa_id": user}]
        value["messages"] = [whatsapp_message(args, user, args.message_id or wamid(), ts)]
    return {"object": "whatsapp_business_account",
            "entry": [{"id": DEV_CHANNEL_IDS["whatsapp_business_account_id"],
                       "changes": [{"value": value, "field": "messages"}]}]}


def sign_whatsapp(app_secret, body: bytes):
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


# --- Twilio ---------------------------------------------------------------------------------

def twilio_sid(prefix):
    return prefix + secrets.token_hex(16)


def twilio_form(args):
    """The fields Twilio posts for an incoming SMS, or WhatsApp message when From is
    "whatsapp:+..." (its documented incoming-message webhook), in Twilio's order."""
    sender = args.sender
    whatsapp = sender.startswith("whatsapp:")
    number = sender.removeprefix("whatsapp:")
    if not (number.startswith("+") and 7 <= len(number) - 1 <= 15 and number[1:].isdigit()):
        raise SystemExit(f"--from {sender!r}: +E.164 (SMS) or whatsapp:+E.164")
    to = args.to or ("whatsapp:" if whatsapp else "") + DEV_CHANNEL_IDS["twilio_number"]
    media = args.media
    sid = args.message_id or twilio_sid("MM" if media else "SM")
    form = [("SmsMessageSid", sid), ("NumMedia", "1" if media else "0")]
    if whatsapp:
        form += [("ProfileName", args.name), ("WaId", number[1:])]
    body = ""
    if args.text is not None:
        body = args.text
        kind = "text"
    elif args.button is not None:
        kind = "button"
        form += [("ButtonText", args.label if args.label is not None else args.button),
                 ("ButtonPayload", args.button)]
        body = args.label if args.label is not None else args.button
    elif media:
        kind = "image"
        body = args.caption or ""
        form += [("MediaContentType0", "image/jpeg"),
                 ("MediaUrl0", f"https://api.twilio.com/2010-04-01/Accounts/{args.account_sid}/Messages/{sid}"
                               f"/Media/{twilio_sid('ME')}")]
    elif args.location:
        kind = "location"
        lat, lon = args.location
        form += [("Latitude", str(lat)), ("Longitude", str(lon))]
    else:
        raise SystemExit("say what the customer sends: --text, --button, --media or --location")
    if whatsapp:
        form.append(("MessageType", kind))
    form += [("SmsSid", sid), ("SmsStatus", "received"), ("Body", body), ("To", to),
             ("NumSegments", "1"), ("MessageSid", sid), ("AccountSid", args.account_sid),
             ("From", sender), ("ApiVersion", "2010-04-01")]
    return form


def sign_twilio(public_url, token, params):
    """X-Twilio-Signature of a form post to `public_url`, by Twilio's own library."""
    from twilio.request_validator import RequestValidator

    return RequestValidator(token).compute_signature(public_url, params)


class FormFields(dict):
    """A form's fields, name -> values, as the RequestValidator reads a multi-dict (getall):
    a name given twice is signed with each of its values, as Twilio does."""

    def getall(self, name):
        return self[name]


def form_params(pairs):
    params = FormFields()
    for k, v in pairs:
        params.setdefault(k, []).append(v)
    return params


# --- Telegram -------------------------------------------------------------------------------

def telegram_update(args):
    chat_id = int(args.chat)
    ts = int(time.time())
    user = {"id": abs(chat_id), "is_bot": False, "first_name": args.name}
    if args.language:
        user["language_code"] = args.language
    if args.group:
        # Only private chats are customers; a group's id is negative and it has a title.
        chat = {"id": -abs(chat_id), "title": "A group the bot was added to", "type": "group"}
    else:
        chat = {"id": chat_id, "first_name": args.name, "type": "private"}
    update = {"update_id": args.update_id if args.update_id is not None else secrets.randbelow(10**9)}
    if args.callback is not None:
        bot = {"id": int(DEV_CHANNEL_IDS["telegram_bot_id"]), "is_bot": True, "first_name": "Switchboard (dev)",
               "username": DEV_CHANNEL_IDS["telegram_bot_username"]}
        update["callback_query"] = {
            "id": args.message_id or str(secrets.randbelow(9 * 10**18) + 10**18),
            "from": user,
            # The message whose inline keyboard was pressed: one the bot sent.
            "message": {"message_id": secrets.randbelow(10**6) + 1, "from": bot, "chat": chat, "date": ts - 30,
                        "text": "(the bot's earlier message with buttons)"},
            "chat_instance": str(secrets.randbelow(9 * 10**18) + 10**18),
            "data": args.callback,
        }
        return update
    message = {"message_id": int(args.message_id) if args.message_id else secrets.randbelow(10**6) + 1,
               "from": user, "chat": chat, "date": ts}
    if args.text is not None:
        message["text"] = args.text
    elif args.image:
        unique = secrets.token_urlsafe(10)
        message["photo"] = [
            {"file_id": f"AgAC{secrets.token_urlsafe(30)}", "file_unique_id": f"AQAD{unique}", "file_size": size,
             "width": w, "height": h}
            for size, w, h in ((1200, 90, 67), (15000, 320, 240), (60000, 800, 600))]
        if args.caption:
            message["caption"] = args.caption
    elif args.location:
        lat, lon = args.location
        message["location"] = {"latitude": lat, "longitude": lon}
    else:
        raise SystemExit("say what the customer sends: --text, --callback, --image or --location")
    if args.edited:
        message["edit_date"] = ts + 5
        update["edited_message"] = message
    else:
        update["message"] = message
    return update


# --- Sending --------------------------------------------------------------------------------

def post(url, headers, body: bytes, method="POST"):
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def build(args):
    """(url, headers, body) of the delivery `args` describe."""
    base = webhook_base(args.url)
    if args.provider == "whatsapp":
        body = json.dumps(whatsapp_payload(args)).encode()
        headers = {"Content-Type": "application/json"}
        if not args.unsigned:
            secret = args.secret if args.secret is not None else DEV_CHANNEL_SECRETS["whatsapp_app_secret"]
            headers["X-Hub-Signature-256"] = sign_whatsapp(secret, body)
        return channel_url(base, "whatsapp"), headers, body
    if args.provider == "twilio":
        pairs = twilio_form(args)
        body = urllib.parse.urlencode(pairs).encode()
        url = channel_url(base, "twilio")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if not args.unsigned:
            token = args.secret if args.secret is not None else DEV_CHANNEL_SECRETS["twilio_auth_token"]
            # Twilio signs the URL configured for the number, which a proxy in front of the
            # function may rewrite: the public one, not necessarily the one posted to.
            public_url = args.public_url or os.environ.get("TWILIO_PUBLIC_URL") or url
            headers["X-Twilio-Signature"] = sign_twilio(public_url, token, form_params(pairs))
        return url, headers, body
    body = json.dumps(telegram_update(args)).encode()
    headers = {"Content-Type": "application/json"}
    if not args.unsigned:
        headers["X-Telegram-Bot-Api-Secret-Token"] = (
            args.secret if args.secret is not None else DEV_CHANNEL_SECRETS["telegram_secret_token"])
    return channel_url(base, "telegram"), headers, body


def send(args):
    if args.times < 1:
        raise SystemExit("--times is at least 1")
    url, headers, body = build(args)
    if args.show:
        print(body.decode(), file=sys.stderr)
    ok = True
    # A redelivery is the same request again: same bytes, same signature.
    for _ in range(args.times):
        status, text = post(url, headers, body)
        print(status, text)
        ok = ok and 200 <= status < 300
    return 0 if ok else 1


def handshake(args):
    challenge = args.challenge or str(secrets.randbelow(10**9))
    token = args.verify_token if args.verify_token is not None else DEV_CHANNEL_SECRETS["whatsapp_verify_token"]
    query = urllib.parse.urlencode({"hub.mode": args.mode, "hub.verify_token": token, "hub.challenge": challenge})
    status, text = post(f"{channel_url(webhook_base(args.url), 'whatsapp')}?{query}", {}, b"", method="GET")
    print(status, text)
    # Meta subscribes the URL only when the answer is the challenge itself.
    return 0 if status == 200 and text == challenge else 1


def sign_twilio_cmd(args):
    # keep_blank_values: Twilio posts empty fields (an empty Body) and signs them too.
    try:
        pairs = urllib.parse.parse_qsl(args.form, keep_blank_values=True, strict_parsing=bool(args.form))
    except ValueError as e:
        raise SystemExit(f"--form: not a urlencoded body ({e})")
    print(sign_twilio(args.url, args.token, form_params(pairs)))
    return 0


def coordinates(text):
    try:
        lat, lon = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("LAT,LON, e.g. 48.8584,2.2945")
    return lat, lon


def parser():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(l for l in __doc__.splitlines() if l.startswith("  .venv")))
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("send", help="send one customer message (or a redelivery/replay of it)")
    s.add_argument("provider", choices=["whatsapp", "twilio", "telegram"])
    who = s.add_argument_group("who writes")
    who.add_argument("--from", dest="sender", help="whatsapp: +E.164; twilio: +E.164 (SMS) or whatsapp:+E.164")
    who.add_argument("--chat", help="telegram: the private chat's id (the user's id)")
    who.add_argument("--name", default="Sam Example", help="the profile name the provider passes on")
    who.add_argument("--language", default="en", help="telegram: from.language_code ('' for none)")
    who.add_argument("--to", help="whatsapp: metadata.phone_number_id; twilio: To (default: the dev business's)")
    what = s.add_argument_group("what they send (one of)")
    what.add_argument("--text")
    what.add_argument("--button", metavar="VALUE", help="whatsapp/twilio: a quick reply's value pressed")
    what.add_argument("--label", help="the pressed button's label (default: VALUE)")
    what.add_argument("--button-kind", choices=["reply", "list", "template"], default="reply",
                      help="whatsapp: interactive button_reply, list_reply, or a template's quick reply")
    what.add_argument("--callback", metavar="VALUE", help="telegram: callback_data of an inline button pressed")
    what.add_argument("--image", action="store_true", help="whatsapp/telegram: a photo (unsupported content)")
    what.add_argument("--media", action="store_true", help="twilio: an MMS/WhatsApp image (unsupported content)")
    what.add_argument("--caption", help="with --image/--media")
    what.add_argument("--location", type=coordinates, metavar="LAT,LON", help="a shared location (unsupported)")
    what.add_argument("--status", metavar="STATUS",
                      help="whatsapp: a statuses[] receipt (sent, delivered, read, failed) instead of a message")
    how = s.add_argument_group("delivery")
    how.add_argument("--url", help=f"the webhook function's base URL (default: $WEBHOOK_URL or {DEFAULT_WEBHOOK_URL})")
    how.add_argument("--secret", help="the app secret / auth token / secret token to sign with (default: the dev one)")
    how.add_argument("--unsigned", action="store_true", help="send without the signature header")
    how.add_argument("--public-url", help="twilio: the URL to sign (default: $TWILIO_PUBLIC_URL or the URL posted to)")
    how.add_argument("--account-sid", default=DEV_CHANNEL_SECRETS["twilio_account_sid"], help="twilio: AccountSid")
    how.add_argument("--message-id", help="the provider's message id (a replay when already used)")
    how.add_argument("--update-id", type=int, help="telegram: update_id (default: random)")
    how.add_argument("--times", type=int, default=1, help="deliver the same request N times (redelivery)")
    how.add_argument("--group", action="store_true", help="telegram: from a group chat (not a customer)")
    how.add_argument("--edited", action="store_true", help="telegram: an edited_message")
    how.add_argument("--show", action="store_true", help="print the body sent, on stderr")
    s.set_defaults(func=send)

    h = sub.add_parser("handshake", help="WhatsApp's GET subscription check of the webhook URL")
    h.add_argument("--url", help="the webhook function's base URL")
    h.add_argument("--verify-token", help="hub.verify_token (default: the dev one)")
    h.add_argument("--challenge", help="hub.challenge (default: random digits)")
    h.add_argument("--mode", default="subscribe", help="hub.mode")
    h.set_defaults(func=handshake)

    t = sub.add_parser("sign-twilio", help="print the X-Twilio-Signature of a form post (for tests)")
    t.add_argument("--url", required=True, help="the full URL Twilio posts to, query included")
    t.add_argument("--token", required=True, help="the auth token")
    t.add_argument("--form", default="", help="the urlencoded body, e.g. 'k=v&k2=v2'")
    t.set_defaults(func=sign_twilio_cmd)
    return ap, s


def check_send_args(ap, args):
    """What argparse cannot say: which options go with which provider, and one content."""
    p = args.provider
    if p == "telegram":
        if not args.chat or not args.chat.lstrip("-").isdigit():
            ap.error("send telegram needs --chat ID (digits)")
        bad = [o for o, v in (("--from", args.sender), ("--button", args.button), ("--media", args.media),
                              ("--status", args.status)) if v]
    else:
        if not args.sender:
            ap.error(f"send {p} needs --from")
        bad = [o for o, v in (("--chat", args.chat), ("--callback", args.callback), ("--group", args.group),
                              ("--edited", args.edited)) if v]
        bad += [o for o, v in (("--image", args.image), ("--status", args.status)) if v and p == "twilio"]
        bad += [o for o, v in (("--media", args.media),) if v and p == "whatsapp"]
    if bad:
        ap.error(f"{', '.join(bad)}: not for {p}")
    chosen = [o for o, v in (("--text", args.text is not None), ("--button", args.button is not None),
                             ("--callback", args.callback is not None), ("--image", args.image),
                             ("--media", args.media), ("--location", args.location is not None),
                             ("--status", args.status is not None)) if v]
    if len(chosen) > 1:
        ap.error(f"one of {', '.join(chosen)}")
    if p == "telegram" and args.message_id and args.callback is None and not args.message_id.isdigit():
        ap.error("telegram: --message-id of a message is its message_id (digits)")


def main():
    ap, send_parser = parser()
    args = ap.parse_args()
    if args.command == "send":
        check_send_args(send_parser, args)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
