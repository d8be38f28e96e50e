#!/usr/bin/env python3
"""The cost model behind docs/cost.md: dollars per million chat turns, webhooks and jobs on AWS.

    .venv/bin/python dev/cost_model.py                       # print the tables
    .venv/bin/python dev/cost_model.py --bench .local/bench/turns.json   # after dev/bench
    .venv/bin/python dev/cost_model.py --write docs/cost.md  # replace the generated part of the doc

Every input is below with where it comes from: list prices (us-east-1, checked 2026-12), the
requests each operation makes (read from the code: shared/src/store/dynamo.rs, webhook/claims.rs,
fulfillment/mod.rs, relay.rs), item sizes measured in a local table after the integration tests, and the
function's own CPU time from the benchmarks (`TurnOverhead`). What is assumed, not measured, is
marked as such: AWS-side latencies and the company's systems' latency.
"""

import argparse
import json
import math
import re
import sys

# List prices, us-east-1 (public pricing pages; on-demand DynamoDB after the November 2024 cut).
PRICE = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s_arm64": 0.0000133334,
    "apigw_http_request": 1.00 / 1e6,  # HTTP API, first 300 million a month
    "ddb_wru": 0.625 / 1e6,  # on-demand write request unit (1 KB; transactional = 2)
    "ddb_rru": 0.125 / 1e6,  # on-demand read request unit (4 KB strongly consistent; eventual = 0.5)
    "ddb_storage_gb_month": 0.25,
    "ddb_pitr_gb_month": 0.20,
    "sqs_fifo_request": 0.50 / 1e6,  # per 64 KB chunk
    "logs_ingest_gb": 0.50,
    "logs_store_gb_month": 0.03,
    "cw_metric_month": 0.30,  # custom metric, first 10,000
    "cw_alarm_metric_month": 0.10,  # standard resolution, per metric in the alarm
    "kms_key_month": 1.00,
    "kms_request": 0.03 / 10_000,
}

MEMORY_GB = 128 / 1024
# Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB. CPU-bound work
# measured on a whole core takes about this many times longer at 128 MB.
CPU_SCALE = 1769 / 128

# Item sizes (bytes, DynamoDB's size rules) measured in the local table after the integration
# tests: median state record 404, message 194 (p90 388), turn record 532, effect 226, claim 259.
STATE_B, MESSAGE_B, TURN_B = 404, 250, 532
# An outbox item (the job's queue envelope, keys, group and deduplication ids): 533 bytes for a
# refund, 586 for a proactive message, 629 for a confirmation email (DynamoDB's size rules over
# the items the code writes): under 1 KB.
OUTBOX_B = 630
WINDOW = 20  # HISTORY_WINDOW: messages a turn reads

# Assumed AWS-side latencies inside a Lambda in the same region (ms), and the company's systems.
LATENCY_MS = {"ddb_read": 5, "ddb_write": 8, "ddb_transact": 15, "sqs_send": 8, "company_api": 80}


def rru_query(nbytes, consistent=True):
    units = math.ceil(nbytes / 4096)
    return units if consistent else units / 2


def wru(nbytes, transactional=False):
    return math.ceil(nbytes / 1024) * (2 if transactional else 1)


def chat_turn(messages_in_conversation, with_job, company_calls, own_ms):
    """One customer turn on an existing conversation, with a client_message_id."""
    window = min(messages_in_conversation, WINDOW)
    reads = rru_query(STATE_B + window * MESSAGE_B)  # one Query: state + newest messages
    # One TransactWriteItems: state, the customer's message, one reply, the turn record; the
    # ByCustomer index is written as the state record's updated_at changes. A job the turn
    # starts is one more item of the transaction (the outbox); the turn sends nothing to SQS.
    writes = wru(STATE_B, True) + 2 * wru(MESSAGE_B, True) + wru(TURN_B, True) + wru(100)
    if with_job:
        writes += wru(OUTBOX_B, True)
    io_ms = LATENCY_MS["ddb_read"] + LATENCY_MS["ddb_transact"] + company_calls * LATENCY_MS["company_api"]
    duration_ms = own_ms * CPU_SCALE + io_ms
    return {
        "apigw": PRICE["apigw_http_request"],
        "lambda": PRICE["lambda_request"] + math.ceil(duration_ms) / 1000 * MEMORY_GB * PRICE["lambda_gb_s_arm64"],
        "dynamodb": reads * PRICE["ddb_rru"] + writes * PRICE["ddb_wru"],
        "sqs": 0.0,
        "logs": LOG_BYTES["turn"] / 1e9 * PRICE["logs_ingest_gb"],
        "_duration_ms": duration_ms,
        "_rru": reads,
        "_wru": writes,
    }


