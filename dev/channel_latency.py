#!/usr/bin/env python3
"""End-to-end latency of a channel reply on a running local stack: a customer's Telegram message
POSTed to the webhook function, to the bot's reply reaching the provider's send API.

    .venv/bin/python dev/channel_latency.py --ready-file F [--messages 30] [--warmup 2] [--json PATH]

F is a stack's ready file (dev/stack.py up --ready-file F); without it, the same variables from
the environment (`set -a; . F; set +a`): WEBHOOK_URL, DEMO_URL, DEV_CHANNEL_SECRET_* and, for
the relay's figures, LOCAL_STACK_NAME.

Each message is a signed Telegram text update from a chat id never used before (built by
dev/channel.py, as `channel.py send telegram` sends it), sent one at a time: the next waits for
the reply to the last, so this measures the path, not a queue. The reply is found by polling the
demo systems' GET /_admin/channels/sent?channel=telegram&to=<chat>; its time is the one the
stand-in recorded when it accepted the send (milliseconds, the same machine's clock), so the
polling interval adds nothing to the figure. Per message:

- answered: the webhook function's answer to the POST (verify, claim, enqueue, through
  `cargo lambda watch`);
- reply: the POST to the first reply accepted by the Telegram stand-in.

The path in between: the SQS stand-in (dev/sqs_bridge.py, long polls) hands the
`channel.inbound` job to fulfillment, which runs the turn and commits the bot's replies with one
`channel.deliver` outbox item each; the stream stand-in (dev/stream_bridge.py, polls every
250 ms) invokes the relay, which sends them to the jobs queue; the SQS stand-in hands each to
fulfillment again, which renders it and calls the send API. With the stack's log, the relay's own
`lag_ms` (the turn's commit to its outbox item relayed) is reported too.
"""

import argparse
import json
import math
import os
import secrets
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import channel  # noqa: E402
from bench_outbox import epoch, relay_lags  # noqa: E402

# What a customer asks a shop's bot without an account: answered by a flow that needs none or
# from the policies, so every message gets a reply (a guest is never asked to sign in for these).
TEXTS = [
    "what is your return policy?",
    "do you ship to Canada?",
    "is the desk lamp in stock?",
    "how long does delivery take?",
    "hello, what are your opening hours?",
]
POLL_SECS = 0.05


def read_ready_file(path):
    """The stack's ready file (`NAME='value'` lines) into the environment."""
    with open(path) as f:
        for line in f:
            name, sep, value = line.strip().partition("=")
            if sep:
                os.environ[name] = value.strip("'")


def env(name, default=None):
    value = os.environ.get(name) or default
    if not value:
        sys.exit(f"{name} is not set: pass --ready-file (dev/stack.py up --ready-file F) or source it")
    return value


def stats(values_ms):
    """Nearest-rank percentiles in milliseconds, as dev/bench_outbox.py's."""
    v = sorted(values_ms)
    if not v:
        return {"n": 0}

    def rank(p):
        return v[min(max(math.ceil(p * len(v)), 1), len(v)) - 1]

    return {"n": len(v), "p50_ms": round(rank(0.50), 1), "p90_ms": round(rank(0.90), 1),
            "max_ms": round(v[-1], 1), "mean_ms": round(sum(v) / len(v), 1)}


def sent_to(demo, chat):
    status, text = channel.post(
        f"{demo}/_admin/channels/sent?" + urllib.parse.urlencode({"channel": "telegram", "to": str(chat)}),
        {}, b"", method="GET")
    if status != 200:
        sys.exit(f"GET /_admin/channels/sent answered {status}: {text[:200]}")
    return json.loads(text)


