#!/usr/bin/env python3
"""Local stand-in for Lambda's DynamoDB stream event source mapping (cargo-lambda has none).

For each mapping (template.yaml, through dev/template_resources.py): one poller per shard of the
table's stream, a child shard only once its parent is read to the end. A poller reads the shard
through the DynamoDB Streams API about 4 times a second (as Lambda polls a shard), keeps the
records the mapping's FilterCriteria let through, and invokes the function through cargo-lambda's
invoke endpoint with Lambda's DynamoDB stream event, one batch at a time, in order:

- a partial batch response (ReportBatchItemFailures) retries from the lowest failed
  SequenceNumber; a malformed one fails the whole batch, as in Lambda;
- a function error, or an invocation that outlives the function's timeout (a crashed function
  never answers), retries the batch; with BisectBatchOnFunctionError it is split in two first
  (splitting uses no retries);
- MaximumRetryAttempts and MaximumRecordAgeInSeconds (-1: until the stream drops the record,
  after --retention seconds as DynamoDB Streams does after 24 hours) end the retries: the records
  are skipped and the on-failure destination gets the invocation record Lambda sends for a stream
  source (the shard and sequence numbers, not the records);
- nothing reaching the function (cargo lambda not listening) retries without counting.

After a batch is done (or given up) the shard's position is written to a checkpoint file, so a
stand-in killed mid-batch and started again invokes that batch again: duplicates are the
function's to absorb, as with Lambda, which also delivers a batch at least once.

What moto's stream records lack or get wrong, and how the event is built instead: see to_lambda.
"""

import argparse
import base64
import json
import math
import os
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

from botocore.exceptions import BotoCoreError, ClientError

from event_sources import STOP, InvokeError, NotInvoked, invoke, logger, run_until_stopped, session, stop_on_signals

log = logger("stream-bridge")

POLL_SECS = 0.25  # Lambda polls each shard about four times a second
READ_LIMIT = 1000  # GetRecords' maximum


class Stopped(Exception):
    """The stand-in is stopping: the batch in hand is left undone (and not checkpointed)."""


# ---- FilterCriteria: the part of Lambda's event filtering this stand-in follows


class FilterError(ValueError):
    pass


def check_pattern(pattern, where="pattern"):
    """Refuses what match() does not implement, so a template change cannot be silently ignored:
    nested objects, and arrays of exact values (strings, numbers, null) or {"prefix": "..."}."""
    if not isinstance(pattern, dict) or not pattern:
        raise FilterError(f"{where}: a filter pattern is a non-empty JSON object")
    for key, value in pattern.items():
        if isinstance(value, dict):
            check_pattern(value, f"{where}.{key}")
        elif isinstance(value, list) and value:
            for m in value:
                if isinstance(m, dict):
                    if set(m) != {"prefix"} or not isinstance(m["prefix"], str):
                        raise FilterError(f"{where}.{key}: only exact values and {{\"prefix\": \"...\"}} are "
                                          f"supported by the local stand-in, not {json.dumps(m)}")
                elif isinstance(m, bool) or not (m is None or isinstance(m, (str, int, float))):
                    raise FilterError(f"{where}.{key}: unsupported value {json.dumps(m)}")
        else:
            raise FilterError(f"{where}.{key}: a pattern's values are objects or non-empty arrays")


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return False  # patterns hold no booleans (check_pattern), and True == 1 must not match
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def matches_value(matchers, value):
    values = value if isinstance(value, list) else [value]
    for v in values:
        for m in matchers:
            if isinstance(m, dict):
                if isinstance(v, str) and v.startswith(m["prefix"]):
                    return True
            elif same(m, v):
                return True
    return False


def match(pattern, event):
    """Whether a record (as the function would see it) matches one pattern: every field the
    pattern names must be present and match (AND); a missing field never matches."""
    if not isinstance(event, dict):
        return False
    for key, want in pattern.items():
        if key not in event:
            return False
        if isinstance(want, dict):
            if not match(want, event[key]):
                return False
        elif isinstance(event[key], dict) or not matches_value(want, event[key]):
            return False
    return True


