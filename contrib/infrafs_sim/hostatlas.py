"""HostAtlas API v1: servers with their services and domains, incidents,
heartbeats and their ping URLs, and signed webhooks sent out.

HostAtlas (Bearer token) admin endpoints:
  GET    /_sim/hostatlas/servers  {"ids": [...]} in list order (likewise
         /_sim/hostatlas/incidents and /_sim/hostatlas/heartbeats)
  POST   /_sim/hostatlas/servers  create (fields merged over a generated one;
                                 "id" used verbatim), 201 + the item
  GET    /_sim/hostatlas/servers/ID  as stored (a heartbeat with its "token")
  PATCH  /_sim/hostatlas/servers/ID  deep-merge fields; DELETE removes it
  GET    /_sim/hostatlas/pings    every request to a ping URL: [{"heartbeat_id",
                                 "token", "method", "host", "auth", "time"}]
  GET    /_sim/hostatlas/stats    {"detail_requests", "in_flight",
                                 "max_in_flight"}: GET /servers/{id} requests
                                 and the most ever under way at once
  DELETE /_sim/hostatlas/stats    zero detail_requests and max_in_flight
  POST   /_sim/hostatlas/webhooks {"url", "secret"}: where to send signed
                                 webhooks (seed 003) from now on; GET shows it
                                 and the deliveries [{"event", "delivery_id",
                                 "status", "answer"}], DELETE stops them
  POST   /_sim/hostatlas/webhooks/send  {"event", "id", and optionally
                                 "delivery_id" (a retry), "secret" (to forge),
                                 "extra" (more of data)}: send one now and
                                 answer its delivery. With a webhook set, a
                                 PATCH of a server's status to offline/online
                                 sends server.offline/online, and creating or
                                 resolving an incident incident.created/resolved

HostAtlas switches: server_count (N, regenerates the servers; default 30, or
--hostatlas-count);
max_per_page (N, caps per_page; default 25); pagination ("page"|"cursor":
meta{total,page,per_page} or meta{per_page,next_cursor}); error_shape
("nested" {"error":{"code","message"}} | "flat" {"code","message",
"status"}); detail_delay_ms (N, before answering GET /servers/{id});
rate_limit (as HostUp's; X-RateLimit-* on every API answer); reset_format
("epoch"|"iso"); ping_origin ("" = ping_url on the origin the client used,
or "http://host:port" for another one). Ping URLs are
/heartbeat/<token> on the HostAtlas port: GET, HEAD or POST, no key.
"""


import calendar
import hashlib
import hmac
import json
import math
import random
import re
import time
import urllib.error
import urllib.request
from urllib.parse import unquote

from .data import deep_merge, iso_s
from .messages import (Response, SimError, admin_body, admin_json, auth_kind, bearer_matches,
                       status_text)
from .provider import InFlight, Provider, compile_routes
from .switches import v_choice, v_count, v_rate_limit

HOSTATLAS_ROLES = ("web", "db", "app", "cache", "mail", "ci", "worker", "lb")
HOSTATLAS_OS = (  # os, kernel
    ("Ubuntu 22.04.3 LTS", "6.2.0-39-generic"),
    ("Ubuntu 24.04.1 LTS", "6.8.0-45-generic"),
    ("Debian GNU/Linux 12 (bookworm)", "6.1.0-25-amd64"),
    ("AlmaLinux 9.4 (Seafoam Ocelot)", "5.14.0-427.13.1.el9_4.x86_64"),
)
HOSTATLAS_SERVICES = (  # name, version; what each role runs first
    ("nginx", "1.24.0"), ("postgresql", "15.4"), ("redis", "7.2.3"),
    ("php-fpm", "8.3.4"), ("mysql", "8.0.36"), ("docker", "25.0.3"),
    ("node", "20.11.1"), ("haproxy", "2.8.5"), ("postfix", "3.8.4"),
    ("sshd", "9.6p1"),
)
HOSTATLAS_ROLE_SERVICES = {
    "web": ("nginx", "php-fpm", "redis"), "db": ("postgresql",),
    "app": ("node", "nginx", "docker"), "cache": ("redis",),
    "mail": ("postfix",), "ci": ("docker",), "worker": ("docker", "redis"),
    "lb": ("haproxy",),
}
HOSTATLAS_ZONES = ("example.com", "example.net", "example.org")
HOSTATLAS_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden",
                   404: "not_found", 405: "method_not_allowed", 409: "conflict",
                   413: "payload_too_large", 422: "validation_failed",
                   429: "rate_limited", 500: "server_error", 502: "bad_gateway",
                   503: "service_unavailable", 504: "gateway_timeout"}
