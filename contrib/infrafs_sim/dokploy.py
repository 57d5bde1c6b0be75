"""Dokploy (self-hosted; tRPC procedures served as /api/<router>.<procedure>):
projects, and the deployments of their applications and compose services,
with logs, killProcess and removeDeployment.

Admin endpoints (any port, no auth, JSON; see admin.py):

  GET    /_sim/dokploy/projects  the projects as project.all serves them
  GET    /_sim/dokploy/services  {name: {"kind": "application"|"compose", "id",
                                 "appName", "project", "environment"}}
  GET    /_sim/dokploy/deployments   every deployment row, newest first
  POST   /_sim/dokploy/deployments   create: fields over a generated running
                                 row of "service" (a name; default the first
                                 application) or of applicationId/composeId;
                                 "log": its log text; 201 + row
  GET    /_sim/dokploy/deployments/ID        the row as stored
  PATCH  /_sim/dokploy/deployments/ID        deep-merge fields, answer the row
  DELETE /_sim/dokploy/deployments/ID        {"deleted": ID}
  GET    /_sim/dokploy/deployments/ID/log    {"log": text}
  PUT    /_sim/dokploy/deployments/ID/log    {"log": text} replaces the log
  POST   /_sim/dokploy/deployments/ID/log    {"append": text} adds lines
  GET    /_sim/dokploy/stats     {"log_requests", "in_flight", "max_in_flight"}:
                                 deployment.readLogs requests and the most
                                 ever under way at once
  DELETE /_sim/dokploy/stats     zero log_requests and max_in_flight

--dokploy-count N: the twelve seeded deployments, then finished ones up to
N, 100 per generated service of a project "fleet".

Dokploy switches: rate_limit (null or {"limit": N, "window_s": S}; an
exhausted key answers 401 as Dokploy does, never 429); kill_status
("error"|"cancelled", what killProcess leaves); project_shape
("environments"|"legacy": services on the project, before v0.25);
log_delay_ms (N, before answering deployment.readLogs).
"""


import calendar
import json
import random
import re
import time

from .data import deep_merge, iso_ms
from .messages import Response, SimError, admin_body, admin_json, status_text
from .provider import InFlight, Provider, compile_routes
from .switches import v_choice, v_count, v_rate_limit

# nanoid's URL-safe alphabet: Dokploy's ids are 21 of these.
NANOID_ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict"

# project name, description, environments (name, isDefault, applications,
# compose services). "sandbox" has no services at all.
DOKPLOY_PROJECTS = (
    ("shop", "Web shop", (
        ("production", True, ("shop-web", "shop-api"), ("shop-monitoring",)),
        ("staging", False, ("shop-web-staging",), ()),
    )),
    ("blog", "Company blog", (
        ("production", True, ("blog-ghost",), ("blog-analytics",)),
    )),
    ("sandbox", None, (("production", True, (), ()),)),
)

# Seeded deployments, newest first per service: (service, status, pid,
# title, log lines). Every status shows up for applications and compose;
# shop-web-staging has none; the 500-line log is longer than any tail.
DOKPLOY_DEPLOYMENTS = (
    ("shop-web", "running", "4242", "Deploy 7f3c2a1", 12),
    ("shop-web", "done", None, "Deploy 1b9e0d4", 500),
    ("shop-web", "error", None, "Deploy 0c44e7f", 30),
    ("shop-api", "pending", None, "Rebuild", 0),
    ("shop-api", "cancelled", None, "Deploy 9a1d3f0", 8),
    ("shop-api", "done", None, "Deploy 5e6b7c8", 40),
    ("shop-monitoring", "running", None, "Compose up", 10),
    ("shop-monitoring", "done", None, "Compose up", 25),
    ("shop-monitoring", "error", None, "Compose up", 14),
    ("blog-ghost", "done", None, "Deploy ghost 5.96", 20),
    ("blog-analytics", "running", "5151", "Compose up", 15),
    ("blog-analytics", "cancelled", None, "Compose up", 6),
)
DOKPLOY_EPOCH = calendar.timegm((2026, 6, 1, 8, 0, 0))
DOKPLOY_FLEET_PER_SERVICE = 100     # generated deployments per generated service
DOKPLOY_STATUSES = ("running", "done", "error", "cancelled", "pending")
DOKPLOY_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
                 404: "NOT_FOUND", 405: "METHOD_NOT_SUPPORTED", 409: "CONFLICT",
                 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
                 422: "UNPROCESSABLE_CONTENT", 429: "TOO_MANY_REQUESTS"}