def passes(patterns, record):
    """Filters are ORed; no filters let everything through."""
    return not patterns or any(match(p, record) for p in patterns)


# ---- Lambda's view of a stream record


def wire(value):
    """An attribute value as JSON carries it: boto3 hands binary values (B, BS) over as bytes."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def number_size(n):
    digits = n.lstrip("+-").lower().split("e")[0].replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(v):
    """DynamoDB's item size rules (developer guide, "Item sizes and formats")."""
    (kind, x), = v.items()
    if kind == "S":
        return len(x.encode())
    if kind == "N":
        return number_size(x)
    if kind == "B":
        return len(x) if isinstance(x, (bytes, bytearray)) else len(base64.b64decode(x))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in x)
    if kind == "NS":
        return sum(number_size(s) for s in x)
    if kind == "BS":
        return sum(len(b) if isinstance(b, (bytes, bytearray)) else len(base64.b64decode(b)) for b in x)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in x)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(e) for k, e in x.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(attrs):
    return sum(len(name.encode()) + value_size(v) for name, v in (attrs or {}).items())


def created_at(record):
    t = record["dynamodb"]["ApproximateCreationDateTime"]
    return t.timestamp() if isinstance(t, datetime) else float(t)


def to_lambda(record, stream_arn, region):
    """The record as Lambda hands it to the function, built from what GetRecords returned. Where
    moto 5.2.5 differs from DynamoDB Streams, this follows AWS:
    - ApproximateCreationDateTime: epoch seconds rounded down to the second (moto: milliseconds);
    - SizeBytes: the keys' and images' size by DynamoDB's item size rules (moto: the length of
      its own JSON dump of the whole record, several times too big);
    - eventVersion "1.1", as Lambda sends (moto: "1.0");
    - eventSourceARN: the stream's ARN, which Lambda adds (GetRecords has none);
    - awsRegion: the stack's region (moto: always us-east-1);
    - userIdentity (TTL deletions only) in Lambda's lower-case spelling; moto never emits TTL
      deletions at all, so locally there are none."""
    d = record["dynamodb"]
    out = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": {
            "ApproximateCreationDateTime": float(math.floor(created_at(record))),
            "Keys": wire(d["Keys"]),
            **({"NewImage": wire(d["NewImage"])} if "NewImage" in d else {}),
            **({"OldImage": wire(d["OldImage"])} if "OldImage" in d else {}),
            "SequenceNumber": d["SequenceNumber"],
            "SizeBytes": item_size(d["Keys"]) + item_size(d.get("NewImage")) + item_size(d.get("OldImage")),
            "StreamViewType": d["StreamViewType"],
        },
        "eventSourceARN": stream_arn,
    }
    identity = record.get("userIdentity")
    if identity:
        out["userIdentity"] = {"type": identity.get("Type"), "principalId": identity.get("PrincipalId")}
    return out


