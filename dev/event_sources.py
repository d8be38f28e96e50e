"""What the local stand-ins for Lambda's event source mappings (dev/sqs_bridge.py,
dev/stream_bridge.py) share: invoking a function through cargo-lambda's invoke API as an event
source mapping does, JSON log lines, the local AWS session and a stop flag wired to SIGTERM."""

import json
import signal
import threading
import urllib.error
import urllib.request

import boto3

STOP = threading.Event()


class InvokeError(Exception):
    """The invocation failed: a function error, a crash or a timeout (the function may have run)."""


class NotInvoked(InvokeError):
    """Nothing reached the function: cargo lambda is not listening (starting, or restarting)."""


def logger(component):
    def log(**fields):
        print(json.dumps({"component": component, **fields}), flush=True)

    return log


def session(region):
    return boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=region)


def invoke(invoke_url, function, event, timeout):
    """The function's answer, parsed (None for an empty one). Raises InvokeError when it reports a
    function error, answers with an HTTP error, is cut off, answers no JSON, or outlives
    `timeout` seconds (a crashed function never answers through cargo lambda)."""
    req = urllib.request.Request(
        f"{invoke_url}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(event).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            if resp.headers.get("X-Amz-Function-Error"):
                raise InvokeError(f"function error: {body[:300]!r}")
    except urllib.error.HTTPError as e:
        raise InvokeError(f"HTTP {e.code}: {e.read()[:300]!r}") from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            raise NotInvoked(f"cargo lambda is not listening at {invoke_url}") from e
        raise InvokeError(str(e.reason)) from e
    except OSError as e:  # timeouts, and connections cut while the function ran
        raise InvokeError(f"{type(e).__name__}: {e}") from e
    try:
        return json.loads(body or b"null")
    except ValueError as e:
        raise InvokeError(f"the answer is not JSON: {body[:300]!r}") from e


def stop_on_signals():
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())


def run_until_stopped(threads):
    while not STOP.is_set():
        STOP.wait(0.5)
    for t in threads:
        t.join(timeout=5)