def webhook(own_ms):
    """An accepted, verified event: claim (conditional PutItem), queue, mark done (UpdateItem)."""
    writes = wru(260) + wru(260)
    io_ms = LATENCY_MS["ddb_write"] * 2 + LATENCY_MS["sqs_send"]
    duration_ms = own_ms * CPU_SCALE + io_ms
    return {
        "apigw": 0.0,  # a function URL costs nothing beyond the function
        "lambda": PRICE["lambda_request"] + math.ceil(duration_ms) / 1000 * MEMORY_GB * PRICE["lambda_gb_s_arm64"],
        "dynamodb": writes * PRICE["ddb_wru"],
        "sqs": 1 * PRICE["sqs_fifo_request"],
        "logs": LOG_BYTES["webhook"] / 1e9 * PRICE["logs_ingest_gb"],
        "_duration_ms": duration_ms,
        "_rru": 0,
        "_wru": writes,
    }


def job(batch, own_ms, company_calls=1):
    """A proactive message or refund: begin the effect (UpdateItem), load the conversation
    (Query), one TransactWriteItems (state, message, effect), the company's system called once.
    Jobs arrive in batches of up to 10 per invocation; the poller's receive and delete are per
    batch."""
    reads = rru_query(STATE_B + WINDOW * MESSAGE_B)
    writes = wru(230) + wru(STATE_B, True) + wru(MESSAGE_B, True) + wru(230, True) + wru(100)
    io_ms = LATENCY_MS["ddb_write"] + LATENCY_MS["ddb_read"] + LATENCY_MS["ddb_transact"] + company_calls * LATENCY_MS["company_api"]
    # Jobs of different conversations run side by side in one invocation: the batch lasts about
    # as long as its slowest job, so each job is billed about 1/batch of it.
    duration_ms = (own_ms * CPU_SCALE * batch + io_ms) / batch
    return {
        "apigw": 0.0,
        "lambda": PRICE["lambda_request"] / batch + duration_ms / 1000 * MEMORY_GB * PRICE["lambda_gb_s_arm64"],
        "dynamodb": reads * PRICE["ddb_rru"] + writes * PRICE["ddb_wru"],
        "sqs": 2 / batch * PRICE["sqs_fifo_request"],  # receive + delete per batch
        "logs": LOG_BYTES["job"] / 1e9 * PRICE["logs_ingest_gb"],
        "_duration_ms": duration_ms,
        "_rru": reads,
        "_wru": writes,
    }


def relay(batch, own_ms):
    """Relaying one outbox item: the stream invokes the relay with up to 100 new items (stream
    reads by Lambda are free, and filtered-out records invoke nothing); per SendMessageBatch of up
    to 10 (one SQS request) and one BatchWriteItem of deletes (1 write unit an item). At low
    traffic each invocation carries one item."""
    writes = wru(OUTBOX_B)
    calls = math.ceil(batch / 10)
    io_ms = calls * LATENCY_MS["sqs_send"] + math.ceil(batch / 25) * LATENCY_MS["ddb_write"]
    duration_ms = (own_ms * CPU_SCALE * batch + io_ms) / batch
    return {
        "apigw": 0.0,
        "lambda": PRICE["lambda_request"] / batch + duration_ms / 1000 * MEMORY_GB * PRICE["lambda_gb_s_arm64"],
        "dynamodb": writes * PRICE["ddb_wru"],
        "sqs": calls / batch * PRICE["sqs_fifo_request"],
        "logs": LOG_BYTES["relay"] / batch / 1e9 * PRICE["logs_ingest_gb"],
        "_duration_ms": duration_ms,
        "_rru": 0,
        "_wru": writes,
    }


def channel_message(own):
    """A customer's message from a messaging channel, answered with one reply (docs/channels.md):
    the webhook function verifies and claims it and queues a channel.inbound job; that job
    (begin, read the conversation, the turn's own read and transaction with the reply and its
    channel.deliver outbox item, complete) runs the turn; the relay sends the deliver job; the
    deliver job (begin, read, the provider's send API, complete) sends the reply. Jobs in
    batches of 1 (a conversation's jobs run in order; at low traffic each is alone)."""
    intake = webhook(own["webhook"])
    # The turn inside the inbound job: as a chat turn with one more outbox item, but no API
    # Gateway and the job's own begin/complete around it (2 writes) and its conversation read.
    turn = chat_turn(40, True, 0, own["turn"])
    inbound = job(1, own["job"], company_calls=0)
    inbound["dynamodb"] = turn["dynamodb"] + (wru(230) * 2) * PRICE["ddb_wru"] + rru_query(STATE_B) * PRICE["ddb_rru"]
    inbound["lambda"] += turn["lambda"] - PRICE["lambda_request"]
    deliver = job(1, own["job"], company_calls=0)
    # Begin and complete, one read of the record; the provider's send is ~150 ms of waiting.
    deliver["dynamodb"] = (wru(230) * 2) * PRICE["ddb_wru"] + rru_query(STATE_B) * PRICE["ddb_rru"]
    deliver["lambda"] += 150 / 1000 * MEMORY_GB * PRICE["lambda_gb_s_arm64"]
    relayed = relay(1, own["relay"])
    parts = {}
    for p in (intake, inbound, deliver, relayed):
        for k, v in p.items():
            if not k.startswith("_"):
                parts[k] = parts.get(k, 0.0) + v
    parts["_duration_ms"] = sum(p["_duration_ms"] for p in (intake, inbound, deliver, relayed))
    parts["_wru"] = sum(p["_wru"] for p in (intake, turn, relayed)) + 4
    parts["_rru"] = turn["_rru"] + 2 * rru_query(STATE_B)
    return parts


