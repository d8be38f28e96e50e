#!/usr/bin/env python3
"""moto's server (pinned in dev/requirements.txt), with its FIFO receive made to keep group order
and its DynamoDB writes made atomic.

moto 5.2.5 keeps a received message "pending" until a receive call walks past it visible again.
When several messages of one FIFO group time out together (a crashed invocation's batch, or a
failed job and the ones held back behind it), the walk reaches the group's head while the later
ones still count as pending, skips the head as "group in flight", then releases and delivers a
later message first. SQS itself never does that. Here every timed-out message is released
before the walk, and receives run one at a time (moto's bookkeeping is not thread-safe); the
long-poll wait happens outside the lock.

DynamoDB evaluates a condition and applies the write as one step; moto checks, then writes, in
Python threads, so two conditional writes arriving together can both pass (two deliveries of a
job both "beginning" its effect). Writes here run one at a time. Same arguments as `moto_server`.
"""

import sys
import threading
import time

from moto.dynamodb import models as dynamodb
from moto.server import main
from moto.sqs import models

_receive = models.SQSBackend.receive_message
_lock = threading.Lock()


def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                    message_attribute_names=None):
    deadline = time.time() + (wait_seconds_timeout or 0)
    while True:
        with _lock:
            queue = self.get_queue(queue_name)
            for message in list(queue.pending_messages):
                if message.visible:
                    queue.pending_messages.remove(message)
            got = _receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
        if got or time.time() >= deadline:
            return got
        time.sleep(0.05)


models.SQSBackend.receive_message = receive_message

_write_lock = threading.RLock()


def _serialized(write):
    def locked(*args, **kwargs):
        with _write_lock:
            return write(*args, **kwargs)

    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
    setattr(dynamodb.DynamoDBBackend, _name, _serialized(getattr(dynamodb.DynamoDBBackend, _name)))

if __name__ == "__main__":
    sys.exit(main())
