"""Tests of contrib/infrafs-sim itself: the HostUp v2 simulation and the
/_sim/ admin API that the filesystem's integration tests rely on.

One simulator process serves the whole module; every test starts from
POST /_sim/reset, so tests do not depend on each other's order.
"""

import base64
import datetime
import http.client
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

SIM = os.environ.get("INFRAFS_SIM") or str(
    Path(__file__).resolve().parents[2] / "contrib" / "infrafs-sim")
TOKEN = "test-token-s3cr3t"   # distinctive, so a leak into the log is findable
VPS_COUNT = 25
JOB_SECONDS = 0.3


# ---------------------------------------------------------------------------
# Process and HTTP helpers
# ---------------------------------------------------------------------------

def start_sim(tmp_dir, *extra, startup_s=10):
    """Start the simulator on free ports; returns (process, ports, stderr path)."""
    ports_file = tmp_dir / "ports.json"
    err_path = tmp_dir / "sim.err"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, SIM, "--free-ports", "--ports-file", str(ports_file),
             *extra], stdout=subprocess.PIPE, stderr=err)
    deadline = time.monotonic() + startup_s
    while not ports_file.exists():
        if proc.poll() is not None:
            pytest.fail(f"simulator exited {proc.returncode}: {err_path.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"simulator did not write its ports file within {startup_s} s")
        time.sleep(0.02)
    return proc, json.loads(ports_file.read_text()), err_path


def stop_sim(proc, err_path, sig=signal.SIGTERM):
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("simulator ignored the signal")
    finally:
        proc.stdout.close()
    stderr = err_path.read_text()
    assert rc == 0, stderr
    assert "Traceback" not in stderr, stderr


class Sim:
    def __init__(self, port):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method, path, body=None, token=TOKEN, headers=None, raw=False):
        """(status, headers, body) with the body parsed as JSON unless raw."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs.setdefault("Authorization", f"Bearer {token}")
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, rhdrs, payload = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, rhdrs, payload = exc.code, exc.headers, exc.read()
        if raw:
            return status, rhdrs, payload
        return status, rhdrs, json.loads(payload) if payload else None

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def admin(self, method, path, body=None):
        status, _, payload = self.call(method, "/_sim" + path, body, token=None)
        return status, payload

    def config(self, **switches):
        status, payload = self.admin("POST", "/config", {"hostup": switches})
        assert status == 200, payload
        return payload

    def fault(self, **rule):
        status, payload = self.admin("POST", "/faults", rule)
        assert status == 201, payload
        return payload["id"]

    def vps_list(self):
        return self.get("/api/v2/vps?limit=100")[2]["data"]

    def vps_by_state(self, power):
        return next(v for v in self.vps_list()
                    if v["powerState"] == power and v["serviceStatus"] == "active")

    def walk(self, limit):
        """All VPSes through the cursor, asserting the envelope on each page."""
        seen, cursor, pages = [], None, 0
        while True:
            path = f"/api/v2/vps?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            status, _, page = self.get(path)
            assert status == 200, page
            assert set(page) == {"data", "hasMore", "nextCursor"}
            assert len(page["data"]) <= limit
            seen += [v["id"] for v in page["data"]]
            pages += 1
            if not page["hasMore"]:
                assert page["nextCursor"] is None
                return seen, pages
            assert page["nextCursor"] and len(page["data"]) == limit
            cursor = page["nextCursor"]

    def raw_connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim")
    proc, ports, err_path = start_sim(
        tmp, "--vps-count", str(VPS_COUNT), "--job-seconds", str(JOB_SECONDS),
        "--token", TOKEN, "--quiet")
    try:
        yield Sim(ports["hostup"])
    finally:
        stop_sim(proc, err_path)


@pytest.fixture(autouse=True)
def fresh(sim):
    assert sim.admin("POST", "/reset") == (200, {"ok": True})


def assert_problem(payload, headers, status, code, instance):
    assert headers["Content-Type"] == "application/problem+json"
    assert set(payload) >= {"type", "title", "status", "detail", "code",
                            "instance", "requestId", "timestamp"}
    assert payload["type"] == f"https://developer.hostup.se/errors/{code}"
    assert payload["status"] == status and payload["code"] == code
    assert payload["instance"] == instance
    assert payload["requestId"].startswith("req_")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payload["timestamp"])


def poll_job(sim, poll_url, timeout=5):
    """Statuses seen (consecutive duplicates folded) until terminal."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, body = sim.get(poll_url)
        assert status == 200, body
        current = body["operation"]["status"]
        if not seen or seen[-1] != current:
            seen.append(current)
        if current in ("completed", "failed"):
            return seen, body
        time.sleep(0.02)
    pytest.fail(f"job never finished: {seen}")


