#!/usr/bin/env python3
"""moto's server (pinned in dev/requirements.txt), with its FIFO receive made to keep group order,
its DynamoDB writes made atomic, its table streams made to behave like DynamoDB Streams where the
local stack depends on it, and test-only fault injection. Same arguments as `moto_server`.

SQS. moto 5.2.5 keeps a received message "pending" until a receive call walks past it visible
again. When several messages of one FIFO group time out together (a crashed invocation's batch,
or a failed job and the ones held back behind it), the walk reaches the group's head while the
later ones still count as pending, skips the head as "group in flight", then releases and
delivers a later message first. SQS itself never does that. Here every timed-out message is
released before the walk, the walk reads one clock time throughout (else a message turning
visible during it reopens the same race), and receives run one at a time (moto's bookkeeping is
not thread-safe); the long-poll wait happens outside the lock.

DynamoDB. DynamoDB evaluates a condition and applies the write as one step; moto checks, then
writes, in Python threads, so two conditional writes arriving together can both pass (two
deliveries of a job both "beginning" its effect). Writes here run one at a time. Within that:

- TransactWriteItems: moto deep-copies every table a transaction names before applying it, and
  puts the copy in the table's place when it is cancelled. The copy includes the whole table and
  its whole stream, so every transaction costs more than the one before (quadratic over a test
  run), and a cancelled one swaps the stream shard out from under every open shard iterator: a
  reader that held one sees the cancelled transaction's records and never any later one. Here a
  transaction notes the items it is about to touch and the stream's length, and a cancelled one
  puts exactly those back (same errors and cancellation reasons as moto's).
- UpdateItem on a missing item: moto creates it with a key-only put (an INSERT record of the keys
  alone) and then records the update (a second INSERT). DynamoDB emits one record per item per
  write; here the first is dropped. An update that fails after that put is undone too.

Streams. GetRecords runs under the write lock, so no reader sees a transaction half applied (or
one about to be cancelled). Shard iterators expire after 15 minutes as in DynamoDB Streams
(ExpiredIteratorException); moto kept every one it ever issued, and a poller takes one per read.
Records older than the stream's retention (24 hours, or MOTO_STREAM_RETENTION_SECS) are trimmed
as DynamoDB Streams trims them; an iterator behind the trim horizon gets
TrimmedDataAccessException. Record contents (timestamps, sizes, event version) are left as moto
makes them: the event source stand-in (dev/stream_bridge.py) builds Lambda's event from them.

Faults (tests only): see FaultMiddleware below; routes under /_switchboard/.
"""

import copy
import itertools
import json
import os
import sys
import threading
import time
import uuid
from datetime import timedelta
from io import BytesIO

from moto import server as moto_server
from moto.core.exceptions import JsonRESTError
from moto.core.utils import utcnow
from moto.dynamodb import models as dynamodb
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodbstreams import models as streams
from moto.sqs import models

_receive = models.SQSBackend.receive_message
_lock = threading.Lock()
_now = threading.local()
_unix_time_millis = models.unix_time_millis


def _frozen_unix_time_millis(dt=None):
    # moto reads the clock afresh for each message it walks past: a message of the group that
    # turns visible halfway through the walk (the ones of a crashed batch are a fraction of a
    # millisecond apart) is delivered while the group's head, skipped a moment earlier as
    # "group in flight", is not. A receive here happens at one instant, as SQS's does.
    frozen = getattr(_now, "millis", None)
    return frozen if frozen is not None and dt is None else _unix_time_millis(dt)


models.unix_time_millis = _frozen_unix_time_millis


def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                    message_attribute_names=None):
    deadline = time.time() + (wait_seconds_timeout or 0)
    while True:
        with _lock:
            _now.millis = _unix_time_millis()
            try:
                queue = self.get_queue(queue_name)
                for message in list(queue.pending_messages):
                    if message.visible:
                        queue.pending_messages.remove(message)
                got = _receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            finally:
                _now.millis = None
        if got or time.time() >= deadline:
            return got
        time.sleep(0.05)


models.SQSBackend.receive_message = receive_message

# ---- DynamoDB: one write at a time, transactions undone item by item

_write_lock = threading.RLock()


