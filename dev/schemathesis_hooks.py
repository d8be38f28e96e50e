"""Schemathesis hooks for dev/schemathesis_run.py (loaded through SCHEMATHESIS_HOOKS).

Only one: a body that is not UTF-8 never reaches the function locally. `cargo lambda watch`'s
HTTP front (the function URL emulator) cannot put such a body into a Lambda event and answers
500 itself, as text/plain with an httpstatuses.com problem; in AWS, API Gateway and function URLs
hand the function such a body base64-encoded, and the function answers 400 (invoked directly
with one, it does: "invalid JSON body"). Failures on exactly that request and that answer are
the emulator's, so they are dropped; any other failure is kept.
"""

import schemathesis


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
