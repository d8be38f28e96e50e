"""Schemathesis hooks for dev/schemathesis_run.py (loaded through SCHEMATHESIS_HOOKS).

Callers: the runner mints several tokens of one role (SWITCHBOARD_ST_TOKENS, comma-separated)
and each request takes the next. The chat function limits each caller's rate (429), and one
caller's few hundred requests in half a minute would be mostly 429s; spread over several callers,
the requests reach the code under test. A token is the request's whole authentication, so the
`ignored_auth` check still removes or breaks it as it would a --header.

Emulator: a body that is not UTF-8 never reaches the function locally. `cargo lambda watch`'s
HTTP front (the function URL emulator) cannot put such a body into a Lambda event and answers
500 itself, as text/plain with an httpstatuses.com problem; in AWS, API Gateway and function URLs
hand the function such a body base64-encoded, and the function answers 400 (invoked directly
with one, it does: "invalid JSON body"). Failures on exactly that request and that answer are
the emulator's, so they are dropped; any other failure is kept.
"""

import itertools
import os

import schemathesis

_TOKENS = [t for t in os.environ.get("SWITCHBOARD_ST_TOKENS", "").split(",") if t]

if _TOKENS:
    _next_token = itertools.cycle(_TOKENS).__next__

    @schemathesis.auth(refresh_interval=None)
    class RotatingBearer:
        def get(self, case, ctx):
            return _next_token()

        def set(self, case, data, ctx):
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"


def _is_utf8(data):
    if data is None:
        return True
    if isinstance(data, str):
        return True
    try:
        bytes(data).decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def is_emulator_rejection(response):
    content_type = ",".join(response.headers.get("content-type", []))
    return (
        response.status_code == 500
        and content_type.startswith("text/plain")
        and b"https://httpstatuses.com/500" in response.content
        and not _is_utf8(response.request.body)
    )


@schemathesis.hook
def filter_failure(context, failure, case, response):
    return not is_emulator_rejection(response)
