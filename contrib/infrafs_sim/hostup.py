"""HostUp API v2: VPSes (list, detail, details, status), power actions and
their jobs.

Admin endpoints (any port, no auth, JSON; see admin.py):

  GET    /_sim/hostup/vps        {"ids": [...]} in list order
  POST   /_sim/hostup/vps        create (fields merged over a generated VPS,
                                 "id" optional and used verbatim), 201 + VPS
  GET    /_sim/hostup/vps/ID     the VPS as stored
  PATCH  /_sim/hostup/vps/ID     deep-merge fields (null sets null), answer VPS
  DELETE /_sim/hostup/vps/ID     {"deleted": ID}
  GET    /_sim/hostup/jobs       [{"jobId", "vpsId", "action", "force", "status"}]

HostUp switches: detail_envelope, actions_on_detail (bool); job_shape
("operation"|"legacy"); fail_next_jobs (N); problem_content_type (str);
rate_limit ({"limit": N, "window_s": S}, a token bucket per credential);
reset_format ("iso"|"epoch"); job_seconds (F); token (the API key accepted,
--token's by default: a key rotated at the provider).
"""


import base64
import calendar
import hashlib
import math
import random
import re
import time

from .data import deep_merge, iso_ms, ulid_like
from .messages import Response, SimError, admin_body, admin_json, bearer_matches, status_text
from .provider import Provider, compile_routes
from .switches import v_bool, v_choice, v_count, v_rate_limit, v_seconds, v_str

# (serviceStatus, powerState) of the first VPSes, fixed so that even the
# default five-VPS demo shows each interesting case whatever the seed.
HOSTUP_LEAD_PROFILES = (
    ("active", "running"),
    ("active", "stopped"),
    ("active", "running"),        # no OS, no tags
    ("pending", "provisioning"),  # no IP, no hostname yet
    ("suspended", "stopped"),     # overdue invoice
)
# Weighted profiles for the rest.
HOSTUP_TAIL_PROFILES = (
    (("active", "running"), 64), (("active", "stopped"), 18),
    (("active", "paused"), 2), (("active", "error"), 2), (("active", None), 1),
    (("active", "unknown"), 1), (("suspended", "stopped"), 5),
    (("pending", "provisioning"), 3), (("terminated", None), 2),
    (("cancelled", "stopped"), 1), (("expired", "stopped"), 1),
)
_TAIL_TOTAL = sum(w for _, w in HOSTUP_TAIL_PROFILES)

HOSTUP_ROLES = ("web", "db", "app", "cache", "mail", "ci", "vpn", "backup",
                "dns", "lb", "worker", "proxy")
HOSTUP_PLANS = (  # cpuCores, memoryGb, storageGb, SEK per month, bandwidth GB
    (1, 0.5, 10, 29.0, 500), (1, 1, 20, 49.0, 1000), (1, 2, 40, 89.0, 2000),
    (2, 4, 80, 169.0, 3000), (4, 8, 160, 329.0, 5000), (8, 16, 320, 649.0, None),
    (16, 64, 1000, 1899.5, None),
)
HOSTUP_CYCLES = (  # billingCycle, months, periodYears, weight
    ("monthly", 1, None, 70), ("quarterly", 3, None, 8),
    ("semiannually", 6, None, 5), ("annually", 12, 1, 10),
    ("biennially", 24, 2, 3), ("triennially", 36, 3, 2), ("free", 0, None, 2),
)
HOSTUP_OS = (  # displayName, family, version, variant
    ("Ubuntu 24.04 LTS", "ubuntu", "24.04", "server"),
    ("Ubuntu 22.04 LTS", "ubuntu", "22.04", "server"),
    ("Debian 12 (Bookworm)", "debian", "12", None),
    ("AlmaLinux 9", "almalinux", "9", None),
    ("Rocky Linux 9", "rocky", "9", "minimal"),
    ("Windows Server 2022", "windows", "2022", "datacenter"),
)
HOSTUP_LOCATIONS = (  # datacenter, city, countryCode; Malmö tests UTF-8
    ("sto1", "Stockholm", "SE"), ("sto2", "Stockholm", "SE"),
    ("mmx1", "Malmö", "SE"), ("fra1", "Frankfurt", "DE"),
)
HOSTUP_TAGS = ("production", "staging", "web", "database", "backup",
               "monitoring", "customer:acme", "eu-only")
