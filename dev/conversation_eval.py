#!/usr/bin/env python3
"""Runs a set of multi-turn conversations against a running stack and prints the pass rate.

    .venv/bin/python dev/conversation_eval.py                  # the stack ./dev/up started
    .venv/bin/python dev/conversation_eval.py --fresh          # its own fresh stack, stopped after
    .venv/bin/python dev/conversation_eval.py --only "typo" -v # the scenarios whose name matches

The set's format is `../shared/data/conversations_dev.json`'s: `scenarios`, each a `name`, a
`customer` and `turns` of `text`, `expect` (a case-insensitive regular expression the bot's
replies to the turn, joined by newlines, must match) and optionally `avoid` (one they must not).
Each scenario is a new conversation. A scenario passes when every turn does.

This is evaluation, not a test: it reads data outside the project and is never run by
./dev/test. Scenarios that ask for refunds change the demo data, so a second run on the same
stack can differ; --fresh starts (and stops) a stack of its own on other ports.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from chat import ApiError, Client, chat_url  # noqa: E402

DEFAULT_SET = os.path.join(ROOT, "..", "shared", "data", "conversations_dev.json")
# Scenarios about languages other than English are also counted apart (docs/languages.md).
OTHER_LANGUAGE = re.compile(r"^(spanish|french|german)\b|\blanguage\b", re.I)


def load(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    scenarios = data.get("scenarios") if isinstance(data, dict) else None
    if not isinstance(scenarios, list):
        sys.exit(f"{path}: expected an object with a `scenarios` list")
    for i, s in enumerate(scenarios):
        for key in ("name", "customer", "turns"):
            if key not in s:
                sys.exit(f"{path}: scenario {i + 1} has no `{key}`")
        for j, t in enumerate(s["turns"]):
            if "text" not in t or "expect" not in t:
                sys.exit(f"{path}: scenario {s['name']!r} turn {j + 1} needs `text` and `expect`")
    return scenarios


def replies_to(client, text, conversation, settle):
    """The bot's messages answering `text`: the direct replies, plus any message written
    asynchronously (a deferred answer) within `settle` seconds when the direct ones are empty."""
    reply = client.send(text, conversation)
    conversation = reply["conversation_id"]
    texts = [m["text"] for m in reply["replies"]]
    if not texts and settle > 0:
        after = reply["message"]["seq"]
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline and not texts:
            time.sleep(0.5)
            page = client.history(conversation, after)
            texts = [m["text"] for m in page["messages"] if m["role"] != "customer"]
    return conversation, "\n".join(texts)


def run_scenario(url, scenario, settle):
    client = Client(url, scenario["customer"])
    conversation, turns = None, []
    for t in scenario["turns"]:
        try:
            conversation, said = replies_to(client, t["text"], conversation, settle)
        except ApiError as e:
            said = f"(error) {e}"
        ok = re.search(t["expect"], said, re.I) is not None
        avoided = "avoid" in t and re.search(t["avoid"], said, re.I) is not None
        turns.append({"text": t["text"], "said": said, "expect": t["expect"], "avoid": t.get("avoid"),
                      "passed": ok and not avoided,
                      "why": None if ok and not avoided else ("matched avoid" if ok else "expect not matched")})
    return {"name": scenario["name"], "customer": scenario["customer"],
            "other_language": bool(OTHER_LANGUAGE.search(scenario["name"])),
            "passed": all(t["passed"] for t in turns), "turns": turns}


def fresh_stack(name, ports, release):
    ready = os.path.join(ROOT, ".local", f"{name}-ready.env")
    if os.path.exists(ready):
        os.remove(ready)
    os.makedirs(os.path.join(ROOT, ".local"), exist_ok=True)
    log = open(os.path.join(ROOT, ".local", f"{name}-stack.out"), "w")
    cmd = [sys.executable, os.path.join(HERE, "stack.py"), "up", "--name", name, "--quiet",
           "--ready-file", ready, "--moto-port", str(ports[0]), "--demo-port", str(ports[1]),
           "--lambda-port", str(ports[2])] + (["--release"] if release else [])
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 1200
    while not os.path.exists(ready):
        if proc.poll() is not None:
            sys.exit(f"the stack stopped before it was ready: see .local/{name}-stack.out")
        if time.monotonic() > deadline:
            stop(proc)
            sys.exit("the stack was not ready in 20 minutes")
        time.sleep(1)
    env = dict(line.strip().split("=", 1) for line in open(ready) if "=" in line)
    return proc, env["CHAT_URL"].strip("'")


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def report(results, verbose):
    for r in results:
        mark = "pass" if r["passed"] else "FAIL"
        tag = " [other language]" if r["other_language"] else ""
        print(f"{mark}  {r['name']} ({r['customer']}){tag}")
        if verbose or not r["passed"]:
            for t in r["turns"]:
                print(f"      you> {t['text']}")
                for line in (t["said"] or "(no reply)").splitlines():
                    print(f"      bot> {line}")
                if not t["passed"]:
                    print(f"      !! {t['why']}: expect /{t['expect']}/"
                          + (f", avoid /{t['avoid']}/" if t["avoid"] else ""))

    def rate(rs):
        return f"{sum(r['passed'] for r in rs)} of {len(rs)}"

    english = [r for r in results if not r["other_language"]]
    other = [r for r in results if r["other_language"]]
    print()
    print(f"scenarios passed: {rate(results)} (English {rate(english)}; other languages {rate(other)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set", nargs="?", default=DEFAULT_SET, help="conversation set (JSON)")
    ap.add_argument("--url", help="chat API base URL (default: the stack ./dev/up started)")
    ap.add_argument("--fresh", action="store_true", help="start a stack of its own, stop it after")
    ap.add_argument("--release", action="store_true", help="with --fresh: release builds")
    ap.add_argument("--only", metavar="REGEX", help="only scenarios whose name matches")
    ap.add_argument("--settle", type=float, default=5.0, metavar="SECS",
                    help="wait this long for an asynchronous answer when a turn gets no direct reply")
    ap.add_argument("--json", metavar="FILE", help="also write every turn and reply here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print passing scenarios' turns too")
    args = ap.parse_args()

    if not os.path.exists(args.set):
        sys.exit(f"no conversation set at {args.set}")
    scenarios = load(args.set)
    if args.only:
        scenarios = [s for s in scenarios if re.search(args.only, s["name"], re.I)]
    proc = None
    try:
        if args.fresh:
            proc, url = fresh_stack("eval", (35566, 35580, 39100), args.release)
        else:
            url = chat_url(args.url)
        results = [run_scenario(url, s, args.settle) for s in scenarios]
    finally:
        if proc:
            stop(proc)
    report(results, args.verbose)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