# ---------------------------------------------------------------------------
# Process behaviour
# ---------------------------------------------------------------------------

def test_start_line_and_clean_exit_on_sigint(tmp_path):
    proc, ports, err_path = start_sim(tmp_path)
    line = proc.stdout.readline().decode()
    assert line == f"infrafs-sim: hostup on http://127.0.0.1:{ports['hostup']}\n"
    stop_sim(proc, err_path, signal.SIGINT)
    assert not (tmp_path / "ports.json").exists()


# ---------------------------------------------------------------------------
# Auth and errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "wrong"])
def test_auth_failure_is_rfc7807(sim, token):
    status, headers, body = sim.get("/api/v2/vps", token=token)
    assert status == 401
    assert_problem(body, headers, 401, "unauthorized", "/api/v2/vps")
    assert headers["X-Request-Id"] == body["requestId"]


def test_legacy_api_key_header_is_accepted(sim):
    status, _, body = sim.get("/api/v2/vps", token=None, headers={"X-API-Key": TOKEN})
    assert status == 200 and len(body["data"]) == 20


def test_unknown_path_and_method(sim):
    status, headers, body = sim.get("/api/v2/nothing")
    assert status == 404
    assert_problem(body, headers, 404, "not_found", "/api/v2/nothing")
    status, headers, _ = sim.call("DELETE", "/api/v2/vps")
    assert status == 405 and headers["Allow"] == "GET"


def test_problem_content_type_switch(sim):
    sim.config(problem_content_type="application/json")
    status, headers, body = sim.get("/api/v2/vps", token="wrong")
    assert status == 401 and headers["Content-Type"] == "application/json"
    assert body["code"] == "unauthorized"


# ---------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [1, 7, 20, 25, 100])
def test_pagination_walks_every_vps_once(sim, limit):
    ids, pages = sim.walk(limit)
    assert len(ids) == len(set(ids)) == VPS_COUNT
    assert set(ids) == set(sim.admin("GET", "/hostup/vps")[1]["ids"])
    assert pages == max(1, math.ceil(VPS_COUNT / limit))


def test_default_page_size_is_20(sim):
    _, _, page = sim.get("/api/v2/vps")
    assert len(page["data"]) == 20 and page["hasMore"] is True


def test_walk_survives_deleting_an_unseen_vps(sim):
    all_ids = sim.admin("GET", "/hostup/vps")[1]["ids"]
    _, _, first = sim.get("/api/v2/vps?limit=5")
    assert sim.admin("DELETE", f"/hostup/vps/{all_ids[5]}")[0] == 200
    seen, cursor = [v["id"] for v in first["data"]], first["nextCursor"]
    while cursor:
        _, _, page = sim.get(f"/api/v2/vps?limit=5&cursor={cursor}")
        seen += [v["id"] for v in page["data"]]
        cursor = page["nextCursor"]
    assert seen == all_ids[:5] + all_ids[6:]


@pytest.mark.parametrize("query,pointer", [
    ("limit=0", "/limit"), ("limit=101", "/limit"), ("limit=abc", "/limit"),
    ("limit=", "/limit"), ("cursor=bm90LWEtY3Vyc29y", "/cursor"), ("cursor=%25%25", "/cursor"),
])
def test_bad_list_parameters(sim, query, pointer):
    status, headers, body = sim.get(f"/api/v2/vps?{query}")
    assert status == 400
    assert_problem(body, headers, 400, "invalid_request", "/api/v2/vps")
    assert body["errors"][0]["pointer"] == pointer


def test_vps_shape_and_variety(sim):
    vpses = sim.vps_list()
    for vps in vpses:
        assert re.fullmatch(r"vps_01[0-9a-hjkmnp-tv-z]{24}", vps["id"])
        assert {"name", "primaryIp", "serviceStatus", "powerState", "operatingSystem",
                "billing", "resources", "bandwidth", "tags", "pinned", "createdAt",
                "hostname", "location"} <= set(vps)
        assert set(vps["resources"]) == {"cpuCores", "memoryGb", "storageGb"}
        assert set(vps["billing"]) == {"amount", "currencyCode", "billingCycle",
                                       "isPayg", "periodYears"}
    assert any(v["primaryIp"] is None for v in vpses)
    assert any(v["operatingSystem"] is None for v in vpses)
    assert any(v["tags"] == [] for v in vpses)
    assert {"running", "stopped"} <= {v["powerState"] for v in vpses}
    assert [v["createdAt"] for v in vpses] == sorted(v["createdAt"] for v in vpses)


