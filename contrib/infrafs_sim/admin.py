"""The simulator as a whole: its providers and what they share (ports, the
request log, fault rules, random faults), and the admin API under /_sim/
that every port serves.

Admin API (any port, no auth, JSON in and out; errors are {"error": "..."}):

  GET    /_sim/health            {"ok": true, "ports": {"hostup": N}}
  POST   /_sim/faults            add a rule, answers 201 {"id": N}:
           {"action": "status"|"delay"|"late"|"malformed"|"truncated"|"drop",
            "provider": name, "method": "GET", "path": regex (re.search on
            the path without query), "times": N (default 1, 0 = unlimited),
            "delay_ms": N (before any action), "status": N (200-599),
            "body": str, "content_type": str, "headers": {...}}
           Rules are checked in order before rate limiting and auth; the
           first match is used up. "status" without "body" answers the
           provider's native error; a 429 carries Retry-After: 1.
           "late" answers with the data as it is at arrival, sent
           "delay_ms" later (a list that was read before a change).
           "oversized" answers 200 with valid JSON of exactly "size" bytes,
           generated and streamed by the simulator ("chunked": true leaves
           out Content-Length).
           "bomb" answers 200 (or "status") with a JSON array of nothing but
           "element" (default "{}"), "size" bytes in all (white space pads
           it): the answer that costs a parser the most memory for its size.
           With "gzip": true, "oversized" and "bomb" answers are sent
           gzip-compressed (Content-Encoding: gzip, chunked) when the
           request's Accept-Encoding allows gzip, as they are otherwise;
           "gzipped" in GET /_sim/faults counts the answers that were.
  GET    /_sim/faults            the rules, with "remaining" and "hits"
  DELETE /_sim/faults[/ID]       remove all rules (or one)
  GET    /_sim/chaos             random faults: {"rate", "kinds", "delay_ms",
                                 "provider", "seed", "requests", "injected"}
  POST   /_sim/chaos             {"rate": 0.2, "kinds": ["5xx", "429", "drop",
           "delay", "truncated", "malformed"], "delay_ms": 2000, "provider":
           name|null, "seed": N|null}: every provider request that no rule
           matches fails with probability "rate", in one of "kinds" (5xx is
           500, 502 or 503); logged with "fault": "random:KIND". DELETE (or
           rate 0) turns it off; --fault-rate sets it at start, and reset
           returns to that.
  GET    /_sim/requests[?provider=P]  provider requests since the last clear:
           [{"provider", "method", "path", "query": {k: v}, "raw_query",
             "body": str|null, "content_type", "auth": "bearer"|"x-api-key"
             |null (never the secret), "time": epoch float,
             "status": int|null (null: dropped), "fault": rule id|
             "random:KIND"|null, "seconds": from arrival until answered
             (null for a fault), "port": the client's port (one per
             connection)}]
  DELETE /_sim/requests          clear the log
  GET    /_sim/config            {"hostup": {switch: value, ...}}
  POST   /_sim/config            {"hostup": {switch: value}}: merge, answer all
  POST   /_sim/reset             seeded data, no faults, empty log, default
                                 switches

Each provider's own endpoints (/_sim/<provider>/...) and switches are
documented at the top of its module.
"""


import traceback
from urllib.parse import unquote

from .faults import Chaos, FaultTable
from .messages import SimError, admin_body, admin_json
from .requestlog import RequestLog


class Simulator:
    """The providers and what they share; answers the admin API."""

    def __init__(self, providers, fault_rate=0.0, fault_delay_ms=2000):
        self.providers = {p.name: p for p in providers}
        self.ports = {}
        self.log = RequestLog()
        self.faults = FaultTable()
        self.chaos_start = {"rate": fault_rate, "delay_ms": fault_delay_ms}
        self.chaos = Chaos(fault_rate, delay_ms=fault_delay_ms)

    def reset(self):
        self.faults.clear()
        self.chaos.configure(dict(self.chaos_start))
        self.log.clear()
        for provider in self.providers.values():
            provider.reset()

    def admin(self, req):
        """Answer /_sim/... (no auth, JSON in and out)."""
        parts = [unquote(p) for p in req.path.split("/")[2:] if p]
        try:
            return self._admin(req.method, parts, req)
        except SimError as exc:
            return admin_json(exc.status, {"error": exc.message})
        except Exception as exc:   # a simulator bug: show it, still answer
            traceback.print_exc()
            return admin_json(500, {"error": f"simulator bug: {exc!r}"})

    def _admin(self, method, parts, req):
        head = parts[0] if parts else ""
        if parts in ([], ["health"]) and method == "GET":
            return admin_json(200, {"ok": True, "ports": self.ports})
        if head == "faults":
            return self._admin_faults(method, parts[1:], req)
        if parts == ["chaos"]:
            if method == "POST":
                self.chaos.configure(admin_body(req))
            elif method == "DELETE":
                self.chaos.configure({})
            if method in ("GET", "POST", "DELETE"):
                return admin_json(200, self.chaos.describe())
        if parts == ["requests"]:
            if method == "GET":
                return admin_json(200, self.log.entries(req.query.get("provider")))
            if method == "DELETE":
                self.log.clear()
                return admin_json(200, {"ok": True})
        elif parts == ["config"]:
            if method == "POST":
                self._set_config(admin_body(req))
            if method in ("GET", "POST"):
                return admin_json(200, {n: p.config() for n, p in self.providers.items()})
        elif parts == ["reset"] and method == "POST":
            self.reset()
            return admin_json(200, {"ok": True})
        elif head in self.providers:
            return self.providers[head].admin(method, parts[1:], req)
        else:
            raise SimError(404, f"unknown admin path {req.path}")
        raise SimError(405, f"{method} not allowed on {req.path}")

    def _admin_faults(self, method, rest, req):
        if not rest:
            if method == "POST":
                return admin_json(201, {"id": self.faults.add(admin_body(req)).id})
            if method == "GET":
                return admin_json(200, self.faults.describe())
            if method == "DELETE":
                self.faults.clear()
                return admin_json(200, {"ok": True})
        elif len(rest) == 1 and method == "DELETE" and rest[0].isdigit():
            if not self.faults.remove(int(rest[0])):
                raise SimError(404, f"no fault rule {rest[0]}")
            return admin_json(200, {"ok": True})
        raise SimError(405 if not rest else 404, f"{method} not allowed on {req.path}")

    def _set_config(self, body):
        unknown = set(body) - set(self.providers)
        if unknown:
            raise SimError(400, f"unknown provider(s): {', '.join(sorted(unknown))}")
        for name, changes in body.items():
            self.providers[name].set_config(changes)