def iso(t, millis=False):
    dt = datetime.fromtimestamp(t, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{dt.microsecond // 1000:03d}" if millis else "") + "Z"


# ---- Checkpoints: one file per mapping, {shard id: last sequence number done, or "closed"}


class Checkpoints:
    def __init__(self, path, stream_arn):
        self.path = path
        self.stream_arn = stream_arn
        self.lock = threading.Lock()
        self.shards = {}
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if saved.get("stream_arn") == stream_arn:
                self.shards = saved["shards"]
            else:
                # moto starts afresh with each stack, and numbers every stream's records alike.
                log(event="checkpoint_ignored", path=path, reason="another stream's", saved=saved.get("stream_arn"))

    def get(self, shard_id):
        with self.lock:
            return self.shards.get(shard_id)

    def set(self, shard_id, position):
        with self.lock:
            self.shards[shard_id] = position
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump({"stream_arn": self.stream_arn, "shards": self.shards}, f, indent=1)
            os.replace(tmp, self.path)  # a reader (or a restart) sees the old file or the new, whole


# ---- One shard


class ShardPoller:
    def __init__(self, bridge, shard, fresh):
        self.b = bridge
        self.m = bridge.mapping
        self.shard_id = shard["ShardId"]
        # A shard that was there when the mapping first started reads from StartingPosition; any
        # later one (a child) from its start, as Lambda does.
        self.start = self.m["starting_position"] if fresh else "TRIM_HORIZON"
        self.streams = bridge.aws.client("dynamodbstreams", endpoint_url=bridge.endpoint)
        self.sqs = bridge.aws.client("sqs", endpoint_url=bridge.endpoint)
        self.timeout = self.m["timeout"] + bridge.timeout_margin

    def iterator(self):
        done = self.b.checkpoints.get(self.shard_id)
        args = {"StreamArn": self.m["stream_arn"], "ShardId": self.shard_id}
        if done:
            args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=done)
        else:
            args.update(ShardIteratorType=self.start)
        try:
            return self.streams.get_shard_iterator(**args)["ShardIterator"]
        except ClientError as e:
            if e.response["Error"]["Code"] != "TrimmedDataAccessException":
                raise
            # The stand-in was away longer than the stream keeps records: they are gone unread.
            log(event="records_lost", shard=self.shard_id, after=done,
                error="the checkpoint is behind the stream's trim horizon; reading from the oldest record kept")
            args = {"StreamArn": self.m["stream_arn"], "ShardId": self.shard_id, "ShardIteratorType": "TRIM_HORIZON"}
            return self.streams.get_shard_iterator(**args)["ShardIterator"]

    def run(self):
        try:
            self.poll()
        except Stopped:
            pass
        except Exception as e:  # the bridge restarts the shard's poller from its checkpoint
            log(event="poller_failed", shard=self.shard_id, error=f"{type(e).__name__}: {e}")
            raise

    def poll(self):
        iterator, pending, first_seen = None, [], None
        while not STOP.is_set():
            if iterator is None:
                iterator = self.iterator()
                pending, first_seen = [], None
            read = []
            if iterator and len(pending) < READ_LIMIT:
                try:
                    got = self.streams.get_records(ShardIterator=iterator, Limit=READ_LIMIT)
                except ClientError as e:
                    if e.response["Error"]["Code"] in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                        log(event="iterator_reset", shard=self.shard_id, error=e.response["Error"]["Code"])
                        iterator = None
                        continue
                    raise
                read = got["Records"]
                iterator = got.get("NextShardIterator")  # none once a closed shard is read to its end
                pending += [to_lambda(r, self.m["stream_arn"], self.b.region) for r in read]
            if not pending:
                if iterator is None:
                    self.b.checkpoints.set(self.shard_id, "closed")
                    log(event="shard_closed", shard=self.shard_id)
                    return
                STOP.wait(POLL_SECS)
                continue
            first_seen = first_seen or time.monotonic()
            batch, used = [], 0
            for event in pending:
                used += 1
                if passes(self.m["filters"], event):
                    batch.append(event)
                    if len(batch) == self.m["batch_size"]:
                        break
            window = self.m["batching_window"]
            if batch and len(batch) < self.m["batch_size"] and time.monotonic() - first_seen < window and iterator:
                STOP.wait(POLL_SECS)  # MaximumBatchingWindowInSeconds: wait for a fuller batch
                continue
            if batch:
                self.deliver(batch, 0)
            self.b.checkpoints.set(self.shard_id, pending[used - 1]["dynamodb"]["SequenceNumber"])
            pending, first_seen = pending[used:], None
            if not read and not pending:
                STOP.wait(POLL_SECS)

    def deliver(self, records, attempts):
        """Invokes until the records are done or given up; returns then, never before."""
        delay = self.b.retry_delay
        invokes = 0
        while True:
            if STOP.is_set():
                raise Stopped
            records = self.drop_expired(records, attempts, invokes)
            if not records:
                return
            first, last = records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"]
            try:
                result = invoke(self.b.invoke_url, self.m["function"], {"Records": records}, self.timeout)
                failure = self.failed_from(result, records)
            except NotInvoked as e:
                log(event="not_invoked", function=self.m["function"], shard=self.shard_id, error=str(e))
                STOP.wait(delay)
                delay = min(delay * 2, self.b.max_retry_delay)
                continue  # Lambda retries these until the records expire, counting no attempt
            except InvokeError as e:
                failure = ("error", str(e))
            invokes += 1
            if failure is None:
                log(event="batch", function=self.m["function"], shard=self.shard_id, records=len(records),
                    first=first, last=last, attempts=attempts + 1)
                return
            kind, detail = failure
            if kind == "partial":
                log(event="partial_failure", function=self.m["function"], shard=self.shard_id, records=len(records),
                    first=first, last=last, retry_from=records[detail]["dynamodb"]["SequenceNumber"])
                records = records[detail:]
            else:
                log(event="batch_failed", function=self.m["function"], shard=self.shard_id, records=len(records),
                    first=first, last=last, error=detail)
                if self.m["bisect"] and len(records) > 1:
                    half = len(records) // 2
                    log(event="bisect", shard=self.shard_id, halves=[half, len(records) - half])
                    self.deliver(records[:half], attempts)
                    self.deliver(records[half:], attempts)
                    return
            attempts += 1
            if 0 <= self.m["max_retries"] < attempts:
                self.give_up(records, "RetryAttemptsExhausted", invokes, kind)
                return
            STOP.wait(delay)
            delay = min(delay * 2, self.b.max_retry_delay)

    def failed_from(self, result, records):
        """None if the batch succeeded, ("partial", index of the lowest failed record) or
        ("malformed", why): Lambda's rules for a stream source's partial batch response."""
        if not self.m["report_batch_item_failures"] or result is None:
            return None
        if not isinstance(result, dict):
            return ("malformed", f"the answer is not an object: {json.dumps(result)[:200]}")
        failures = result.get("batchItemFailures")
        if failures is None or failures == []:
            return None
        if not isinstance(failures, list):
            return ("malformed", "batchItemFailures is not a list")
        index = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(records)}
        lowest = None
        for f in failures:
            ident = f.get("itemIdentifier") if isinstance(f, dict) else None
            if not isinstance(ident, str) or ident not in index:
                return ("malformed", f"itemIdentifier {json.dumps(ident)} names no record of the batch")
            lowest = index[ident] if lowest is None else min(lowest, index[ident])
        return ("partial", lowest)

    def drop_expired(self, records, attempts, invokes):
        """Gives up the records past MaximumRecordAgeInSeconds, or that the stream no longer
        keeps (-1: only those), from the front of the batch; returns the rest."""
        limit = self.m["max_record_age"]
        limit = self.b.retention if limit < 0 else min(limit, self.b.retention)
        now = time.time()
        n = 0
        while n < len(records) and now - records[n]["dynamodb"]["ApproximateCreationDateTime"] > limit:
            n += 1
        if n:
            self.give_up(records[:n], "RecordAgeExceeded", invokes, None)
        return records[n:]

    def give_up(self, records, condition, invokes, kind):
        log(event="records_discarded", function=self.m["function"], shard=self.shard_id, condition=condition,
            records=len(records), first=records[0]["dynamodb"]["SequenceNumber"],
            last=records[-1]["dynamodb"]["SequenceNumber"])
        target = self.m["on_failure"]
        if not target:
            return
        # The invocation record Lambda sends for a stream source: where the records are, not them.
        body = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.m["function_arn"],
                "condition": condition,
                "approximateInvokeCount": invokes,
            },
            "version": "1.0",
            "timestamp": iso(time.time(), millis=True),
            "DDBStreamBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": iso(records[0]["dynamodb"]["ApproximateCreationDateTime"]),
                "approximateArrivalOfLastRecord": iso(records[-1]["dynamodb"]["ApproximateCreationDateTime"]),
                "batchSize": len(records),
                "streamArn": self.m["stream_arn"],
            },
        }
        if invokes:  # records given up before any invocation have no response to describe
            body["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST",
                                       **({"functionError": "Unhandled"} if kind != "partial" else {})}
        delay = self.b.retry_delay
        while True:
            try:
                self.sqs.send_message(QueueUrl=target["queue_url"], MessageBody=json.dumps(body))
                log(event="on_failure_sent", queue=target["queue_url"], shard=self.shard_id,
                    first=body["DDBStreamBatchInfo"]["startSequenceNumber"])
                return
            except (ClientError, BotoCoreError) as e:
                log(event="on_failure_send_failed", queue=target["queue_url"], error=str(e))
                if STOP.wait(delay):
                    raise Stopped
                delay = min(delay * 2, self.b.max_retry_delay)


