#!/usr/bin/env python3
"""Sends signed vendor webhooks to the local stack, as the vendors would (never deployed).

  .venv/bin/python dev/webhook.py payment-failed --customer cus_alice01
  .venv/bin/python dev/webhook.py shipped --order 1001
  .venv/bin/python dev/webhook.py delayed --order 1002
  .venv/bin/python dev/webhook.py payment-failed --vendor billing --customer acct_alice

The local stack's webhook secrets live here; the stack hands them to the webhook function
(stripe, github and slack from the environment, shopify through a Secrets Manager secret and
billing through an SSM parameter, both in moto) so every secret source is exercised.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

DEV_WEBHOOK_SECRETS = {
    "stripe": "whsec_local_stripe_signing_secret_do_not_deploy",
    "shopify": "local-shopify-app-secret-do-not-deploy",
    "github": "local-github-secret-do-not-deploy",
    "slack": "8f742231b10e8888abcd99localslack",
    "billing": "whsec_" + base64.b64encode(b"local billing secret, do not deploy").decode(),
}

# Where the local stack puts the secrets that do not come straight from the environment.
SSM_BILLING = "/switchboard/local/webhooks/billing"
SECRETS_MANAGER_ID = "switchboard/local/webhooks"

# Vendors the local stack adds to config/webhooks.toml, for the tests of secret revocation
# (tests/webhook_secrets.rs): "revocable" has its own SSM parameter and "revocable-sm" its own
# Secrets Manager secret, which tests delete (the secret with a recovery window, as
# `aws secretsmanager delete-secret` does by default); "off"
# is disabled the way the README says to disable one, by a missing key in its Secrets Manager
# secret (its own secret, so a test can count the reads of it apart from Shopify's).
SSM_REVOCABLE = "/switchboard/local/webhooks/revocable"
SECRETS_MANAGER_OFF = "switchboard/local/webhooks-off"
SECRETS_MANAGER_REVOCABLE = "switchboard/local/webhooks-revocable"
TEST_VENDORS = f"""
# Added by the local stack (dev/webhook.py), for tests/webhook_secrets.rs.
[vendors.revocable]
scheme = "stripe"
secrets = ["ssm:{SSM_REVOCABLE}"]

[vendors.revocable-sm]
scheme = "stripe"
secrets = ["secretsmanager:{SECRETS_MANAGER_REVOCABLE}#revocable-sm"]

[vendors.off]
scheme = "stripe"
secrets = ["secretsmanager:{SECRETS_MANAGER_OFF}#off"]
"""


def write_config(bundled_path, path):
    """config/webhooks.toml with the local stack's test vendors after it; returns `path`."""
    with open(bundled_path) as f:
        bundled = f.read()
    with open(path, "w") as f:
        f.write(bundled.rstrip("\n") + "\n" + TEST_VENDORS)
    return path


def function_env():
    """What the webhook function's environment says about each vendor's secret."""
    return {
        "WEBHOOK_SECRET_STRIPE": DEV_WEBHOOK_SECRETS["stripe"],
        "WEBHOOK_SECRET_GITHUB": DEV_WEBHOOK_SECRETS["github"],
        "WEBHOOK_SECRET_SLACK": DEV_WEBHOOK_SECRETS["slack"],
        "WEBHOOK_SECRET_SHOPIFY": f"secretsmanager:{SECRETS_MANAGER_ID}#shopify",
        "WEBHOOK_SECRET_BILLING": f"ssm:{SSM_BILLING}",
    }


def store_remote_secrets(endpoint, region):
    """Puts the shopify and billing secrets into moto's Secrets Manager and SSM (and the "off"
    vendor's, without its key; "revocable"'s parameter is the test's to create)."""
    import boto3

    kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="local", aws_secret_access_key="local")
    boto3.client("ssm", **kw).put_parameter(
        Name=SSM_BILLING, Value=DEV_WEBHOOK_SECRETS["billing"], Type="SecureString", Overwrite=True)
    sm = boto3.client("secretsmanager", **kw)
    # The "off" vendor's secret holds no key for it: disabled.
    for name, value in [(SECRETS_MANAGER_ID, {"shopify": DEV_WEBHOOK_SECRETS["shopify"]}),
                        (SECRETS_MANAGER_OFF, {"someone-else": "not-the-off-vendors-secret"})]:
        try:
            sm.create_secret(Name=name, SecretString=json.dumps(value))
        except sm.exceptions.ResourceExistsException:
            sm.put_secret_value(SecretId=name, SecretString=json.dumps(value))


