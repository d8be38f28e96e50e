#!/usr/bin/env python3
"""A terminal chat client for the local stack (./dev/up).

    .venv/bin/python dev/chat.py --as cust_alice
    .venv/bin/python dev/chat.py --once "where is my order?"

Each line is one POST /v1/messages with a fresh client_message_id; a connection error or a 503
is retried once with the same id, which the server deduplicates. Messages written later (a
refund confirmation from fulfillment) are picked up by polling the history.
"""

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import devtoken  # noqa: E402

DEFAULT_URL = "http://127.0.0.1:9000/lambda-url/chat"


def chat_url(arg):
    if arg:
        return arg
    if os.environ.get("CHAT_URL"):
        return os.environ["CHAT_URL"]
    env_file = os.path.join(os.path.dirname(HERE), ".local", "dev", "stack.env")
    if os.path.exists(env_file):
        for line in open(env_file):
            if line.startswith("CHAT_URL="):
                return line.strip().split("=", 1)[1].strip("'")
    return DEFAULT_URL


class ApiError(Exception):
    def __init__(self, status, body, retry_after=None):
        detail = body.get("detail") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.retry_after = status, retry_after


class Client:
    def __init__(self, url, customer):
        self.url = url.rstrip("/")
        self.token = devtoken.mint(customer)

    def call(self, method, path, body=None):
        req = urllib.request.Request(
            self.url + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ApiError(e.code, parsed, e.headers.get("retry-after")) from None

    def send(self, text, conversation):
        body = {"text": text, "client_message_id": str(uuid.uuid4())}
        if conversation:
            body["conversation_id"] = conversation
        for attempt in (1, 2):
            try:
                return self.call("POST", "/v1/messages", body)
            except (urllib.error.URLError, ConnectionError, ApiError) as e:
                retryable = not isinstance(e, ApiError) or e.status == 503
                if attempt == 2 or not retryable:
                    raise
                time.sleep(float(getattr(e, "retry_after", None) or 1))

    def history(self, conversation, after):
        return self.call("GET", f"/v1/conversations/{conversation}/messages?after={after}&limit=100")


def show(message):
    who = {"customer": "you", "bot": "bot", "agent": "agent"}.get(message["role"], message["role"])
    lines = message["text"].splitlines() or [""]
    print(f"{who}> {lines[0]}")
    for line in lines[1:]:
        print(" " * (len(who) + 2) + line)


class Session:
    def __init__(self, client, conversation=None):
        self.client = client
        self.conversation = conversation
        self.last_seq = 0
        self.lock = threading.Lock()

    def resume(self):
        page = self.client.history(self.conversation, 0)
        for m in page["messages"][-10:]:
            show(m)
        self.last_seq = page["next_after"]

    def say(self, text):
        reply = self.client.send(text, self.conversation)
        with self.lock:
            self.conversation = reply["conversation_id"]
            for m in reply["replies"]:
                show(m)
            self.last_seq = max([self.last_seq, reply["message"]["seq"]] + [m["seq"] for m in reply["replies"]])

    def poll_forever(self, stop):
        while not stop.wait(1.5):
            with self.lock:
                if not self.conversation:
                    continue
                try:
                    page = self.client.history(self.conversation, self.last_seq)
                except Exception:  # the stack may be restarting; keep polling quietly
                    continue
                for m in page["messages"]:
                    # Direct replies are printed by say(); only asynchronous messages are new here.
                    if m["role"] != "customer" and m.get("reply_to") is None:
                        print()
                        show(m)
                        print("you> ", end="", flush=True)
                self.last_seq = max(self.last_seq, page["next_after"])


def main():
    ap = argparse.ArgumentParser(description="Chat with the local Switchboard stack.")
    ap.add_argument("--as", dest="customer", default="cust_alice",
                    help="customer id (demo: cust_alice, cust_bob, cust_carol, cust_dave)")
    ap.add_argument("--url", help=f"chat API base URL (default: from .local/dev/stack.env or {DEFAULT_URL})")
    ap.add_argument("--conversation", help="resume this conversation")
    ap.add_argument("--once", metavar="TEXT", help="send one message, print the replies, exit")
    args = ap.parse_args()

    session = Session(Client(chat_url(args.url), args.customer), args.conversation)
    try:
        if args.once:
            session.say(args.once)
            print(f"(conversation {session.conversation})")
            return 0
        if args.conversation:
            session.resume()
        print(f"Chatting as {args.customer}. /new starts a conversation, /list lists yours, /quit exits.")
        stop = threading.Event()
        threading.Thread(target=session.poll_forever, args=(stop,), daemon=True).start()
        while True:
            try:
                line = input("you> ").strip()
            except EOFError:
                break
            if not line:
                continue
            if line == "/quit":
                break
            if line == "/new":
                with session.lock:
                    session.conversation, session.last_seq = None, 0
                print("(new conversation)")
                continue
            if line == "/list":
                for c in session.client.call("GET", "/v1/conversations")["conversations"]:
                    print(f"  {c['id']}  updated {c['updated_at']}  {c['last_seq']} messages")
                continue
            try:
                session.say(line)
            except ApiError as e:
                print(f"(error) {e}")
        stop.set()
        return 0
    except KeyboardInterrupt:
        print()
        return 0
    except urllib.error.URLError as e:
        print(f"cannot reach {session.client.url} ({e.reason}): is the stack running? ./dev/up", file=sys.stderr)
        return 1
    except ApiError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
