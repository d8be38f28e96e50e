#!/usr/bin/env python3
"""Commit-to-fulfillment latency through the outbox, on a running local stack with functions.

    python dev/bench_outbox.py [--rate 2] [--duration 150] [--warmup 8] [--json PATH]

dev/bench runs it (step `outbox`) against a stack of release builds started for it, with the
stack's ready file in the environment. Fresh customers say "I want to talk to a person" at a
steady rate, through the chat function's URL; each turn starts one `agent.handoff` job, which
its commit writes as an outbox item, the relay sends to the jobs queue and fulfillment runs
(it emails the team through the demo email API). Afterwards, for each job:

- commit: the customer message's `created_at` (the turn's clock, taken just before its
  TransactWriteItems; the outbox item carries the same instant);
- written, relayed: the outbox item's INSERT and REMOVE records on the table's stream (moto's
  clock, in milliseconds): the commit applied, and the relay's delete after its send to SQS;
- started, done: the job's effect item (`started_at`, `completed_at`).

Percentiles are nearest-rank, as tools/bench's. Nothing here changes the stack's settings.
"""

import argparse
import concurrent.futures
import json
import math
import os
import re
import sys
import time
import uuid
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import devtoken  # noqa: E402
from event_sources import session  # noqa: E402
from stack import http  # noqa: E402

TEXT = "I want to talk to a person"
# Between the commit and the job's end: (name, from, to) over each sample's instants.
STAGES = [
    ("commit_to_start", "commit", "started"),
    ("commit_to_done", "commit", "done"),
    ("commit_written", "commit", "written"),
    ("written_to_relayed", "written", "relayed"),
    ("relayed_to_start", "relayed", "started"),
    ("job", "started", "done"),
]


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: run under dev/bench, or source a local stack's ready file "
                 f"(dev/stack.py up --release --ready-file F; set -a; . F; set +a)")
    return value


def epoch(rfc3339):
    """Seconds since the epoch from RFC 3339 with any number of fraction digits (Rust's `time`
    writes nanoseconds; Python reads at most microseconds)."""
    m = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    if not m:
        raise ValueError(f"not RFC 3339: {rfc3339!r}")
    base, fraction, zone = m.groups()
    t = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return t + (int(fraction) / 10 ** len(fraction) if fraction else 0)


def stats(values_ms):
    """Nearest-rank percentiles in milliseconds (p99 of 300 is the 297th smallest)."""
    v = sorted(values_ms)
    if not v:
        return {"n": 0}
    def rank(p):
        return v[min(max(math.ceil(p * len(v)), 1), len(v)) - 1]

    return {"n": len(v), "p50_ms": rank(0.50), "p90_ms": rank(0.90), "p99_ms": rank(0.99),
            "max_ms": v[-1], "mean_ms": sum(v) / len(v)}


def turn(chat_url):
    """One fresh customer's handoff request: what the client saw and what the turn committed."""
    customer = f"cust_obx_{uuid.uuid4().hex[:12]}"
    body = json.dumps({"text": TEXT, "client_message_id": f"obx-{uuid.uuid4().hex}"}).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {devtoken.mint(customer)}"}
    sent = time.time()
    status, raw = http("POST", f"{chat_url}/v1/messages", body, headers, timeout=60)
    answered = time.time()
    sample = {"customer": customer, "status": status, "sent": sent, "round_trip_ms": (answered - sent) * 1000}
    if status == 200:
        reply = json.loads(raw)
        conversation = reply["conversation_id"]
        sample.update(conversation=conversation, commit=epoch(reply["message"]["created_at"]),
                      job_key=f"handoff:default:{conversation}:human_agent:-",
                      replies=[m["text"] for m in reply["replies"]])
    return sample


def drive(chat_url, rate, count):
    """`count` turns, started every 1/rate s whatever the earlier ones are doing."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        t0, futures = time.monotonic(), []
        for i in range(count):
            time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            futures.append(pool.submit(turn, chat_url))
        return [f.result() for f in futures], time.monotonic() - t0


def effects(ddb, table, samples, timeout):
    """Reads each job's effect item (consistently) until every one is finished or `timeout`."""
    pending = {f"T#default#E#{s['job_key']}": s for s in samples if "job_key" in s}
    deadline = time.time() + timeout
    while pending and time.time() < deadline:
        keys = list(pending)
        for i in range(0, len(keys), 100):
            got = ddb.batch_get_item(RequestItems={table: {
                "Keys": [{"pk": {"S": k}, "sk": {"S": "EFFECT"}} for k in keys[i:i + 100]],
                "ConsistentRead": True}})
            for item in got["Responses"].get(table, []):
                state = item.get("effect_state", {}).get("S")
                if state in ("done", "failed"):
                    s = pending.pop(item["pk"]["S"])
                    s.update(state=state, attempts=int(item["attempts"]["N"]),
                             started=epoch(item["started_at"]["S"]), done=epoch(item["completed_at"]["S"]))
        if pending:
            time.sleep(1)
    return len(pending)


