"""The base class of every simulated API: behaviour switches, rate limiting,
routing, and the hooks (auth, native errors, fault bodies, admin endpoints,
demo config) each provider fills in. InFlight counts requests of one kind
while they are under way."""

import hashlib
import json
import math
import re
import threading
import time
from urllib.parse import unquote

from .messages import Response, SimError, presented_secret
from .ratelimit import TokenBucket


class InFlight:
    """Requests of one kind, counted while they are under way. The count is
    kept outside the provider's lock (which serialises answering), so that
    tests can see how many a client has in flight at once."""

    def __init__(self, counter):
        self.counter = counter            # the name of the running total
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.stats = {self.counter: 0, "in_flight": 0, "max_in_flight": 0}

    def snapshot(self, zero=False):
        """The figures; with zero, the total and the maximum start again."""
        with self.lock:
            if zero:
                self.stats.update({self.counter: 0, "max_in_flight": 0})
            return dict(self.stats)

    def run(self, delay_ms, answer):
        """answer(), counted, after waiting delay_ms."""
        with self.lock:
            self.stats[self.counter] += 1
            self.stats["in_flight"] += 1
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"],
                                              self.stats["in_flight"])
        try:
            if delay_ms:
                time.sleep(delay_ms / 1000)
            return answer()
        finally:
            with self.lock:
                self.stats["in_flight"] -= 1


class Provider:
    """One simulated API. Subclasses define ROUTES, SWITCHES, native errors
    and their data; this class owns switches, rate limiting and routing."""

    name = None
    title = None         # the API's name in --help
    default_port = 0
    # (method, regex over the still-encoded path, handler method name);
    # regex groups are percent-decoded and passed to the handler.
    ROUTES = ()
    SWITCHES = {}

    def __init__(self, opts):
        self.opts = opts
        self.lock = threading.RLock()
        self.reset()

    # -- state ------------------------------------------------------------
    def reset(self):
        with self.lock:
            self.switches = self.default_switches()
            self._apply_rate_limit()
            self.seed_state()

    def default_switches(self):
        raise NotImplementedError

    def seed_state(self):
        raise NotImplementedError

    def config(self):
        with self.lock:
            return json.loads(json.dumps(self.switches))

    def set_config(self, changes):
        if not isinstance(changes, dict):
            raise SimError(400, f"config for {self.name} must be an object")
        validated = {}
        for key, value in changes.items():
            check = self.SWITCHES.get(key)
            if check is None:
                raise SimError(400, f"unknown {self.name} switch '{key}'; known: "
                               + ", ".join(sorted(self.SWITCHES)))
            try:
                validated[key] = check(value)
            except SimError as exc:
                raise SimError(400, f"{self.name}.{key}: {exc.message}") from None
        with self.lock:
            self.switches.update(validated)
            if "rate_limit" in validated:
                self._apply_rate_limit()

    def _apply_rate_limit(self):
        rl = self.switches.get("rate_limit")
        self.limiter = TokenBucket(rl["limit"], rl["window_s"]) if rl else None

    # -- rate limiting -----------------------------------------------------
    @staticmethod
    def credential_key(req):
        # Buckets are per presented credential, valid or not, whichever
        # header carries it; hashed so the secret is not kept as a dict key.
        cred = presented_secret(req.headers)
        return hashlib.sha256(cred.encode()).hexdigest() if cred else "anon:" + req.client

    def rate_headers(self, remaining, reset_in, now_wall):
        """Provider-specific X-RateLimit-* header rendering."""
        return {}

    def take_rate_limit(self, req):
        """(retry_after or None, headers) for this request."""
        if self.limiter is None:
            return None, {}
        allowed, remaining, reset_in, wait = self.limiter.take(
            self.credential_key(req), time.monotonic())
        headers = self.rate_headers(remaining, reset_in, time.time())
        return (None if allowed else max(1, math.ceil(wait))), headers

    def peek_rate_headers(self, req):
        if self.limiter is None:
            return {}
        remaining, reset_in = self.limiter.peek(self.credential_key(req),
                                                time.monotonic())
        return self.rate_headers(remaining, reset_in, time.time())

    # -- dispatch ----------------------------------------------------------
    def route(self, req):
        """Find the handler for req; native 404/405 errors otherwise."""
        allowed = []
        for method, pattern, handler in self.ROUTES:
            match = pattern.fullmatch(req.path)
            if not match:
                continue
            if method != req.method:
                allowed.append(method)
                continue
            args = [unquote(g) for g in match.groups()]
            return getattr(self, handler)(req, *args)
        if allowed:
            return self.error(req, 405, detail=f"{req.method} is not allowed here",
                              headers={"Allow": ", ".join(sorted(set(allowed)))})
        return self.error(req, 404, detail=f"No such endpoint: {req.method} {req.path}")

    def handle(self, req):
        """Rate limit, authenticate, route: under the lock, so that each
        request sees and changes one consistent state."""
        with self.lock:
            retry_after, rl_headers = self.take_rate_limit(req)
            if retry_after is not None:
                resp = self.rate_limited(req, retry_after)
            elif not self.authorized(req):
                resp = self.unauthorized(req)
            else:
                self.before_route(req)
                resp = self.route(req)
            resp.headers.update(rl_headers)
            return resp

    # Hooks for handle(); providers override what their API does differently.
    def authorized(self, req):
        raise NotImplementedError

    def unauthorized(self, req):
        return self.error(req, 401)

    def rate_limited(self, req, retry_after):
        return self.error(req, 429,
                          detail=f"Rate limit exceeded. Retry in {retry_after} seconds.",
                          headers={"Retry-After": str(retry_after)})

    def before_route(self, req):
        pass

    def error(self, req, status, code=None, detail=None, headers=None):
        """The provider's native error answer."""
        raise NotImplementedError

    def fault_response(self, req, status):
        """Body for a fault rule that names only a status: the native error
        for errors, empty otherwise."""
        if status < 400:
            return Response(status)
        resp = self.error(req, status)
        resp.headers.update(self.peek_rate_headers(req))
        return resp

    def admin(self, method, parts, req):
        raise SimError(404, f"no admin endpoints for {self.name}")

    def demo_section(self, url):
        """This provider's account in the demo config (--demo-config): an
        INI section whose account talks to this simulator at `url`."""
        return (f"[{self.name}]\ntype = {self.name}\nurl = {url}\n"
                f"token = {self.opts.token}\nrefresh = 30\n")


def compile_routes(*routes):
    return tuple((m, re.compile(p), h) for m, p, h in routes)
