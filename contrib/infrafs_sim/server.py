"""The HTTP layer: one threading HTTP server per provider, over TLS when
asked. It reads each request, hands /_sim/ to the admin API and the rest to
its provider, records it in the request log, and acts out any fault that
the request meets."""

import re
import socket
import ssl
import sys
import time
import traceback
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .messages import Request, Response

MAX_BODY = 1 << 20          # larger request bodies are refused (413)


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive; every answer has a length
    server_version = "infrafs-sim"
    timeout = 120                     # reap idle keep-alive connections
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus
    # the client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    # One entry point for every method.
    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def version_string(self):
        return self.server_version

    @property
    def sim(self):
        return self.server.sim

    @property
    def provider(self):
        return self.server.provider

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write(f"infrafs-sim[{self.provider.name}]: {fmt % args}\n")

    def log_request(self, code="-", size="-"):
        pass   # logged by dispatch, which knows the outcome

    def read_body(self):
        """The request body, or None after answering an unreadable one."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            try:
                return self.read_chunked()
            except ValueError:
                self.send_plain(400, "bad chunked body")
                return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.send_plain(413 if length > MAX_BODY else 400, "bad Content-Length")
            return None
        return self.rfile.read(length) if length else b""

    def read_chunked(self):
        chunks, total = [], 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass    # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                self.send_plain(413, "body too large")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def dispatch(self):
        body = self.read_body()
        if body is None:
            return
        split = urlsplit(self.path)
        req = Request(self.command, split.path, split.query, self.headers, body,
                      self.client_address[0])
        if req.path == "/_sim" or req.path.startswith("/_sim/"):
            resp = self.sim.admin(req)
            self.send(resp)
            self.log_message('"%s %s" %s (admin)', req.method, self.path, resp.status)
            return
        entry = self.sim.log.record(self.provider.name, req)
        entry["port"] = self.client_address[1]
        rule = self.sim.faults.take(self.provider.name, req.method, req.path)
        if rule is None:
            rule = self.sim.chaos.take(self.provider.name)
        if rule is not None:
            entry["fault"] = rule.id
            entry["status"] = self.apply_fault(rule, req)
        else:
            resp = self.answer(req)
            entry["status"] = resp.status
            self.send(resp)
        entry["seconds"] = time.time() - entry["time"]
        outcome = "no answer" if entry["status"] is None else entry["status"]
        self.log_message('"%s %s" %s%s', req.method, self.path, outcome,
                         f" (fault {rule.id}: {rule.action})" if rule else "")

    def answer(self, req):
        try:
            return self.provider.handle(req)
        except Exception:   # a simulator bug: say so, and answer like the API would
            traceback.print_exc()
            return self.provider.error(req, 500, detail="Simulator internal error")

    def apply_fault(self, rule, req):
        """Misbehave as the rule says; returns the status sent (None: none)."""
        if rule.action == "late":
            resp = self.answer(req)
            time.sleep(rule.delay_ms / 1000)
            self.send(resp)
            return resp.status
        if rule.delay_ms:
            time.sleep(rule.delay_ms / 1000)
        if rule.action == "delay":
            resp = self.answer(req)
            self.send(resp)
            return resp.status
        if rule.action == "drop":
            self.abort()
            return None
        if rule.action == "malformed":
            self.send(Response(200, b'{"data":[{"id":', "application/json"))
            return 200
        if rule.action in ("oversized", "bomb"):
            self.send_generated(rule, req)
            return rule.status or 200
        if rule.action == "truncated":
            resp = self.answer(req)
            self.send(resp, truncate=True)
            return resp.status
        resp = self.status_fault(rule, req)
        self.send(resp)
        return resp.status

    def status_fault(self, rule, req):
        if rule.body is not None:
            resp = Response(rule.status, rule.body.encode(),
                            rule.content_type or "application/json")
        else:
            resp = self.provider.fault_response(req, rule.status)
            if rule.content_type:
                resp.headers["Content-Type"] = rule.content_type
        if rule.status == 429:   # every 429 tells when to come back
            resp.headers["Retry-After"] = "1"
        resp.headers.update({k: str(v) for k, v in rule.headers.items()})
        return resp

    def abort(self):
        """Close the connection without a word."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send(self, resp, truncate=False):
        body = resp.body
        self.send_response(resp.status)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        # A truncated answer promises more than it sends, then hangs up.
        promised = len(body) + max(len(body), 64) if truncate else len(body)
        self.send_header("Content-Length", str(promised))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body[:len(body) // 2] if truncate else body)
        if truncate:
            self.wfile.flush()
            self.abort()

    @staticmethod
    def accepts_gzip(req):
        """Whether the request's Accept-Encoding allows gzip (RFC 9110)."""
        for item in req.headers.get("Accept-Encoding", "").split(","):
            name, _, params = item.strip().partition(";")
            if name.strip().lower() in ("gzip", "x-gzip", "*"):
                q = params.strip().lower()
                return not re.fullmatch(r"q\s*=\s*0(\.0*)?", q)
        return False

    def send_generated(self, rule, req):
        """The rule's generated body ("oversized", "bomb"), streamed, with
        its status (200 unless given); gzip-compressed as it goes when
        asked and accepted."""
        gzipped = rule.gzip and self.accepts_gzip(req)
        chunked = rule.chunked or gzipped      # the compressed size is not known up front
        self.send_response(rule.status or 200)
        self.send_header("Content-Type", rule.content_type or "application/json")
        for key, value in rule.headers.items():
            self.send_header(key, str(value))
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
            rule.gzipped += 1
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(rule.size))
        self.end_headers()

        def emit(piece):
            if not piece:
                return              # an empty chunk would end the body
            if chunked:
                self.wfile.write(b"%x\r\n" % len(piece))
            self.wfile.write(piece)
            if chunked:
                self.wfile.write(b"\r\n")

        compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if gzipped else None
        try:
            for piece in rule.pieces():
                emit(compressor.compress(piece) if compressor else piece)
            if compressor:
                emit(compressor.flush())
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (ConnectionError, TimeoutError):
            self.close_connection = True   # the client gave up reading: expected

    def send_plain(self, status, text):
        self.close_connection = True
        self.send(Response(status, text.encode() + b"\n", "text/plain"))


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops the SYNs of a client opening
    # more connections at once (HostAtlas detail reads), delaying them 1 s.
    request_queue_size = 64

    def __init__(self, address, sim, provider, verbose):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sim = sim
        self.provider = provider
        self.verbose = verbose
        super().__init__(address, SimHandler)

    def handle_error(self, request, client_address):
        # Clients hanging up mid-answer are normal (and tests do it on
        # purpose); anything else is a simulator bug worth a traceback.
        # So are TLS clients that refuse the certificate (tests do that too).
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            super().handle_error(request, client_address)


def tls_context(args):
    """The servers' TLS context, or None for plain HTTP."""
    if not args.tls_cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