class Undo:
    """What a write is about to change, to put back if it fails: each touched item as it was
    (a copy: moto's UpdateItem changes items in place) and each touched stream's length."""

    def __init__(self):
        self.items = []  # (table, hash key, range key, the item before or None)
        self.streams = {}  # id(shard) -> (shard, its length before)

    def note(self, table, key):
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        before = table.get_item(hash_key, range_key)
        self.items.append((table, hash_key, range_key, copy.deepcopy(before)))
        shard = table.stream_shard
        if shard is not None:
            self.streams.setdefault(id(shard), (shard, len(shard.items)))

    def apply(self):
        for table, hash_key, range_key, before in reversed(self.items):
            if table.range_key_attr:
                if before is None:
                    table.items[hash_key].pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = before
            elif before is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = before
        # Nobody read these records: GetRecords waits for the write lock.
        for shard, length in self.streams.values():
            del shard.items[length:]


def transact_write_items(self, transact_items):
    """moto 5.2.5's transact_write_items, with its table copies replaced by an Undo."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = Undo()
    target_items = set()

    def check_unicity(table_name, key):
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors = []  # [(Code, Message, Item)], one per transaction item
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(condition_expression, names, values)
                if not condition_op.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                undo.note(self.get_table(table_name), key)
            if op_type == "Put":
                self.put_item(table_name, op["Item"], condition_expression=condition_expression,
                              expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, condition_expression=condition_expression,
                                 expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 condition_expression=condition_expression,
                                 expression_attribute_names=names, expression_attribute_values=values)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            undo.apply()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # as moto: any other failure cancels the transaction with its name
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        undo.apply()
        raise TransactionCanceledException(errors)


_update_item = dynamodb.DynamoDBBackend.update_item


def update_item(self, table_name, key, *args, **kwargs):
    table = self.get_table(table_name)
    undo = Undo()
    try:
        undo.note(table, key)
    except (KeyError, TypeError, MockValidationException):
        return _update_item(self, table_name, key, *args, **kwargs)  # moto reports the bad key
    try:
        result = _update_item(self, table_name, key, *args, **kwargs)
    except Exception:
        undo.apply()
        raise
    for shard, length in undo.streams.values():
        if len(shard.items) == length + 2:
            # The key-only INSERT of moto's create-then-update: keep the update's record alone,
            # under the sequence number the dropped one had (moto numbers by position).
            del shard.items[length]
            shard.items[length].record["dynamodb"]["SequenceNumber"] = str(shard.starting_sequence_number + length)
    return result


dynamodb.DynamoDBBackend.transact_write_items = transact_write_items
dynamodb.DynamoDBBackend.update_item = update_item


def _serialized(write):
    def locked(*args, **kwargs):
        with _write_lock:
            return write(*args, **kwargs)

    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
    setattr(dynamodb.DynamoDBBackend, _name, _serialized(getattr(dynamodb.DynamoDBBackend, _name)))

# ---- Streams: consistent reads, iterators that expire, records trimmed after the retention

ITERATOR_LIFETIME = 15 * 60
RETENTION = float(os.environ.get("MOTO_STREAM_RETENTION_SECS", 24 * 3600))
_iterator_init = streams.ShardIterator.__init__


def _iterator_born(self, *args, **kwargs):
    _iterator_init(self, *args, **kwargs)
    self.born = time.monotonic()


streams.ShardIterator.__init__ = _iterator_born


def _forget_expired(backend):
    # Insertion order is issue order: the expired ones are at the front.
    its = backend.shard_iterators
    now = time.monotonic()
    while its:
        first = next(iter(its))
        if now - its[first].born < ITERATOR_LIFETIME:
            break
        del its[first]


def _trim(shard):
    """Drops the records older than the retention from the front of the shard. Sequence numbers
    stay as they were: moto numbers records by position from starting_sequence_number, so that
    start moves up by as many as were dropped."""
    cutoff = utcnow() - timedelta(seconds=RETENTION)  # naive UTC, as moto stamps records
    n = 0
    for record in shard.items:
        if record.record["dynamodb"]["ApproximateCreationDateTime"] >= cutoff:
            break
        n += 1
    if n:
        del shard.items[:n]
        shard.starting_sequence_number += n


def get_shard_iterator(self, arn, shard_id, shard_iterator_type, sequence_number=None):
    with _write_lock:
        _forget_expired(self)
        shard = self._get_table_from_arn(arn).stream_shard
        if shard is None or shard.id != shard_id:
            raise JsonRESTError("ResourceNotFoundException", f"Requested resource not found: Shard: {shard_id} in Stream: {arn}")
        _trim(shard)
        if sequence_number is not None and sequence_number < shard.starting_sequence_number:
            raise JsonRESTError("TrimmedDataAccessException",
                                f"Sequence number {sequence_number} is beyond the trim horizon of shard {shard_id}")
        return _get_shard_iterator(self, arn, shard_id, shard_iterator_type, sequence_number)


def get_records(self, iterator_arn, limit):
    with _write_lock:
        _forget_expired(self)
        iterator = self.shard_iterators.get(iterator_arn)
        if iterator is None:
            raise JsonRESTError("ExpiredIteratorException", "Iterator expired (or never issued); get a new one")
        _trim(iterator.stream_shard)
        if iterator.sequence_number < iterator.stream_shard.starting_sequence_number:
            raise JsonRESTError("TrimmedDataAccessException",
                                "The iterator points at records beyond the trim horizon of the shard")
        return iterator.get(limit)


_get_shard_iterator = streams.DynamoDBStreamsBackend.get_shard_iterator
streams.DynamoDBStreamsBackend.get_shard_iterator = get_shard_iterator
streams.DynamoDBStreamsBackend.get_records = get_records

# ---- Faults, for the integration tests


class Fault:
    FIELDS = {"target", "match", "status", "code", "delay_ms", "when", "times"}

    def __init__(self, spec):
        if not isinstance(spec, dict) or not set(spec) <= self.FIELDS:
            raise ValueError(f"a fault is an object with fields among {sorted(self.FIELDS)}")
        target = spec.get("target")
        self.targets = [target] if isinstance(target, str) else target
        if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
            raise ValueError("target: the X-Amz-Target to match (e.g. AmazonSQS.SendMessage), or a list of them")
        self.match = spec.get("match")
        if self.match is not None and not isinstance(self.match, str):
            raise ValueError("match: a substring of the request body")
        self.status = spec.get("status")
        if self.status is not None and (not isinstance(self.status, int) or not 400 <= self.status <= 599):
            raise ValueError("status: an HTTP error status (400-599)")
        self.code = spec.get("code")
        if self.code is not None and not isinstance(self.code, str):
            raise ValueError("code: the AWS error code to answer with")
        if self.status is not None and self.status < 500 and not self.code:
            raise ValueError("code is required with a 4xx status (e.g. ThrottlingException)")
        self.delay_ms = spec.get("delay_ms", 0)
        if not isinstance(self.delay_ms, int) or self.delay_ms < 0:
            raise ValueError("delay_ms: milliseconds to hold a matching request (>= 0)")
        self.when = spec.get("when", "before")
        if self.when not in ("before", "after"):
            raise ValueError("when: 'before' (moto has not applied the request) or 'after' (it has)")
        self.times = spec.get("times")
        if self.times is not None and (not isinstance(self.times, int) or self.times < 1):
            raise ValueError("times: how many matching requests (>= 1; absent: all, until deleted)")
        if self.status is None and not self.delay_ms:
            raise ValueError("a fault needs a status, a delay_ms, or both")
        self.id = uuid.uuid4().hex[:12]
        self.hits = 0
        self.released = threading.Event()

    def to_json(self):
        return {"id": self.id, "target": self.targets, "match": self.match, "status": self.status, "code": self.code,
                "delay_ms": self.delay_ms, "when": self.when, "times": self.times, "hits": self.hits}


class FaultMiddleware:
    """Test-only fault injection in front of moto, on routes moto does not use:

      POST   /_switchboard/faults       arm one (JSON, see Fault) -> 201 the fault with its id
      GET    /_switchboard/faults       {"faults": [...]}, each with "hits" (requests it matched)
      DELETE /_switchboard/faults[/ID]  remove all (or one); their held requests go on at once
      GET    /_switchboard/inflight     {"requests": [...]} held right now, with the caller's
                                        TCP port ("peer_port"), to find the process making them

    A fault matches requests whose X-Amz-Target is one of `target` and whose body contains
    `match`, `times` times (absent: until removed). It holds a matching request `delay_ms`
    before moto applies it (`when: before`) or after (`when: after`: the write is done, the
    answer waits), then answers `status` with the error body the AWS SDKs read (`code`, by
    default ServiceUnavailable for 503 and InternalFailure/InternalServerError for 500; the
    SDKs retry those) instead of moto's answer, or moto's answer if no status is set.
    With no fault armed a request costs one dictionary lookup more.
    """

    PREFIX = "/_switchboard/"

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.faults = []
        self.inflight = {}
        self.ids = itertools.count(1)

    # moto's main() sets debug on the application it made, which is now inside this one.
    @property
    def debug(self):
        return self.app.debug

    @debug.setter
    def debug(self, value):
        self.app.debug = value

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.PREFIX):
            return self.admin(environ, start_response, path[len(self.PREFIX):])
        if not self.faults:
            return self.app(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET")
        with self.lock:
            candidates = [f for f in self.faults if target in f.targets and f.times != 0]
        if not candidates:
            return self.app(environ, start_response)
        body = self.read_body(environ)
        text = body.decode("utf-8", "replace")
        fault = None
        with self.lock:
            for f in candidates:
                if f in self.faults and f.times != 0 and (f.match is None or f.match in text):
                    f.hits += 1
                    if f.times is not None:
                        f.times -= 1
                    fault = f
                    break
        if fault is None:
            return self.app(environ, start_response)
        if fault.when == "before":
            self.hold(fault, environ, target, text)
            if fault.status is not None:
                return self.error(start_response, fault, target)
            return self.app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)
            return captured.setdefault("chunks", []).append

        result = self.app(environ, capture)
        try:
            chunks = captured.get("chunks", []) + list(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        self.hold(fault, environ, target, text)
        if fault.status is not None:
            return self.error(start_response, fault, target)
        start_response(captured["status"], captured["headers"])
        return chunks

    @staticmethod
    def read_body(environ):
        length = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        body = stream.read(int(length)) if length else stream.read()
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body

    def hold(self, fault, environ, target, text):
        if not fault.delay_ms:
            return
        held = str(next(self.ids))
        with self.lock:
            self.inflight[held] = {"id": held, "fault": fault.id, "target": target, "when": fault.when,
                                   "peer_port": int(environ.get("REMOTE_PORT") or 0), "since": time.time(),
                                   "body": text[:65536]}
        try:
            fault.released.wait(fault.delay_ms / 1000)
        finally:
            with self.lock:
                self.inflight.pop(held, None)

    @staticmethod
    def error(start_response, fault, target):
        service = (target or "").split(".", 1)[0]
        code = fault.code or (
            "ServiceUnavailable" if fault.status == 503
            else "InternalServerError" if service.startswith("DynamoDB") else "InternalFailure")
        message = f"injected fault {fault.id}"
        request_id = str(uuid.uuid4())
        headers = [("x-amzn-RequestId", request_id)]
        # The JSON protocols (awsJson1_0) of DynamoDB and of SQS as the current SDKs speak it: the
        # only ones a fault can match, since it matches on X-Amz-Target.
        namespace = ("com.amazonaws.sqs#" if service == "AmazonSQS"
                     else "com.amazonaws.dynamodb.v20120810#" if service.startswith("DynamoDB") else "")
        body = json.dumps({"__type": namespace + code, "message": message})
        headers.append(("Content-Type", "application/x-amz-json-1.0"))
        if service == "AmazonSQS":  # SQS's JSON protocol also names the query-protocol code
            headers.append(("x-amzn-query-error", f"{code};{'Receiver' if fault.status >= 500 else 'Sender'}"))
        data = body.encode()
        headers.append(("Content-Length", str(len(data))))
        reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(fault.status, "Error")
        start_response(f"{fault.status} {reason}", headers)
        return [data]

    def admin(self, environ, start_response, route):
        method = environ.get("REQUEST_METHOD")

        def answer(status, doc):
            data = json.dumps(doc).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]

        if route == "faults" and method == "POST":
            try:
                fault = Fault(json.loads(self.read_body(environ) or b"null"))
            except ValueError as e:
                return answer("400 Bad Request", {"error": str(e)})
            with self.lock:
                self.faults.append(fault)
                return answer("201 Created", fault.to_json())
        if route == "faults" and method == "GET":
            with self.lock:
                return answer("200 OK", {"faults": [f.to_json() for f in self.faults]})
        if (route == "faults" or route.startswith("faults/")) and method == "DELETE":
            wanted = route[len("faults/"):] if "/" in route else None
            with self.lock:
                gone = [f for f in self.faults if wanted is None or f.id == wanted]
                self.faults = [f for f in self.faults if f not in gone]
            if wanted is not None and not gone:
                return answer("404 Not Found", {"error": f"no fault {wanted}"})
            for f in gone:
                f.released.set()
            return answer("200 OK", {"removed": [f.to_json() for f in gone]})
        if route == "inflight" and method == "GET":
            now = time.time()
            with self.lock:
                held = [{**{k: v for k, v in r.items() if k != "since"}, "held_ms": int((now - r["since"]) * 1000)}
                        for r in self.inflight.values()]
            return answer("200 OK", {"requests": held})
        return answer("404 Not Found", {"error": f"no route {method} {self.PREFIX}{route}"})


_dispatcher = moto_server.DomainDispatcherApplication
moto_server.DomainDispatcherApplication = lambda create_app: FaultMiddleware(_dispatcher(create_app))

if __name__ == "__main__":
    sys.exit(moto_server.main())