HOSTUP_DOMAINS = ("example.com", "example.net", "example.org")
HOSTUP_SSH_KEY_NAMES = ("laptop", "deploy", "ci", "alice", "bob")
# createdAt of seeded VPSes spreads over this period, in list order.
HOSTUP_CREATED_FROM = calendar.timegm((2022, 1, 10, 9, 0, 0))
HOSTUP_CREATED_TO = calendar.timegm((2025, 9, 30, 17, 0, 0))


class HostUpInventory:
    """The VPS collection. Seeded VPSes are generated on demand from
    (seed, position) and materialised only once changed, so 100,000 of them
    cost one id list and one index, not 100,000 dicts.

    A VPS's position ("seq") is its creation order; it fixes the list order
    and is what cursors point at, so deleting one never shifts a walk."""

    def __init__(self, seed, count):
        self.seed = seed
        self.count = count
        self.started = time.time()
        # Seed 1 (the default) names the demo's VPSes web-01, db-01, ...
        self._role_offset = (seed - 1) % len(HOSTUP_ROLES)
        raw = random.Random(f"{seed}/ids").randbytes(15 * count)
        self._ids = [ulid_like("vps_", raw[i:i + 15]) for i in range(0, 15 * count, 15)]
        self._index = {vid: seq for seq, vid in enumerate(self._ids)}
        if len(self._index) != count:      # a 120-bit collision: never, but be exact
            raise RuntimeError("duplicate VPS ids generated; try another --seed")
        self._ip_offset = self.hash(-1, "ip")
        self._store = {}     # seq -> materialised (changed or created) VPS
        self._booted = {}    # seq -> epoch of the last boot, once changed

    # -- cheap derived facts (no full generation; used by filters) --------
    def hash(self, seq, salt):
        """A stable 64-bit number for (seed, seq, salt)."""
        digest = hashlib.blake2b(f"{self.seed}:{seq}:{salt}".encode(),
                                 digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def _profile(self, seq):
        if seq < len(HOSTUP_LEAD_PROFILES):
            return HOSTUP_LEAD_PROFILES[seq]
        pick = self.hash(seq, "profile") % _TAIL_TOTAL
        for profile, weight in HOSTUP_TAIL_PROFILES:
            if pick < weight:
                return profile
            pick -= weight
        raise AssertionError("unreachable")

    def _name(self, seq):
        # Unique: seqs sharing a number share a block of len(ROLES) and so
        # get different roles.
        role = HOSTUP_ROLES[(seq + self._role_offset) % len(HOSTUP_ROLES)]
        return f"{role}-{seq // len(HOSTUP_ROLES) + 1:02d}"

    def _ip_number(self, seq):
        # An odd multiplier is a bijection modulo 2**22: unique addresses.
        return (seq * 2654435761 + self._ip_offset) % (1 << 22)

    def _address(self, seq):
        n = (185 << 24) + (188 << 16) + self._ip_number(seq)
        return ".".join(str((n >> s) & 0xFF) for s in (24, 16, 8, 0))

    def _ip(self, seq):
        """primaryIp: none until provisioned, none once terminated."""
        service, power = self._profile(seq)
        if power == "provisioning" or service == "terminated":
            return None
        return self._address(seq)

    def ipv6(self, seq):
        n = self._ip_number(seq)
        return f"2a0e:1c80:{n >> 16:x}:{n & 0xFFFF:x}::1"

    def field(self, seq, key):
        """One field of a live VPS, generating only what that field needs."""
        stored = self._store.get(seq)
        if stored is not None:
            return stored.get(key)
        return {"name": self._name, "primaryIp": self._ip}[key](seq)

    # -- full objects ------------------------------------------------------
    def generate(self, seq):
        rng = random.Random(f"{self.seed}/{seq}")
        service, power = self._profile(seq)
        cpu, mem, disk, price, bw_limit = rng.choice(HOSTUP_PLANS)
        cycle, months, years, _ = rng.choices(
            HOSTUP_CYCLES, weights=[c[3] for c in HOSTUP_CYCLES])[0]
        is_payg = cycle == "monthly" and rng.random() < 0.2
        os_entry = None if seq == 2 or rng.random() < 0.05 else rng.choice(HOSTUP_OS)
        tags = [] if seq == 2 or rng.random() < 0.3 else sorted(
            rng.sample(HOSTUP_TAGS, rng.randint(1, 3)))
        dc, city, country = rng.choice(HOSTUP_LOCATIONS)
        name = self._name(seq)
        span = (HOSTUP_CREATED_TO - HOSTUP_CREATED_FROM) / max(self.count, 1)
        created = HOSTUP_CREATED_FROM + span * (seq + rng.random() * 0.9)
        used = round(rng.random() * (bw_limit or 8000) * 0.6, 2)
        return {
            "id": self._ids[seq] if seq < len(self._ids) else None,
            "name": name,
            "hostname": None if power == "provisioning"
            else f"{name}.{rng.choice(HOSTUP_DOMAINS)}",
            "primaryIp": self._ip(seq),
            "serviceStatus": service,
            "powerState": power,
            "operatingSystem": None if os_entry is None else dict(zip(
                ("displayName", "family", "version", "variant"), os_entry)),
            "billing": {
                "amount": 0.0 if cycle == "free" else round(price * max(months, 1), 2),
                "currencyCode": "EUR" if rng.random() < 0.15 else "SEK",
                "billingCycle": cycle,
                "isPayg": is_payg,
                "periodYears": years,
            },
            "resources": {"cpuCores": cpu, "memoryGb": mem, "storageGb": disk},
            "bandwidth": {"usedGb": used, "limitGb": bw_limit},
            "tags": tags,
            "pinned": rng.random() < 0.2,
            "location": {"datacenter": dc, "city": city, "countryCode": country},
            "createdAt": iso_ms(created),
        }

    def get(self, seq):
        """The VPS at seq (callers must not modify it)."""
        stored = self._store.get(seq)
        return stored if stored is not None else self.generate(seq)

    def mutable(self, seq):
        if seq not in self._store:
            self._store[seq] = self.generate(seq)
        return self._store[seq]

    def booted_at(self, seq):
        if seq in self._booted:
            return self._booted[seq]
        return self.started - self.hash(seq, "uptime") % (40 * 86400)

    def set_booted(self, seq, epoch):
        self._booted[seq] = epoch

    # -- ids -----------------------------------------------------------------
    def lookup(self, vps_id):
        return self._index.get(vps_id)

    def live_ids(self):
        return [vid for vid in self._ids if vid is not None]

    def seqs_from(self, start):
        """Live seqs >= start, in list order."""
        ids = self._ids
        for seq in range(max(start, 0), len(ids)):
            if ids[seq] is not None:
                yield seq

    def create(self, fields):
        seq = len(self._ids)
        vps_id = fields.get("id") or ulid_like("vps_")
        if not isinstance(vps_id, str):
            raise SimError(400, "id must be a string")
        if vps_id in self._index:
            raise SimError(409, f"VPS {vps_id} already exists")
        vps = self.generate(seq)
        # A new VPS starts out usable, whatever its position's profile says.
        vps.update(id=vps_id, serviceStatus="active", powerState="running",
                   primaryIp=self._address(seq), createdAt=iso_ms(time.time()))
        vps["hostname"] = vps["hostname"] or f"{vps['name']}.example.com"
        deep_merge(vps, {k: v for k, v in fields.items() if k != "id"})
        self._ids.append(vps_id)
        self._index[vps_id] = seq
        self._store[seq] = vps
        self._booted[seq] = time.time()
        return vps

    def delete(self, seq):
        del self._index[self._ids[seq]]
        self._ids[seq] = None
        self._store.pop(seq, None)

    # -- extra, stable per-VPS facts for the richer views -------------------
    def extras(self, seq):
        rng = random.Random(f"{self.seed}/{seq}/extras")
        keys = [{"id": ulid_like("key_", rng.randbytes(15)),
                 "name": name,
                 "fingerprint": "SHA256:" + base64.b64encode(
                     rng.randbytes(32)).decode().rstrip("=")}
                for name in rng.sample(HOSTUP_SSH_KEY_NAMES, rng.randint(0, 2))]
        return {
            "sshKeys": keys,
            "backupsIncluded": rng.random() < 0.4,
            "passwordSet": rng.random() < 0.7,
            "nextDueDays": rng.randint(1, 60),
            "cpuUsage": round(rng.uniform(0.5, 85.0), 1),
            "memoryUse": rng.uniform(0.15, 0.9),
            "storageUse": rng.uniform(0.05, 0.8),
            "inboundShare": rng.uniform(0.05, 0.5),
            "maintenance": seq == 0 or rng.random() < 0.02,
        }


class HostUpJob:
    """A queued power operation. Its status is a pure function of elapsed
    time, so nothing runs in the background: state is settled lazily at the
    start of each request."""

    QUEUED_FRACTION = 0.25   # share of the duration spent "queued"

    def __init__(self, vps_id, seq, action, force, duration, fail, prev_power):
        self.id = ulid_like("job_")
        self.vps_id = vps_id
        self.seq = seq
        self.action = action
        self.force = force
        self.duration = duration
        self.fail = fail
        self.prev_power = prev_power
        self.started_mono = time.monotonic()
        self.created = time.time()
        self.marked = False     # transitional powerState applied

    def phase(self, now_mono):
        elapsed = now_mono - self.started_mono
        if elapsed >= self.duration:
            return "failed" if self.fail else "completed"
        if elapsed >= self.duration * self.QUEUED_FRACTION:
            return "in_progress"
        return "queued"

    def progress(self, now_mono):
        if self.duration <= 0:
            return 100
        return min(100, int(100 * (now_mono - self.started_mono) / self.duration))

    @property
    def finished(self):
        return self.created + self.duration


HOSTUP_ACTION_GATE = {"start": "canStart", "shutdown": "canShutdown",
                      "stop": "canStop", "restart": "canRestart",
                      "reset": "canReset"}
HOSTUP_TRANSITIONAL = {"start": "starting", "restart": "starting",
                       "reset": "starting", "stop": "stopping",
                       "shutdown": "stopping"}
HOSTUP_TARGET = {"start": "running", "restart": "running", "reset": "running",
                 "stop": "stopped", "shutdown": "stopped"}
HOSTUP_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden",
                404: "not_found", 405: "method_not_allowed", 409: "vps_not_ready",
                413: "payload_too_large", 429: "rate_limited",
                500: "internal_error", 502: "upstream_error",
                503: "service_unavailable", 504: "upstream_timeout"}
