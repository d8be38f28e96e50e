#!/usr/bin/env python3
"""A stand-in for a company's own systems, for the local stack and the tests (never deployed).

- Customers (CRM) over REST:  GET /customers/{id}, GET /customers?email=,
                              GET /customers?vendor=stripe&vendor_customer_id=cus_...
- Orders over REST:           GET /orders?customer_id=, GET /orders/{id}
- Inventory over GraphQL:     POST /graphql  (product(sku), products)
- Payments over REST:         POST /payments/refunds  (requires Idempotency-Key; a repeated key
                              returns the first answer and refunds nothing more)
- Email over REST:            POST /emails  (requires Idempotency-Key; a repeated key sends nothing)
- A billing page:             GET /billing (where the bot sends customers to update a card)
- Subscription boxes (the second example bot's own system, examples/bots/subscriptions/):
                              GET /boxes/customers/{id}/subscription (404: none),
                              POST /boxes/subscriptions/{id}/pauses (skips the next box; requires
                              Idempotency-Key; a repeated key answers as the first time and skips
                              nothing more; 409 unless the subscription is ACTIVE)
- Inspection for tests:       GET /_admin/refunds, GET /_admin/emails, GET /health,
                              GET /_admin/boxes (every pause call with its key, the changes
                              made per key, the subscriptions),
                              GET /_admin/inflight (requests a delay fault is holding, with the
                              caller's TCP port, so a test can find the process making them)
- Set-up for tests:           POST /_admin/customers ({id, email, name?}: a CRM customer of the
                              test's own, so what is sent to the CRM's address stays the test's);
                              POST /_admin/orders (an order of the test's own: {id, customer_id,
                              total_cents?, status?, placed_days_ago?, promised_in_days?,
                              carrier?}: placed 9 days ago, promised 2 days ago, so late and in
                              transit, or `status` "delivered"/"cancelled"; a `carrier` gives it
                              a tracking link as the seeded orders have); POST /_admin/refunds/forget ({order_id}:
                              the payments API forgets the idempotency keys of that order's
                              refunds, as Stripe does after 24 hours; the refunds stay listed);
                              POST /_admin/faults ({path, match?, status?,
                              delay_ms?, times?, for_ms?}): the next `times` POSTs to `path` whose JSON body
                              contains `match` (GETs of /orders...: whose query does) wait `delay_ms`, then
                              answer `status` (if set) instead of doing their work; with `for_ms`,
                              every such request for that long instead (a system down for a while);
                              the answer holds the fault's `id`, and DELETE /_admin/faults/{id} disarms it;
                              POST /_admin/boxes/subscriptions ({id, customer_id, state?}: a
                              subscription of the test's own, ACTIVE unless `state` says)

Dates are seeded relative to start-up, so some orders are always late.
"""

