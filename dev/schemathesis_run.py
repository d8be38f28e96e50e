#!/usr/bin/env python3
"""Fuzzes the running chat function against openapi/chat.json with schemathesis.

Every response must be no 5xx, a status the description lists for the operation, of its content
type, with its headers (Retry-After on 429/503) and its body schema; invalid input must be
rejected, valid input not refused as malformed, and a request without a valid token must get 401.
One run per role (a customer, an agent, then an admin on erasure alone), each with a fresh caller so earlier runs and rate
limits of other tests do not leak in; a fixed seed and example count keep it repeatable and
bounded. Only loopback is contacted: the URL must be a 127.0.0.1/localhost one.

    CHAT_URL=http://127.0.0.1:9000/lambda-url/chat .venv/bin/python dev/schemathesis_run.py
    ... --operations postMessage,listConversations,listMessages   # only these operationIds
    ... --roles customer --max-examples 10

Exits 0 when every run passes; otherwise prints each failure (from schemathesis's report) and
exits 1. Reports go to --report-dir/<role>/: output.txt, junit.xml and cassette.yaml (every
request and response).
"""

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# What is checked. Left out: use_after_free and ensure_resource_availability (they follow
# create/delete links between operations on one resource, which this API has none of: erasing a
# customer deletes conversations, not the customer) and object_level_authorization (it needs two
# callers in one run; tests/ has the attack table for that).
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
]


# A role whose run covers only some operations: an admin does what an agent does, plus erasure,
# which is the one admin answer the other runs cannot see (they get 403 there).
ROLE_OPERATIONS = {"admin": ["eraseCustomer"]}


def config_toml(role):
    """schemathesis.toml for one run: which statuses count as rejecting or accepting input."""
    # 413 is how this API rejects a text over the limit; schemathesis's default list lacks it.
    rejected = ["400", "401", "403", "404", "405", "409", "413", "415", "429"]
    accepted = ["2xx", "401", "403", "404", "409", "429"]
    if role != "customer":
        # The one thing the description cannot say per role: an agent or admin listing
        # conversations must name the customer, so a well-formed request without it is a 400.
        accepted.append("400")
    return "\n".join([
        # Failures of earlier runs are not replayed: each run is the seed's and nothing else.
        "[cache]",
        "enabled = false",
        "[checks.negative_data_rejection]",
        f"expected-statuses = {json.dumps(rejected)}",
        "[checks.positive_data_acceptance]",
        f"expected-statuses = {json.dumps(accepted)}",
        "",
    ])


def mint(role, subject):
    """A dev token from dev/devtoken.py, checked to carry the role asked for."""
    cmd = [sys.executable, os.path.join(HERE, "devtoken.py")]
    # No role claim means customer, which every devtoken.py understands.
    if role != "customer":
        # Staff tokens must name their tenant; the customers' tokens are in the default one.
        cmd += ["--role", role, "--tenant", "default"]
    done = subprocess.run(cmd + [subject], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"   dev/devtoken.py failed: {done.stderr.strip()[-300:]}")
        return None
    token = done.stdout.strip()
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as e:
        raise SystemExit(f"dev/devtoken.py printed no JWT ({e}): {token[:80]!r}")
    roles = claims.get("role", "customer")
    roles = roles if isinstance(roles, list) else [roles]
    if claims.get("sub") != subject or role not in roles:
        return None
    return token


def failures_from_junit(path):
    """(test case, message) for each failure or error in schemathesis's JUnit report."""
    if not os.path.exists(path):
        return []
    found = []
    for case in ET.parse(path).getroot().iter("testcase"):
        for bad in list(case.findall("failure")) + list(case.findall("error")):
            text = (bad.text or bad.get("message") or "").strip()
            found.append((case.get("name", "?"), text))
    return found


def fuzzer_crashed(junit):
    """True when every failure in the report is schemathesis's own Runtime Error."""
    found = failures_from_junit(junit)
    return bool(found) and all(message.startswith("Runtime Error") for _, message in found)


