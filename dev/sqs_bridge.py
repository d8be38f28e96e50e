#!/usr/bin/env python3
"""Local stand-in for Lambda's SQS event source mapping (cargo-lambda does not emulate one).

For each mapping, several pollers (as Lambda runs several batches at once): long-poll the queue
through the SQS API, invoke the function through cargo-lambda's invoke endpoint with a real SQS
event, delete only the messages that succeeded (honouring `batchItemFailures`), and leave
failures alone: the queue's visibility timeout makes them visible again and its redrive policy
moves them to the DLQ after maxReceiveCount receives. An invocation that errors, or outlives the
function's timeout from the template (a crashed function never answers), deletes nothing, as in
AWS. FIFO groups stay in order because SQS hands out a group's messages to one poller at a time.
"""

import argparse
import hashlib
import json
import sys
import threading

from event_sources import STOP, InvokeError, invoke, logger, run_until_stopped, session, stop_on_signals

log = logger("sqs-bridge")


def to_record(msg, queue_arn, region):
    attrs = msg.get("Attributes", {})
    return {
        "messageId": msg["MessageId"],
        "receiptHandle": msg["ReceiptHandle"],
        "body": msg["Body"],
        "attributes": attrs,
        "messageAttributes": {
            k: {
                "stringValue": v.get("StringValue"),
                "binaryValue": v.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": v["DataType"],
            }
            for k, v in (msg.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": msg.get("MD5OfBody") or hashlib.md5(msg["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def poll(mapping, sqs, invoke_url, region, timeout):
    timeout = timeout or mapping.get("timeout", 30) + 5
    url, arn, fn = mapping["queue_url"], mapping["queue_arn"], mapping["function"]
    while not STOP.is_set():
        try:
            got = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(mapping["batch_size"], 10),
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception as e:  # the queue service may be starting or stopping
            log(event="receive_failed", queue=url, error=str(e))
            STOP.wait(1)
            continue
        messages = got.get("Messages", [])
        if not messages:
            continue
        event = {"Records": [to_record(m, arn, region) for m in messages]}
        ids = [m["MessageId"] for m in messages]
        try:
            result = invoke(invoke_url, fn, event, timeout)
        except InvokeError as e:
            log(event="invoke_failed", function=fn, messages=ids, error=str(e))
            continue  # nothing deleted: every message comes back after the visibility timeout
        failed = set()
        if mapping["report_batch_item_failures"] and isinstance(result, dict):
            failed = {f.get("itemIdentifier") for f in result.get("batchItemFailures") or []}
            if None in failed or "" in failed or not failed <= set(ids):
                # Lambda treats a malformed failure list as a failure of the whole batch.
                log(event="bad_batch_response", function=fn, response=result)
                continue
        done = [m for m in messages if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]} for j, m in enumerate(done[i:i + 10])],
            )
        log(event="batch", function=fn, received=len(messages), deleted=len(done), failed=sorted(failed))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mappings", required=True, help="JSON file written by dev/stack.py")
    ap.add_argument("--endpoint", required=True, help="SQS endpoint (moto)")
    ap.add_argument("--invoke-url", required=True, help="cargo lambda watch address")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds to wait for one invocation (default: the function's timeout + 5)")
    ap.add_argument("--pollers", type=int, default=4, help="concurrent batches per mapping")
    args = ap.parse_args()

    with open(args.mappings) as f:
        mappings = [m for m in json.load(f) if m["type"] == "SQS"]
    aws = session(args.region)
    stop_on_signals()
    threads = []
    for m in mappings:
        for _ in range(args.pollers):
            sqs = aws.client("sqs", endpoint_url=args.endpoint)
            t = threading.Thread(target=poll, args=(m, sqs, args.invoke_url, args.region, args.timeout), daemon=True)
            t.start()
            threads.append(t)
        log(event="polling", queue=m["queue_url"], function=m["function"], pollers=args.pollers)
    run_until_stopped(threads)
    sys.exit(0)


if __name__ == "__main__":
    main()