import argparse
import json
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import graphql


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(now):
    day = timedelta(days=1)
    customers = [
        {"id": "cust_alice", "name": "Alice Martin", "email": "alice@example.com", "email_verified": True, "phone": "+1 415 555 0101",
         "vendor_ids": {"stripe": "cus_alice01", "billing": "acct_alice"}},
        {"id": "cust_bob", "name": "Bob Chen", "email": "bob@example.com", "email_verified": True, "phone": "+1 415 555 0102",
         "vendor_ids": {"stripe": "cus_bob02"}},
        {"id": "cust_carol", "name": "Carol Diaz", "email": "carol@example.com", "email_verified": True, "phone": "+1 415 555 0103",
         "vendor_ids": {"stripe": "cus_carol03"}},
        {"id": "cust_dave", "name": "Dave Okafor", "email": "dave@example.com", "email_verified": True, "phone": "+1 415 555 0104",
         "vendor_ids": {}},
        # Erin and Frank are what vendors' webhooks are about in the tests (nobody else chats as them).
        {"id": "cust_erin", "name": "Erin Novak", "email": "erin@example.com", "email_verified": True, "phone": "+1 415 555 0105",
         "vendor_ids": {"stripe": "cus_erin05", "billing": "acct_erin"}},
        {"id": "cust_frank", "name": "Frank Ito", "email": "frank@example.com", "email_verified": True, "phone": "+1 415 555 0106",
         "vendor_ids": {"billing": "acct_frank"}},
        # Gina signed up but never confirmed her address: no vendor event may be routed to her by
        # it (someone else can type it at a payment provider).
        {"id": "cust_gina", "name": "Gina Park", "email": "gina@example.com", "email_verified": False,
         "phone": "+1 415 555 0107", "vendor_ids": {}},
    ]

    def order(oid, cust, status, placed_days_ago, promised_in_days, total, items, carrier="UPS", delivered_days_ago=None):
        o = {
            "id": oid,
            "customer_id": cust,
            "status": status,
            "placed_at": iso(now - placed_days_ago * day),
            "promised_by": iso(now + promised_in_days * day),
            "delivered_at": iso(now - delivered_days_ago * day) if delivered_days_ago is not None else None,
            "carrier": carrier if status != "processing" else None,
            "tracking_url": f"https://track.example.com/{carrier.lower()}/1Z{oid}" if status != "processing" else None,
            "total": {"amount_cents": total, "currency": "USD"},
            "items": items,
        }
        return o

    orders = [
        # Alice: two recent orders, one on time and one late -> "which order?" then a refund offer.
        order("1001", "cust_alice", "in_transit", 3, 2, 2999, [{"name": "Wireless Mouse", "quantity": 1}]),
        order("1002", "cust_alice", "in_transit", 12, -4, 4599,
              [{"name": "Noise-Cancelling Headphones", "quantity": 1}, {"name": "USB-C Cable", "quantity": 2}],
              carrier="FedEx"),
        order("0987", "cust_alice", "delivered", 200, -190, 1250, [{"name": "Phone Case", "quantity": 1}],
              delivered_days_ago=191),
        # Bob: one late order -> answered directly with a refund offer.
        order("1003", "cust_bob", "in_transit", 9, -2, 8900, [{"name": "Espresso Grinder", "quantity": 1}]),
        # Carol: delivered, and one still being prepared.
        order("1004", "cust_carol", "delivered", 10, -5, 1999, [{"name": "Yoga Mat", "quantity": 1}],
              delivered_days_ago=6),
        order("1005", "cust_carol", "processing", 1, 5, 3450, [{"name": "Desk Lamp", "quantity": 1}]),
        order("1006", "cust_erin", "in_transit", 2, 3, 1599, [{"name": "Water Bottle", "quantity": 1}]),
        order("1007", "cust_frank", "processing", 1, 4, 6400, [{"name": "Running Shoes", "quantity": 1}]),
    ]
    products = [
        # Prices as many shops' APIs send them: a decimal string and its currency.
        {"sku": "MOUSE-01", "name": "Wireless Mouse", "available": 42,
         "price": {"amount": "24.99", "currencyCode": "USD"}},
        {"sku": "HEAD-02", "name": "Noise-Cancelling Headphones", "available": 0,
         "price": {"amount": "89.00", "currencyCode": "USD"}},
        {"sku": "LAMP-03", "name": "Desk Lamp", "available": 7,
         "price": {"amount": "34.50", "currencyCode": "USD"}},
    ]
    return customers, orders, products


def subscription(sid, customer_id, state, now, plan="Veggie box for two", price="39.90", days=5):
    return {
        "id": sid, "customer_id": customer_id, "state": state,
        "plan": {"name": plan, "price": price, "currency": "USD"},
        "next_delivery": iso(now + timedelta(days=days)) if state == "ACTIVE" else None,
        "skipped": 0, "gift": False,
    }


def seed_subscriptions(now):
    return [
        subscription("sub_alice", "cust_alice", "ACTIVE", now),
        subscription("sub_bob", "cust_bob", "PAUSED", now, plan="Family box", price="69.00"),
        subscription("sub_carol", "cust_carol", "CANCELLED", now),
    ]


SCHEMA = graphql.build_schema(
    """
    type Money { amount: String!, currencyCode: String! }
    type Product { sku: String!, name: String!, available: Int!, price: Money }
    type Query { product(sku: String!): Product, products: [Product!]! }
    """
)


class Systems:
    def __init__(self):
        self.customers, self.orders, self.products = seed(datetime.now(timezone.utc))
        self.subscriptions = seed_subscriptions(datetime.now(timezone.utc))
        self.box_calls = []  # every POST .../pauses: {idempotency_key, path, body}
        self.box_pauses_by_key = {}  # Idempotency-Key -> the answer of the change it made
        self.box_changes = {}  # Idempotency-Key -> changes made with it (exactly once: 1)
        self.lock = threading.Lock()
        self.refunds_by_key = {}  # Idempotency-Key -> (request fingerprint, response)
        self.refunds_forgotten = []  # refunds whose keys were forgotten (POST /_admin/refunds/forget)
        self.refund_calls = []  # every POST /payments/refunds, for tests counting calls
        self.emails_by_key = {}  # Idempotency-Key -> the email sent
        self.email_calls = []
        self.faults = []  # armed by tests through POST /_admin/faults
        self.inflight = {}  # id -> a request a delay fault is holding

    def take_fault(self, path, body):
        """Uses up one arming of the first fault for this request, or returns None."""
        with self.lock:
            now = time.monotonic()
            for f in self.faults:
                if f["path"] != path or not all(body.get(k) == v for k, v in f["match"].items()):
                    continue
                if f["until"] is not None:
                    if now < f["until"]:
                        return dict(f)
                elif f["times"] > 0:
                    f["times"] -= 1
                    return dict(f)
        return None

    def graphql_root(self):
        products = self.products
        return {
            "product": lambda info, sku: next((p for p in products if p["sku"] == sku), None),
            "products": lambda info: products,
        }


