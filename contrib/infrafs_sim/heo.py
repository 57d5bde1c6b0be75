"""HEO Systems: VPS power control only.

Admin endpoints (any port, no auth, JSON; see admin.py):

  GET    /_sim/heo/actions       accepted HEO actions, oldest first:
                                 [{"vps_id", "action", "force", "time"}]

HEO switches: scope (list of the VPS ids the token may act on; default
vps_101 vps_102 vps_103, any other id answers 403 unauthorized);
provider_error (bool: every action that passed auth, scope and confirmation
answers 502 provider_error); rate_limit (as HostUp's, per client IP; its 429
is plain text without Retry-After). HEO has no list or state endpoint: only
POST /v1/hosting/cloud/vps-custom/{id}/{start|stop|reset} (reset needs
?force=true or {"force": true}), and the public GET /health and /v1/status.
"""


import re
import time

from .messages import Response, SimError, admin_json, bearer_matches, status_text
from .provider import Provider, compile_routes
from .switches import v_bool, v_rate_limit

HEO_SCOPE = ("vps_101", "vps_102", "vps_103")   # what the token may act on
HEO_ACTION_MESSAGES = {"start": "Start action sent", "stop": "Stop action sent",
                       "reset": "Reset action sent"}
# The documented error table: status -> (error, message).
HEO_ERRORS = {400: ("bad_request", "Bad request"),
              401: ("unauthorized", "Missing, invalid, or revoked API key"),
              403: ("unauthorized", "You do not have access to this VPS"),
              404: ("not_found", "Endpoint not found"),
              405: ("method_not_allowed", "Method not allowed"),
              502: ("provider_error", "Failed to send action")}
HEO_PUBLIC = ("/health", "/v1/status")


def v_ids(value):
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SimError(400, "must be a list of non-empty strings")
    return list(value)


class Heo(Provider):
    """HEO Systems (doc/SEMANTICS.md §10.2): no list or state
    endpoint, POST .../{id}/{start|stop|reset} only; the token is scoped to
    some VPS ids; errors are {"success":false,"error","message"}, except 429,
    which is plain text."""

    name = "heo"
    title = "HEO Systems"
    default_port = 18462
    ROUTES = compile_routes(
        ("POST", r"/v1/hosting/cloud/vps-custom/([^/]+)/(start|stop|reset)", "post_action"),
        ("GET", r"/health", "health"),
        ("GET", r"/v1/status", "api_status"),
    )
    SWITCHES = {
        "scope": v_ids,              # VPS ids the token may act on
        "provider_error": v_bool,    # every accepted action fails with 502
        "rate_limit": v_rate_limit,  # per client IP, as HEO's limiter
    }

    def default_switches(self):
        return {"scope": list(HEO_SCOPE), "provider_error": False,
                "rate_limit": {"limit": 300, "window_s": 60}}

    def seed_state(self):
        self.actions = []    # accepted actions, oldest first

    # -- errors ------------------------------------------------------------
    def error(self, req, status, code=None, detail=None, headers=None):
        if status == 429:    # the docs give no JSON for it: plain text
            return Response(429, b"Too many requests\n", "text/plain; charset=utf-8",
                            headers)
        known = HEO_ERRORS.get(status)
        if code is None:     # generic callers (routing, faults): HEO's own words
            phrase, _ = status_text(status)
            code, detail = known or (re.sub(r"\W+", "_", phrase.lower()).strip("_"), phrase)
        return Response.json(status, {"success": False, "error": code,
                                      "message": detail or (known or ("", "Error"))[1]},
                             headers=headers)

    def credential_key(self, req):
        return "ip:" + req.client     # HEO limits per client IP

    def rate_limited(self, req, retry_after):
        return self.error(req, 429)   # no Retry-After: none is documented

    def authorized(self, req):
        if req.path in HEO_PUBLIC:
            return True
        return bearer_matches(req.headers, self.opts.token)

    # -- handlers ------------------------------------------------------------
    def health(self, req):
        return Response.json(200, {"status": "healthy", "version": "infrafs-sim"})

    def api_status(self, req):
        return Response.json(200, {"status": "up", "disrupted": [], "maintenance": []})

    def post_action(self, req, vps_id, action):
        if vps_id not in self.switches["scope"]:
            return self.error(req, 403)
        force = req.query.get("force") == "true"
        if action == "reset" and not force:
            try:
                body = req.json_body()
            except (ValueError, UnicodeDecodeError):
                return self.error(req, 400, "invalid_json", "Request body is not valid JSON")
            force = isinstance(body, dict) and body.get("force") is True
            if not force:
                return self.error(req, 400, "confirmation_required",
                                  "Reset requires force=true")
        if self.switches["provider_error"]:
            return self.error(req, 502)
        self.actions.append({"vps_id": vps_id, "action": action, "force": force,
                             "time": time.time()})
        return Response.json(200, {"success": True, "action": action, "vps_id": vps_id,
                                   "status": "requested",
                                   "message": HEO_ACTION_MESSAGES[action]})

    # -- admin: /_sim/heo/... ------------------------------------------------------
    def admin(self, method, parts, req):
        with self.lock:
            if parts == ["actions"] and method == "GET":
                return admin_json(200, list(self.actions))
        raise SimError(404, f"unknown admin path /_sim/heo/{'/'.join(parts)}")

    def demo_section(self, url):
        # One id outside the token's scope, so the demo shows an EACCES too.
        return (super().demo_section(url)
                + "# vps_999 is outside the demo token's scope: its power fails with EACCES\n"
                + "vps = " + " ".join(HEO_SCOPE) + " vps_999\n")
