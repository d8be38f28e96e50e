"""Mints HS256 JWTs for local development: the local stack's key signs them, nothing else trusts them.

    devtoken.py cust_alice
    devtoken.py agent_ann --role agent --tenant acme
    devtoken.py admin_ada --role admin --tenant default --ttl 600

The issuer and audience are the local stack's (JWT_ISSUER / JWT_AUDIENCE from the environment
when set), so the chat function checks them as a deployed one does.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import time

DEV_JWT_SECRET = "switchboard-local-development-key-do-not-deploy"
DEV_ISSUER = "switchboard-local"
DEV_AUDIENCE = "switchboard-chat"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issuer():
    return os.environ.get("JWT_ISSUER") or DEV_ISSUER


def audience():
    return os.environ.get("JWT_AUDIENCE") or DEV_AUDIENCE


def mint(sub, secret=DEV_JWT_SECRET, ttl=12 * 3600, tenant=None, role=None, iat=None, exp=None):
    now = int(time.time()) if iat is None else iat
    claims = {"sub": sub, "iss": issuer(), "aud": audience(), "iat": now,
              "exp": now + ttl if exp is None else exp}
    if tenant:
        claims["tenant"] = tenant
    if role:
        claims["role"] = role
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sub", nargs="?", default="cust_alice", help="the subject: a customer's (or agent's) id")
    ap.add_argument("--role", choices=["customer", "agent", "admin"], help="the role claim (absent means customer)")
    ap.add_argument("--tenant", help="the tenant claim (absent means default; agents and admins must name one)")
    ap.add_argument("--ttl", type=int, default=12 * 3600, help="seconds until it expires")
    args = ap.parse_args()
    print(mint(args.sub, ttl=args.ttl, tenant=args.tenant, role=args.role))


if __name__ == "__main__":
    main()