# Bytes a request writes to CloudWatch Logs. Measured in the local stack's functions.log for an
# order-status turn: `understood` 306, `chat request` 495, the turn's EMF document 581, one
# connector EMF document 274 (1,656 bytes); plus Lambda's START/END/REPORT lines (~400) and the
# API access log line (~300), assumed. Webhook and job from their lines the same way.
LOG_BYTES = {"turn": 2400, "webhook": 1000, "job": 1500, "relay": 900}


def per_million(parts):
    return {k: v * 1e6 for k, v in parts.items() if not k.startswith("_")}


def fmt(x):
    return f"${x:,.2f}" if x >= 0.01 or x == 0 else f"${x:,.4f}"


def render(own):
    rows = [
        ("chat turn (order status: one company call)", chat_turn(40, False, 1, own["turn"])),
        ("chat turn (no company call: small talk, FAQ)", chat_turn(40, False, 0, own["turn"])),
        ("chat turn that starts a job (refund, handoff)", chat_turn(40, True, 1, own["turn"])),
        ("webhook accepted", webhook(own["webhook"])),
        ("job (batch of 10)", job(10, own["job"])),
        ("job (batch of 1)", job(1, own["job"])),
        ("relaying a job from the outbox (100 an invocation)", relay(100, own["relay"])),
        ("relaying a job from the outbox (1 an invocation)", relay(1, own["relay"])),
        ("channel message answered (WhatsApp, SMS, Telegram: inbound + one reply)", channel_message(own)),
    ]
    out = []
    out.append("| per million | API Gateway | Lambda | DynamoDB | SQS | Logs | **total** | billed ms (modelled) | WRU + RRU each |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for name, parts in rows:
        m = per_million(parts)
        total = sum(m.values())
        out.append(
            f"| {name} | {fmt(m['apigw'])} | {fmt(m['lambda'])} | {fmt(m['dynamodb'])} | {fmt(m['sqs'])} "
            f"| {fmt(m['logs'])} | **{fmt(total)}** | {math.ceil(parts['_duration_ms'])} | {parts['_wru']} + {parts['_rru']} |"
        )
    out.append("")
    ch = per_million(channel_message(own))
    out.append(
        f"Per thousand channel messages answered: **{fmt(sum(ch.values()) / 1000)}** on AWS "
        "(the provider's own fees — Meta's per-message pricing, Twilio's per-segment SMS price — "
        "are billed by the provider and not modelled here)."
    )
    out.append("")
    out.append("Turn cost against conversation length (order-status turn, per million):")
    out.append("")
    out.append("| messages in the conversation | RRU per turn | DynamoDB | total |")
    out.append("|---|---|---|---|")
    for n in (1, 10, 20, 100, 10_000):
        parts = chat_turn(n, False, 1, own["turn"])
        m = per_million(parts)
        out.append(f"| {n:,} | {parts['_rru']} | {fmt(m['dynamodb'])} | {fmt(sum(m.values()))} |")
    out.append("")
    out.append(
        f"Own CPU time used (release build, this machine, p50): turn {own['turn']:.3f} ms, "
        f"webhook {own['webhook']:.3f} ms, job {own['job']:.3f} ms, relay {own['relay']:.3f} ms per item "
        f"({own['source']}); scaled ×{CPU_SCALE:.1f} for 128 MB."
    )
    return "\n".join(out)


def own_times(bench_path):
    # The turn: the p50 own overhead of the last `dev/bench turns` on this machine (release
    # build, 2026-12-02: 379 µs), or read from its JSON with --bench. Webhook and job are not
    # benchmarked on their own: assumed (a verification is ~3 µs, a job does about a turn's
    # work without understanding the text).
    own = {"turn": 0.379, "webhook": 0.05, "job": 0.3, "relay": 0.02,
           "source": "turn measured by dev/bench 2026-12-02, webhook, job and relay assumed"}
    if bench_path:
        with open(bench_path) as f:
            b = json.load(f)
        p50_us = (((b.get("mix") or {}).get("own")) or {}).get("p50_us")
        if p50_us is None:
            sys.exit(f"{bench_path} has no mix.own.p50_us: is it dev/bench's turns.json?")
        own["turn"] = p50_us / 1000
        own["source"] = f"turn measured: {bench_path}; webhook, job and relay assumed"
    return own


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", help="the turns benchmark's JSON (.local/bench/turns.json after dev/bench)")
    ap.add_argument("--write", help="replace the part between the cost-model markers in this file")
    args = ap.parse_args()
    table = render(own_times(args.bench))
    if not args.write:
        print(table)
        return 0
    with open(args.write) as f:
        doc = f.read()
    begin, end = "<!-- cost-model:begin -->", "<!-- cost-model:end -->"
    if begin not in doc or end not in doc:
        sys.exit(f"{args.write} has no {begin} … {end} section")
    doc = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: f"{begin}\n{table}\n{end}", doc, flags=re.S)
    with open(args.write, "w") as f:
        f.write(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
