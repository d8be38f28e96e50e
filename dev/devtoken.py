"""Mints HS256 JWTs for local development: the local stack's key signs them, nothing else trusts them."""

import base64
import hashlib
import hmac
import json
import time

DEV_JWT_SECRET = "switchboard-local-development-key-do-not-deploy"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(sub, secret=DEV_JWT_SECRET, ttl=12 * 3600, tenant=None):
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "exp": now + ttl}
    if tenant:
        claims["tenant"] = tenant
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


if __name__ == "__main__":
    import sys
    print(mint(sys.argv[1] if len(sys.argv) > 1 else "cust_alice"))