def test_filters(sim):
    target = [v for v in sim.vps_list() if v["primaryIp"]][7]
    _, _, page = sim.get(f"/api/v2/vps?name={target['name'].upper()}")
    assert [v["id"] for v in page["data"]] == [target["id"]]
    _, _, page = sim.get(f"/api/v2/vps?primaryIp={target['primaryIp']}")
    assert [v["id"] for v in page["data"]] == [target["id"]]
    _, _, page = sim.get("/api/v2/vps?name=no-such-vps")
    assert page == {"data": [], "hasMore": False, "nextCursor": None}


def test_data_is_deterministic_from_seed(sim):
    before = sim.vps_list()
    sim.admin("POST", "/reset")
    assert sim.vps_list() == before


# ---------------------------------------------------------------------------
# Detail, details, status
# ---------------------------------------------------------------------------

def test_detail_and_envelope_switch(sim):
    listed = sim.vps_list()[0]
    status, _, bare = sim.get(f"/api/v2/vps/{listed['id']}")
    assert status == 200
    assert {k: bare[k] for k in listed} == listed and "actions" not in bare
    sim.config(detail_envelope=True, actions_on_detail=True)
    _, _, wrapped = sim.get(f"/api/v2/vps/{listed['id']}")
    assert set(wrapped) == {"data"} and wrapped["data"]["id"] == listed["id"]
    assert wrapped["data"]["actions"]["canRestart"] == {"allowed": True, "reason": None}


def test_unknown_vps(sim):
    status, headers, body = sim.get("/api/v2/vps/vps_01nosuchvps")
    assert status == 404
    assert_problem(body, headers, 404, "vps_not_found", "/api/v2/vps/vps_01nosuchvps")


def test_details_gates(sim):
    running, stopped = sim.vps_by_state("running"), sim.vps_by_state("stopped")
    _, _, details = sim.get(f"/api/v2/vps/{running['id']}/details")
    gates = details["actions"]
    assert gates["canStart"]["allowed"] is False and gates["canStart"]["reason"]
    for name in ("canShutdown", "canStop", "canRestart", "canReset"):
        assert gates[name] == {"allowed": True, "reason": None}
    _, _, details = sim.get(f"/api/v2/vps/{stopped['id']}/details")
    gates = details["actions"]
    assert gates["canStart"] == {"allowed": True, "reason": None}
    for name in ("canShutdown", "canStop", "canRestart", "canReset"):
        assert gates[name] == {"allowed": False, "reason": "VPS is stopped"}
    assert {"productName", "billing", "bandwidth", "ipAddresses", "sshKeys",
            "powerState"} <= set(details)


def test_status_endpoint(sim):
    running = sim.vps_by_state("running")
    _, _, st = sim.get(f"/api/v2/vps/{running['id']}/status")
    assert set(st) == {"id", "powerState", "uptimeSeconds", "cpuUsagePercent", "cpuCores",
                       "memory", "storage", "network", "pendingTasks"}
    assert st["powerState"] == "running" and st["uptimeSeconds"] > 0
    assert set(st["network"]) == {"inboundGb", "outboundGb", "totalGb"}


# ---------------------------------------------------------------------------
# Actions and jobs
# ---------------------------------------------------------------------------

def test_action_job_progression(sim):
    sim.config(job_seconds=0.6)
    vps = sim.vps_by_state("stopped")
    status, headers, body = sim.call("POST", f"/api/v2/vps/{vps['id']}/actions/start")
    assert status == 202
    op = body["operation"]
    assert op["status"] == "queued" and op["result"] is None
    assert re.fullmatch(r"job_01[0-9a-z]{24}", op["jobId"])
    assert op["pollUrl"] == f"/api/jobs/{op['jobId']}"
    _, _, st = sim.get(f"/api/v2/vps/{vps['id']}/status")
    assert st["pendingTasks"] == 1
    # A second action while one is pending is refused.
    assert sim.call("POST", f"/api/v2/vps/{vps['id']}/actions/start")[0] == 409
    seen, final = poll_job(sim, op["pollUrl"])
    assert seen[-1] == "completed" and "in_progress" in seen
    assert seen == [s for s in ("queued", "in_progress", "completed") if s in seen]
    assert final["operation"]["result"]["powerState"] == "running"
    _, _, now = sim.get(f"/api/v2/vps/{vps['id']}")
    assert now["powerState"] == "running"


