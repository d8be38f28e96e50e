#!/usr/bin/env python3
"""Inspect and redrive the jobs dead-letter queue, locally or in AWS.

  .venv/bin/python dev/dlq.py list                 # what is in the DLQ, and why it failed
  .venv/bin/python dev/dlq.py redrive [--id ID ...] # send messages back to the jobs queue

Locally the queue URLs and the moto endpoint come from .local/dev/stack.env (written by
./dev/up). In AWS, pass --dlq-url and --queue-url (the stack's JobsDeadLetterQueueUrl and
JobsQueueUrl outputs) and use your usual AWS credentials. A job fulfillment dead-lettered itself
shows the reason, its attempts and the id of the message it came from; one SQS moved after
maxReceiveCount receives (the backstop) shows only its receives. A redriven message keeps its FIFO
group, so it still runs in its conversation's order, and gets a new deduplication id, so the
queue does not drop it as a repeat. The jobs are idempotent: a redrive never repeats an effect
that already happened.
"""

import argparse
import json
import os
import sys
import uuid

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))


def local_env(name="dev"):
    path = os.path.join(os.path.dirname(HERE), ".local", name, "stack.env")
    env = {}
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.strip().partition("=")
            env[k] = v.strip("'")
    return env


def aws_client(service, env, endpoint=None):
    """A client for the local stack's moto (the endpoint given, or the one in stack.env), or, with
    neither, for AWS with the usual credentials."""
    endpoint = endpoint or env.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return boto3.client(service)
    return boto3.client(service, endpoint_url=endpoint, region_name=env.get("AWS_REGION", "us-east-1"),
                        aws_access_key_id="local", aws_secret_access_key="local")


def describe(body):
    """A one-line guess at what the message is, without printing customer data."""
    try:
        job = json.loads(body)
    except ValueError:
        return "not JSON (a poison message)"
    if not isinstance(job, dict) or "type" not in job or "key" not in job:
        return "JSON but not a job envelope (a poison message)"
    return f"{job['type']} key={job['key']}"


def why(message):
    """What fulfillment recorded when it dead-lettered the job itself (message attributes reason,
    attempts, source_message_id); nothing for a job SQS moved after maxReceiveCount receives."""
    attrs = message.get("MessageAttributes") or {}
    shown = [f"{k}={attrs[k].get('StringValue', '?')}" for k in ("attempts", "source_message_id") if k in attrs]
    if "reason" in attrs:
        shown.append(f"reason={attrs['reason'].get('StringValue', '?')[:160]!r}")
    return ("  " + "  ".join(shown)) if shown else ""


def receive_all(sqs, url, hold_secs):
    """Every message currently in the queue, held invisible for `hold_secs`."""
    seen, out = set(), []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  VisibilityTimeout=hold_secs, AttributeNames=["All"],
                                  MessageAttributeNames=["All"])
        batch = [m for m in got.get("Messages", []) if m["MessageId"] not in seen]
        if not batch:
            return out
        for m in batch:
            seen.add(m["MessageId"])
            out.append(m)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["list", "redrive"])
    ap.add_argument("--id", action="append", help="only these message ids (redrive)")
    ap.add_argument("--dlq-url")
    ap.add_argument("--queue-url")
    ap.add_argument("--endpoint", help="SQS endpoint (default: the local stack's moto, if running)")
    ap.add_argument("--stack-name", default="dev", help="which local stack (.local/<name>)")
    args = ap.parse_args()

    # The local stack's (endpoint included) unless the queues are named: a stack.env left by
    # ./dev/up must not send an AWS redrive to moto.
    env = local_env(args.stack_name) if not (args.dlq_url or args.queue_url) else {}
    dlq = args.dlq_url or env.get("JOBS_DLQ_URL")
    queue = args.queue_url or env.get("JOBS_QUEUE_URL")
    if not dlq or not queue:
        sys.exit("no queue URLs: start ./dev/up, or pass --dlq-url and --queue-url")
    sqs = aws_client("sqs", env, args.endpoint)

    if args.command == "list":
        messages = receive_all(sqs, dlq, 30)
        # Visible again at once: listing must not keep messages from a redrive.
        for i in range(0, len(messages), 10):
            sqs.change_message_visibility_batch(QueueUrl=dlq, Entries=[
                {"Id": str(j), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for j, m in enumerate(messages[i:i + 10])])
        for m in messages:
            a = m.get("Attributes", {})
            print(f"{m['MessageId']}  group={a.get('MessageGroupId', '-')}  "
                  f"receives={a.get('ApproximateReceiveCount', '?')}  {describe(m['Body'])}{why(m)}")
        print(f"{len(messages)} message(s) in {dlq}")
        return

    wanted = set(args.id or [])
    moved = 0
    for m in receive_all(sqs, dlq, 60):
        if wanted and m["MessageId"] not in wanted:
            continue
        a = m.get("Attributes", {})
        sqs.send_message(QueueUrl=queue, MessageBody=m["Body"],
                         MessageGroupId=a.get("MessageGroupId", "redrive"),
                         MessageDeduplicationId=f"redrive-{uuid.uuid4().hex}")
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
        moved += 1
        print(f"redrove {m['MessageId']}  {describe(m['Body'])}")
    print(f"{moved} message(s) sent back to {queue}")


if __name__ == "__main__":
    main()