def stream_times(aws, endpoint, table, samples):
    """The outbox items' INSERT and REMOVE times from the table's stream, read from its start."""
    by_sk = {f"JOB#{s['job_key']}": s for s in samples if "job_key" in s}
    ddb = aws.client("dynamodb", endpoint_url=endpoint)
    streams = aws.client("dynamodbstreams", endpoint_url=endpoint)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            got = streams.get_records(ShardIterator=it, Limit=1000)
            for r in got["Records"]:
                s = by_sk.get(r["dynamodb"]["Keys"]["sk"]["S"])
                name = {"INSERT": "written", "REMOVE": "relayed"}.get(r["eventName"])
                if s is not None and name and name not in s:
                    t = r["dynamodb"]["ApproximateCreationDateTime"]
                    s[name] = t.timestamp() if isinstance(t, datetime) else float(t)
            it = got.get("NextShardIterator") if got["Records"] else None


def relay_lags(log_path, offset):
    """`lag_ms` of the relay's `outbox relayed` lines written since `offset`, invocations that
    relayed something only."""
    lags = []
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            for line in f:
                if b"outbox relayed" not in line:
                    continue
                try:
                    fields = json.loads(line)["fields"]
                except (ValueError, KeyError):
                    continue
                if fields.get("relayed", 0) > 0:
                    lags.append((fields["relayed"], fields["lag_ms"]))
    except OSError:
        pass
    return lags


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # At 4 a second the job and the turn slow down by half on two cores (moto is one process);
    # commit to start, bound by the stream's polling, does not move.
    ap.add_argument("--rate", type=float, default=2, help="turns a second (default 2)")
    ap.add_argument("--duration", type=float, default=150, help="seconds of measured turns (default 150)")
    ap.add_argument("--warmup", type=int, default=8, help="turns first, at the same rate, not measured (default 8)")
    ap.add_argument("--drain-timeout", type=float, default=120, help="seconds to wait for the jobs to finish")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    chat_url, table = env("CHAT_URL"), env("TABLE_NAME")
    endpoint, region = env("AWS_ENDPOINT_URL"), env("AWS_REGION")
    log_path = os.path.join(ROOT, ".local", env("LOCAL_STACK_NAME"), "logs", "functions.log")
    aws = session(region)
    ddb = aws.client("dynamodb", endpoint_url=endpoint)

    warm, _ = drive(chat_url, args.rate, args.warmup)
    effects(ddb, table, warm, args.drain_timeout)
    offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    load_before = open("/proc/loadavg").read().split()[:3]
    count = max(1, round(args.rate * args.duration))
    print(f"[outbox] {count} handoff turns at {args.rate:g}/s ...", file=sys.stderr, flush=True)
    samples, sending = drive(chat_url, args.rate, count)
    unfinished = effects(ddb, table, samples, args.drain_timeout)
    load_after = open("/proc/loadavg").read().split()[:3]
    stream_times(aws, endpoint, table, samples)
    lags = relay_lags(log_path, offset)

    answered = [s for s in samples if s["status"] == 200]
    finished = [s for s in answered if "done" in s]
    figures = {
        name: stats([(s[b] - s[a]) * 1000 for s in finished if a in s and b in s]) for name, a, b in STAGES
    }
    result = {
        "benchmark": "outbox",
        "text": TEXT,
        "rate_per_sec": args.rate,
        "duration_secs": args.duration,
        "sending_secs": sending,
        "warmup": args.warmup,
        "turns": len(samples),
        "answered": len(answered),
        "statuses": {str(c): sum(s["status"] == c for s in samples) for c in sorted({s["status"] for s in samples})},
        "jobs_done": sum(s.get("state") == "done" for s in finished),
        "jobs_failed": sum(s.get("state") == "failed" for s in finished),
        "jobs_unfinished": unfinished,
        "retried": sum(s.get("attempts", 1) > 1 for s in finished),
        "without_stream_times": sum("relayed" not in s or "written" not in s for s in finished),
        "stages": figures,
        "turn_round_trip": stats([s["round_trip_ms"] for s in answered]),
        "relay_lag": {"invocations": len(lags), "jobs": sum(n for n, _ in lags),
                      "lag_ms": stats([lag for _, lag in lags])},
        "loadavg_during": {"before": " ".join(load_before), "after": " ".join(load_after)},
        "example_reply": answered[0]["replies"] if answered else None,
    }
    w = 24
    print(f"\n{'':<{w}} {'n':>5} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}", file=sys.stderr)
    for name, s in [*figures.items(), ("turn round trip", result["turn_round_trip"]),
                    ("relay lag_ms (per call)", result["relay_lag"]["lag_ms"])]:
        if s["n"]:
            print(f"{name:<{w}} {s['n']:>5} " + " ".join(f"{s[k]:>7.0f}ms" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
                  file=sys.stderr)
    print(f"turns {len(samples)}, answered {len(answered)}, jobs done {result['jobs_done']}, failed "
          f"{result['jobs_failed']}, unfinished {unfinished}, retried {result['retried']}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    ok = len(answered) == len(samples) and result["jobs_done"] == len(answered)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