def test_transitional_power_state(sim):
    sim.config(job_seconds=1.0)
    vps = sim.vps_by_state("running")
    _, _, body = sim.call("POST", f"/api/v2/vps/{vps['id']}/actions/shutdown")
    time.sleep(0.4)                       # past the queued quarter
    assert sim.get(f"/api/v2/vps/{vps['id']}")[2]["powerState"] == "stopping"
    poll_job(sim, body["operation"]["pollUrl"])
    assert sim.get(f"/api/v2/vps/{vps['id']}")[2]["powerState"] == "stopped"


def test_disallowed_and_unknown_actions(sim):
    running = sim.vps_by_state("running")
    status, headers, body = sim.call("POST", f"/api/v2/vps/{running['id']}/actions/start")
    assert status == 409
    assert_problem(body, headers, 409, "vps_not_ready",
                   f"/api/v2/vps/{running['id']}/actions/start")
    assert "running" in body["detail"]
    assert sim.call("POST", f"/api/v2/vps/{running['id']}/actions/explode")[0] == 404
    assert sim.call("POST", "/api/v2/vps/vps_01nosuch/actions/start")[2]["code"] == "vps_not_found"


def test_restart_force_body(sim):
    running = sim.vps_by_state("running")
    path = f"/api/v2/vps/{running['id']}/actions/restart"
    assert sim.call("POST", path, {"force": "yes"})[0] == 400
    status, _, body = sim.call("POST", path, {"force": True})
    assert status == 202
    jobs = sim.admin("GET", "/hostup/jobs")[1]
    assert [(j["jobId"], j["force"]) for j in jobs] == [(body["operation"]["jobId"], True)]


def test_failed_job_leaves_vps_unchanged(sim):
    sim.config(fail_next_jobs=1)
    vps = sim.vps_by_state("stopped")
    _, _, body = sim.call("POST", f"/api/v2/vps/{vps['id']}/actions/start")
    seen, final = poll_job(sim, body["operation"]["pollUrl"])
    assert seen[-1] == "failed" and final["operation"]["result"] is None
    assert sim.get(f"/api/v2/vps/{vps['id']}")[2]["powerState"] == "stopped"
    assert sim.admin("GET", "/config")[1]["hostup"]["fail_next_jobs"] == 0
    _, _, body = sim.call("POST", f"/api/v2/vps/{vps['id']}/actions/start")
    assert poll_job(sim, body["operation"]["pollUrl"])[0][-1] == "completed"


def test_legacy_job_shape(sim):
    sim.config(job_shape="legacy")
    vps = sim.vps_by_state("running")
    _, _, body = sim.call("POST", f"/api/v2/vps/{vps['id']}/actions/reset")
    assert body["operation"]["status"] == "queued"   # the 202 is always v2
    deadline = time.monotonic() + 5
    while True:
        status, _, job = sim.get(body["operation"]["pollUrl"])
        assert status == 200 and job["success"] is True
        assert {"timestamp", "requestId", "data"} <= set(job)
        data = job["data"]
        assert {"jobId", "state", "status", "isCompleted", "isFailed", "isRunning",
                "isWaiting", "progress"} <= set(data)
        if data["isCompleted"] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert data["isCompleted"] and not data["isFailed"] and data["state"] == "completed"


def test_unknown_job(sim):
    status, headers, body = sim.get("/api/jobs/job_01nosuchjob")
    assert status == 404
    assert_problem(body, headers, 404, "job_not_found", "/api/jobs/job_01nosuchjob")


# ---------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------

def test_fault_status_native_body_times_and_log(sim):
    rule = sim.fault(path=r"^/api/v2/vps$", action="status", status=503, times=2)
    sim.admin("DELETE", "/requests")
    for _ in range(2):
        status, headers, body = sim.get("/api/v2/vps", token=None)  # before auth
        assert status == 503
        assert_problem(body, headers, 503, "service_unavailable", "/api/v2/vps")
    assert sim.get("/api/v2/vps")[0] == 200
    log = sim.admin("GET", "/requests")[1]
    assert [(e["status"], e["fault"]) for e in log] == [(503, rule), (503, rule), (200, None)]


def test_fault_status_custom_body_and_filters(sim):
    sim.fault(method="GET", path="/status$", action="status", status=500, body="oops",
              content_type="text/plain", headers={"X-Sim": "yes"}, times=0)
    vps = sim.vps_list()[0]
    for _ in range(3):
        status, headers, body = sim.get(f"/api/v2/vps/{vps['id']}/status", raw=True)
        assert (status, body, headers["Content-Type"], headers["X-Sim"]) == (
            500, b"oops", "text/plain", "yes")
    assert sim.get(f"/api/v2/vps/{vps['id']}")[0] == 200
    assert sim.admin("DELETE", "/faults") == (200, {"ok": True})
    assert sim.get(f"/api/v2/vps/{vps['id']}/status")[0] == 200


