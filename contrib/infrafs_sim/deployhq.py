"""DeployHQ: hosted resources (Managed VPS) and managed hosting.

DeployHQ (HTTP Basic: --deployhq-user, default demo@example.com, and the
token) admin endpoints (--deployhq-count N: the eight seeded resources, then
generated VPSes up to N):
  GET    /_sim/deployhq/hosted_resources     {"identifiers": [...],
                                 "resources": [...]} in list order, static
                                 sites included
  POST   /_sim/deployhq/hosted_resources     create (fields merged over a
                                 generated VPS, or a static site with "kind":
                                 "hosted_website"; "identifier" optional and
                                 used verbatim, any JSON value; "upstream":
                                 {...} as for PATCH), 201 + resource
  GET    /_sim/deployhq/hosted_resources/ID  the resource as stored
  PATCH  /_sim/deployhq/hosted_resources/ID  deep-merge fields; an "upstream"
                                 member instead sets the fields the next
                                 sync applies (what the droplet really is)
  DELETE /_sim/deployhq/hosted_resources/ID  {"deleted": ID}
  GET    /_sim/deployhq/syncs    [{"identifier", "action": "sync"|
                                 "retry_provision", "status": "queued"|"done"}]
A sync applies the resource's upstream fields and moves updated_at after
sync_seconds; retry_provision (422 unless the status is "error") sets
"provisioning" at once and "active" after provision_seconds.

DeployHQ switches: error_style ("coded" {"status":"not_found","error_code",
"hint"} | "spec" {"status":404,"error"} | "error" {"error"} | "errors"
{"errors":[...]} | "fields" {"base":[...]}); regions_shape ("regions"|
"grouped"|"array"); sizes_shape ("sizes"|"array"); beta_features (bool; false:
/managed_hosting/* answer 403); sync_seconds (F); provision_seconds (F);
rate_limit (as HostUp's; no X-RateLimit headers).
"""


import base64
import calendar
import hashlib
import random
import time

from .data import deep_merge, iso_ms
from .messages import Response, SimError, admin_body, admin_json, status_text
from .provider import Provider, compile_routes
from .switches import v_bool, v_choice, v_rate_limit, v_seconds

# Seeded list, in list order: VPSes in every documented status, one without a
# `kind` field (as the prose docs show them), and static sites, which the
# list holds too but which are not VPSes.
# (name, kind, status, region, size); kind None = field absent.
DEPLOYHQ_SEEDED = (
    ("web-server", "hosted_resource", "active", "nyc1", "s-1vcpu-1gb"),
    ("docs-site", "hosted_website", "active", None, None),
    ("api-server", "hosted_resource", "active", "fra1", "s-2vcpu-4gb"),
    ("staging", "hosted_resource", "provisioning", "ams3", "s-1vcpu-2gb"),
    ("old-shop", None, "suspended", "lon1", "s-1vcpu-1gb"),
    ("landing-page", "hosted_website", "active", None, None),
    ("broken-build", "hosted_resource", "error", "fra1", "s-2vcpu-2gb"),
    ("retired", "hosted_resource", "destroying", "nyc1", "s-1vcpu-1gb"),
)
DEPLOYHQ_STATUSES = ("provisioning", "active", "suspended", "error", "destroying")
# slug, name, geographic group, available
DEPLOYHQ_REGIONS = (
    ("nyc1", "New York 1", "North America", True),
    ("sfo3", "San Francisco 3", "North America", True),
    ("ams3", "Amsterdam 3", "Europe", True),
    ("fra1", "Frankfurt 1", "Europe", True),
    ("lon1", "London 1", "Europe", True),
    ("sgp1", "Singapore 1", "Asia", False),
)
# slug, label, monthly cost in the account's currency (GBP), vcpus,
# memory (MB), disk (GB), DigitalOcean's USD monthly price
DEPLOYHQ_SIZES = (
    ("s-1vcpu-1gb", "1 vCPU / 1 GB", 6.0, 1, 1024, 25, 6.0),
    ("s-1vcpu-2gb", "1 vCPU / 2 GB", 10.0, 1, 2048, 50, 12.0),
    ("s-2vcpu-2gb", "2 vCPU / 2 GB", 14.0, 2, 2048, 60, 18.0),
    ("s-2vcpu-4gb", "2 vCPU / 4 GB", 18.0, 2, 4096, 80, 24.0),
)
DEPLOYHQ_MONTHLY = {s[0]: s[2] for s in DEPLOYHQ_SIZES}
# HTTP status -> (the `status` word of the coded form, its error_code)
DEPLOYHQ_CODES = {
    400: ("bad_request", "invalid_json"),
    401: ("unauthorized", "invalid_credentials"),
    403: ("forbidden", "api_access_restricted"),
    404: ("not_found", "record_not_found"),
    405: ("method_not_allowed", "invalid_api_method"),
    409: ("conflict", "conflict"),
    422: ("unprocessable_entity", "unprocessable_entity"),
    429: ("too_many_requests", "rate_limited"),
    500: ("internal_server_error", "internal_error"),
    503: ("service_unavailable", "service_unavailable"),
}
DEPLOYHQ_ERROR_STYLES = ("coded", "spec", "error", "errors", "fields")
DEPLOYHQ_CREATED_FROM = calendar.timegm((2026, 1, 12, 9, 30, 0))