def v_rate_limit_or_none(value):
    return None if value is None else v_rate_limit(value)


class DokployInputError(Exception):
    """A procedure's input failed validation (tRPC answers 400 + issues)."""

    def __init__(self, issues):
        super().__init__("Input validation failed")
        self.issues = issues


class Dokploy(Provider):
    """Dokploy's deployments API (doc/SEMANTICS.md §10.5): reads are
    GET with flat query parameters, writes POST with a JSON body, the key in
    x-api-key; errors are tRPC's {message, code, data, issues?}; a foreign or
    rate-limited key answers 401 (there are no rate-limit headers)."""

    name = "dokploy"
    title = "Dokploy"
    default_port = 18465
    # trpc-openapi matches routes case-insensitively.
    ROUTES = compile_routes(
        ("GET", r"(?i)/api/project\.all", "project_all"),
        ("GET", r"(?i)/api/deployment\.all", "deployment_all"),
        ("GET", r"(?i)/api/deployment\.allByCompose", "deployment_all_by_compose"),
        ("GET", r"(?i)/api/deployment\.readLogs", "read_logs"),
        ("POST", r"(?i)/api/deployment\.killProcess", "kill_process"),
        ("POST", r"(?i)/api/deployment\.removeDeployment", "remove_deployment"),
    )
    SWITCHES = {
        # a token bucket per key; an exhausted key gets 401, never 429
        "rate_limit": v_rate_limit_or_none,
        # what killProcess sets: the code says error, a restart cancelled
        "kill_status": v_choice("error", "cancelled"),
        # "legacy": services on the project itself (before v0.25, and the
        # outdated public docs), no environments
        "project_shape": v_choice("environments", "legacy"),
        "log_delay_ms": v_count,          # before answering deployment.readLogs
    }
    READ_LOGS_RE = re.compile(r"(?i)/api/deployment\.readLogs")

    def __init__(self, opts):
        self.log_reads = InFlight("log_requests")
        super().__init__(opts)

    def default_switches(self):
        return {"rate_limit": None, "kill_status": "error",
                "project_shape": "environments", "log_delay_ms": 0}

    # -- data -----------------------------------------------------------------
    def seed_state(self):
        rng = random.Random(f"{self.opts.seed}/dokploy")
        self.started = time.time()
        self.projects = []
        self.services = {}      # name -> {"kind", "id", "appName", ...}
        self.deployments = {}   # deploymentId -> row
        self.logs = {}          # deploymentId -> [line, ...]
        org = self.nanoid(rng)
        for p_index, (pname, desc, envs) in enumerate(DOKPLOY_PROJECTS):
            created = iso_ms(DOKPLOY_EPOCH - 86400 * (30 - p_index))
            project = {"projectId": self.nanoid(rng), "name": pname,
                       "description": desc, "createdAt": created,
                       "organizationId": org, "env": "", "environments": [],
                       "projectTags": []}
            for ename, default, apps, composes in envs:
                env = {"environmentId": self.nanoid(rng), "name": ename,
                       "description": None, "createdAt": created, "env": "",
                       "projectId": project["projectId"], "isDefault": default,
                       "applications": [], "compose": [], "postgres": [],
                       "mysql": [], "mariadb": [], "mongo": [], "redis": [],
                       "libsql": []}
                for kind, names in (("application", apps), ("compose", composes)):
                    for sname in names:
                        sid = self.nanoid(rng)
                        app_name = f"{sname}-{self.nanoid(rng, 6).lower()}"
                        if kind == "application":
                            env["applications"].append(
                                {"applicationId": sid, "name": sname,
                                 "appName": app_name, "applicationStatus": "done"})
                        else:
                            env["compose"].append(
                                {"composeId": sid, "name": sname, "appName": app_name,
                                 "composeStatus": "done"})
                        self.services[sname] = {
                            "kind": kind, "id": sid, "appName": app_name,
                            "project": pname, "environment": ename}
                project["environments"].append(env)
            self.projects.append(project)
        self._owner_rows = None
        count = self.opts.dokploy_count
        for n, (sname, status, pid, title, lines) in enumerate(DOKPLOY_DEPLOYMENTS[:count]):
            service = self.services[sname]
            created = (self.started - 60 * (n + 1) if status in ("running", "pending")
                       else DOKPLOY_EPOCH + 3600 * (len(DOKPLOY_DEPLOYMENTS) - n))
            row = self.new_row(rng, service, status, pid, title, created)
            self.deployments[row["deploymentId"]] = row
            self.logs[row["deploymentId"]] = [
                f"{iso_ms(created + 90 * (i + 1) / lines)} {sname}: step {i + 1} of {lines}"
                for i in range(lines)]
        if count > len(DOKPLOY_DEPLOYMENTS):
            self.seed_fleet(org, count - len(DOKPLOY_DEPLOYMENTS))

    def seed_fleet(self, org, extra):
        """--dokploy-count beyond the seeded twelve: a project "fleet" whose
        production environment holds one service per DOKPLOY_FLEET_PER_SERVICE
        deployments (every fourth a compose service), with finished
        deployments (done, some error or cancelled) of a three-line log,
        older than the seeded ones. Its own random stream, and nanoids drawn
        with choices() (a few times faster than choice()), so that 100,000
        take seconds and the seeded data stays as it is."""
        rng = random.Random(f"{self.opts.seed}/dokploy/fleet")

        def nanoid(size=21):
            return "".join(rng.choices(NANOID_ALPHABET, k=size))

        created = iso_ms(DOKPLOY_EPOCH - 86400 * 40)
        project = {"projectId": nanoid(), "name": "fleet",
                   "description": "Generated services (--dokploy-count)",
                   "createdAt": created, "organizationId": org, "env": "",
                   "environments": [], "projectTags": []}
        env = {"environmentId": nanoid(), "name": "production", "description": None,
               "createdAt": created, "env": "", "projectId": project["projectId"],
               "isDefault": True, "applications": [], "compose": [], "postgres": [],
               "mysql": [], "mariadb": [], "mongo": [], "redis": [], "libsql": []}
        project["environments"].append(env)
        self.projects.append(project)
        nservices = -(-extra // DOKPLOY_FLEET_PER_SERVICE)
        fleet = []
        for k in range(nservices):
            kind = "compose" if k % 4 == 3 else "application"
            sname = f"fleet-{kind[:3]}-{k:05d}"
            sid, app_name = nanoid(), f"{sname}-{nanoid(6).lower()}"
            if kind == "application":
                env["applications"].append({"applicationId": sid, "name": sname,
                                            "appName": app_name,
                                            "applicationStatus": "done"})
            else:
                env["compose"].append({"composeId": sid, "name": sname,
                                       "appName": app_name, "composeStatus": "done"})
            self.services[sname] = {"kind": kind, "id": sid, "appName": app_name,
                                    "project": "fleet", "environment": "production"}
            fleet.append(self.services[sname])
        for n in range(extra):
            service = fleet[n % nservices]
            status = rng.choices(("done", "error", "cancelled"), weights=(85, 10, 5))[0]
            created = DOKPLOY_EPOCH - 600 * (n + 1)
            row = self.new_row(rng, service, status, None, f"Deploy {n:06x}", created,
                               dep_id=nanoid())
            self.deployments[row["deploymentId"]] = row
            self.logs[row["deploymentId"]] = [
                f"{iso_ms(created + 30 * (i + 1))} {service['appName']}: step {i + 1} of 3"
                for i in range(3)]

    @staticmethod
    def nanoid(rng, size=21):
        return "".join(rng.choice(NANOID_ALPHABET) for _ in range(size))

    def new_row(self, rng, service, status, pid, title, created, dep_id=None):
        finished = status in ("done", "error", "cancelled")
        stamp = time.strftime("%Y-%m-%d:%H:%M:%S", time.gmtime(created))
        return {
            "deploymentId": dep_id or self.nanoid(rng),
            "title": title,
            "description": None,
            "status": status,
            "logPath": f"/etc/dokploy/logs/{service['appName']}/"
                       f"{service['appName']}-{stamp}.log",
            "pid": pid,
            "applicationId": service["id"] if service["kind"] == "application" else None,
            "composeId": service["id"] if service["kind"] == "compose" else None,
            "serverId": None,
            "isPreviewDeployment": False,
            "previewDeploymentId": None,
            "scheduleId": None,
            "backupId": None,
            "rollbackId": None,
            "volumeBackupId": None,
            "buildServerId": None,
            "createdAt": iso_ms(created),
            "startedAt": None if status == "pending" else iso_ms(created + 1),
            "finishedAt": iso_ms(created + 95) if finished else None,
            "errorMessage": "Docker build failed: exit code 1" if status == "error" else None,
        }

    def service_by_id(self, kind, sid):
        for service in self.services.values():
            if service["kind"] == kind and service["id"] == sid:
                return service
        return None

    def rows_of(self, field, sid):
        """The deployments of one service, newest first: through an index of
        every owner's rows built on demand (one scan, not one per service)
        and dropped by every change to the deployments."""
        if self._owner_rows is None:
            index = {}
            for row in self.deployments.values():
                for key in ("applicationId", "composeId"):
                    if isinstance(row.get(key), str):
                        index.setdefault((key, row[key]), []).append(row)
            for rows in index.values():
                rows.sort(key=lambda r: r.get("createdAt") or "", reverse=True)
            self._owner_rows = index
        return list(self._owner_rows.get((field, sid), ()))

    def changed(self):
        self._owner_rows = None

    # -- errors -----------------------------------------------------------------
    @staticmethod
    def procedure(req):
        return req.path.rpartition("/api/")[2] or None

    def error(self, req, status, code=None, detail=None, headers=None, issues=None):
        if status == 401 and code is None:
            # The [...trpc].ts wrapper refuses before tRPC runs: no code.
            return Response.json(401, {"message": "Unauthorized"}, headers=headers)
        code = code or DOKPLOY_CODES.get(status, "INTERNAL_SERVER_ERROR")
        message = detail or ("Internal server error" if status >= 500
                             else status_text(status)[0])
        body = {"message": message, "code": code,
                "data": {"code": code, "httpStatus": status,
                         "path": self.procedure(req), "zodError": None}}
        if issues is not None:
            body["issues"] = issues
        return Response.json(status, body, headers=headers)

    def route(self, req):
        resp = super().route(req)
        if resp.status == 404 and b"No such endpoint" in resp.body:
            return self.error(req, 404, "NOT_FOUND", "Not found")
        if resp.status == 405:
            return self.error(req, 405, "METHOD_NOT_SUPPORTED", "Method not supported")
        return resp

    # -- entry point ---------------------------------------------------------------
    def authorized(self, req):
        # Only the API-key header: the old `Authorization: Bearer` is gone.
        return (req.headers.get("x-api-key") or "").strip() == self.opts.token

    def rate_limited(self, req, retry_after):
        # better-auth refuses an exhausted key, so Dokploy sees no session.
        return self.error(req, 401)

    def handle(self, req):
        if req.method != "GET" or not self.READ_LOGS_RE.fullmatch(req.path):
            return self.answer(req)
        return self.log_reads.run(self.switches["log_delay_ms"], lambda: self.answer(req))

    def answer(self, req):
        try:
            return super().handle(req)
        except DokployInputError as exc:
            return self.error(req, 400, "BAD_REQUEST", "Input validation failed",
                              issues=exc.issues)

    # -- inputs ---------------------------------------------------------------------
    @staticmethod
    def required_string(value, key):
        if value is None:
            raise DokployInputError([{"code": "invalid_type", "expected": "string",
                                      "received": "undefined", "path": [key],
                                      "message": "Required"}])
        if not isinstance(value, str):
            raise DokployInputError([{"code": "invalid_type", "expected": "string",
                                      "received": type(value).__name__, "path": [key],
                                      "message": f"Expected string, received "
                                                 f"{type(value).__name__}"}])
        if not value:
            raise DokployInputError([{"code": "too_small", "minimum": 1, "type": "string",
                                      "inclusive": True, "exact": False, "path": [key],
                                      "message": "String must contain at least 1 character(s)"}])
        return value

    def post_input(self, req):
        """The JSON body of a mutation, as trpc-openapi reads it."""
        ctype = (req.headers.get("Content-Type") or "").lower()
        if not ctype.startswith("application/json"):
            return None, self.error(req, 415, "UNSUPPORTED_MEDIA_TYPE",
                                    "Unsupported content-type \"%s\"" % ctype)
        try:
            body = req.json_body()
        except (ValueError, UnicodeDecodeError):
            return None, self.error(req, 400, "PARSE_ERROR", "Failed to parse request body")
        if not isinstance(body, dict):
            raise DokployInputError([{"code": "invalid_type", "expected": "object",
                                      "received": type(body).__name__, "path": [],
                                      "message": "Expected object"}])
        return body, None

    # -- procedures -------------------------------------------------------------------
    def project_all(self, req):
        projects = json.loads(json.dumps(self.projects))
        if self.switches["project_shape"] == "legacy":
            for project in projects:
                envs = project.pop("environments")
                project["applications"] = [a for e in envs for a in e["applications"]]
                project["compose"] = [c for e in envs for c in e["compose"]]
        return Response.json(200, projects)

    def deployment_all(self, req):
        sid = self.required_string(req.query.get("applicationId"), "applicationId")
        if self.service_by_id("application", sid) is None:
            return self.error(req, 404, "NOT_FOUND", "Application not found")
        return Response.json(200, self.rows_of("applicationId", sid))

    def deployment_all_by_compose(self, req):
        sid = self.required_string(req.query.get("composeId"), "composeId")
        if self.service_by_id("compose", sid) is None:
            return self.error(req, 404, "NOT_FOUND", "Compose not found")
        return Response.json(200, self.rows_of("composeId", sid))

    def read_logs(self, req):
        dep_id = self.required_string(req.query.get("deploymentId"), "deploymentId")
        raw_tail = req.query.get("tail", "100")
        if not re.fullmatch(r"\d{1,6}", raw_tail) or not 1 <= int(raw_tail) <= 10000:
            raise DokployInputError([{"code": "invalid_type" if not raw_tail.isdigit()
                                      else "too_big", "path": ["tail"],
                                      "message": "Number must be between 1 and 10000"}])
        if dep_id not in self.deployments:
            return self.error(req, 404, "NOT_FOUND", "Deployment not found")
        lines = self.logs.get(dep_id, [])[-int(raw_tail):]
        # `tail -n N` output: the lines, each with its newline.
        return Response.json(200, "".join(line + "\n" for line in lines))

    def kill_process(self, req):
        body, refusal = self.post_input(req)
        if refusal:
            return refusal
        dep_id = self.required_string(body.get("deploymentId"), "deploymentId")
        row = self.deployments.get(dep_id)
        if row is None:
            return self.error(req, 404, "NOT_FOUND", "Deployment not found")
        if row.get("pid") is None:
            return self.error(req, 400, "BAD_REQUEST", "Deployment is not running")
        row.update(status=self.switches["kill_status"], pid=None,
                   finishedAt=iso_ms(time.time()))
        self.changed()
        self.logs.setdefault(dep_id, []).append(
            f"{iso_ms(time.time())} Process killed (kill -9)")
        # A void procedure: 200 and no body at all.
        return Response(200, b"", "application/json")

    def remove_deployment(self, req):
        body, refusal = self.post_input(req)
        if refusal:
            return refusal
        dep_id = self.required_string(body.get("deploymentId"), "deploymentId")
        row = self.deployments.pop(dep_id, None)
        if row is None:
            return self.error(req, 404, "NOT_FOUND", "Deployment not found")
        self.changed()
        self.logs.pop(dep_id, None)
        return Response.json(200, row)

    # -- admin: /_sim/dokploy/... ----------------------------------------------------------
    def admin(self, method, parts, req):
        with self.lock:
            if parts == ["projects"] and method == "GET":
                return admin_json(200, self.projects)
            if parts == ["services"] and method == "GET":
                return admin_json(200, self.services)
            if parts == ["stats"] and method in ("GET", "DELETE"):
                return admin_json(200, self.log_reads.snapshot(zero=method == "DELETE"))
            if parts == ["deployments"]:
                if method == "GET":
                    rows = sorted(self.deployments.values(),
                                  key=lambda r: r.get("createdAt") or "", reverse=True)
                    return admin_json(200, rows)
                if method == "POST":
                    return admin_json(201, self.admin_create(admin_body(req)))
            elif len(parts) in (2, 3) and parts[0] == "deployments":
                dep_id = parts[1]
                if dep_id not in self.deployments:
                    raise SimError(404, f"no deployment {dep_id}")
                if len(parts) == 3 and parts[2] == "log":
                    return self.admin_log(method, dep_id, req)
                if len(parts) == 2:
                    return self.admin_deployment(method, dep_id, req)
                raise SimError(404, f"unknown admin path /_sim/dokploy/{'/'.join(parts)}")
            else:
                raise SimError(404, f"unknown admin path /_sim/dokploy/{'/'.join(parts)}")
            raise SimError(405, f"{method} not allowed here")

    def admin_create(self, fields):
        """A new deployment: fields over a generated running row of the
        service named by "service" (default: the first application), or of
        the owner given as applicationId/composeId; "log" sets its log."""
        fields = dict(fields)
        log = fields.pop("log", "")
        name = fields.pop("service", None)
        if name is not None:
            service = self.services.get(name)
            if service is None:
                raise SimError(400, f"no service named {name!r}")
        elif fields.get("composeId"):
            service = self.service_by_id("compose", fields["composeId"])
        else:
            service = self.service_by_id("application", fields.get("applicationId")) \
                if fields.get("applicationId") else next(
                    s for s in self.services.values() if s["kind"] == "application")
        if service is None:
            raise SimError(400, "applicationId/composeId names no service")
        if not isinstance(log, str):
            raise SimError(400, "log must be a string")
        row = self.new_row(random.Random(), service, "running", None, "Deploy", time.time())
        dep_id = fields.get("deploymentId", row["deploymentId"])
        if not isinstance(dep_id, str):
            raise SimError(400, "deploymentId must be a string")
        if dep_id in self.deployments:
            raise SimError(409, f"deployment {dep_id} already exists")
        deep_merge(row, fields)
        self.deployments[dep_id] = row
        self.changed()
        self.logs[dep_id] = log.splitlines()
        return row

    def admin_deployment(self, method, dep_id, req):
        if method == "GET":
            return admin_json(200, self.deployments[dep_id])
        if method == "PATCH":
            fields = admin_body(req)
            if fields.get("deploymentId", dep_id) != dep_id:
                raise SimError(400, "the id cannot be changed; create a new deployment")
            self.changed()
            return admin_json(200, deep_merge(self.deployments[dep_id], fields))
        if method == "DELETE":
            del self.deployments[dep_id]
            self.changed()
            self.logs.pop(dep_id, None)
            return admin_json(200, {"deleted": dep_id})
        raise SimError(405, f"{method} not allowed here")

    def admin_log(self, method, dep_id, req):
        if method == "GET":
            return admin_json(200, {"log": "".join(
                line + "\n" for line in self.logs.get(dep_id, []))})
        body = admin_body(req)
        if method == "PUT" and isinstance(body.get("log"), str):
            self.logs[dep_id] = body["log"].splitlines()
        elif method == "POST" and isinstance(body.get("append"), str):
            self.logs.setdefault(dep_id, []).extend(body["append"].splitlines())
        elif method in ("PUT", "POST"):
            raise SimError(400, 'PUT takes {"log": str}, POST {"append": str}')
        else:
            raise SimError(405, f"{method} not allowed here")
        return admin_json(200, {"lines": len(self.logs[dep_id])})