# Everything the seeded data says "now" about, fixed so that refreshes of
# an unchanged simulator read unchanged values.
HOSTATLAS_NOW = calendar.timegm((2026, 3, 21, 14, 32, 1))


class MappedList:
    """A read-only view of `items` through `fn`, mapped only when sliced:
    paginate() takes one page of a long list without mapping all of it."""

    def __init__(self, items, fn):
        self.items, self.fn = items, fn

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.fn(item) for item in self.items[index]]
        return self.fn(self.items[index])


def v_page_size(value):
    if v_count(value) < 1:
        raise SimError(400, "must be an integer >= 1")
    return value


def v_origin(value):
    if value == "":
        return value
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^/\s]+/?", value):
        raise SimError(400, 'must be "" (the origin the client used) or an '
                            'http(s)://host[:port] origin')
    return value.rstrip("/")


class HostAtlas(Provider):
    """HostAtlas API v1 (doc/SEMANTICS.md §10.4): servers (list and
    detail with services[] and domains[]), incidents, heartbeats and their
    ping URLs, which point back at this port under /heartbeat/<token>."""

    name = "hostatlas"
    title = "HostAtlas (API v1)"
    default_port = 18464
    ROUTES = compile_routes(
        ("GET", r"/api/v1/servers", "list_servers"),
        ("GET", r"/api/v1/servers/([^/]+)", "get_server"),
        ("GET", r"/api/v1/incidents", "list_incidents"),
        ("GET", r"/api/v1/heartbeats", "list_heartbeats"),
        ("POST", r"/api/v1/heartbeats", "create_heartbeat"),
    )
    PING_RE = re.compile(r"/heartbeat/([^/]+)")
    DETAIL_RE = re.compile(r"/api/v1/servers/[^/]+")
    SWITCHES = {
        "server_count": v_count,          # regenerates the servers
        "max_per_page": v_page_size,
        "pagination": v_choice("page", "cursor"),
        "error_shape": v_choice("nested", "flat"),
        "detail_delay_ms": v_count,       # before answering GET /servers/{id}
        "rate_limit": v_rate_limit,
        "reset_format": v_choice("epoch", "iso"),  # X-RateLimit-Reset
        "ping_origin": v_origin,          # "" = the origin the client used
    }

    def __init__(self, opts):
        self.detail_reads = InFlight("detail_requests")
        super().__init__(opts)

    def default_switches(self):
        return {"server_count": self.opts.hostatlas_count, "max_per_page": 25,
                "pagination": "page",
                "error_shape": "nested", "detail_delay_ms": 0,
                "rate_limit": {"limit": 600, "window_s": 60},
                "reset_format": "epoch", "ping_origin": ""}

    # -- data ------------------------------------------------------------------
    def seed_state(self):
        self.regenerate_servers()
        self.incidents = self.generate_incidents()
        self.heartbeats = self.generate_heartbeats()
        self.next_heartbeat_id = max(h["id"] for h in self.heartbeats) + 1
        self.pings = []
        self.detail_reads.reset()
        self.webhook = None        # {"url", "secret"} once registered
        self.deliveries = []       # what was sent: [{"event", "delivery_id", "status"}]
        self.next_delivery = 1

    def generate_server(self, seq, server_id):
        rng = random.Random(f"{self.opts.seed}/hostatlas/{seq}")
        role = HOSTATLAS_ROLES[seq % len(HOSTATLAS_ROLES)]
        hostname = f"{role}-prod-{seq // len(HOSTATLAS_ROLES) + 1:02d}"
        os_name, kernel = HOSTATLAS_OS[rng.randrange(len(HOSTATLAS_OS))]
        versions = dict(HOSTATLAS_SERVICES)
        names = list(HOSTATLAS_ROLE_SERVICES[role]) + ["sshd"]
        services = [{"name": n, "version": versions[n],
                     # the first server has a stopped nginx (incident 891)
                     "status": "stopped" if seq == 0 and n == "nginx" else
                     ("failed" if rng.random() < 0.03 else "running")}
                    for n in names]
        zone = HOSTATLAS_ZONES[rng.randrange(len(HOSTATLAS_ZONES))]
        domains = ([] if role not in ("web", "app", "lb") else
                   [{"name": f"{sub}{seq}.{zone}",
                     "ssl_expiry": time.strftime("%Y-%m-%d", time.gmtime(
                         HOSTATLAS_NOW + rng.randint(5, 300) * 86400))}
                    for sub in ("app", "api")[:1 + rng.randrange(2)]])
        return {
            "id": server_id,
            "hostname": hostname,
            # 10.0.x.y up to 62,500 servers, then 10.1.x.y and on
            "ip_address": f"10.{seq // 62500}.{seq // 250 % 250}.{seq % 250 + 2}",
            "os": os_name,
            "kernel": kernel,
            "cpu_cores": rng.choice((2, 4, 8, 16)),
            "ram_total_mb": rng.choice((2048, 4096, 8192, 16384, 32768)),
            # the second server is offline: last seen long ago
            "status": "offline" if seq == 1 else "online",
            "agent_version": rng.choice(("1.4.2", "1.4.2", "1.5.0")),
            "last_seen_at": iso_s(HOSTATLAS_NOW - (6 * 3600 if seq == 1 else seq % 50)),
            "services": services,
            "domains": domains,
        }

    def regenerate_servers(self):
        """server_count generated servers in place of the list, and what
        depends on it: the id index and the next id to hand out."""
        self.servers = self.generate_servers(self.switches["server_count"])
        self._server_index = None
        self.next_server_id = max([s["id"] for s in self.servers], default=40) + 1

    def generate_servers(self, count):
        # Ids start at 47 as in the vendor's example and leave gaps.
        return [self.generate_server(seq, 47 + 3 * seq) for seq in range(count)]

    def server_ref(self, index):
        if index >= len(self.servers):
            return None
        server = self.servers[index]
        return {"id": server["id"], "hostname": server["hostname"]}

    def generate_incidents(self):
        return [
            {"id": 891, "title": "nginx process stopped", "severity": "critical",
             "status": "open", "server": self.server_ref(0), "service": "nginx",
             "detected_at": iso_s(HOSTATLAS_NOW - 200), "type": "automatic"},
            {"id": 892, "title": "Server offline", "severity": "critical",
             "status": "acknowledged", "server": self.server_ref(1), "service": None,
             "detected_at": iso_s(HOSTATLAS_NOW - 6 * 3600 + 300), "type": "automatic"},
            {"id": 887, "title": "Disk usage above 90%", "severity": "warning",
             "status": "resolved", "server": self.server_ref(2), "service": None,
             "detected_at": iso_s(HOSTATLAS_NOW - 3 * 86400), "type": "automatic"},
            {"id": 880, "title": "Planned network maintenance", "severity": "info",
             "status": "open", "server": None, "service": None,
             "detected_at": iso_s(HOSTATLAS_NOW - 86400), "type": "manual"},
        ]

    def new_heartbeat(self, hb_id, name, interval, grace, status, created, last_ping):
        token = hashlib.sha256(f"{self.opts.seed}/hb/{hb_id}".encode()).hexdigest()[:12]
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or f"heartbeat-{hb_id}"
        return {"id": hb_id, "name": name, "slug": slug, "token": token,
                "interval": interval, "grace": grace, "status": status,
                "last_ping_at": last_ping, "ping_count": 0 if last_ping is None else 42,
                "created_at": created}

    def generate_heartbeats(self):
        return [
            self.new_heartbeat(12, "nightly-backup", 86400, 3600, "new",
                               iso_s(HOSTATLAS_NOW + 179), None),
            self.new_heartbeat(13, "hourly-sync", 3600, 300, "ok",
                               iso_s(HOSTATLAS_NOW - 40 * 86400),
                               iso_s(HOSTATLAS_NOW - 1200)),
            self.new_heartbeat(14, "weekly-report", 604800, 3600, "fail",
                               iso_s(HOSTATLAS_NOW - 90 * 86400),
                               iso_s(HOSTATLAS_NOW - 9 * 86400)),
        ]

    # -- errors and headers ----------------------------------------------------
    def error(self, req, status, code=None, detail=None, headers=None, errors=None):
        code = code or HOSTATLAS_CODES.get(status, "error")
        message = detail or status_text(status)[1]
        if self.switches["error_shape"] == "flat":
            body = {"code": code, "message": message, "status": status}
            if errors:
                body["errors"] = errors
        else:
            body = {"error": {"code": code, "message": message}}
            if errors:
                body["error"]["errors"] = errors
        return Response.json(status, body, headers=headers)

    def rate_headers(self, remaining, reset_in, now_wall):
        reset_at = now_wall + reset_in
        reset = (iso_s(math.ceil(reset_at)) if self.switches["reset_format"] == "iso"
                 else str(math.ceil(reset_at)))
        return {"X-RateLimit-Limit": str(self.limiter.limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": reset}

    def fault_response(self, req, status):
        resp = super().fault_response(req, status)
        if status == 429:
            resp.headers["X-RateLimit-Remaining"] = "0"
        return resp

    def authorized(self, req):
        return bearer_matches(req.headers, self.opts.token)

    def unauthorized(self, req):
        return self.error(req, 401, "unauthenticated", "Invalid or missing API key.",
                          headers={"WWW-Authenticate": 'Bearer realm="hostatlas"'})

    # -- entry point -------------------------------------------------------------
    def handle(self, req):
        ping = self.PING_RE.fullmatch(req.path)
        if ping:
            # Ping URLs are capabilities: no key, no API rate limit.
            with self.lock:
                return self.ping(req, unquote(ping.group(1)))
        if req.method != "GET" or not self.DETAIL_RE.fullmatch(req.path):
            return super().handle(req)
        return self.detail_reads.run(self.switches["detail_delay_ms"],
                                     lambda: super(HostAtlas, self).handle(req))

    def set_config(self, changes):
        super().set_config(changes)
        if "server_count" in changes:
            with self.lock:
                self.regenerate_servers()

    # -- paging --------------------------------------------------------------------
    def invalid(self, req, field, message):
        return self.error(req, 422, "validation_failed", "The given data was invalid.",
                          errors={field: [message]})

    def paginate(self, req, items):
        """The page the query asks for: page/per_page with meta{total, page,
        per_page}, or (pagination "cursor") cursor/per_page with
        meta{per_page, next_cursor}. per_page is capped at max_per_page."""
        q = req.query
        raw = q.get("per_page", "25")
        if not re.fullmatch(r"\d{1,6}", raw) or int(raw) < 1:
            return self.invalid(req, "per_page", "must be a whole number of at least 1")
        per_page = min(int(raw), self.switches["max_per_page"])
        if self.switches["pagination"] == "cursor":
            start = 0
            if "cursor" in q:
                match = re.fullmatch(r"o(\d{1,9})", q["cursor"])
                if not match:
                    return self.invalid(req, "cursor", "is not a cursor this API handed out")
                start = int(match.group(1))
            page = items[start:start + per_page]
            more = start + per_page < len(items)
            return Response.json(200, {"data": page, "meta": {
                "per_page": per_page,
                "next_cursor": f"o{start + per_page}" if more else None}})
        raw_page = q.get("page", "1")
        if not re.fullmatch(r"\d{1,6}", raw_page) or int(raw_page) < 1:
            return self.invalid(req, "page", "must be a whole number of at least 1")
        number = int(raw_page)
        page = items[(number - 1) * per_page:number * per_page]
        return Response.json(200, {"data": page, "meta": {
            "total": len(items), "page": number, "per_page": per_page}})

    # -- views -------------------------------------------------------------------------
    @staticmethod
    def server_item(server):
        """A list item: the detail without its arrays, with their counts."""
        item = {k: server.get(k) for k in ("id", "hostname", "ip_address", "os",
                                           "status", "last_seen_at")}
        item["services_count"] = len(server.get("services") or [])
        item["domains_count"] = len(server.get("domains") or [])
        return item

    def ping_url(self, req, heartbeat):
        origin = self.switches["ping_origin"] or f"http://{req.headers.get('Host', '')}"
        return f"{origin}/heartbeat/{heartbeat['token']}"

    def heartbeat_view(self, req, heartbeat):
        view = {k: v for k, v in heartbeat.items() if k != "token"}
        view["ping_url"] = self.ping_url(req, heartbeat)
        return view

    # -- handlers ------------------------------------------------------------------------
    def find(self, collection, item_id):
        if collection is self.servers:
            return self.find_server(item_id)
        for item in collection:
            if str(item.get("id")) == item_id:
                return item
        return None

    def find_server(self, item_id):
        """The first server whose id reads `item_id`: through an index built
        on demand (a detail read per server would otherwise scan them all)
        and dropped by every change to the list or to an id."""
        if self._server_index is None:
            index = {}
            for server in self.servers:
                index.setdefault(str(server.get("id")), server)
            self._server_index = index
        return self._server_index.get(item_id)

    def list_servers(self, req):
        # Only the page asked for is turned into list items.
        return self.paginate(req, MappedList(self.servers, self.server_item))

    def get_server(self, req, server_id):
        server = self.find_server(server_id)
        if server is None:
            return self.error(req, 404, "not_found", f"Server {server_id} not found.")
        return Response.json(200, server)

    def list_incidents(self, req):
        wanted = [(k, req.query[k]) for k in ("status", "severity") if k in req.query]
        return self.paginate(req, [i for i in self.incidents
                                   if all(i.get(k) == v for k, v in wanted)])

    def list_heartbeats(self, req):
        return self.paginate(req, [self.heartbeat_view(req, h) for h in self.heartbeats])

    def create_heartbeat(self, req):
        try:
            body = req.json_body()
        except (ValueError, UnicodeDecodeError):
            return self.error(req, 400, "bad_request", "The body is not valid JSON.")
        if not isinstance(body, dict):
            return self.error(req, 400, "bad_request", "The body must be a JSON object.")
        errors = {}
        name, interval, grace = body.get("name"), body.get("interval"), body.get("grace", 0)
        if not isinstance(name, str) or not name.strip():
            errors["name"] = ["is required"]
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 60:
            errors["interval"] = ["must be a whole number of seconds, at least 60"]
        if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
            errors["grace"] = ["must be a whole number of seconds"]
        if errors:
            return self.error(req, 422, "validation_failed", "The given data was invalid.",
                              errors=errors)
        heartbeat = self.new_heartbeat(self.next_heartbeat_id, name.strip(), interval,
                                       grace, "new", iso_s(time.time()), None)
        self.next_heartbeat_id += 1
        self.heartbeats.append(heartbeat)
        return Response.json(201, self.heartbeat_view(req, heartbeat))

    def ping(self, req, token):
        heartbeat = next((h for h in self.heartbeats if h["token"] == token), None)
        self.pings.append({
            "heartbeat_id": heartbeat["id"] if heartbeat else None, "token": token,
            "method": req.method, "host": req.headers.get("Host"),
            "auth": auth_kind(req.headers), "time": time.time()})
        if req.method not in ("GET", "POST", "HEAD"):
            return self.error(req, 405, detail=f"{req.method} is not allowed here",
                              headers={"Allow": "GET, HEAD, POST"})
        if heartbeat is None:
            return self.error(req, 404, "not_found", "No heartbeat has this ping URL.")
        heartbeat["status"] = "ok"
        heartbeat["last_ping_at"] = iso_s(time.time())
        heartbeat["ping_count"] += 1
        return Response(200, b"OK\n", "text/plain")

    # -- outgoing webhooks (seed 003): signed POSTs of {event, delivery_id,
    #    timestamp, data} to the URL registered through the admin API -----------------
    WEBHOOK_SUBJECT = {"server.offline": "server", "server.online": "server",
                       "alert.triggered": "server", "alert.resolved": "server",
                       "ssl.expiring": "server", "incident.created": "incident",
                       "incident.resolved": "incident", "heartbeat.missed": "heartbeat"}

    def send_webhook(self, event, item, extra=None, delivery_id=None, secret=None):
        """POST one event to the registered URL (the lock held: the receiver
        answers before it reads anything back); record and return the
        delivery."""
        if not self.webhook:
            raise SimError(409, "no webhook registered: POST /_sim/hostatlas/webhooks "
                                "{\"url\": ..., \"secret\": ...} first")
        if delivery_id is None:
            delivery_id = f"del_{self.next_delivery:012x}"
            self.next_delivery += 1
        data = {self.WEBHOOK_SUBJECT.get(event, "server"): item, **(extra or {})}
        body = json.dumps({"event": event, "delivery_id": delivery_id,
                           "timestamp": iso_s(time.time()), "data": data}).encode()
        key = (self.webhook["secret"] if secret is None else secret).encode()
        signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.webhook["url"], data=body, method="POST", headers={
            "Content-Type": "application/json", "X-HostAtlas-Signature": signature,
            "X-HostAtlas-Delivery": delivery_id})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                status, text = resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode(errors="replace")
        except OSError as e:
            status, text = 0, str(e)
        delivery = {"event": event, "delivery_id": delivery_id, "status": status,
                    "answer": text}
        self.deliveries.append(delivery)
        return delivery

    def admin_webhooks(self, method, parts, req):
        if parts == ["webhooks"]:
            if method == "POST":
                body = admin_body(req)
                if not isinstance(body.get("url"), str) or not isinstance(body.get("secret"), str):
                    raise SimError(400, "give {\"url\": ..., \"secret\": ...}")
                self.webhook = {"url": body["url"], "secret": body["secret"]}
                return admin_json(200, self.webhook)
            if method == "GET":
                return admin_json(200, {"webhook": self.webhook, "deliveries": self.deliveries})
            if method == "DELETE":
                self.webhook = None
                return admin_json(200, {"webhook": None})
        if parts == ["webhooks", "send"] and method == "POST":
            body = admin_body(req)
            event = body.get("event")
            if event not in self.WEBHOOK_SUBJECT:
                raise SimError(400, f"event must be one of {sorted(self.WEBHOOK_SUBJECT)}")
            kind = {"server": self.servers, "incident": self.incidents,
                    "heartbeat": self.heartbeats}[self.WEBHOOK_SUBJECT[event]]
            item = self.find(kind, str(body.get("id")))
            if item is None:
                raise SimError(404, f"no {self.WEBHOOK_SUBJECT[event]} {body.get('id')}")
            return admin_json(200, self.send_webhook(event, item, body.get("extra"),
                                                     body.get("delivery_id"),
                                                     body.get("secret")))
        raise SimError(404 if method in ("GET", "POST", "DELETE") else 405,
                       f"unknown admin path /_sim/hostatlas/{'/'.join(parts)}")

    def webhook_on_change(self, kind, item, before):
        """The events a change made through the admin API sends, when a
        webhook is registered: a server going offline or online, an incident
        created or resolved."""
        if not self.webhook:
            return
        if kind == "servers" and before.get("status") != item.get("status") and \
                item.get("status") in ("offline", "online"):
            self.send_webhook(f"server.{item['status']}", item,
                              {"previous_status": before.get("status")})
        elif kind == "incidents" and not before:
            self.send_webhook("incident.created", item)
        elif kind == "incidents" and before.get("status") != "resolved" and \
                item.get("status") == "resolved":
            self.send_webhook("incident.resolved", item)

    # -- admin: /_sim/hostatlas/... -------------------------------------------------------
    def admin(self, method, parts, req):
        collections = {"servers": self.servers, "incidents": self.incidents,
                       "heartbeats": self.heartbeats}
        with self.lock:
            if parts and parts[0] == "webhooks":
                return self.admin_webhooks(method, parts, req)
            if parts == ["pings"] and method == "GET":
                return admin_json(200, list(self.pings))
            if parts == ["stats"]:
                if method in ("GET", "DELETE"):
                    return admin_json(200, self.detail_reads.snapshot(zero=method == "DELETE"))
            elif parts and parts[0] in collections and len(parts) <= 2:
                return self.admin_collection(method, parts[0], collections[parts[0]],
                                             parts[1] if len(parts) == 2 else None, req)
            else:
                raise SimError(404, f"unknown admin path /_sim/hostatlas/{'/'.join(parts)}")
            raise SimError(405, f"{method} not allowed here")

    def admin_collection(self, method, kind, items, item_id, req):
        if item_id is None:
            if method == "GET":
                return admin_json(200, {"ids": [i["id"] for i in items]})
            if method == "POST":
                item = self.admin_create(kind, admin_body(req))
                self.webhook_on_change(kind, item, {})
                return admin_json(201, item)
            raise SimError(405, f"{method} not allowed here")
        item = self.find(items, item_id)
        if item is None:
            raise SimError(404, f"no {kind} {item_id}")
        if method == "GET":
            return admin_json(200, item)
        if method == "PATCH":
            fields = admin_body(req)
            if "id" in fields and str(fields["id"]) != item_id:
                raise SimError(400, "the id cannot be changed; create a new one")
            before = json.loads(json.dumps(item))
            deep_merge(item, fields)
            self.webhook_on_change(kind, item, before)
            return admin_json(200, item)
        if method == "DELETE":
            items.remove(item)
            self._server_index = None
            return admin_json(200, {"deleted": item["id"]})
        raise SimError(405, f"{method} not allowed here")

    def admin_create(self, kind, fields):
        """A generated item with `fields` merged over it ("id" used verbatim
        when given, even a string or a null, so that bad ids can be tried)."""
        if kind == "servers":
            item = self.generate_server(len(self.servers), self.next_server_id)
            self.next_server_id += 1
            self.servers.append(item)
            self._server_index = None   # "id" in fields may change it below
        elif kind == "incidents":
            item = {"id": max([i["id"] for i in self.incidents
                               if isinstance(i.get("id"), int)], default=0) + 1,
                    "title": "Simulated incident", "severity": "warning", "status": "open",
                    "server": self.server_ref(0), "service": None,
                    "detected_at": iso_s(time.time()), "type": "manual"}
            self.incidents.append(item)
        else:
            item = self.new_heartbeat(self.next_heartbeat_id, "simulated-job", 3600, 300,
                                      "new", iso_s(time.time()), None)
            self.next_heartbeat_id += 1
            self.heartbeats.append(item)
        return deep_merge(item, fields)