# ---- One mapping: its shards, parents before children


class Bridge:
    def __init__(self, mapping, args):
        self.mapping = mapping
        self.endpoint = args.endpoint
        self.invoke_url = args.invoke_url
        self.region = args.region
        self.timeout_margin = args.timeout_margin
        self.retention = args.retention
        self.retry_delay = args.retry_delay
        self.max_retry_delay = args.max_retry_delay
        self.aws = session(args.region)
        self.streams = self.aws.client("dynamodbstreams", endpoint_url=args.endpoint)
        path = os.path.join(args.state_dir, f"stream-checkpoint-{mapping['function']}-{mapping['table']}.json")
        self.checkpoints = Checkpoints(path, mapping["stream_arn"])
        self.fresh = not self.checkpoints.shards
        self.pollers = {}  # shard id -> thread

    def shards(self):
        shards, start = [], None
        while True:
            args = {"StreamArn": self.mapping["stream_arn"], **({"ExclusiveStartShardId": start} if start else {})}
            d = self.streams.describe_stream(**args)["StreamDescription"]
            shards += d["Shards"]
            start = d.get("LastEvaluatedShardId")
            if not start:
                return shards

    def run(self):
        first = True
        while not STOP.is_set():
            try:
                shards = self.shards()
            except (ClientError, BotoCoreError) as e:
                log(event="describe_failed", stream=self.mapping["stream_arn"], error=str(e))
                STOP.wait(1)
                continue
            known = {s["ShardId"] for s in shards}
            for s in shards:
                sid = s["ShardId"]
                if self.checkpoints.get(sid) == "closed" or (sid in self.pollers and self.pollers[sid].is_alive()):
                    continue
                parent = s.get("ParentShardId")
                if parent in known and self.checkpoints.get(parent) != "closed":
                    continue  # a child waits until its parent's records are all done
                poller = ShardPoller(self, s, fresh=first and self.fresh)
                t = threading.Thread(target=poller.run, name=sid, daemon=True)
                t.start()
                self.pollers[sid] = t
                log(event="polling", function=self.mapping["function"], shard=sid, start=poller.start,
                    checkpoint=self.checkpoints.get(sid))
            first = False
            STOP.wait(5)  # shards change rarely (DynamoDB rolls them over every few hours)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mappings", required=True, help="JSON file written by dev/stack.py")
    ap.add_argument("--endpoint", required=True, help="DynamoDB Streams and SQS endpoint (moto)")
    ap.add_argument("--invoke-url", required=True, help="cargo lambda watch address")
    ap.add_argument("--state-dir", required=True, help="where the checkpoint files are kept")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--timeout-margin", type=float, default=5,
                    help="seconds past the function's timeout before an invocation counts as failed")
    ap.add_argument("--retention", type=float, default=float(os.environ.get("MOTO_STREAM_RETENTION_SECS", 86400)),
                    help="seconds the stream keeps a record (DynamoDB Streams: 24 hours)")
    ap.add_argument("--retry-delay", type=float, default=0.5, help="first delay before a failed batch is retried")
    ap.add_argument("--max-retry-delay", type=float, default=4, help="the retry delay doubles up to this")
    args = ap.parse_args()

    with open(args.mappings) as f:
        mappings = [m for m in json.load(f) if m["type"] == "DynamoDB"]
    for m in mappings:
        for p in m["filters"]:
            check_pattern(p, f"{m['function']} FilterCriteria")
    os.makedirs(args.state_dir, exist_ok=True)
    stop_on_signals()
    threads = []
    for m in mappings:
        t = threading.Thread(target=Bridge(m, args).run, daemon=True)
        t.start()
        threads.append(t)
    run_until_stopped(threads)
    sys.exit(0)


if __name__ == "__main__":
    main()