def _mac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def sign(vendor_scheme, secret, body: bytes, event_id=None, ts=None):
    """The headers a vendor using `vendor_scheme` sends with `body`."""
    ts = int(time.time()) if ts is None else ts
    t = str(ts).encode()
    if vendor_scheme == "stripe":
        return {"Stripe-Signature": f"t={ts},v1={_mac(secret.encode(), t, b'.', body).hex()}"}
    if vendor_scheme == "standard-webhooks":
        key = base64.b64decode(secret.removeprefix("whsec_"))
        msg_id = event_id or f"msg_{uuid.uuid4().hex}"
        sig = base64.b64encode(_mac(key, msg_id.encode(), b".", t, b".", body)).decode()
        return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": f"v1,{sig}"}
    if vendor_scheme == "shopify":
        return {"X-Shopify-Hmac-Sha256": base64.b64encode(_mac(secret.encode(), body)).decode()}
    if vendor_scheme == "github":
        return {"X-Hub-Signature-256": "sha256=" + _mac(secret.encode(), body).hex()}
    if vendor_scheme == "slack":
        return {"X-Slack-Request-Timestamp": str(ts),
                "X-Slack-Signature": "v0=" + _mac(secret.encode(), b"v0:", t, b":", body).hex()}
    raise ValueError(vendor_scheme)


SCHEMES = {"stripe": "stripe", "shopify": "shopify", "github": "github", "slack": "slack",
           "billing": "standard-webhooks"}


def build(kind, vendor, customer=None, email=None, order=None, event_id=None):
    """(headers without signature, body) of a sample event."""
    if kind == "payment-failed" and vendor == "stripe":
        return {}, {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": "invoice.payment_failed",
            "data": {"object": {
                "object": "invoice", "customer": customer, "customer_email": email,
                "amount_due": 2999, "currency": "usd",
                "hosted_invoice_url": "https://invoice.stripe.com/i/acct_demo/test_123",
            }},
        }
    if kind == "payment-failed" and vendor == "billing":
        return {"webhook-id": event_id}, {
            "type": "payment.failed",
            "data": {"customer_id": customer, "customer_email": email, "amount": 2999, "currency": "usd"},
        }
    if kind in ("shipped", "delayed") and vendor == "shopify":
        topic = "fulfillments/create" if kind == "shipped" else "fulfillments/update"
        webhook_id = event_id or str(uuid.uuid4())
        headers = {"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": webhook_id}
        # Shopify is deduplicated on the body (its id header is unsigned), so the id goes into
        # the body too: the same --event-id is the same event, a new one a new event.
        return headers, {
            "id": 4242, "admin_graphql_api_id": f"gid://shopify/Fulfillment/{webhook_id}",
            "order_id": 450789469, "name": f"#{order}.1", "email": email,
            "status": "success", "shipment_status": "confirmed" if kind == "shipped" else "delayed",
            "tracking_company": "UPS", "tracking_number": f"1Z{order}",
            "tracking_url": f"https://track.example.com/ups/1Z{order}",
        }
    raise SystemExit(f"no sample for {kind} from {vendor}")


def send(url, headers, body: bytes):
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["payment-failed", "shipped", "delayed"])
    ap.add_argument("--vendor", help="stripe (payment-failed), shopify (shipped/delayed), billing")
    ap.add_argument("--customer", help="the vendor's customer id, e.g. cus_alice01")
    ap.add_argument("--email")
    ap.add_argument("--order", default="1001")
    ap.add_argument("--event-id")
    ap.add_argument("--url", default=os.environ.get("WEBHOOK_URL", "http://127.0.0.1:9000/lambda-url/webhook"),
                    help="the webhook function's base URL (default: the local stack's)")
    args = ap.parse_args()
    vendor = args.vendor or ("stripe" if args.kind == "payment-failed" else "shopify")
    extra, payload = build(args.kind, vendor, args.customer, args.email, args.order, args.event_id)
    body = json.dumps(payload).encode()
    headers = {k: v for k, v in extra.items() if v}
    headers.update(sign(SCHEMES[vendor], DEV_WEBHOOK_SECRETS[vendor], body, headers.get("webhook-id")))
    status, text = send(f"{args.url}/webhooks/{vendor}", headers, body)
    print(status, text)
    sys.exit(0 if status < 300 else 1)


if __name__ == "__main__":
    main()