def test_fault_429_has_retry_after(sim):
    sim.fault(action="status", status=429)
    status, headers, body = sim.get("/api/v2/vps")
    assert status == 429 and headers["Retry-After"] == "1"
    assert body["code"] == "rate_limited" and headers["X-RateLimit-Remaining"] == "0"


def test_fault_unusual_status(sim):
    sim.fault(action="status", status=599)
    status, headers, body = sim.get("/api/v2/vps")
    assert status == 599 and body["status"] == 599


def test_fault_delay(sim):
    sim.fault(action="delay", delay_ms=300)
    started = time.monotonic()
    assert sim.get("/api/v2/vps")[0] == 200
    assert time.monotonic() - started >= 0.3


def test_fault_malformed(sim):
    sim.fault(action="malformed")
    status, headers, body = sim.get("/api/v2/vps", raw=True)
    assert status == 200 and headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(body)


def test_fault_truncated(sim):
    sim.fault(action="truncated")
    conn = sim.raw_connection()
    conn.request("GET", "/api/v2/vps", headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()


def test_fault_drop(sim):
    sim.fault(action="drop", method="POST")
    vps = sim.vps_by_state("running")
    conn = sim.raw_connection()
    conn.request("POST", f"/api/v2/vps/{vps['id']}/actions/restart",
                 headers={"Authorization": f"Bearer {TOKEN}"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    conn.close()
    assert sim.admin("GET", "/requests")[1][-1]["status"] is None
    assert sim.admin("GET", "/hostup/jobs")[1] == []     # dropped before acting


@pytest.mark.parametrize("chunked", [False, True])
def test_fault_oversized_streams_valid_json_of_the_exact_size(sim, chunked):
    size = 3 * 1024 * 1024 + 7
    sim.fault(action="oversized", size=size, chunked=chunked)
    status, headers, body = sim.get("/api/v2/vps", raw=True)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert (headers.get("Content-Length") is None) == chunked
    assert len(body) == size
    assert json.loads(body)["data"] == []


def test_chaos_fails_about_rate_of_requests_with_the_kinds_asked(sim):
    status, chaos = sim.admin("POST", "/chaos", {"rate": 0.5, "kinds": ["5xx", "429"],
                                                 "seed": 7})
    assert status == 200 and chaos["rate"] == 0.5
    statuses = [sim.get("/api/v2/vps?limit=1")[0] for _ in range(200)]
    failed = [s for s in statuses if s != 200]
    assert 60 <= len(failed) <= 140
    assert set(failed) <= {500, 502, 503, 429} and 429 in failed
    _, chaos = sim.admin("GET", "/chaos")
    assert chaos["requests"] == 200
    assert chaos["injected"]["5xx"] + chaos["injected"]["429"] == len(failed)
    log = sim.admin("GET", "/requests")[1]
    assert sorted({e["fault"] for e in log if e["fault"]}) == ["random:429", "random:5xx"]
    # Explicit rules come first; DELETE (and reset) turn chaos off.
    sim.admin("DELETE", "/chaos")
    assert all(sim.get("/api/v2/vps?limit=1")[0] == 200 for _ in range(20))


@pytest.mark.parametrize("settings", [{"rate": 2}, {"rate": 0.1, "kinds": ["boom"]},
                                      {"rate": 0.1, "kinds": []}, {"delay_ms": -1},
                                      {"colour": "red"}])
def test_bad_chaos_settings_are_refused(sim, settings):
    status, body = sim.admin("POST", "/chaos", settings)
    assert status == 400 and body["error"]


def test_fault_rate_option_sets_chaos_at_start_and_reset_returns_to_it(tmp_path):
    proc, ports, err_path = start_sim(tmp_path, "--quiet", "--fault-rate", "0.25",
                                      "--fault-delay-ms", "10")
    try:
        s = Sim(ports["hostup"])
        s.admin("POST", "/chaos", {"rate": 0})
        assert s.admin("POST", "/reset") == (200, {"ok": True})
        _, chaos = s.admin("GET", "/chaos")
        assert chaos["rate"] == 0.25 and chaos["delay_ms"] == 10
    finally:
        stop_sim(proc, err_path)


@pytest.mark.parametrize("rule", [
    {"action": "explode"}, {"action": "status"}, {"action": "status", "status": 100},
    {"action": "drop", "times": -1}, {"action": "drop", "path": "("},
    {"action": "oversized"}, {"action": "oversized", "size": 5},
    {"action": "oversized", "size": 100, "chunked": "yes"},
])
def test_bad_fault_rules_are_refused(sim, rule):
    status, body = sim.admin("POST", "/faults", rule)
    assert status == 400 and body["error"]


# ---------------------------------------------------------------------------
# Rate limiting
# ---------------------------------------------------------------------------

def test_rate_limit_headers_and_429(sim):
    sim.config(rate_limit={"limit": 3, "window_s": 60})
    remaining = []
    for _ in range(3):
        status, headers, _ = sim.get("/api/v2/vps?limit=1")
        assert status == 200 and headers["X-RateLimit-Limit"] == "3"
        remaining.append(headers["X-RateLimit-Remaining"])
        reset = datetime.datetime.strptime(
            headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert remaining == ["2", "1", "0"]
    assert reset > datetime.datetime.now(datetime.timezone.utc)
    status, headers, body = sim.get("/api/v2/vps?limit=1")
    assert status == 429 and body["code"] == "rate_limited"
    assert 15 <= int(headers["Retry-After"]) <= 20      # one token per 20 s
    assert headers["X-RateLimit-Remaining"] == "0"
    # Another credential has its own bucket.
    assert sim.get("/api/v2/vps", token="other")[0] == 401


def test_rate_limit_reset_as_epoch(sim):
    sim.config(reset_format="epoch")
    _, headers, _ = sim.get("/api/v2/vps?limit=1")
    assert re.fullmatch(r"\d+", headers["X-RateLimit-Reset"])
    assert time.time() - 1 <= int(headers["X-RateLimit-Reset"]) <= time.time() + 61


# ---------------------------------------------------------------------------
# Request log and admin API
# ---------------------------------------------------------------------------

def test_request_log_records_without_secrets(sim):
    sim.admin("DELETE", "/requests")
    vps = sim.vps_by_state("running")
    sim.get("/api/v2/vps?limit=2", token=None, headers={"X-API-Key": TOKEN})
    sim.call("POST", f"/api/v2/vps/{vps['id']}/actions/restart", {"force": True})
    sim.admin("GET", "/config")                                    # not logged
    status, log = sim.admin("GET", "/requests")
    assert status == 200 and TOKEN not in json.dumps(log)
    # The first entry is vps_by_state's own listing.
    assert [(e["method"], e["path"]) for e in log] == [
        ("GET", "/api/v2/vps"), ("GET", "/api/v2/vps"),
        ("POST", f"/api/v2/vps/{vps['id']}/actions/restart")]
    listing, restart = log[1], log[2]
    assert listing["query"] == {"limit": "2"} and listing["body"] is None
    assert listing["auth"] == "x-api-key" and restart["auth"] == "bearer"
    assert json.loads(restart["body"]) == {"force": True} and restart["status"] == 202
    assert abs(restart["time"] - time.time()) < 5


def test_admin_vps_crud(sim):
    status, created = sim.admin("POST", "/hostup/vps",
                                {"name": "sim-made", "powerState": "stopped",
                                 "resources": {"cpuCores": 3}})
    assert status == 201 and created["resources"]["memoryGb"] is not None
    assert sim.admin("GET", "/hostup/vps")[1]["ids"][-1] == created["id"]
    assert sim.get("/api/v2/vps?name=SIM-MADE")[2]["data"] == [created]
    status, patched = sim.admin("PATCH", f"/hostup/vps/{created['id']}",
                                {"primaryIp": None, "billing": {"amount": 1.5}})
    assert patched["primaryIp"] is None and patched["billing"]["amount"] == 1.5
    assert patched["billing"]["currencyCode"] == created["billing"]["currencyCode"]
    assert sim.get(f"/api/v2/vps/{created['id']}")[2]["billing"]["amount"] == 1.5
    assert sim.admin("DELETE", f"/hostup/vps/{created['id']}") == (
        200, {"deleted": created["id"]})
    assert sim.get(f"/api/v2/vps/{created['id']}")[0] == 404
    assert sim.admin("DELETE", f"/hostup/vps/{created['id']}")[0] == 404


def test_created_vps_with_unsafe_id_is_served(sim):
    # Lets filesystem tests check that API ids can never escape a directory.
    _, created = sim.admin("POST", "/hostup/vps", {"id": "../evil"})
    assert created["id"] in sim.admin("GET", "/hostup/vps")[1]["ids"]
    assert sim.get("/api/v2/vps/..%2Fevil")[2]["id"] == "../evil"


def test_the_token_switch_rotates_the_hostup_key(sim):
    assert sim.get("/api/v2/vps")[0] == 200
    sim.config(token="rotated")
    assert sim.get("/api/v2/vps")[0] == 401
    assert sim.get("/api/v2/vps", token="rotated")[0] == 200


def test_config_shape_validation_and_reset(sim):
    status, config = sim.admin("GET", "/config")
    assert status == 200 and {"hostup": config["hostup"]} == {"hostup": {
        "detail_envelope": False, "actions_on_detail": False, "job_shape": "operation",
        "fail_next_jobs": 0, "problem_content_type": "application/problem+json",
        "rate_limit": {"limit": 600, "window_s": 60}, "reset_format": "iso",
        "job_seconds": JOB_SECONDS, "token": TOKEN}}
    for bad in ({"hostup": {"nope": 1}}, {"hostup": {"job_shape": "x"}},
                {"nosuch": {}}, {"hostup": {"rate_limit": {"limit": 0, "window_s": 1}}}):
        assert sim.admin("POST", "/config", bad)[0] == 400
    sim.config(detail_envelope=True)
    vps = sim.vps_list()[0]
    sim.admin("PATCH", f"/hostup/vps/{vps['id']}", {"name": "renamed"})
    sim.fault(action="drop", path="/never")
    sim.admin("POST", "/reset")
    assert sim.admin("GET", "/config")[1] == config
    assert sim.vps_list()[0]["name"] == vps["name"]
    assert sim.admin("GET", "/faults")[1] == []
    assert [e["path"] for e in sim.admin("GET", "/requests")[1]] == ["/api/v2/vps"]


# ---------------------------------------------------------------------------
# Resource counts of the other listing providers (the engine benchmark's)
# ---------------------------------------------------------------------------

def provider_call(port, path, provider, method="GET", body=None):
    """(status, JSON body) from a provider's own API, authenticated its way."""
    headers = {"Content-Type": "application/json"}
    if provider == "deployhq":
        headers["Authorization"] = "Basic " + base64.b64encode(
            f"demo@example.com:{TOKEN}".encode()).decode()
    elif provider == "dokploy":
        headers["x-api-key"] = TOKEN
    else:
        headers["Authorization"] = f"Bearer {TOKEN}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        resp = conn.getresponse()
        payload = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(payload) if payload else None


def test_bulk_counts_come_after_the_seeded_data_unchanged(sim, tmp_path):
    """--deployhq-count, --hostatlas-count and --dokploy-count add generated
    resources after the seeded ones, which stay as the defaults serve them."""
    default = {
        "deployhq": sim.admin("GET", "/deployhq/hosted_resources")[1]["resources"],
        "hostatlas": sim.admin("GET", "/hostatlas/servers")[1]["ids"],
        "dokploy": sim.admin("GET", "/dokploy/deployments")[1],
    }
    assert (len(default["deployhq"]), len(default["hostatlas"]),
            len(default["dokploy"])) == (8, 30, 12)
    proc, ports, err_path = start_sim(tmp_path, "--token", TOKEN, "--quiet",
                                      "--deployhq-count", "57", "--hostatlas-count", "41",
                                      "--dokploy-count", "230")
    try:
        big = Sim(ports["hostup"])
        # DeployHQ: the seeded eight as they were, then active-or-other VPSes.
        resources = big.admin("GET", "/deployhq/hosted_resources")[1]["resources"]
        assert len(resources) == 57 and resources[:8] == default["deployhq"]
        generated = resources[8:]
        assert len({r["identifier"] for r in resources}) == 57
        assert len({r["name"] for r in generated}) == 49
        assert all(r["kind"] == "hosted_resource" and r["ssh_key"]["public_key"]
                   for r in generated)
        assert {r["status"] for r in generated} <= {"active", "provisioning",
                                                     "suspended", "error"}
        status, listed = provider_call(ports["deployhq"], "/hosted_resources", "deployhq")
        assert status == 200 and listed == resources

        # HostAtlas: the count is the server_count switch's default, so a
        # reset keeps it; the first thirty are the default servers.
        ids = big.admin("GET", "/hostatlas/servers")[1]["ids"]
        assert len(ids) == 41 and ids[:30] == default["hostatlas"]
        assert big.admin("GET", "/config")[1]["hostatlas"]["server_count"] == 41
        status, page = provider_call(ports["hostatlas"], "/api/v1/servers?page=2&per_page=25",
                                     "hostatlas")
        assert status == 200 and [s["id"] for s in page["data"]] == ids[25:]
        assert page["meta"] == {"total": 41, "page": 2, "per_page": 25}
        # Details through the id index, which follows deletes and creates.
        assert provider_call(ports["hostatlas"], f"/api/v1/servers/{ids[-1]}",
                             "hostatlas")[1]["id"] == ids[-1]
        big.admin("DELETE", f"/hostatlas/servers/{ids[-1]}")
        assert provider_call(ports["hostatlas"], f"/api/v1/servers/{ids[-1]}",
                             "hostatlas")[0] == 404
        big.admin("POST", "/hostatlas/servers", {"id": 999999})
        assert provider_call(ports["hostatlas"], "/api/v1/servers/999999",
                             "hostatlas")[1]["hostname"]

        # Dokploy: the seeded twelve, then 218 finished deployments over
        # three generated services (100 each at most) of a project "fleet".
        rows = big.admin("GET", "/dokploy/deployments")[1]
        assert len(rows) == 230
        seeded = {r["deploymentId"]: r["title"] for r in default["dokploy"]}
        assert {r["deploymentId"]: r["title"] for r in rows
                if r["deploymentId"] in seeded} == seeded
        services = big.admin("GET", "/dokploy/services")[1]
        fleet = {n: s for n, s in services.items() if s["project"] == "fleet"}
        assert sorted(fleet) == ["fleet-app-00000", "fleet-app-00001", "fleet-app-00002"]
        status, projects = provider_call(ports["dokploy"], "/api/project.all", "dokploy")
        assert [p["name"] for p in projects] == ["shop", "blog", "sandbox", "fleet"]
        app = fleet["fleet-app-00000"]["id"]
        status, owned = provider_call(
            ports["dokploy"], f"/api/deployment.all?applicationId={app}", "dokploy")
        assert status == 200 and len(owned) == 73
        assert [r["createdAt"] for r in owned] == sorted(
            (r["createdAt"] for r in owned), reverse=True)
        assert {r["status"] for r in owned} <= {"done", "error", "cancelled"}
        status, text = provider_call(
            ports["dokploy"], f"/api/deployment.readLogs?deploymentId="
            f"{owned[0]['deploymentId']}&tail=100", "dokploy")
        assert status == 200 and text.count("\n") == 3
        # The per-service index follows admin deletes and creates.
        big.admin("DELETE", f"/dokploy/deployments/{owned[0]['deploymentId']}")
        _, created = big.admin("POST", "/dokploy/deployments",
                               {"service": "fleet-app-00000", "status": "done"})
        _, after = provider_call(
            ports["dokploy"], f"/api/deployment.all?applicationId={app}", "dokploy")
        assert [r["deploymentId"] for r in after] == (
            [created["deploymentId"]] + [r["deploymentId"] for r in owned[1:]])
    finally:
        stop_sim(proc, err_path)


def test_a_hundred_thousand_resources_start_and_answer_in_seconds(tmp_path):
    t0 = time.monotonic()
    proc, ports, err_path = start_sim(
        tmp_path, "--token", TOKEN, "--quiet", "--vps-count", "25000",
        "--deployhq-count", "25000", "--hostatlas-count", "25000",
        "--dokploy-count", "25000", startup_s=60)
    try:
        started = time.monotonic() - t0
        big = Sim(ports["hostup"])
        assert big.admin("POST", "/config", {"hostatlas": {"max_per_page": 100}})[0] == 200
        t0 = time.monotonic()
        status, page = provider_call(ports["hostatlas"],
                                     "/api/v1/servers?page=250&per_page=100", "hostatlas")
        assert status == 200 and len(page["data"]) == 100
        last = page["data"][-1]["id"]
        assert provider_call(ports["hostatlas"], f"/api/v1/servers/{last}",
                             "hostatlas")[1]["id"] == last
        # 10.x addresses stay valid however many servers there are.
        assert all(0 <= int(o) <= 255 for o in page["data"][-1]["ip_address"].split("."))
        services = big.admin("GET", "/dokploy/services")[1]
        fleet = [s for s in services.values() if s["project"] == "fleet"]
        assert len(fleet) == 250    # 24,988 generated deployments, 100 per service
        for svc in fleet[:20]:
            kind = "applicationId" if svc["kind"] == "application" else "composeId"
            proc_name = "all" if svc["kind"] == "application" else "allByCompose"
            status, rows = provider_call(
                ports["dokploy"], f"/api/deployment.{proc_name}?{kind}={svc['id']}",
                "dokploy")
            assert status == 200 and 0 < len(rows) <= 100
        status, listed = provider_call(ports["deployhq"], "/hosted_resources", "deployhq")
        assert status == 200 and len(listed) == 25000
        answered = time.monotonic() - t0
        # Seconds, not minutes, even on a busy two-core machine.
        assert started < 45 and answered < 30, (started, answered)
    finally:
        stop_sim(proc, err_path)
