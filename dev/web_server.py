#!/usr/bin/env python3
"""Serves `web/` (the chat widget, the demo shop, the agent console) for the local stack, with the
security headers the deployed pages get from CloudFront, so a page that would break under the
production Content-Security-Policy breaks here first. Local only, never deployed:
`GET /dev/token?sub=cust_alice&role=customer` mints a dev JWT (dev/devtoken.py), standing in for
the company's own login.

    python dev/web_server.py --port 4590 --chat-url http://127.0.0.1:9000/lambda-url/chat

Also local only: `GET /dev/config.json` says where the chat API is (`{"chat_url": ...}`), so the
demo shop and the console find the stack they were started with.

Every request must name the server as `127.0.0.1:<port>` or `localhost:<port>` in its Host header,
or it is refused (421): binding loopback keeps other machines out, but not a page on some other
site whose DNS name is re-pointed at 127.0.0.1 (DNS rebinding), which would then be same-origin
with this server and could read the agent and admin tokens /dev/token mints.
"""

import argparse
import json
import mimetypes
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import devtoken  # noqa: E402

# What a sub may look like: the ids the demo systems and agents use (cust_alice, agent_ann, or a
# test's own cust_w1a2b3). Anything else (a path, a quote, a claim smuggled in) is refused rather
# than signed, since the token is trusted by the local chat function.
SUB = re.compile(r"^[a-z][a-z0-9_-]{1,63}$")
ROLES = {"customer", "agent", "admin"}

# Python's table depends on the system's mime.types; the browser refuses a module script served
# with anything but a JavaScript type (and nosniff makes it strict), so these are fixed here.
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}


def csp(chat_origin):
    """The production policy (template.yaml's response headers policy says the same): scripts and
    styles only from the site's own files, so no inline script or style attribute runs; the
    widget styles its shadow root with a constructed stylesheet, which CSP does not govern."""
    connect = "'self'" + (f" {chat_origin}" if chat_origin else "")
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; font-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


class Handler(BaseHTTPRequestHandler):
    server_version = "switchboard-web/1"
    web_root = os.path.join(ROOT, "web")
    policy = csp(None)
    chat_url = None

    def security_headers(self):
        self.send_header("Content-Security-Policy", self.policy)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "strict-origin-when-cross-origin")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")

    def reply(self, status, body, ctype, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.security_headers()
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def problem(self, status, title, detail):
        body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
        self.reply(status, body, "application/problem+json", {"Cache-Control": "no-store"})

    def host_ok(self):
        """The Host header names this server by its loopback name, else 421 has been answered.
        A DNS-rebinding page reaches the socket, but its requests carry its own host name."""
        port = self.server.server_address[1]
        host = (self.headers.get("Host") or "").strip().lower()
        if host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            return True
        self.problem(421, "Misdirected Request", f"use http://127.0.0.1:{port}/ or http://localhost:{port}/")
        return False

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if not self.host_ok():
            return
        url = urlparse(self.path)
        if url.path == "/dev/token":
            return self.token(parse_qs(url.query))
        if url.path == "/dev/config.json":
            body = json.dumps({"chat_url": self.chat_url}).encode()
            return self.reply(200, body, "application/json", {"Cache-Control": "no-store"})
        self.static(url.path)

    def token(self, query):
        sub = (query.get("sub") or [""])[0]
        role = (query.get("role") or ["customer"])[0]
        if not SUB.match(sub):
            return self.problem(400, "Bad Request", "sub must be an id such as cust_alice or agent_ann")
        if role not in ROLES:
            return self.problem(400, "Bad Request", "role must be customer, agent or admin")
        # Customers carry no role claim (absent means customer), as the company's tokens would;
        # agents and admins must name a tenant (the local stack is the default tenant's).
        jwt = devtoken.mint(sub, role=None if role == "customer" else role,
                            tenant=None if role == "customer" else "default", ttl=3600)
        body = json.dumps({"token": jwt, "sub": sub, "role": role, "expires_in": 3600}).encode()
        self.reply(200, body, "application/json", {"Cache-Control": "no-store"})

    def static(self, path):
        rel = unquote(path)
        if "\0" in rel or "\\" in rel:
            return self.problem(400, "Bad Request", "bad path")
        if rel.endswith("/"):
            rel += "index.html"
        # Resolve and check the result lies under web/: `..`, encoded `%2e%2e` and symlinks out
        # of the folder all end up outside it and are refused.
        full = os.path.realpath(os.path.join(self.web_root, rel.lstrip("/")))
        if os.path.commonpath([full, self.web_root]) != self.web_root:
            return self.problem(404, "Not Found", "no such file")
        if os.path.isdir(full):
            # /demo -> /demo/: relative links in the page resolve against the folder.
            self.send_response(301)
            self.send_header("Location", path + "/")
            self.send_header("Content-Length", "0")
            self.security_headers()
            self.end_headers()
            return
        if not os.path.isfile(full):
            return self.problem(404, "Not Found", "no such file")
        ext = os.path.splitext(full)[1].lower()
        ctype = TYPES.get(ext) or mimetypes.guess_type(full)[0] or "application/octet-stream"
        with open(full, "rb") as f:
            body = f.read()
        # Locally files change under the developer's hands: always revalidate.
        self.reply(200, body, ctype, {"Cache-Control": "no-cache"})

    def do_POST(self):
        if not self.host_ok():
            return
        self.problem(405, "Method Not Allowed", "this server serves files")

    do_PUT = do_DELETE = do_PATCH = do_POST

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4590)
    ap.add_argument("--root", default=os.path.join(ROOT, "web"), help="the folder served (default web/)")
    ap.add_argument("--chat-url", default=os.environ.get("CHAT_URL"),
                    help="the chat API's base URL (its origin is allowed in connect-src)")
    args = ap.parse_args()
    Handler.web_root = os.path.realpath(args.root)
    Handler.chat_url = args.chat_url
    origin = None
    if args.chat_url:
        u = urlparse(args.chat_url)
        origin = f"{u.scheme}://{u.netloc}"
    Handler.policy = csp(origin)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"serving {Handler.web_root} on http://{args.host}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