def deployhq_uuid(rng):
    """A version 4 UUID from `rng` (seeded: the same data every run)."""
    n = rng.getrandbits(128)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[n % 4]}{h[17:20]}-{h[20:32]}"


class DeployHQ(Provider):
    """DeployHQ hosted resources and managed hosting (doc/SEMANTICS.md §10.3). A sync or a provisioning runs "in the background": it is
    queued with a due time and applied lazily when a request comes in."""

    name = "deployhq"
    title = "DeployHQ"
    default_port = 18463
    ROUTES = compile_routes(
        ("GET", r"/hosted_resources", "list_resources"),
        ("GET", r"/hosted_resources/([^/]+)", "get_resource"),
        ("POST", r"/hosted_resources/([^/]+)/sync", "post_sync"),
        ("POST", r"/hosted_resources/([^/]+)/retry_provision", "post_retry_provision"),
        ("GET", r"/managed_hosting/regions", "get_regions"),
        ("GET", r"/managed_hosting/sizes", "get_sizes"),
    )
    SWITCHES = {
        "error_style": v_choice(*DEPLOYHQ_ERROR_STYLES),
        "regions_shape": v_choice("regions", "grouped", "array"),
        "sizes_shape": v_choice("sizes", "array"),
        "beta_features": v_bool,        # false: managed_hosting answers 403
        "sync_seconds": v_seconds,      # how long a background sync takes
        "provision_seconds": v_seconds,  # retry_provision until active
        "rate_limit": v_rate_limit,
    }

    def default_switches(self):
        return {"error_style": "coded", "regions_shape": "regions",
                "sizes_shape": "sizes", "beta_features": True,
                "sync_seconds": 1.0, "provision_seconds": 3.0,
                "rate_limit": {"limit": 600, "window_s": 60}}

    def seed_state(self):
        self.resources = []     # list order; dicts as the API returns them
        self.upstream = {}      # identifier -> fields the next sync applies
        self.queue = []         # [due_mono, due_wall, identifier, action]
        self.history = []       # every sync/retry_provision, for tests
        rng = random.Random(f"{self.opts.seed}/deployhq")
        count = self.opts.deployhq_count
        for i, (name, kind, status, region, size) in enumerate(DEPLOYHQ_SEEDED[:count]):
            created = DEPLOYHQ_CREATED_FROM + i * 6 * 86400 + rng.randrange(3600)
            res = (self.site(rng, name, status, created) if kind == "hosted_website"
                   else self.vps(rng, name, kind, status, region, size, created, i))
            self.resources.append(res)
            # staging's droplet is up already: a sync finds it active.
            self.upstream[res["identifier"]] = (
                {"status": "active", "ip_address": self.address(i)}
                if status == "provisioning" else {})
        # --deployhq-count beyond the seeded list: generated VPSes, with their
        # own random stream so the seeded ones stay as they are.
        bulk = random.Random(f"{self.opts.seed}/deployhq/bulk")
        for i in range(len(DEPLOYHQ_SEEDED), count):
            status = bulk.choices(DEPLOYHQ_STATUSES[:4], weights=(3, 90, 4, 3))[0]
            region = DEPLOYHQ_REGIONS[i % 5][0]          # the available ones
            size = DEPLOYHQ_SIZES[bulk.randrange(len(DEPLOYHQ_SIZES))][0]
            created = DEPLOYHQ_CREATED_FROM - (i + 1) * 600 - bulk.randrange(600)
            res = self.vps(bulk, f"vps-{i:06d}", "hosted_resource", status, region,
                           size, created, i)
            self.resources.append(res)
            self.upstream[res["identifier"]] = {}

    @staticmethod
    def address(i):
        if i >= 40000:      # past the 167.71.x range below: still a valid address
            return f"167.72.{(i - 40000) // 250 % 250}.{(i - 40000) % 250 + 2}"
        return f"167.71.{32 + i // 200}.{120 + i % 100}"

    def vps(self, rng, name, kind, status, region, size, created, i):
        key = rng.randbytes(32)
        res = {"identifier": deployhq_uuid(rng)}
        if kind is not None:
            res["kind"] = kind
        res.update({
            "name": name, "region": region, "size": size, "status": status,
            "ip_address": None if status in ("provisioning", "error") else self.address(i),
            "monthly_cost": DEPLOYHQ_MONTHLY.get(size, 6.0),
            "ssh_key": {
                "identifier": deployhq_uuid(rng), "title": "Managed VPS Key",
                "public_key": "ssh-ed25519 " + base64.b64encode(key).decode(),
                "key_type": "ED25519",
                "fingerprint": "SHA256:" + base64.b64encode(
                    hashlib.sha256(key).digest()).decode().rstrip("="),
            },
            "created_at": iso_ms(created),
            "updated_at": iso_ms(created + 60 + rng.randrange(600)),
        })
        return res

    @staticmethod
    def site(rng, name, status, created):
        return {
            "identifier": deployhq_uuid(rng), "kind": "hosted_website",
            "name": name, "status": status, "subdomain": name,
            "spa_mode": name.startswith("docs"),
            "storage_bytes_total": rng.randrange(10**6, 10**8),
            "active_deployment_uuid": deployhq_uuid(rng),
            "deployment_count": rng.randrange(1, 40),
            "created_at": iso_ms(created), "updated_at": iso_ms(created + 3600),
        }

    # -- errors -----------------------------------------------------------------
    def error(self, req, status, code=None, detail=None, headers=None, hint=None):
        """The native error in the form the `error_style` switch picks."""
        word, default_code = DEPLOYHQ_CODES.get(status, ("error", "error"))
        detail = detail or status_text(status)[1]
        style = self.switches["error_style"]
        if style == "coded":
            body = {"status": word, "error_code": code or default_code,
                    "hint": hint or detail}
        elif style == "spec":
            body = {"status": status, "error": detail}
        elif style == "error":
            body = {"error": detail}
        elif style == "errors":
            body = {"errors": [detail]}
        else:
            body = {"base": [detail]}
        return Response.json(status, body, headers=headers)

    def fault_response(self, req, status):
        resp = super().fault_response(req, status)
        if status == 503:   # documented: a 503 says when to come back
            resp.headers.setdefault("Retry-After", "1")
        return resp

    # -- entry point ---------------------------------------------------------------
    def authorized(self, req):
        """HTTP Basic: the user's email address and the API key."""
        scheme, _, blob = req.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, key = base64.b64decode(blob.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return bool(sep) and user == self.opts.deployhq_user and key == self.opts.token

    def unauthorized(self, req):
        return self.error(req, 401, detail="Authentication failed",
                          hint="Use your email address as the user and the API key from "
                               "Settings > Security as the password",
                          headers={"WWW-Authenticate": 'Basic realm="DeployHQ"'})

    def before_route(self, req):
        self.settle(time.monotonic())

    # -- background work -------------------------------------------------------------
    def settle(self, now):
        """Apply the syncs and provisionings whose time has come."""
        for item in [q for q in self.queue if q[0] <= now]:
            self.queue.remove(item)
            _, due_wall, identifier, action = item
            res = self.find(identifier)
            if res is None:
                continue
            if action == "retry_provision":
                self.upstream[identifier] = {"status": "active",
                                             "ip_address": res.get("ip_address")
                                             or self.address(len(self.resources))}
            deep_merge(res, self.upstream.get(identifier) or {})
            res["updated_at"] = iso_ms(due_wall)
            for h in self.history:
                if h["queued"] is item:
                    h["status"] = "done"

    def enqueue(self, identifier, action, seconds):
        item = [time.monotonic() + seconds, time.time() + seconds, identifier, action]
        self.queue.append(item)
        self.history.append({"identifier": identifier, "action": action,
                             "status": "queued", "queued": item})

    # -- handlers ------------------------------------------------------------------------
    def find(self, identifier):
        for res in self.resources:
            if res.get("identifier") == identifier:
                return res
        return None

    def find_or_404(self, req, identifier):
        res = self.find(identifier)
        if res is None:
            return None, self.error(req, 404, "record_not_found",
                                    f"No hosted resource with identifier '{identifier}'",
                                    hint="Check the identifier with GET /hosted_resources")
        return res, None

    def list_resources(self, req):
        return Response.json(200, self.resources)

    def get_resource(self, req, identifier):
        res, err = self.find_or_404(req, identifier)
        return err or Response.json(200, res)

    def post_sync(self, req, identifier):
        res, err = self.find_or_404(req, identifier)
        if err:
            return err
        self.enqueue(identifier, "sync", self.switches["sync_seconds"])
        return Response.json(200, {"status": "sync_requested"})

    def post_retry_provision(self, req, identifier):
        res, err = self.find_or_404(req, identifier)
        if err:
            return err
        if res.get("status") != "error":
            # The OpenAPI spec: 422 {error: string}, whatever the style.
            return Response.json(422, {"error": f"Hosted resource is {res.get('status')}, "
                                                "not in an error state; only failed "
                                                "provisions can be retried"})
        res["status"] = "provisioning"
        res["updated_at"] = iso_ms(time.time())
        self.enqueue(identifier, "retry_provision", self.switches["provision_seconds"])
        return Response.json(200, {"status": "provisioning"})

    def beta_refused(self, req):
        if self.switches["beta_features"]:
            return None
        return self.error(req, 403, "api_access_restricted",
                          "Managed hosting is in beta and not enabled for this account",
                          hint="Enable beta features for the account to use managed hosting")

    def get_regions(self, req):
        refused = self.beta_refused(req)
        if refused:
            return refused
        shape = self.switches["regions_shape"]
        if shape == "array":    # what the official CLI decodes
            return Response.json(200, [{"slug": s, "name": n, "available": a}
                                       for s, n, _, a in DEPLOYHQ_REGIONS])
        if shape == "grouped":  # the OpenAPI spec: grouped geographically
            groups = {}
            for s, n, g, _ in DEPLOYHQ_REGIONS:
                groups.setdefault(g, []).append({"slug": s, "name": n})
            return Response.json(200, {"grouped_regions": groups})
        return Response.json(200, {"regions": [{"slug": s, "name": n}
                                               for s, n, _, _ in DEPLOYHQ_REGIONS]})

    def get_sizes(self, req):
        refused = self.beta_refused(req)
        if refused:
            return refused
        if self.switches["sizes_shape"] == "array":   # the CLI's shape
            return Response.json(200, [
                {"slug": s, "description": label, "price_monthly": usd,
                 "price_hourly": round(usd / 730, 5), "memory": mem, "vcpus": cpus,
                 "disk": disk}
                for s, label, _, cpus, mem, disk, usd in DEPLOYHQ_SIZES])
        return Response.json(200, {"sizes": [
            {"slug": s, "label": label, "monthly_cost": cost, "currency": "gbp"}
            for s, label, cost, *_ in DEPLOYHQ_SIZES]})

    # -- admin: /_sim/deployhq/... --------------------------------------------------------
    def admin(self, method, parts, req):
        with self.lock:
            self.settle(time.monotonic())
            if parts == ["hosted_resources"]:
                if method == "GET":
                    return admin_json(200, {"identifiers": [r.get("identifier")
                                                            for r in self.resources],
                                            "resources": self.resources})
                if method == "POST":
                    return admin_json(201, self.admin_create(admin_body(req)))
            elif len(parts) == 2 and parts[0] == "hosted_resources":
                return self.admin_resource(method, parts[1], req)
            elif parts == ["syncs"] and method == "GET":
                return admin_json(200, [{k: v for k, v in h.items() if k != "queued"}
                                        for h in self.history])
            else:
                raise SimError(404, f"unknown admin path /_sim/deployhq/{'/'.join(parts)}")
            raise SimError(405, f"{method} not allowed here")

    def admin_create(self, fields):
        rng = random.Random()
        n = len(self.resources)
        if fields.get("kind") == "hosted_website":
            res = self.site(rng, fields.get("name") or f"site-{n}", "active", time.time())
        else:
            res = self.vps(rng, fields.get("name") or f"vps-{n}", "hosted_resource",
                           "active", "lon1", "s-1vcpu-1gb", time.time(), n)
        upstream = fields.pop("upstream", {})
        deep_merge(res, fields)     # "identifier" too, verbatim (any JSON value)
        if isinstance(res.get("identifier"), str) and sum(
                1 for r in self.resources if r.get("identifier") == res["identifier"]):
            raise SimError(409, f"hosted resource {res['identifier']} already exists")
        self.resources.append(res)
        if isinstance(res.get("identifier"), str):
            self.upstream[res["identifier"]] = upstream
        return res

    def admin_resource(self, method, identifier, req):
        res = self.find(identifier)
        if res is None:
            raise SimError(404, f"no hosted resource {identifier}")
        if method == "GET":
            return admin_json(200, res)
        if method == "PATCH":
            fields = admin_body(req)
            if "identifier" in fields and fields["identifier"] != identifier:
                raise SimError(400, "the identifier cannot be changed; create a new one")
            if "upstream" in fields:
                upstream = fields.pop("upstream")
                if not isinstance(upstream, dict):
                    raise SimError(400, "upstream must be an object of fields")
                self.upstream[identifier] = upstream
            return admin_json(200, deep_merge(res, fields))
        if method == "DELETE":
            self.resources.remove(res)
            self.upstream.pop(identifier, None)
            return admin_json(200, {"deleted": identifier})
        raise SimError(405, f"{method} not allowed here")

    def demo_section(self, url):
        return (f"[{self.name}]\ntype = {self.name}\nurl = {url}\n"
                f"user = {self.opts.deployhq_user}\n"
                f"token = {self.opts.token}\nrefresh = 30\n")
