#!/usr/bin/env python3
"""The local stack: moto (DynamoDB, SQS, KMS), the key, table (with its stream) and queues from
template.yaml, the demo company systems, the functions under `cargo lambda watch`, and the
stand-ins for their SQS and DynamoDB stream event sources. Everything it starts runs in its own
process group and is stopped on Ctrl-C/SIGTERM. The stream stand-in is restarted if it exits (a
test may kill it mid-batch, by the PID in .local/<name>/stream-bridge.pid, to see it resume from
its checkpoint); any other process exiting stops the stack.

    python dev/stack.py up            # used by ./dev/up
    python dev/stack.py up --ready-file F --quiet   # used by ./dev/test
    python dev/stack.py up --bot DIR  # the functions serve the bot bundle in DIR
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import devtoken  # noqa: E402
import stream_bridge  # noqa: E402
import template_resources  # noqa: E402
import webhook  # noqa: E402
import channel  # noqa: E402

REGION = "us-east-1"
STACK = "switchboard-local"


class Stack:
    def __init__(self, args):
        self.args = args
        self.state = os.path.join(ROOT, ".local", args.name)
        self.logs = os.path.join(self.state, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.children = []  # (name, Popen), in start order
        self.supervised = {}  # name -> [cmd, env, started at, exits soon after starting in a row]
        self.venv_bin = os.path.dirname(sys.executable)

    def say(self, msg):
        print(f"[stack] {msg}", flush=True)

    def start(self, name, cmd, env=None, supervise=False):
        log = open(os.path.join(self.logs, f"{name}.log"), "ab")
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
        self.children.append((name, proc))
        with open(os.path.join(self.state, "pids"), "a") as f:
            f.write(f"{proc.pid} {name}\n")
        if supervise:
            self.supervised.setdefault(name, [cmd, env, 0, 0])[2] = time.time()
            with open(os.path.join(self.state, f"{name}.pid"), "w") as f:
                f.write(f"{proc.pid}\n")
        self.say(f"started {name} (pid {proc.pid}, log {os.path.relpath(log.name, ROOT)})")
        return proc

    def stop(self):
        # Function processes run in sessions of their own under cargo-lambda: note every
        # descendant now, so none outlives the stack even if its parent dies first.
        leftovers = [pid for _, proc in self.children for pid in descendants(proc.pid)]
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 10
        for name, proc in reversed(self.children):
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
            self.say(f"stopped {name}")
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
                self.say(f"killed leftover process {pid}")
            except ProcessLookupError:
                pass
        self.children.clear()
        for path in ["pids", *(f"{name}.pid" for name in self.supervised)]:
            path = os.path.join(self.state, path)
            if os.path.exists(path):
                os.remove(path)

    def check_alive(self):
        for name, proc in list(self.children):
            if proc.poll() is None:
                continue
            if name not in self.supervised:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see .local/{self.args.name}/logs/{name}.log")
            sup = self.supervised[name]
            cmd, env, started = sup[0], sup[1], sup[2]
            sup[3] = sup[3] + 1 if time.time() - started < 3 else 0
            if sup[3] >= 5:  # a crash loop (a bad configuration?), not a test's kill
                raise RuntimeError(f"{name} exited 5 times in a row within 3 s of starting; "
                                   f"see .local/{self.args.name}/logs/{name}.log")
            self.children.remove((name, proc))
            self.say(f"{name} (pid {proc.pid}) exited with {proc.returncode}: restarting it")
            self.start(name, cmd, env, supervise=True)

    def wait_for(self, what, probe, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.check_alive()
            try:
                if probe():
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def descendants(root):
    """PIDs below `root`, read from /proc (Linux)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # The command name may contain spaces; the parent PID follows its closing paren.
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http(method, url, body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def write_ready(args, stack, env):
    with open(os.path.join(stack.state, "stack.env"), "w") as f:
        f.writelines(f"{k}='{v}'\n" for k, v in env.items())
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.writelines(f"{k}='{v}'\n" for k, v in env.items())


def wait_forever(stack):
    while True:
        stack.check_alive()
        time.sleep(1)


def connector_files(bot):
    """What the functions load: the built-in systems and the bundle's own (`DIR/connectors.toml`);
    with the shop bot, the second example bot's too (its connector.write jobs are tested here)."""
    own = os.path.join(bot, "connectors.toml") if bot else os.path.join(ROOT, "examples/bots/subscriptions/connectors.toml")
    return [os.path.join(ROOT, "config/connectors.toml")] + ([own] if os.path.isfile(own) else [])


def check_bot(bot):
    """`switchboard check --bot DIR` before anything starts, against the connector files the
    functions will load: a bundle they would refuse at init shows its errors here, not as a chat
    function that never comes up."""
    if not os.path.isdir(bot):
        sys.exit(f"--bot {bot}: no such directory")
    done = subprocess.run(["cargo", "run", "--quiet", "-p", "switchboard-cli", "--", "check", "--bot", bot,
                           "--connectors", *connector_files(bot)],
                          cwd=ROOT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        sys.exit(f"--bot {bot}: the bundle does not load (above); the functions would refuse it at init")


def up(args):
    stack = Stack(args)
    for port in (args.moto_port, args.demo_port, args.lambda_port, args.web_port):
        if port_open(port):
            sys.exit(f"port {port} is already in use: is another stack running? (see --help for port options)")
    # Absolute: the functions run from cargo lambda's own working directory.
    bot = os.path.abspath(args.bot) if args.bot else None
    if bot:
        check_bot(bot)

    stopping = {"flag": False}

    def on_signal(signum, frame):
        # A second signal while stopping (a timeout wrapper and its child both signalled) must
        # not cut the cleanup short and leave processes behind.
        if stopping["flag"]:
            return
        stopping["flag"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # Explicitly: a shell that backgrounds this script makes it inherit SIGINT as ignored.
    signal.signal(signal.SIGINT, on_signal)
    try:
        aws = f"http://127.0.0.1:{args.moto_port}"
        demo = f"http://127.0.0.1:{args.demo_port}"
        lam = f"http://127.0.0.1:{args.lambda_port}"
        web = f"http://127.0.0.1:{args.web_port}"

        stack.start("moto", [sys.executable, os.path.join(HERE, "moto_server.py"), "-H", "127.0.0.1", "-p", str(args.moto_port)])
        stack.wait_for("moto", lambda: http("GET", f"{aws}/moto-api/")[0] == 200, 60)

        physical, mappings = template_resources.provision(
            os.path.join(ROOT, "template.yaml"), aws, STACK, REGION, visibility=args.queue_visibility)
        table = physical["ConversationsTable"]["Ref"]
        queue = physical["JobsQueue"]["Ref"]
        dlq = physical["JobsDeadLetterQueue"]["Ref"]
        # Recorded, not enforced: moto encrypts nothing (see template_resources).
        stack.say(f"created from template.yaml: table {table}, queues {queue}, {dlq}, "
                  f"SSE key {physical['DataKey']['Arn']}")
        webhook.store_remote_secrets(aws, REGION)
        for m in mappings:  # before anything starts: what the stream stand-in cannot follow
            for pattern in m.get("filters", []):
                stream_bridge.check_pattern(pattern, f"{m['function']}: FilterCriteria")
        mappings_file = os.path.join(stack.state, "mappings.json")
        with open(mappings_file, "w") as f:
            json.dump(mappings, f, indent=2)

        stack.start("demo-systems", [sys.executable, os.path.join(HERE, "demo_systems.py"), "--port", str(args.demo_port)])
        stack.wait_for("demo systems", lambda: http("GET", f"{demo}/health")[0] == 200, 30)

        # The pages' origin differs from the chat API's (another port): the browser asks the chat
        # function for CORS, and the page's CSP must allow connecting to it.
        stack.start("web", [sys.executable, os.path.join(HERE, "web_server.py"), "--port", str(args.web_port),
                            "--chat-url", f"{lam}/lambda-url/chat"])
        stack.wait_for("web server", lambda: http("GET", f"{web}/")[0] == 200, 30)

        relay_dlq = physical["RelayDeadLetterQueue"]["Ref"]
        # A new moto numbers its streams' records as the last one did: positions kept from
        # another run would skip records (stream_bridge also refuses another stream's).
        for name in os.listdir(stack.state):
            if name.startswith("stream-checkpoint-"):
                os.remove(os.path.join(stack.state, name))
        # cargo-lambda gives no usable invocation deadline: a job's lease lasts the function's
        # timeout from the template instead, as an invocation does in AWS.
        fulfillment_timeout = next((m["timeout"] for m in mappings if m["function"] == "fulfillment"), 30)
        function_env = {
            "JOB_LEASE_SECS": str(fulfillment_timeout),
            "TABLE_NAME": table,
            "JOBS_QUEUE_URL": queue,
            # Fulfillment dead-letters a job itself after this many failed attempts of its own.
            "JOBS_DLQ_URL": dlq,
            "JOB_MAX_ATTEMPTS": os.environ.get("JOB_MAX_ATTEMPTS", "8"),
            # How long a deferred answer keeps retrying while the company's system is down.
            "DEFERRED_ANSWER_MAX_SECS": os.environ.get("DEFERRED_ANSWER_MAX_SECS", "3600"),
            "ORDERS_API_URL": demo,
            "CRM_API_URL": demo,
            "EMAIL_API_URL": demo,
            # Failed jobs come back after this many seconds, doubling per receive (tests use 1).
            "RETRY_BASE_SECS": os.environ.get("RETRY_BASE_SECS", "10"),
            "RETRY_MAX_SECS": os.environ.get("RETRY_MAX_SECS", "900"),
            "PAYMENTS_API_URL": f"{demo}/payments",
            "PAYMENT_UPDATE_URL": f"{demo}/billing",
            # Handoffs are announced to the team's inbox (the demo email API records them).
            "AGENT_EMAIL": "support-team@shop.example",
            "INVENTORY_GRAPHQL_URL": f"{demo}/graphql",
            # The built-in systems and the bundle's own (with the shop bot: the second example
            # bot's, whose connector.write jobs fulfillment runs).
            "SWITCHBOARD_CONNECTORS_FILE": ",".join(connector_files(bot)),
            "SUBSCRIPTIONS_API_URL": f"{demo}/boxes",
            # The chat API's per-caller limit (tests read the burst to exceed it).
            "RATE_LIMIT_PER_MINUTE": os.environ.get("RATE_LIMIT_PER_MINUTE", "120"),
            "RATE_LIMIT_BURST": os.environ.get("RATE_LIMIT_BURST", "30"),
            **webhook.function_env(),
            # Messaging channels: verified with the dev secrets, replies to the demo systems'
            # stand-ins for the providers' send APIs (dev/channel.py sends signed messages).
            "WHATSAPP_API_URL": f"{demo}/whatsapp",
            "WHATSAPP_ACCESS_TOKEN": channel.DEV_CHANNEL_SECRETS["whatsapp_access_token"],
            "WHATSAPP_APP_SECRET": channel.DEV_CHANNEL_SECRETS["whatsapp_app_secret"],
            "WHATSAPP_VERIFY_TOKEN": channel.DEV_CHANNEL_SECRETS["whatsapp_verify_token"],
            "TWILIO_API_URL": f"{demo}/twilio",
            "TWILIO_ACCOUNT_SID": channel.DEV_CHANNEL_SECRETS["twilio_account_sid"],
            "TWILIO_AUTH_TOKEN": channel.DEV_CHANNEL_SECRETS["twilio_auth_token"],
            # What Twilio signs is the URL configured in its console, not the one the function
            # sees: locally, the webhook function's own.
            "TWILIO_PUBLIC_URL": f"{lam}/lambda-url/webhook/channels/twilio",
            "TELEGRAM_API_URL": f"{demo}/telegram",
            "TELEGRAM_BOT_TOKEN": channel.DEV_CHANNEL_SECRETS["telegram_bot_token"],
            "TELEGRAM_SECRET_TOKEN": channel.DEV_CHANNEL_SECRETS["telegram_secret_token"],
            # The bundled vendors and the test vendors (dev/webhook.py).
            "SWITCHBOARD_WEBHOOKS_FILE": webhook.write_config(
                os.path.join(ROOT, "config", "webhooks.toml"), os.path.join(stack.state, "webhooks.toml")),
            # Secrets are re-read this often: short, so tests see a revoked webhook secret refused
            # (the default is 300).
            "SECRETS_TTL_SECS": os.environ.get("SECRETS_TTL_SECS", "5"),
            # The chat function's tokens (cargo lambda watch gives every function one env file):
            # HS256 locally, with issuer and audience checked as in AWS.
            "JWT_HS256_SECRET": devtoken.DEV_JWT_SECRET,
            "JWT_ISSUER": devtoken.DEV_ISSUER,
            "JWT_AUDIENCE": devtoken.DEV_AUDIENCE,
            # Single-tenant locally: dev tokens without a tenant claim are the default tenant's.
            "JWT_DEFAULT_TENANT": "default",
            "AWS_ENDPOINT_URL": aws,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "RUST_LOG": os.environ.get("RUST_LOG", "info"),
            # Loaded at init instead of the compiled-in config/bot; empty means that one.
            "SWITCHBOARD_BOT": bot or "",
            # The sites whose pages may call the chat API from a browser (CORS): the local web
            # server's, by both names a developer may type.
            "ALLOWED_ORIGINS": f"{web},http://localhost:{args.web_port}",
            # Where the handoff email links an agent (the console's deep link).
            "CONSOLE_URL": f"{web}/console/",
        }
        env_file = os.path.join(stack.state, "functions.env")
        with open(env_file, "w") as f:
            f.writelines(f"{k}='{v}'\n" for k, v in function_env.items())
        if args.no_functions:
            # Benchmarks run the functions' code in process (or their binaries by hand) against
            # the same resources, so nothing of the functions' build or runtime is in the way.
            write_ready(args, stack, {**function_env, "RELAY_DLQ_URL": relay_dlq, "DEMO_URL": demo,
                                      "LOCAL_STACK_NAME": args.name, "WEB_URL": web})
            stack.say("moto, resources and demo systems ready (--no-functions)")
            wait_forever(stack)
            return 0
        stack.start("functions", [
            os.path.join(stack.venv_bin, "cargo-lambda"), "lambda", "watch",
            "--invoke-address", "127.0.0.1", "--invoke-port", str(args.lambda_port),
            "--env-file", env_file, "--concurrency", str(args.concurrency),
            *(["--release"] if args.release else []),
        ], env={"PATH": f"{stack.venv_bin}:{os.environ.get('PATH', '')}"})
        stack.wait_for("cargo lambda watch", lambda: port_open(args.lambda_port), 120)
        stack.say("functions are compiling/starting; the first start of each can take a while")
        stack.wait_for("chat", lambda: http("GET", f"{lam}/lambda-url/chat/v1/conversations", timeout=600)[0] == 401, 900)
        # No vendor is called "ping": a 404 from the function itself shows it is up.
        stack.wait_for("webhook", lambda: http("POST", f"{lam}/lambda-url/webhook/webhooks/ping", b"{}", timeout=600)[0] == 404, 900)
        # Every function an event source invokes: an empty batch, answered with no failures.
        for function in sorted({m["function"] for m in mappings}):
            stack.wait_for(function, lambda function=function: json.loads(http(
                "POST", f"{lam}/2015-03-31/functions/{function}/invocations", b'{"Records":[]}', timeout=600)[1]
            ).get("batchItemFailures") == [], 900)

        stack.start("sqs-bridge", [
            sys.executable, os.path.join(HERE, "sqs_bridge.py"), "--mappings", mappings_file,
            "--endpoint", aws, "--invoke-url", lam, "--region", REGION,
        ])
        stack.start("stream-bridge", [
            sys.executable, os.path.join(HERE, "stream_bridge.py"), "--mappings", mappings_file,
            "--endpoint", aws, "--invoke-url", lam, "--region", REGION, "--state-dir", stack.state,
        ], supervise=True)

        stack_env = {
            **{k: v for k, v in function_env.items() if k != "RUST_LOG"},
            # Where the stream stand-in reports records it gave up on (tests read it).
            "RELAY_DLQ_URL": relay_dlq,
            "LOCAL_STACK_NAME": args.name,
            "DEMO_URL": demo,
            "LAMBDA_URL": lam,
            "CHAT_URL": f"{lam}/lambda-url/chat",
            "WEB_URL": web,
            "WEBHOOK_URL": f"{lam}/lambda-url/webhook",
            # The literal secrets, for tests that sign as the vendors do.
            **{f"DEV_WEBHOOK_SECRET_{v.upper()}": s for v, s in webhook.DEV_WEBHOOK_SECRETS.items()},
            **{f"DEV_CHANNEL_SECRET_{k.upper()}": v for k, v in channel.DEV_CHANNEL_SECRETS.items()},
            **{f"DEV_CHANNEL_ID_{k.upper()}": v for k, v in channel.DEV_CHANNEL_IDS.items()},
        }
        write_ready(args, stack, stack_env)

        if not args.quiet:
            token = devtoken.mint("cust_alice")
            print(f"""
Switchboard is running locally.
  chat API      {lam}/lambda-url/chat/v1/...
  webhooks      {lam}/lambda-url/webhook/webhooks/{{vendor}}
  channels      {lam}/lambda-url/webhook/channels/{{whatsapp,twilio,telegram}}
                (.venv/bin/python dev/channel.py send whatsapp --from +14155550123 --text "hi";
                 replies: {demo}/_admin/channels/sent)
  invoke        cargo lambda invoke -A 127.0.0.1 -P {args.lambda_port} chat --data-file events/chat-post-message.json
  demo shop     {web}/demo/   (the chat widget; pick a customer)
  agent console {web}/console/
  demo systems  {demo}   (customers cust_alice, cust_bob, cust_carol, cust_dave)
  bot           {os.path.relpath(bot, ROOT) if bot else "config/bot (compiled in)"}
  logs          .local/{args.name}/logs/

Chat in the terminal:   .venv/bin/python dev/chat.py --as cust_alice
Send a signed Stripe "payment failed" for Alice, then chat as her:
  .venv/bin/python dev/webhook.py payment-failed --customer cus_alice01
Or with curl (a dev JWT for cust_alice):
  curl -s {lam}/lambda-url/chat/v1/messages -H 'content-type: application/json' \\
    -H 'authorization: Bearer {token}' \\
    -d '{{"text": "where is my order?"}}'

Ctrl-C stops everything.
""", flush=True)
        wait_forever(stack)
    except KeyboardInterrupt:
        stack.say("stopping")
        return 0
    except Exception as e:
        stack.say(f"error: {e}")
        return 1
    finally:
        stack.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start the stack in the foreground")
    u.add_argument("--name", default="dev", help="state folder under .local/")
    u.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", 4566)))
    u.add_argument("--demo-port", type=int, default=int(os.environ.get("DEMO_PORT", 4580)))
    u.add_argument("--lambda-port", type=int, default=int(os.environ.get("LAMBDA_PORT", 9000)))
    u.add_argument("--web-port", type=int, default=int(os.environ.get("WEB_PORT", 4590)),
                   help="the web server for web/ (demo shop, agent console)")
    u.add_argument("--ready-file", help="write the stack's endpoints here once everything answers")
    u.add_argument("--quiet", action="store_true")
    u.add_argument("--queue-visibility", type=int, metavar="SECS",
                   help="replace the template's queue visibility timeouts (tests that kill a function use a short one)")
    u.add_argument("--release", action="store_true",
                   help="run the functions' release builds (load tests; the first build takes a while)")
    u.add_argument("--concurrency", type=int, default=4,
                   help="function instances cargo lambda watch may run side by side (default 4)")
    u.add_argument("--bot", metavar="DIR", default=os.environ.get("SWITCHBOARD_BOT") or None,
                   help="serve this bot bundle instead of the compiled-in config/bot (checked first; "
                        "or SWITCHBOARD_BOT=DIR); restart the stack after changing it")
    u.add_argument("--no-functions", action="store_true",
                   help="moto, the resources and the demo systems only (benchmarks)")
    args = ap.parse_args()
    sys.exit(up(args))


if __name__ == "__main__":
    main()
