"""Injected misbehaviour: fault rules (/_sim/faults), each used up by the
requests it matches, and random faults on a share of all requests
(/_sim/chaos, --fault-rate). server.py acts out the rule a request meets."""

import random
import re
import threading

from .messages import SimError

FAULT_ACTIONS = ("status", "delay", "late", "malformed", "truncated", "drop", "oversized",
                 "bomb")
OVERSIZED_HEAD = b'{"data":[],"padding":"'
OVERSIZED_TAIL = b'"}'
MAX_OVERSIZED = 1 << 34     # 16 GiB: streamed, never held in memory
STREAM_PIECE = 1 << 16      # generated bodies go out in pieces this large


class FaultRule:
    """One injected misbehaviour (POST /_sim/faults; admin.py lists its fields)."""

    def __init__(self, rule_id, spec):
        if not isinstance(spec, dict):
            raise SimError(400, "fault rule must be a JSON object")
        self.id = rule_id
        self.action = spec.get("action")
        if self.action not in FAULT_ACTIONS:
            raise SimError(400, f"action must be one of {', '.join(FAULT_ACTIONS)}")
        self.provider = self._opt_str(spec, "provider")
        method = self._opt_str(spec, "method")
        self.method = method.upper() if method else None
        self.path = self._opt_str(spec, "path")
        try:
            self.path_re = re.compile(self.path) if self.path else None
        except re.error as exc:
            raise SimError(400, f"bad path regex: {exc}") from None
        self.times = self._int(spec, "times", 1)          # 0 = unlimited
        self.delay_ms = self._int(spec, "delay_ms", 0)
        self.status = spec.get("status")
        # 1xx are not final answers and would break the connection's framing.
        if self.action == "status" and not (
                isinstance(self.status, int) and 200 <= self.status <= 599):
            raise SimError(400, "action 'status' needs an integer 'status' 200-599")
        if self.action in ("oversized", "bomb") and self.status is not None and not (
                isinstance(self.status, int) and 200 <= self.status <= 599):
            raise SimError(400, f"action '{self.action}' takes an integer 'status' 200-599")
        self.body = self._opt_str(spec, "body")
        self.content_type = self._opt_str(spec, "content_type")
        self.headers = spec.get("headers") or {}
        if not isinstance(self.headers, dict) or not all(
                isinstance(v, (str, int)) for v in self.headers.values()):
            raise SimError(400, "headers must be an object of strings")
        # "oversized": a 200 JSON body of exactly `size` bytes, generated and
        # streamed here; `chunked` leaves out Content-Length, so the client
        # only finds out while reading.
        self.size = self._int(spec, "size", 0)
        self.chunked = spec.get("chunked", False)
        if not isinstance(self.chunked, bool):
            raise SimError(400, "'chunked' must be true or false")
        if self.action == "oversized" and not (
                len(OVERSIZED_HEAD) + len(OVERSIZED_TAIL) <= self.size <= MAX_OVERSIZED):
            raise SimError(400, f"action 'oversized' needs 'size' from "
                           f"{len(OVERSIZED_HEAD) + len(OVERSIZED_TAIL)} to {MAX_OVERSIZED}")
        # "bomb": "[" element "," element ... "]" of `size` bytes.
        element = spec.get("element", "{}")
        if not isinstance(element, str) or not element:
            raise SimError(400, "'element' must be a non-empty string")
        self.element = element.encode()
        if self.action == "bomb" and not (
                len(self.element) + 2 <= self.size <= MAX_OVERSIZED):
            raise SimError(400, f"action 'bomb' needs 'size' from {len(self.element) + 2} "
                           f"to {MAX_OVERSIZED}")
        self.gzip = spec.get("gzip", False)
        if not isinstance(self.gzip, bool):
            raise SimError(400, "'gzip' must be true or false")
        self.hits = 0
        self.gzipped = 0

    @staticmethod
    def _opt_str(spec, key):
        value = spec.get(key)
        if value is not None and not isinstance(value, str):
            raise SimError(400, f"'{key}' must be a string")
        return value

    @staticmethod
    def _int(spec, key, default):
        value = spec.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SimError(400, f"'{key}' must be a non-negative integer")
        return value

    def matches(self, provider, method, path):
        return ((self.provider is None or self.provider == provider)
                and (self.method is None or self.method == method)
                and (self.path_re is None or self.path_re.search(path)))

    def describe(self):
        return {"id": self.id, "provider": self.provider, "method": self.method,
                "path": self.path, "action": self.action, "status": self.status,
                "delay_ms": self.delay_ms, "size": self.size, "chunked": self.chunked,
                "element": self.element.decode(), "gzip": self.gzip,
                "remaining": self.times, "hits": self.hits, "gzipped": self.gzipped}

    def pieces(self):
        """The generated body ("oversized", "bomb") as byte pieces of at
        most about STREAM_PIECE, `size` bytes in all, built as they go."""
        if self.action == "oversized":
            head, filler, tail = OVERSIZED_HEAD, b"x", OVERSIZED_TAIL
        else:
            head, filler, tail = b"[", self.element + b",", self.element + b"]"
        left = self.size - len(head) - len(tail)
        count, pad = divmod(left, len(filler))
        per_piece = max(1, STREAM_PIECE // len(filler))
        block = memoryview(filler * per_piece)
        yield head
        while count > 0:
            n = min(count, per_piece)
            yield block[:n * len(filler)]
            count -= n
        yield b" " * pad      # bomb: white space before the last element
        yield tail


CHAOS_KINDS = ("5xx", "429", "drop", "delay", "truncated", "malformed")
CHAOS_DEFAULT_KINDS = ("5xx", "429", "drop", "delay", "truncated")


class Chaos:
    """Random faults on a share of provider requests (soak tests): each
    request not caught by a rule misbehaves with probability `rate`, in one
    of `kinds` picked at random. Set by --fault-rate or /_sim/chaos."""

    def __init__(self, rate=0.0, kinds=CHAOS_DEFAULT_KINDS, delay_ms=2000,
                 provider=None, seed=None):
        self._lock = threading.Lock()
        self.configure({"rate": rate, "kinds": list(kinds), "delay_ms": delay_ms,
                        "provider": provider, "seed": seed})

    def configure(self, spec):
        if not isinstance(spec, dict):
            raise SimError(400, "chaos settings must be a JSON object")
        unknown = set(spec) - {"rate", "kinds", "delay_ms", "provider", "seed"}
        if unknown:
            raise SimError(400, f"unknown chaos setting(s): {', '.join(sorted(unknown))}")
        rate = spec.get("rate", 0.0)
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
            raise SimError(400, "'rate' must be a number from 0 to 1")
        kinds = spec.get("kinds", list(CHAOS_DEFAULT_KINDS))
        if (not isinstance(kinds, list) or not kinds
                or any(k not in CHAOS_KINDS for k in kinds)):
            raise SimError(400, f"'kinds' must be a non-empty list of {', '.join(CHAOS_KINDS)}")
        delay_ms = spec.get("delay_ms", 2000)
        if not isinstance(delay_ms, int) or isinstance(delay_ms, bool) or delay_ms < 0:
            raise SimError(400, "'delay_ms' must be a non-negative integer")
        provider = spec.get("provider")
        if provider is not None and not isinstance(provider, str):
            raise SimError(400, "'provider' must be a string")
        seed = spec.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise SimError(400, "'seed' must be an integer")
        with self._lock:
            self.rate, self.kinds, self.delay_ms = float(rate), list(kinds), delay_ms
            self.provider, self.seed = provider, seed
            self.random = random.Random(seed)
            self.counts = {k: 0 for k in CHAOS_KINDS}
            self.seen = 0

    def describe(self):
        with self._lock:
            return {"rate": self.rate, "kinds": self.kinds, "delay_ms": self.delay_ms,
                    "provider": self.provider, "seed": self.seed,
                    "requests": self.seen, "injected": dict(self.counts)}

    def take(self, provider):
        """A one-off FaultRule for this request, or None."""
        with self._lock:
            if self.rate <= 0 or (self.provider and self.provider != provider):
                return None
            self.seen += 1
            if self.random.random() >= self.rate:
                return None
            kind = self.random.choice(self.kinds)
            self.counts[kind] += 1
            status = self.random.choice((500, 502, 503)) if kind == "5xx" else 429
        spec = {"5xx": {"action": "status", "status": status},
                "429": {"action": "status", "status": 429},
                "drop": {"action": "drop"},
                "delay": {"action": "delay", "delay_ms": self.delay_ms},
                "truncated": {"action": "truncated"},
                "malformed": {"action": "malformed"}}[kind]
        rule = FaultRule(0, spec)
        rule.id = f"random:{kind}"
        return rule


class FaultTable:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self._next_id = 1

    def add(self, spec):
        with self._lock:
            rule = FaultRule(self._next_id, spec)
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def remove(self, rule_id):
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self):
        with self._lock:
            self._rules.clear()

    def describe(self):
        with self._lock:
            return [r.describe() for r in self._rules]

    def take(self, provider, method, path):
        """The first rule matching this request, used up once."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(provider, method, path):
                    rule.hits += 1
                    if rule.times:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    return rule
        return None
