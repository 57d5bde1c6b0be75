"""What passes between the HTTP layer, the providers and the admin API: a
Request, a Response and SimError (an admin request refused); with helpers
for JSON bodies, status texts and the credential a request carries."""

import json
from http import HTTPStatus
from urllib.parse import parse_qsl

from .data import ulid_like


def status_text(status):
    """(reason phrase, description) for any status a fault rule may name."""
    try:
        known = HTTPStatus(status)
        return known.phrase, known.description
    except ValueError:
        return "Error", f"HTTP {status}"


def dumps(obj):
    # Raw UTF-8 (not \\u escapes) so clients see real non-ASCII text.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class SimError(Exception):
    """An admin API request that cannot be honoured (answered as JSON)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    __slots__ = ("method", "path", "raw_query", "query", "headers", "body",
                 "client", "request_id")

    def __init__(self, method, path, raw_query, headers, body, client):
        self.method = method
        self.path = path                  # as sent, still percent-encoded
        self.raw_query = raw_query
        # Last value wins for repeated keys; none of the simulated APIs
        # repeats a parameter.
        self.query = dict(parse_qsl(raw_query, keep_blank_values=True))
        self.headers = headers
        self.body = body
        self.client = client
        self.request_id = ulid_like("req_")

    def json_body(self):
        """The body parsed as JSON; None when empty. Raises ValueError."""
        if not self.body.strip():
            return None
        return json.loads(self.body.decode("utf-8"))


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        if content_type:
            self.headers["Content-Type"] = content_type

    @classmethod
    def json(cls, status, obj, content_type="application/json", headers=None):
        return cls(status, dumps(obj), content_type, headers)


def admin_json(status, obj):
    return Response.json(status, obj)


def admin_body(req):
    """The admin request's JSON object body ({} when empty)."""
    try:
        body = req.json_body()
    except (ValueError, UnicodeDecodeError) as exc:
        raise SimError(400, f"body is not valid JSON: {exc}") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise SimError(400, "body must be a JSON object")
    return body


def presented_secret(headers):
    """The credential a request carries (after the Authorization scheme, or
    an API-key header), "" when none."""
    auth = headers.get("Authorization")
    if auth:
        return auth.strip().partition(" ")[2].strip()
    return (headers.get("X-API-Key") or "").strip()


def bearer_matches(headers, token):
    """Whether the request presents `token` as Authorization: Bearer."""
    scheme = headers.get("Authorization", "").strip().partition(" ")[0]
    return scheme.lower() == "bearer" and presented_secret(headers) == token


def auth_kind(headers):
    """How a request authenticated, without its secret: the Authorization
    scheme ("bearer", "basic") or the name of an API-key header."""
    value = headers.get("Authorization")
    if value:
        return value.split(None, 1)[0].lower()
    for name in ("X-API-Key",):
        if headers.get(name) is not None:
            return name.lower()
    return None
