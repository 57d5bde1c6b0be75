"""Rate limiting: the token buckets behind every provider's rate_limit
switch."""

import threading


class TokenBucket:
    """Per-credential token buckets: `limit` requests per `window_s` seconds,
    refilled continuously, starting full."""

    def __init__(self, limit, window_s):
        self.limit = limit
        self.window_s = window_s
        self.rate = limit / window_s
        self._buckets = {}
        self._lock = threading.Lock()

    def _refill(self, key, now):
        tokens, last = self._buckets.get(key, (self.limit, now))
        return min(self.limit, tokens + (now - last) * self.rate)

    def take(self, key, now):
        """Consume one token. Returns (allowed, remaining, seconds until the
        bucket is full again, seconds until a token is available)."""
        with self._lock:
            tokens = self._refill(key, now)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = (tokens, now)
        return (allowed, int(tokens), (self.limit - tokens) / self.rate,
                max(0.0, (1 - tokens) / self.rate))

    def peek(self, key, now):
        with self._lock:
            tokens = self._refill(key, now)
        return int(tokens), (self.limit - tokens) / self.rate