def one(webhook, demo, secret, chat, text, timeout):
    """Sends `text` from `chat` and waits for the bot's first reply there."""
    ap, _ = channel.parser()
    args = ap.parse_args(["send", "telegram", "--chat", str(chat), "--text", text,
                          "--url", webhook, "--secret", secret])
    url, headers, body = channel.build(args)
    sent = time.time()
    status, answer = channel.post(url, headers, body)
    answered = time.time()
    sample = {"chat": chat, "text": text, "status": status, "answered_ms": (answered - sent) * 1000}
    if status != 200:
        sample["error"] = answer[:300]
        return sample
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sent_to(demo, chat)
        if got["sent"]:
            first = min(got["sent"], key=lambda r: r["at"])
            sample["reply_ms"] = (epoch(first["at"]) - sent) * 1000
            sample["reply"] = first["body"].get("text", "")
            return sample
        failed = [c for c in got["calls"] if c["status"] >= 300]
        if failed:
            sample["error"] = f"the send API refused: {failed[0]}"
            return sample
        time.sleep(POLL_SECS)
    sample["error"] = f"no reply within {timeout:g} s"
    return sample


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ready-file", help="the local stack's ready file (else the environment)")
    ap.add_argument("--messages", type=int, default=30, help="measured messages (default 30)")
    ap.add_argument("--warmup", type=int, default=2, help="messages first, not measured (default 2)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for each reply")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    if args.ready_file:
        read_ready_file(args.ready_file)
    webhook, demo = env("WEBHOOK_URL").rstrip("/"), env("DEMO_URL").rstrip("/")
    secret = env("DEV_CHANNEL_SECRET_TELEGRAM_SECRET_TOKEN", channel.DEV_CHANNEL_SECRETS["telegram_secret_token"])
    stack_name = os.environ.get("LOCAL_STACK_NAME")
    log_path = os.path.join(ROOT, ".local", stack_name, "logs", "functions.log") if stack_name else None

    # Fresh chats: each message opens a new customer's conversation (nothing carried over from
    # an earlier run on the same stack).
    base = 800_000_000 + secrets.randbelow(10**8) * 100
    chats = [base + i for i in range(args.warmup + args.messages)]
    for chat in chats[:3]:
        if sent_to(demo, chat)["sent"]:
            sys.exit(f"chat {chat} already has replies: not a fresh chat id")

    for i, chat in enumerate(chats[:args.warmup]):
        s = one(webhook, demo, secret, chat, TEXTS[i % len(TEXTS)], args.timeout)
        if "error" in s:
            sys.exit(f"warm-up message failed: {s}")
    offset = os.path.getsize(log_path) if log_path and os.path.exists(log_path) else None
    load_before = open("/proc/loadavg").read().split()[:3]
    print(f"[channel latency] {args.messages} Telegram messages, one at a time ...", file=sys.stderr, flush=True)
    samples = []
    for i, chat in enumerate(chats[args.warmup:]):
        s = one(webhook, demo, secret, chat, TEXTS[i % len(TEXTS)], args.timeout)
        samples.append(s)
        mark = f"{s['reply_ms']:7.0f} ms" if "reply_ms" in s else f"error: {s.get('error')}"
        print(f"  {i + 1:3d} {s['text']!r:<40} answered {s['answered_ms']:5.0f} ms, reply {mark}",
              file=sys.stderr, flush=True)
    load_after = open("/proc/loadavg").read().split()[:3]
    lags = relay_lags(log_path, offset) if offset is not None else []

    replied = [s for s in samples if "reply_ms" in s]
    result = {
        "benchmark": "channel_latency",
        "provider": "telegram",
        "messages": len(samples),
        "warmup": args.warmup,
        "replied": len(replied),
        "errors": [s for s in samples if "error" in s],
        "reply": stats([s["reply_ms"] for s in replied]),
        "answered": stats([s["answered_ms"] for s in samples if s["status"] == 200]),
        "relay_lag": {"invocations": len(lags), "jobs": sum(n for n, _ in lags),
                      "lag_ms": stats([lag for _, lag in lags])},
        "loadavg": {"before": " ".join(load_before), "after": " ".join(load_after)},
        "example_reply": replied[0]["reply"] if replied else None,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": os.cpu_count(),
    }
    print(f"\n{'':<34} {'n':>4} {'p50':>9} {'p90':>9} {'max':>9}", file=sys.stderr)
    for label, s in (("POST to reply sent", result["reply"]),
                     ("webhook answered the POST", result["answered"]),
                     ("relay lag_ms (commit to relayed)", result["relay_lag"]["lag_ms"])):
        if s["n"]:
            print(f"{label:<34} {s['n']:>4} " + " ".join(f"{s[k]:>7.0f}ms" for k in ("p50_ms", "p90_ms", "max_ms")),
                  file=sys.stderr)
    print(f"replied {len(replied)} of {len(samples)}; load average {result['loadavg']['before']} before, "
          f"{result['loadavg']['after']} after", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    sys.exit(0 if len(replied) == len(samples) else 1)


if __name__ == "__main__":
    main()