def run_one(args, role, report_dir, workers=None):
    # Several callers of the role, taken in turn by the hooks' auth (see there: rate limits).
    run_id = secrets.token_hex(4)
    subject = f"st_{role}_{run_id}"
    tokens = [mint(role, f"{subject}_{i}") for i in range(args.callers)]
    token = None if None in tokens else tokens[0]
    if token is None:
        print(f"== {role}: skipped: dev/devtoken.py cannot mint a token with role {role} (no --role yet?)")
        return "skipped"
    os.makedirs(report_dir, exist_ok=True)
    config = os.path.join(report_dir, "schemathesis.toml")
    with open(config, "w") as f:
        f.write(config_toml(role))
    junit = os.path.join(report_dir, "junit.xml")
    phases = args.phases
    if role in ROLE_OPERATIONS and not args.operations:
        # One operation has no links to follow: the stateful phase would have nothing to run.
        phases = ",".join(p for p in phases.split(",") if p != "stateful")
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"), "--config-file", config,
        "run", args.spec, "--url", args.url,
        "--checks", ",".join(c for c in CHECKS if c not in args.skip_checks.split(",")),
        "--phases", phases,
        "--max-examples", str(args.max_examples),
        # The seed alone decides what is generated: no example database, so a run does not
        # depend on what an earlier one found (and a different --seed explores further).
        "--seed", str(args.seed), "--generation-database", "none",
        "--workers", str(workers or args.workers),
        "--request-timeout", "30",
        "--max-failures", "50",
        "--no-color", "--output-truncate", "true",
        "--report", "junit,vcr", "--report-dir", report_dir, "--report-junit-path", junit,
        "--report-vcr-path", os.path.join(report_dir, "cassette.yaml"),
    ]
    for op in [o for o in args.operations.split(",") if o] or ROLE_OPERATIONS.get(role, []):
        cmd += ["--include-operation-id", op]
    print(f"== {role}: {args.callers} callers {subject}_*, seed {args.seed}, at most {args.max_examples} examples per operation and phase", flush=True)
    started = time.monotonic()
    log_path = os.path.join(report_dir, "output.txt")
    with open(log_path, "w") as log:
        # Schemathesis has its own --max-time, but it spends the whole budget; a deadline on the
        # process bounds a stuck run instead.
        # Run from the report directory, with Hypothesis's files there too: `cargo lambda watch`
        # restarts the functions on any new file in the project outside ignored folders, and a
        # restart in the middle of the run looks like a hung server.
        env = {
            **os.environ,
            "NO_COLOR": "1",
            "HYPOTHESIS_STORAGE_DIRECTORY": os.path.join(report_dir, ".hypothesis"),
            "SCHEMATHESIS_HOOKS": os.path.join(HERE, "schemathesis_hooks.py"),
            "SWITCHBOARD_ST_TOKENS": ",".join(tokens),
        }
        proc = subprocess.Popen(cmd, cwd=report_dir, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
        try:
            code = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            code = None
    elapsed = time.monotonic() - started
    with open(log_path) as f:
        output = f.read()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    # The line after "Test cases:" reads like "400 generated, 400 passed, 6 skipped".
    counts = next((lines[i + 1] for i, line in enumerate(lines[:-1]) if line == "Test cases:"), "")
    if code == 0:
        print(f"   passed in {elapsed:.0f}s: {counts}")
        return "passed"
    if code is None:
        print(f"   FAILED: still running after {args.timeout}s; output: {log_path}")
    else:
        print(f"   FAILED (exit {code}) in {elapsed:.0f}s; full output: {log_path}")
    for name, message in failures_from_junit(junit)[:20]:
        print(f"   --- {name}")
        print("\n".join("       " + line for line in message.splitlines()[:25]))
    if counts:
        print(f"   {counts}")
    if not os.path.exists(junit):
        print("\n".join("   " + line for line in lines[-12:]))
    return "failed"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("CHAT_URL"), help="the chat API's base URL (default: $CHAT_URL)")
    ap.add_argument("--callers", type=int, default=16,
                    help="callers (tokens) per role, taken in turn, so the per-caller rate limit does not answer most requests")
    ap.add_argument("--spec", default=os.path.join(ROOT, "openapi", "chat.json"))
    ap.add_argument("--roles", default="customer,agent,admin", help="one run per role, in this order")
    ap.add_argument("--operations", default="", help="comma-separated operationIds to test (default: all)")
    ap.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    ap.add_argument("--skip-checks", default="", help=f"comma-separated checks to leave out of: {', '.join(CHECKS)}")
    ap.add_argument("--max-examples", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=85, help="seconds one role's run may take (two fit in 3 minutes)")
    ap.add_argument("--report-dir", default=os.path.join(ROOT, ".local", "schemathesis"))
    args = ap.parse_args()
    args.spec = os.path.abspath(args.spec)
    args.report_dir = os.path.abspath(args.report_dir)
    if not args.url:
        sys.exit("no URL: pass --url or set CHAT_URL (./dev/test and .local/*/stack.env export it)")
    host = urllib.parse.urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"{args.url}: only a local stack is fuzzed (loopback), not {host}")

    results = {}
    for role in filter(None, args.roles.split(",")):
        report_dir = os.path.join(args.report_dir, role)
        results[role] = run_one(args, role, report_dir)
        if results[role] == "failed" and fuzzer_crashed(os.path.join(report_dir, "junit.xml")):
            # Only the fuzzer's own crash earns a second run: any finding about the API fails the
            # step at once. The crash is Python 3.11's "AST constructor recursion depth mismatch"
            # inside Hypothesis's lambda descriptions: the ast module keeps that depth in state
            # its threads share, so two workers parsing at once can trip it (more often under
            # load, and with the agent role's more operations). One worker cannot.
            print(f"== {role}: the fuzzer itself crashed (a Runtime Error, no finding about the API): once more, with one worker")
            results[role] = run_one(args, role, report_dir, workers=1)
    print("schemathesis: " + ", ".join(f"{role} {r}" for role, r in results.items()))
    return 1 if "failed" in results.values() else 0


if __name__ == "__main__":
    sys.exit(main())