HOSTUP_TITLES = {"invalid_request": "Validation failed",
                 "unauthorized": "Unauthorized", "vps_not_found": "VPS not found",
                 "job_not_found": "Job not found",
                 "vps_not_ready": "VPS not ready",
                 "rate_limited": "Too many requests"}
LEGACY_JOB_STATE = {"queued": "waiting", "in_progress": "active",
                    "completed": "completed", "failed": "failed"}


class HostUp(Provider):
    """HostUp API v2 (doc/SEMANTICS.md §10.1)."""

    name = "hostup"
    title = "HostUp (API v2)"
    default_port = 18461
    ROUTES = compile_routes(
        ("GET", r"/api/v2/vps", "list_vps"),
        ("GET", r"/api/v2/vps/([^/]+)", "get_vps"),
        ("GET", r"/api/v2/vps/([^/]+)/details", "get_details"),
        ("GET", r"/api/v2/vps/([^/]+)/status", "get_status"),
        ("POST", r"/api/v2/vps/([^/]+)/actions/([^/]+)", "post_action"),
        ("GET", r"/api/jobs/([^/]+)", "get_job"),
    )
    SWITCHES = {
        "detail_envelope": v_bool,      # GET /vps/{id} as {"data": {...}}
        "actions_on_detail": v_bool,    # action gates on GET /vps/{id} too
        "job_shape": v_choice("operation", "legacy"),
        "fail_next_jobs": v_count,      # that many new jobs end "failed"
        "problem_content_type": v_str,
        "rate_limit": v_rate_limit,
        "reset_format": v_choice("iso", "epoch"),  # X-RateLimit-Reset
        "job_seconds": v_seconds,
        "token": v_str,                 # the API key accepted (rotated)
    }

    def default_switches(self):
        return {"detail_envelope": False, "actions_on_detail": False,
                "job_shape": "operation", "fail_next_jobs": 0,
                "problem_content_type": "application/problem+json",
                "rate_limit": {"limit": 600, "window_s": 60},
                "reset_format": "iso", "job_seconds": self.opts.job_seconds,
                "token": self.opts.token}

    def seed_state(self):
        self.inv = HostUpInventory(self.opts.seed, self.opts.vps_count)
        self.jobs = {}        # job id -> HostUpJob, kept for polling
        self.active = []      # jobs whose effect is not applied yet

    # -- errors and headers -------------------------------------------------
    def error(self, req, status, code=None, detail=None, headers=None,
              errors=None):
        code = code or HOSTUP_CODES.get(status, "error")
        phrase, description = status_text(status)
        body = {
            "type": f"https://developer.hostup.se/errors/{code}",
            "title": HOSTUP_TITLES.get(code) or phrase,
            "status": status,
            "detail": detail or description,
            "code": code,
            "instance": req.path,
            "requestId": req.request_id,
            "timestamp": iso_ms(time.time()),
        }
        if errors:
            body["errors"] = errors
        return Response.json(status, body, self.switches["problem_content_type"],
                             headers)

    def invalid(self, req, pointer, code, detail):
        return self.error(req, 400, "invalid_request", "The request failed validation.",
                          errors=[{"pointer": pointer, "detail": detail, "code": code}])

    def rate_headers(self, remaining, reset_in, now_wall):
        reset_at = now_wall + reset_in
        reset = (str(math.ceil(reset_at)) if self.switches["reset_format"] == "epoch"
                 else iso_ms(reset_at))
        return {"X-RateLimit-Limit": str(self.limiter.limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": reset}

    def fault_response(self, req, status):
        resp = super().fault_response(req, status)
        if status == 429:   # a limited answer says the budget is spent
            resp.headers["X-RateLimit-Remaining"] = "0"
        return resp

    # -- entry point ---------------------------------------------------------
    def authorized(self, req):
        token = self.switches["token"]
        if bearer_matches(req.headers, token):
            return True
        return (req.headers.get("X-API-Key") or "").strip() == token  # legacy

    def unauthorized(self, req):
        return self.error(req, 401, "unauthorized", "A valid API key is required.",
                          headers={"WWW-Authenticate": 'Bearer realm="hostup"'})

    def before_route(self, req):
        self.settle(time.monotonic())

    def handle(self, req):
        resp = super().handle(req)
        resp.headers["X-Request-Id"] = req.request_id
        return resp

    # -- jobs ------------------------------------------------------------------
    def settle(self, now):
        """Apply the effects that the jobs' elapsed time implies."""
        for job in list(self.active):
            phase = job.phase(now)
            if phase == "queued":
                continue
            seq = self.inv.lookup(job.vps_id)
            if phase == "in_progress":
                if not job.marked and seq is not None:
                    self.inv.mutable(seq)["powerState"] = HOSTUP_TRANSITIONAL[job.action]
                    job.marked = True
                continue
            self.active.remove(job)
            if seq is None:          # deleted meanwhile
                continue
            vps = self.inv.mutable(seq)
            if job.fail:
                vps["powerState"] = job.prev_power
            else:
                vps["powerState"] = HOSTUP_TARGET[job.action]
                if vps["powerState"] == "running":
                    self.inv.set_booted(seq, job.finished)

    def pending_jobs(self, vps_id):
        return sum(1 for job in self.active if job.vps_id == vps_id)

    def gates(self, vps):
        """actions.canX, each {"allowed", "reason"}."""
        service, power = vps.get("serviceStatus"), vps.get("powerState")
        if self.pending_jobs(vps.get("id")):
            blocker = "Another operation is in progress"
        elif service != "active":
            blocker = f"VPS is {service}"
        else:
            blocker = None
        gates = {}
        for action, gate in HOSTUP_ACTION_GATE.items():
            needed = "stopped" if action == "start" else "running"
            reason = blocker
            if reason is None and power != needed:
                reason = ("VPS is already running" if action == "start" and power == "running"
                          else f"VPS is {power}" if power else "VPS power state is unknown")
            gates[gate] = {"allowed": reason is None, "reason": reason}
        return gates

    # -- views -------------------------------------------------------------------
    def list_item(self, seq, include_maintenance):
        vps = self.inv.get(seq)
        if not include_maintenance:
            return vps
        item = dict(vps)
        due = self.inv.extras(seq)["maintenance"]
        start = self.inv.started + 3 * 86400
        item.setdefault("pendingMaintenance", {
            "type": "host_reboot", "scheduledAt": iso_ms(start),
            "deadlineAt": iso_ms(start + 7 * 86400),
            "description": "Host kernel upgrade",
        } if due else None)
        item.setdefault("pendingMaintenanceHasDeadline", due)
        return item

    def overdue_invoice(self, seq, vps):
        if vps.get("serviceStatus") != "suspended":
            return None
        billing = vps.get("billing") or {}
        return {"invoiceId": f"inv_{self.inv.hash(seq, 'invoice') % 10**7:07d}",
                "amount": billing.get("amount"),
                "currencyCode": billing.get("currencyCode"),
                "dueAt": iso_ms(self.inv.started - 20 * 86400)}

    def details_view(self, seq, vps):
        extras = self.inv.extras(seq)
        res = vps.get("resources") or {}
        bw = vps.get("bandwidth") or {}
        billing = vps.get("billing") or {}
        os_info = vps.get("operatingSystem") or {}
        used, limit = bw.get("usedGb"), bw.get("limitGb")
        inbound = round((used or 0) * extras["inboundShare"], 2)
        ip = vps.get("primaryIp")
        addresses = [] if ip is None else [
            {"address": ip, "version": 4, "isPrimary": True},
            {"address": self.inv.ipv6(seq), "version": 6, "isPrimary": False}]
        windows = os_info.get("family") == "windows"
        return {
            "id": vps.get("id"),
            "productName": f"VPS {res.get('cpuCores')} vCPU / {res.get('memoryGb')} GB",
            "hostname": vps.get("hostname"),
            "serviceStatus": vps.get("serviceStatus"),
            "createdAt": vps.get("createdAt"),
            "nextDueAt": None if billing.get("billingCycle") == "free" else iso_ms(
                self.inv.started + extras["nextDueDays"] * 86400),
            "billing": {k: billing.get(k) for k in
                        ("amount", "currencyCode", "billingCycle", "isPayg")},
            "cpuCores": res.get("cpuCores"),
            "memoryGb": res.get("memoryGb"),
            "storageGb": res.get("storageGb"),
            "backupsIncluded": extras["backupsIncluded"],
            "bandwidth": {
                "usedGb": used, "limitGb": limit, "inboundGb": inbound,
                "outboundGb": round((used or 0) - inbound, 2),
                "usagePercent": (round(100 * used / limit, 1)
                                 if used is not None and limit else None),
            },
            "primaryIp": ip,
            "ipAddresses": addresses,
            "powerState": vps.get("powerState"),
            "sshKeys": extras["sshKeys"],
            "login": {"username": "Administrator" if windows else "root",
                      "port": 3389 if windows else 22,
                      "passwordSet": extras["passwordSet"]},
            "actions": self.gates(vps),
            "overdueInvoice": self.overdue_invoice(seq, vps),
        }

    def status_view(self, seq, vps):
        extras = self.inv.extras(seq)
        res = vps.get("resources") or {}
        bw = vps.get("bandwidth") or {}
        power = vps.get("powerState")
        running = power == "running"
        mem_total = res.get("memoryGb") or 0
        disk_total = res.get("storageGb") or 0
        mem_used = round(mem_total * extras["memoryUse"], 2) if running else 0.0
        disk_used = round(disk_total * extras["storageUse"], 2)
        total = bw.get("usedGb") or 0
        inbound = round(total * extras["inboundShare"], 2)

        def pct(used, whole):
            return round(100 * used / whole, 1) if whole else 0.0

        return {
            "id": vps.get("id"),
            "powerState": power,
            "uptimeSeconds": int(time.time() - self.inv.booted_at(seq)) if running
            else (None if power is None else 0),
            "cpuUsagePercent": extras["cpuUsage"] if running else 0.0,
            "cpuCores": res.get("cpuCores"),
            "memory": {"usedGb": mem_used, "totalGb": mem_total,
                       "usagePercent": pct(mem_used, mem_total)},
            "storage": {"usedGb": disk_used, "totalGb": disk_total,
                        "usagePercent": pct(disk_used, disk_total)},
            "network": {"inboundGb": inbound, "outboundGb": round(total - inbound, 2),
                        "totalGb": total},
            "pendingTasks": self.pending_jobs(vps.get("id")),
        }

    def job_view(self, req, job, now):
        status = job.phase(now)
        poll = f"/api/jobs/{job.id}"
        result = ({"vpsId": job.vps_id, "action": job.action,
                   "powerState": HOSTUP_TARGET[job.action]}
                  if status == "completed" else None)
        if self.switches["job_shape"] == "operation":
            op = {"status": status, "jobId": job.id, "pollUrl": poll, "result": result}
            if status == "failed":
                op["error"] = {"code": "operation_failed",
                               "detail": f"The {job.action} operation failed on the host."}
            return {"operation": op}
        return {"success": True, "timestamp": iso_ms(time.time()),
                "requestId": req.request_id,
                "data": self.legacy_job(job, status, now, result)}

    def legacy_job(self, job, status, now, result):
        """The legacy domain-API job shape (doc/SEMANTICS.md §10.1.4, both job shapes)."""
        state = LEGACY_JOB_STATE[status]
        progress = job.progress(now)
        terminal = status in ("completed", "failed")
        verb = job.action.capitalize()
        message = {"waiting": "Waiting in queue", "active": f"{verb} in progress",
                   "completed": f"{verb} completed", "failed": f"{verb} failed"}[state]
        data = {
            "jobId": job.id, "queueType": "vm-power", "type": job.action,
            "state": state, "status": status, "progress": progress,
            "progressTextKey": f"jobs.progress.{state}",
            "progressDetails": {"percentage": progress, "message": message,
                                "current": progress, "total": 100},
            "progressMessage": message, "result": result,
            "isCompleted": status == "completed", "isFailed": status == "failed",
            "isRunning": state == "active", "isWaiting": state == "waiting",
            "createdAt": iso_ms(job.created),
            "finishedAt": iso_ms(job.finished) if terminal else None,
            "jobName": f"vm-{job.action}", "vmId": 100 + job.seq,
            "hostbillAccountId": 20000 + job.seq, "isScheduled": False, "delay": 0,
            "statusKey": f"jobs.status.{status}",
        }
        if status == "failed":
            data["failedReason"] = f"The {job.action} operation failed on the host."
        return data

    # -- handlers ----------------------------------------------------------------
    def find(self, req, vps_id):
        """(seq, vps) or (None, 404 response)."""
        seq = self.inv.lookup(vps_id)
        if seq is None:
            return None, self.error(req, 404, "vps_not_found",
                                    f"No VPS with id '{vps_id}' exists for this account.")
        return seq, self.inv.get(seq)

    def list_vps(self, req):
        q = req.query
        raw_limit = q.get("limit", "20")
        limit = int(raw_limit) if re.fullmatch(r"\d{1,4}", raw_limit) else 0
        if not 1 <= limit <= 100:
            return self.invalid(req, "/limit", "out_of_range",
                                "limit must be an integer from 1 to 100.")
        start = 0
        if "cursor" in q:
            start = self.decode_cursor(q["cursor"])
            if start is None:
                return self.invalid(req, "/cursor", "invalid_cursor",
                                    "cursor is not a value returned as nextCursor.")
        wanted = [(key, q[key].lower()) for key in ("name", "primaryIp") if q.get(key)]
        include = "pendingMaintenance" in q.get("include", "").split(",")
        page, has_more = [], False
        for seq in self.inv.seqs_from(start):
            if not all(self.matches(self.inv.field(seq, key), value)
                       for key, value in wanted):
                continue
            if len(page) == limit:
                has_more = True
                break
            page.append(seq)
        return Response.json(200, {
            "data": [self.list_item(seq, include) for seq in page],
            "hasMore": has_more,
            "nextCursor": self.encode_cursor(page[-1] + 1) if has_more else None,
        })

    @staticmethod
    def matches(field, wanted):
        """Filters are exact but case-insensitive; null never matches."""
        return field is not None and str(field).lower() == wanted

    @staticmethod
    def encode_cursor(start):
        return base64.urlsafe_b64encode(f"from:{start}".encode()).decode().rstrip("=")

    @staticmethod
    def decode_cursor(cursor):
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        match = re.fullmatch(r"from:(\d{1,9})", text)
        return int(match.group(1)) if match else None

    def get_vps(self, req, vps_id):
        seq, vps = self.find(req, vps_id)
        if seq is None:
            return vps
        body = dict(vps)
        body["overdueInvoice"] = self.overdue_invoice(seq, vps)
        if self.switches["actions_on_detail"]:
            body["actions"] = self.gates(vps)
        if self.switches["detail_envelope"]:
            body = {"data": body}
        return Response.json(200, body)

    def get_details(self, req, vps_id):
        seq, vps = self.find(req, vps_id)
        return vps if seq is None else Response.json(200, self.details_view(seq, vps))

    def get_status(self, req, vps_id):
        seq, vps = self.find(req, vps_id)
        return vps if seq is None else Response.json(200, self.status_view(seq, vps))

    def post_action(self, req, vps_id, action):
        gate = HOSTUP_ACTION_GATE.get(action)
        if gate is None:
            return self.error(req, 404, "not_found", f"Unknown VPS action '{action}'.")
        force = False
        if action == "restart":          # the only action that takes a body
            try:
                body = req.json_body()
            except (ValueError, UnicodeDecodeError):
                return self.invalid(req, "", "invalid_json", "The body is not valid JSON.")
            if body is not None:
                if not isinstance(body, dict) or not isinstance(body.get("force", False), bool):
                    return self.invalid(req, "/force", "invalid_type",
                                        "`force` must be a boolean.")
                force = body.get("force", False)
        seq, vps = self.find(req, vps_id)
        if seq is None:
            return vps
        verdict = self.gates(vps)[gate]
        if not verdict["allowed"]:
            return self.error(req, 409, "vps_not_ready",
                              f"Cannot {action} this VPS: {verdict['reason']}.")
        fail = self.switches["fail_next_jobs"] > 0
        if fail:
            self.switches["fail_next_jobs"] -= 1
        job = HostUpJob(vps_id, seq, action, force, self.switches["job_seconds"],
                        fail, vps.get("powerState"))
        self.jobs[job.id] = job
        self.active.append(job)
        poll = f"/api/jobs/{job.id}"
        return Response.json(202, {"operation": {"status": "queued", "jobId": job.id,
                                                 "pollUrl": poll, "result": None}},
                             headers={"Location": poll})

    def get_job(self, req, job_id):
        job = self.jobs.get(job_id)
        if job is None:
            return self.error(req, 404, "job_not_found", f"No job with id '{job_id}'.")
        return Response.json(200, self.job_view(req, job, time.monotonic()))

    # -- admin: /_sim/hostup/... ---------------------------------------------------
    def admin(self, method, parts, req):
        with self.lock:
            # Apply finished jobs first: what tests read or patch is current,
            # and a patch is not overwritten by an older job's outcome.
            now = time.monotonic()
            self.settle(now)
            if parts == ["vps"]:
                if method == "GET":
                    return admin_json(200, {"ids": self.inv.live_ids()})
                if method == "POST":
                    return admin_json(201, self.inv.create(admin_body(req)))
            elif len(parts) == 2 and parts[0] == "vps":
                return self.admin_vps(method, parts[1], req)
            elif parts == ["jobs"] and method == "GET":
                return admin_json(200, [{"jobId": j.id, "vpsId": j.vps_id,
                                         "action": j.action, "force": j.force,
                                         "status": j.phase(now)}
                                        for j in self.jobs.values()])
            else:
                raise SimError(404, f"unknown admin path /_sim/hostup/{'/'.join(parts)}")
            raise SimError(405, f"{method} not allowed here")

    def admin_vps(self, method, vps_id, req):
        seq = self.inv.lookup(vps_id)
        if seq is None:
            raise SimError(404, f"no VPS {vps_id}")
        if method == "GET":
            return admin_json(200, self.inv.get(seq))
        if method == "PATCH":
            fields = admin_body(req)
            if "id" in fields and fields["id"] != vps_id:
                raise SimError(400, "the id cannot be changed; create a new VPS")
            return admin_json(200, deep_merge(self.inv.mutable(seq), fields))
        if method == "DELETE":
            self.inv.delete(seq)
            return admin_json(200, {"deleted": vps_id})
        raise SimError(405, f"{method} not allowed here")
