#!/usr/bin/env python3
"""List and redrive outbox items: jobs written with a commit that the relay has not sent yet.

  .venv/bin/python dev/outbox.py list                     # what is still in the table
  .venv/bin/python dev/outbox.py redrive [--sk SK ...] [--older-than SECS]

The relay (functions/relay) sends each new outbox item (sk JOB#...) from the table's stream to the
jobs queue and then deletes it, so the table normally holds none for more than a moment. One that
stays was not relayed: the relay was down longer than the stream keeps records (24 hours; the
relay's DLQ then holds where they were), or the item is malformed (no job, group or dedup; the
relay logs and counts those and leaves them), or SQS refused it for good (the relay's
`outbox item refused`, counted as OutboxRefused). `redrive` does what the relay would: sends the job
to the jobs queue with the item's group and deduplication ids, then deletes the item. Sending one
the relay sends too is harmless: the FIFO queue drops the repeat within its 5-minute
deduplication window, and the effect ledger keeps the effect single after it.

Locally the table, queue and moto endpoint come from .local/dev/stack.env (written by ./dev/up).
In AWS, pass --table and --queue-url (the stack's table name and JobsQueueUrl output) and use your
usual AWS credentials. Nothing printed is customer data: keys, dates and the job's type only.
"""

import argparse
import json
import sys
import time
from datetime import datetime

from dlq import aws_client, local_env


def outbox_items(ddb, table):
    """Every outbox item, by a paginated, strongly consistent Scan (outbox items are few: a full
    Scan reads the whole table, which an operator's tool may; no function does)."""
    pages = ddb.get_paginator("scan").paginate(
        TableName=table, ConsistentRead=True,
        FilterExpression="begins_with(sk, :job)", ExpressionAttributeValues={":job": {"S": "JOB#"}})
    for page in pages:
        yield from page["Items"]


def text(item, name):
    return (item.get(name) or {}).get("S")


def job_type(item):
    try:
        job = json.loads(text(item, "job") or "")
        return job["type"] if isinstance(job, dict) and isinstance(job.get("type"), str) else None
    except ValueError:
        return None


def problem(item):
    """Why the item cannot be sent as a job, or None."""
    missing = [k for k in ("job", "group", "dedup") if not text(item, k)]
    if missing:
        return f"malformed: no {', '.join(missing)}"
    if job_type(item) is None:
        return "malformed: job is not a job envelope"
    return None


def sqs_safe(body):
    """The body with U+FFFE and U+FFFF, which SQS refuses in any message (InvalidMessageContents),
    written as JSON escapes, as the functions write them since: the same JSON, the same job. Items
    written before that are sent as they would be now. (A valid JSON body holds them only inside
    strings.)"""
    return body.replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")


def age_secs(item):
    created = text(item, "created_at")
    try:
        return time.time() - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["list", "redrive"])
    ap.add_argument("--sk", action="append", help="only these items (redrive), e.g. JOB#refund:default:1002")
    ap.add_argument("--older-than", type=float, default=0, metavar="SECS",
                    help="only items created at least this long ago (redrive)")
    ap.add_argument("--table")
    ap.add_argument("--queue-url")
    ap.add_argument("--endpoint", help="AWS endpoint (default: the local stack's moto, if running)")
    ap.add_argument("--stack-name", default="dev", help="which local stack (.local/<name>)")
    args = ap.parse_args()

    # The local stack's (endpoint included) unless the table is named, as in dev/dlq.py.
    env = local_env(args.stack_name) if not (args.table or args.queue_url) else {}
    table = args.table or env.get("TABLE_NAME")
    queue = args.queue_url or env.get("JOBS_QUEUE_URL")
    if not table or (args.command == "redrive" and not queue):
        sys.exit("no table (or queue URL): start ./dev/up, or pass --table and --queue-url")
    ddb = aws_client("dynamodb", env, args.endpoint)

    if args.command == "list":
        n = 0
        for item in outbox_items(ddb, table):
            n += 1
            age = age_secs(item)
            print(f"{text(item, 'pk')}  {text(item, 'sk')}  created={text(item, 'created_at') or '?'}"
                  f"{f' ({age:.0f} s ago)' if age is not None else ''}  "
                  f"{problem(item) or job_type(item)}")
        print(f"{n} outbox item(s) in {table}")
        return

    sqs = aws_client("sqs", env, args.endpoint)
    wanted = set(args.sk or [])
    sent = skipped = 0
    for item in outbox_items(ddb, table):
        key = {"pk": item["pk"], "sk": item["sk"]}
        if wanted and text(item, "sk") not in wanted:
            continue
        age = age_secs(item)
        if args.older_than and (age is None or age < args.older_than):
            continue
        why = problem(item)
        if why:
            skipped += 1
            print(f"skipped {text(item, 'pk')}  {text(item, 'sk')}: {why}")
            continue
        sqs.send_message(QueueUrl=queue, MessageBody=sqs_safe(text(item, "job")),
                         MessageGroupId=text(item, "group"), MessageDeduplicationId=text(item, "dedup"))
        # Deleted only after the send: a failure in between leaves the item for the next run.
        ddb.delete_item(TableName=table, Key=key)
        sent += 1
        print(f"sent {text(item, 'pk')}  {text(item, 'sk')}  {job_type(item)}")
    print(f"{sent} job(s) sent to {queue}, {skipped} malformed item(s) left in {table}")
    if skipped:
        sys.exit(1)


if __name__ == "__main__":
    main()
