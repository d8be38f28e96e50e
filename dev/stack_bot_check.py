#!/usr/bin/env python3
"""Proves that `./dev/up --bot DIR` (dev/stack.py up --bot) serves the bundle in DIR, for
./dev/test: a copy of config/bot whose refund policy is its own is started as a stack and asked
for it through the real chat function over HTTP; and a bundle that does not load stops the launcher
with its file and reason before anything starts. About 30 s with the functions built.

    .venv/bin/python dev/stack_bot_check.py [--moto-port P --demo-port P --lambda-port P --web-port P]

(A new intent needs a trained model: `switchboard test` and tools/switchboard/tests/cli.rs
prove that one answers through the same chat turn, offline.)
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import devtoken  # noqa: E402

POLICY = "Our own policy, from a bundle of its own:"
QUESTION = "what is your refund policy?"


def own_bundle(dest):
    """config/bot, with the answer to QUESTION (an intent's `answer` message) starting with POLICY."""
    shutil.copytree(os.path.join(ROOT, "config", "bot"), dest)
    path = os.path.join(dest, "messages", "en.toml")
    with open(path) as f:
        text = f.read()
    text, n = re.subn(r'(?m)^check_refund_policy = "', f'check_refund_policy = "{POLICY} ', text, count=1)
    if n != 1:
        sys.exit(f"{path}: no `check_refund_policy = \"…\"` line to change: where did the answer go?")
    with open(path, "w") as f:
        f.write(text)


def stack_cmd(args, bot, *extra):
    return [sys.executable, os.path.join(HERE, "stack.py"), "up", "--name", args.name, "--quiet",
            "--bot", bot, "--moto-port", str(args.moto_port), "--demo-port", str(args.demo_port),
            "--lambda-port", str(args.lambda_port), "--web-port", str(args.web_port), *extra]


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v.strip("'")
    return env


def ask(chat_url):
    req = urllib.request.Request(
        f"{chat_url}/v1/messages", method="POST",
        data=json.dumps({"text": QUESTION, "client_message_id": "stack-bot-check"}).encode(),
        headers={"content-type": "application/json",
                 "authorization": f"Bearer {devtoken.mint('cust_alice')}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return [m["text"] for m in json.load(r)["replies"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="bot-check", help="state folder under .local/")
    ap.add_argument("--moto-port", type=int, default=14566)
    ap.add_argument("--demo-port", type=int, default=14580)
    ap.add_argument("--lambda-port", type=int, default=19000)
    # Its own, not stack.py's default: a stack started with ./dev/up may be serving that one.
    ap.add_argument("--web-port", type=int, default=14590)
    args = ap.parse_args()
    logs = os.path.join(ROOT, ".local", args.name, "logs")

    with tempfile.TemporaryDirectory() as tmp:
        broken = os.path.join(tmp, "broken")
        own_bundle(broken)
        os.remove(os.path.join(broken, "model.bin"))
        done = subprocess.run(stack_cmd(args, broken), cwd=ROOT, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=600)
        said = done.stdout + done.stderr
        if done.returncode == 0 or f"{broken}/model.bin: missing" not in said or "started" in said:
            sys.exit(f"a bundle without its model should stop the launcher before anything starts:\n{said}")
        print("ok: a bundle that does not load stops dev/stack.py up --bot, naming file and reason")

        own = os.path.join(tmp, "own")
        own_bundle(own)
        ready = os.path.join(tmp, "ready.env")
        out = open(os.path.join(tmp, "stack.out"), "w+")
        stack = subprocess.Popen(stack_cmd(args, own, "--ready-file", ready), cwd=ROOT, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.time() + 900
            while not os.path.exists(ready):
                if stack.poll() is not None or time.time() > deadline:
                    out.seek(0)
                    sys.exit(f"the stack with --bot {own} did not come up (logs in {logs}):\n{out.read()}")
                time.sleep(0.5)
            replies = ask(read_env(ready)["CHAT_URL"])
            if not replies or not replies[0].startswith(POLICY):
                sys.exit(f"the chat function did not answer from --bot {own}: {replies!r} (logs in {logs})")
            print(f"ok: the chat function answers from the bundle given with --bot: {replies[0][:60]!r}…")
        finally:
            stack.send_signal(signal.SIGTERM)
            try:
                stack.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, signal.SIGKILL)
                stack.wait()


if __name__ == "__main__":
    main()
