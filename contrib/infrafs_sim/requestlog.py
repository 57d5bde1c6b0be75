"""The request log: every provider (non-/_sim) request with its outcome, as
GET /_sim/requests shows it."""

import collections
import threading
import time

from .messages import auth_kind

LOG_CAPACITY = 200_000      # request log entries kept; oldest dropped first


class RequestLog:
    """Every provider (non-/_sim) request, for tests to assert on."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = collections.deque(maxlen=LOG_CAPACITY)

    def record(self, provider, req):
        entry = {
            "provider": provider,
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "raw_query": req.raw_query,
            "body": req.body.decode("utf-8", "replace") if req.body else None,
            "content_type": req.headers.get("Content-Type"),
            "auth": auth_kind(req.headers),   # never the credential itself
            "time": time.time(),
            # Filled in once answered; every key exists up front so readers
            # copying the dict never race with a resize.
            "status": None,
            "fault": None,
            "seconds": None,   # from arrival until the answer was sent
            "port": None,      # the client's port: one per connection
        }
        with self._lock:
            self._entries.append(entry)
        return entry

    def entries(self, provider=None):
        with self._lock:
            return [dict(e) for e in self._entries
                    if provider is None or e["provider"] == provider]

    def clear(self):
        with self._lock:
            self._entries.clear()