class Handler(BaseHTTPRequestHandler):
    systems: Systems = None
    server_version = "demo-systems/1"

    def log_message(self, fmt, *args):  # quiet: the launcher shows our own lines only
        pass

    def send_json(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1 << 20:
            raise ValueError("body too large")
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")

    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query)
        s = self.systems
        if url.path == "/health":
            return self.send_json(200, {"ok": True})
        if url.path.startswith("/orders"):
            # A slow order system for latency-budget tests: faults match on the query's values.
            fault = s.take_fault(url.path, {k: v[0] for k, v in q.items()})
            if fault:
                time.sleep(fault["delay_ms"] / 1000)
                if fault["status"]:
                    return self.send_json(int(fault["status"]), {"error": "injected fault"})
        if url.path == "/customers":
            vendor = (q.get("vendor") or [None])[0]
            if vendor:
                vid = (q.get("vendor_customer_id") or [""])[0]
                found = [c for c in s.customers if c["vendor_ids"].get(vendor) == vid]
            else:
                email = (q.get("email") or [""])[0].lower()
                found = [c for c in s.customers if c["email"] == email]
            return self.send_json(200, {"customers": found})
        if url.path == "/billing":
            return self.send_json(200, {"page": "billing portal (demo): update your payment method here"})
        m = re.fullmatch(r"/customers/([^/]+)", url.path)
        if m:
            c = next((c for c in s.customers if c["id"] == m.group(1)), None)
            return self.send_json(200, c) if c else self.send_json(404, {"error": "no such customer"})
        if url.path == "/orders":
            cust = (q.get("customer_id") or [None])[0]
            if not cust:
                return self.send_json(400, {"error": "customer_id is required"})
            return self.send_json(200, {"orders": [o for o in s.orders if o["customer_id"] == cust]})
        m = re.fullmatch(r"/orders/([^/]+)", url.path)
        if m:
            o = next((o for o in s.orders if o["id"] == m.group(1)), None)
            return self.send_json(200, o) if o else self.send_json(404, {"error": "no such order"})
        if url.path == "/_admin/emails":
            with s.lock:
                return self.send_json(200, {"calls": s.email_calls, "sent": list(s.emails_by_key.values())})
        if url.path == "/_admin/inflight":
            with s.lock:
                return self.send_json(200, {"requests": list(s.inflight.values())})
        if url.path == "/_admin/boxes":
            with s.lock:
                return self.send_json(200, {"calls": s.box_calls, "changes": s.box_changes,
                                            "subscriptions": s.subscriptions})
        m = re.fullmatch(r"/boxes/customers/([^/]+)/subscription", url.path)
        if m:
            with s.lock:
                sub = next((x for x in s.subscriptions if x["customer_id"] == m.group(1)), None)
            return self.send_json(200, {"subscription": sub}) if sub else self.send_json(404, {"error": "no subscription"})
        if url.path == "/_admin/refunds":
            with s.lock:
                return self.send_json(200, {
                    "calls": s.refund_calls,
                    "refunds": s.refunds_forgotten + [r for _, r in s.refunds_by_key.values()],
                })
        return self.send_json(404, {"error": f"no route {url.path}"})

    def do_DELETE(self):
        url = urlparse(self.path)
        s = self.systems
        prefix = "/_admin/faults/"
        if not url.path.startswith(prefix):
            return self.send_json(404, {"error": f"no route {url.path}"})
        fault_id = url.path[len(prefix):]
        with s.lock:
            kept = [f for f in s.faults if f["id"] != fault_id]
            found = len(kept) != len(s.faults)
            s.faults = kept
        if not found:
            return self.send_json(404, {"error": f"no fault {fault_id}"})
        return self.send_json(200, {"deleted": fault_id})

    def do_POST(self):
        url = urlparse(self.path)
        s = self.systems
        try:
            body = self.read_json()
        except ValueError as e:
            return self.send_json(400, {"error": f"invalid JSON: {e}"})
        if url.path == "/_admin/orders":
            return self.add_order(body)
        if url.path == "/_admin/customers":
            return self.add_customer(body)
        if url.path == "/_admin/refunds/forget":
            order_id = body.get("order_id")
            if not isinstance(order_id, str):
                return self.send_json(400, {"error": "order_id (string) is expected"})
            with s.lock:
                keys = [k for k, (_, r) in s.refunds_by_key.items() if r["order_id"] == order_id]
                for k in keys:
                    s.refunds_forgotten.append(s.refunds_by_key.pop(k)[1])
            return self.send_json(200, {"forgotten": keys})
        if url.path == "/_admin/boxes/subscriptions":
            if not isinstance(body.get("id"), str) or not isinstance(body.get("customer_id"), str):
                return self.send_json(400, {"error": "id and customer_id (strings) are required"})
            state = body.get("state") or "ACTIVE"
            if state not in ("ACTIVE", "PAUSED", "CANCELLED"):
                return self.send_json(400, {"error": "state is ACTIVE, PAUSED or CANCELLED"})
            sub = subscription(body["id"], body["customer_id"], state, datetime.now(timezone.utc))
            with s.lock:
                if any(x["id"] == sub["id"] or x["customer_id"] == sub["customer_id"] for x in s.subscriptions):
                    return self.send_json(409, {"error": "a subscription with this id or customer exists"})
                s.subscriptions.append(sub)
            return self.send_json(201, sub)
        if url.path == "/_admin/faults":
            for_ms = body.get("for_ms")
            fault = {"path": body.get("path"), "match": body.get("match") or {}, "status": body.get("status"),
                     "delay_ms": int(body.get("delay_ms") or 0), "times": int(body.get("times") or 1),
                     "until": time.monotonic() + int(for_ms) / 1000 if for_ms is not None else None,
                     "id": uuid.uuid4().hex}
            if not isinstance(fault["path"], str) or not isinstance(fault["match"], dict):
                return self.send_json(400, {"error": "path (string) and match (object) are expected"})
            with s.lock:
                s.faults.append(fault)
            return self.send_json(201, fault)
        fault = s.take_fault(url.path, body)
        if fault:
            held = uuid.uuid4().hex
            with s.lock:
                s.inflight[held] = {"path": url.path, "body": body, "peer_port": self.client_address[1]}
            try:
                time.sleep(fault["delay_ms"] / 1000)
            finally:
                with s.lock:
                    s.inflight.pop(held, None)
            if fault["status"]:
                with s.lock:
                    calls = s.refund_calls if url.path == "/payments/refunds" else s.email_calls
                    calls.append({"idempotency_key": self.headers.get("Idempotency-Key"), "body": body,
                                  "fault": fault["status"], "to": body.get("to")})
                return self.send_json(int(fault["status"]), {"error": "injected fault"})
        if url.path == "/graphql":
            result = graphql.graphql_sync(
                SCHEMA, body.get("query", ""), root_value=s.graphql_root(),
                variable_values=body.get("variables"), operation_name=body.get("operationName"),
            )
            out = {"data": result.data}
            if result.errors:
                out["errors"] = [{"message": e.message} for e in result.errors]
            return self.send_json(200, out)
        if url.path == "/emails":
            key = self.headers.get("Idempotency-Key")
            with s.lock:
                s.email_calls.append({"idempotency_key": key, "to": body.get("to")})
                if not key:
                    return self.send_json(400, {"error": "Idempotency-Key header is required"})
                if not body.get("to") or not body.get("subject"):
                    return self.send_json(400, {"error": "to and subject are required"})
                if key not in s.emails_by_key:
                    s.emails_by_key[key] = {"id": "em_" + uuid.uuid4().hex[:12], "to": body["to"],
                                            "subject": body["subject"], "text": body.get("text", "")}
                return self.send_json(202, s.emails_by_key[key])
        m = re.fullmatch(r"/boxes/subscriptions/([^/]+)/pauses", url.path)
        if m:
            return self.pause_box(m.group(1), body)
        if url.path == "/payments/refunds":
            key = self.headers.get("Idempotency-Key")
            with s.lock:
                s.refund_calls.append({"idempotency_key": key, "body": body})
                if not key:
                    return self.send_json(400, {"error": "Idempotency-Key header is required"})
                fingerprint = json.dumps(body, sort_keys=True)
                if key in s.refunds_by_key:
                    first, response = s.refunds_by_key[key]
                    if first != fingerprint:
                        return self.send_json(422, {"error": "Idempotency-Key reused with a different request"})
                    return self.send_json(200, response, {"Idempotent-Replayed": "true"})
                order = next((o for o in s.orders if o["id"] == body.get("order_id")), None)
                if order is None:
                    return self.send_json(404, {"error": "no such order"})
                amount = body.get("amount") or order["total"]
                if amount.get("amount_cents", 0) > order["total"]["amount_cents"]:
                    return self.send_json(400, {"error": "refund exceeds the order total"})
                response = {"id": "re_" + uuid.uuid4().hex[:16], "status": "succeeded", "amount": amount,
                            "order_id": order["id"]}
                s.refunds_by_key[key] = (fingerprint, response)
                return self.send_json(200, response)
        return self.send_json(404, {"error": f"no route {url.path}"})

    def pause_box(self, sid, body):
        s = self.systems
        key = self.headers.get("Idempotency-Key")
        with s.lock:
            # Checked and applied under one lock: a retry arriving while the first request is
            # still held by a delay fault finds its change made, not a second one to make.
            s.box_calls.append({"idempotency_key": key, "subscription_id": sid, "body": body})
            if not key:
                return self.send_json(400, {"error": "Idempotency-Key header is required"})
            if key in s.box_pauses_by_key:
                return self.send_json(201, s.box_pauses_by_key[key], {"Idempotent-Replayed": "true"})
            sub = next((x for x in s.subscriptions if x["id"] == sid), None)
            if sub is None:
                return self.send_json(404, {"error": "no such subscription"})
            if sub["state"] != "ACTIVE" or not sub["next_delivery"]:
                return self.send_json(409, {"error": f"the subscription is {sub['state'].lower()}"})
            skipped = sub["next_delivery"]
            nxt = datetime.strptime(skipped, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) + timedelta(days=7)
            sub["next_delivery"] = iso(nxt)
            sub["skipped"] += 1
            answer = {"id": "pause_" + uuid.uuid4().hex[:12], "subscription_id": sid, "skipped_delivery": skipped,
                      "reason": body.get("reason")}
            s.box_pauses_by_key[key] = answer
            s.box_changes[key] = s.box_changes.get(key, 0) + 1
            return self.send_json(201, answer)

    def add_order(self, body):
        s = self.systems
        if not body.get("id") or not body.get("customer_id"):
            return self.send_json(400, {"error": "id and customer_id are required"})
        status = body.get("status") or "in_transit"
        if status not in ("in_transit", "delivered", "cancelled"):
            return self.send_json(400, {"error": "status is in_transit, delivered or cancelled"})
        placed, promised = body.get("placed_days_ago", 9), body.get("promised_in_days", -2)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in (placed, promised)):
            return self.send_json(400, {"error": "placed_days_ago and promised_in_days are whole days"})
        carrier = body.get("carrier")
        if carrier is not None and (not isinstance(carrier, str) or not carrier.isalnum()):
            return self.send_json(400, {"error": "carrier is a name of letters and digits"})
        now = datetime.now(timezone.utc)
        oid = str(body["id"])
        order = {
            "id": oid, "customer_id": body["customer_id"], "status": status,
            "placed_at": iso(now - timedelta(days=placed)), "promised_by": iso(now + timedelta(days=promised)),
            "delivered_at": iso(now) if status == "delivered" else None, "carrier": carrier or "UPS",
            "tracking_url": f"https://track.example.com/{carrier.lower()}/1Z{oid}" if carrier else None,
            "total": {"amount_cents": int(body.get("total_cents") or 1000), "currency": "USD"},
            "items": [{"name": "Test Item", "quantity": 1}],
        }
        with s.lock:
            if any(o["id"] == order["id"] for o in s.orders):
                return self.send_json(409, {"error": "an order with this id exists"})
            s.orders.append(order)
        return self.send_json(201, order)

    def add_customer(self, body):
        s = self.systems
        if not isinstance(body.get("id"), str) or not isinstance(body.get("email"), str):
            return self.send_json(400, {"error": "id and email (strings) are required"})
        customer = {"id": body["id"], "name": body.get("name") or "Test Customer", "email": body["email"],
                    "email_verified": True, "phone": None, "vendor_ids": {}}
        with s.lock:
            if any(c["id"] == customer["id"] for c in s.customers):
                return self.send_json(409, {"error": "a customer with this id exists"})
            s.customers.append(customer)
        return self.send_json(201, customer)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4580)
    args = ap.parse_args()
    Handler.systems = Systems()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"demo systems listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
