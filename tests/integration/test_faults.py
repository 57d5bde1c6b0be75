"""Resilience under API faults, through the real mount (doc/SEMANTICS.md §5.5, §6.4, §8):
whatever the API does during a refresh (5xx, 429, silence, dropped or
truncated connections, malformed JSON, web pages, oversized or too deeply
nested answers, too many resources), the tree stays intact and readable,
the account says what went wrong, reads never wait, and control writes fail
with the errno of doc/SEMANTICS.md §5.5 within their documented bound."""

import errno
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import (snapshot, INFRAFS, ISO_UTC, TOKEN, hostup_config, q, sh, timed,
                      wait_for, write_errno)

LIST = r"^/api/v2/vps$"
REFRESH_FAILED = r"refresh failed"
POWER_FAILED = r"power: '?restart'? failed"
MIB = 1024 * 1024
# src/http.c: MAX_BODY_BYTES; json-c's default depth.
MAX_BODY = 64 * MIB
HTML = ("<!DOCTYPE html>\n<html><head><title>Sign in - Example Portal</title></head>"
        "<body><form>...</form></body></html>\n")


def data_snapshot(mnt):
    """The VPS tree without our own per-write files."""
    return {k: v for k, v in snapshot(mnt.p("vps")).items()
            if not k.endswith("/last_action")}


def running(sim):
    return sim.vps_with(powerState="running", serviceStatus="active")[0]


def refresh_path(mnt, account="hostup"):
    return mnt.p("providers", account, "refresh")


# Each fault on the list answer: (rule, account keys, errno of the refresh
# write, what last_error must say, longest the write may take in seconds).
LIST_FAULTS = {
    "500": ({"action": "status", "status": 500}, {}, errno.EIO, r"HTTP 500", 3),
    "503 (retried)": ({"action": "status", "status": 503}, {}, errno.EIO,
                      r"HTTP 503 .*gave up after 4 attempts", 8),
    "429 (retried)": ({"action": "status", "status": 429}, {}, errno.EAGAIN,
                      r"HTTP 429 .*rate limiting", 8),
    "dropped connection": ({"action": "drop"}, {}, errno.EIO,
                           r"transfer from .* failed", 8),
    "truncated answer": ({"action": "truncated"}, {}, errno.EIO,
                         r"transfer from .* failed", 8),
    "malformed JSON": ({"action": "malformed"}, {}, errno.EIO, r"unreadable response", 3),
    "web page with 200": ({"action": "status", "status": 200, "body": HTML,
                           "content_type": "text/html; charset=utf-8"}, {}, errno.EIO,
                          r"unreadable response: HTTP 200 with text/html; charset=utf-8 "
                          r"\(\"Sign in - Example Portal\"\) instead of JSON; check `url`", 3),
    "JSON of another shape": ({"action": "status", "status": 200,
                               "body": '{"items": []}'}, {}, errno.EIO,
                              r'no "data" array', 3),
    "a cursor handed out twice": ({"action": "status", "status": 200,
                                   "body": '{"data": [], "hasMore": true, "nextCursor": "again"}'},
                                  {}, errno.EIO,
                                  r"GET /api/v2/vps\?limit=100&cursor=again: the API handed out "
                                  r"cursor 'again' a second time", 3),
    "JSON nested too deep": ({"action": "status", "status": 200,
                              "body": "[" * 200000 + "]" * 200000}, {}, errno.EIO,
                             r"nested more than 32 levels deep", 3),
    "oversized, announced": ({"action": "oversized", "size": MAX_BODY + 1}, {}, errno.EIO,
                             r"larger than 64 MiB.*not reading it", 5),
    "oversized, chunked": ({"action": "oversized", "size": MAX_BODY + MIB, "chunked": True},
                           {}, errno.EIO, r"larger than 64 MiB.*not reading it", 10),
    "no answer in time": ({"action": "delay", "delay_ms": 4000}, {"timeout": 1},
                          errno.ETIMEDOUT, r"no answer from .* in time", 4 * 1 + 3.5 + 2),
}


@pytest.mark.parametrize("fault", list(LIST_FAULTS))
def test_a_fault_during_refresh_keeps_the_tree_and_says_why(fresh_sim, make_mount, fault):
    rule, keys, want_errno, why, bound = LIST_FAULTS[fault]
    m = make_mount(hostup_config(fresh_sim, refresh=300, **keys))
    m.expect_stderr(REFRESH_FAILED)
    before = data_snapshot(m)
    assert len(os.listdir(m.p("vps", "hostup"))) == len(fresh_sim.vps_ids())
    fresh_sim.patch_vps(fresh_sim.vps_ids()[0], {"name": "not-seen-while-failing"})
    fresh_sim.fault(method="GET", path=LIST, times=0, **rule)

    got, took = timed(write_errno, refresh_path(m), "1\n")

    assert got == want_errno, f"{os.strerror(got) if got else 'success'}"
    assert took <= bound, f"the refresh write took {took:.1f}s (bound {bound}s)"
    assert data_snapshot(m) == before, "a failed refresh changed the tree"
    assert m.provider("state") == "stale\n"
    last_error = m.provider("last_error")
    assert re.search(why, last_error), last_error
    assert last_error.count("\n") == 1 and TOKEN not in last_error
    assert "account 'hostup': GET /api/v2/vps" in last_error
    line = m.provider("last_action")
    assert re.fullmatch(rf"{ISO_UTC} 1 failed - refresh failed: .*\n", line), line

    fresh_sim.clear_faults()
    m.refresh()
    assert m.provider("state") == "ok\n"
    assert m.read("vps", "hostup", fresh_sim.vps_ids()[0], "name") == \
        "not-seen-while-failing\n"


def test_valid_json_with_a_wrong_content_type_is_still_read(fresh_sim, make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=300, detail_limit=0))
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {"name": "labelled-text-plain"})
    page = fresh_sim.api_get("/api/v2/vps?limit=100")
    fresh_sim.fault(action="status", status=200, method="GET", path=LIST,
                    body=json.dumps(page), content_type="text/plain")

    m.refresh()

    assert m.provider("state") == "ok\n"
    assert m.read("vps", "hostup", vps_id, "name") == "labelled-text-plain\n"


def test_failing_detail_reads_keep_the_last_good_detail_fields(fresh_sim, make_mount):
    """Details and status are read per VPS after the list; one of them failing
    must not make their fields vanish until the next refresh. (Every detail
    is read on every refresh here: detail_max_age = 0.)"""
    m = make_mount(hostup_config(fresh_sim, refresh=300, detail_max_age=0))
    before = data_snapshot(m)
    vps_id = fresh_sim.vps_ids()[0]
    gate = m.vps(vps_id, "actions", "can_start", "allowed")
    assert os.path.exists(gate)
    fresh_sim.fault(action="status", status=500, method="GET", path=r"/(details|status)$",
                    times=0)

    m.refresh()

    assert m.provider("state") == "ok\n"
    assert os.path.exists(gate), "the detail fields vanished when /details failed"
    after = data_snapshot(m)
    assert sorted(after) == sorted(before)


def test_a_silent_detail_endpoint_costs_a_refresh_one_timeout_not_one_per_vps(fresh_sim,
                                                                              make_mount):
    """Against /details and /status that never answer, a refresh of N VPSes
    must not take 2 x N x (4 attempts x timeout + backoff)."""
    m = make_mount(hostup_config(fresh_sim, refresh=300, timeout=1))
    before = data_snapshot(m)
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {"name": "listed-while-details-hang"})
    fresh_sim.fault(action="delay", delay_ms=3000, method="GET", path=r"/(details|status)$",
                    times=0)
    fresh_sim.clear_requests()

    got, took = timed(write_errno, refresh_path(m), "1\n")

    assert got == 0, os.strerror(got)
    assert took <= 4 * 1 + 3.5 + 2, f"the refresh took {took:.1f}s"
    assert len(fresh_sim.requests("GET", r"/(details|status)$")) == 4, \
        "kept asking an API that had stopped answering"
    assert m.provider("state") == "ok\n"
    assert m.read("vps", "hostup", vps_id, "name") == "listed-while-details-hang\n"
    assert os.path.exists(m.vps(vps_id, "actions", "can_start", "allowed"))
    assert sorted(data_snapshot(m)) == sorted(before)


# ---- reads never wait ------------------------------------------------------------

def test_reads_stay_under_2s_while_every_api_request_stalls(fresh_sim, make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=300, timeout=30))
    ids = fresh_sim.vps_ids()
    before = data_snapshot(m)
    fresh_sim.fault(action="delay", delay_ms=20000, times=0)
    os.kill(m.pid, signal.SIGHUP)
    wait_for(lambda: fresh_sim.admin("GET", "/_sim/faults")[0]["hits"] > 0, timeout=5,
             what="the refresh to be stuck in the API")

    checks = {
        "ls -lR": f"ls -lR {q(m.path)}",
        "cat": f"cat {q(m.path)}/vps/hostup/*/name",
        "grep -r": f"grep -r -l running {q(m.p('vps'))}",
        "find": f"find {q(m.path)} -name power_state",
        "stat": f"stat {q(m.vps(ids[0], 'json'))}",
        "missing name": f"! stat {q(m.vps('vps_does_not_exist'))}",
        "statfs": f"stat -f {q(m.path)}",
        "providers": f"cat {q(m.p('providers', 'hostup'))}/*",
        "control read": f"cat {q(m.vps(ids[0], 'power'))}",
    }
    for what, cmd in checks.items():
        out, took = timed(sh, cmd, timeout=30)
        assert out.returncode == 0, f"{what}: {out.stderr}"
        assert took < 2, f"{what} took {took:.1f}s while the API stalls"
    assert data_snapshot(m) == before
    # Unmounting abandons the stalled request: no wait for the timeout.
    _, took = timed(m.umount)
    assert took < 5, f"unmount took {took:.1f}s"


# ---- control writes under faults ---------------------------------------------------

def test_a_power_write_against_a_silent_api_fails_etimedout_within_its_bound(fresh_sim,
                                                                             make_mount):
    """Bound: the action gate (a read) is tried 4 times, each up to `timeout`,
    with 0.5 + 1 + 2 s between them; the POST is never retried."""
    m = make_mount(hostup_config(fresh_sim, refresh=300, timeout=1))
    m.expect_stderr(POWER_FAILED)
    vps_id = running(fresh_sim)
    fresh_sim.fault(action="delay", delay_ms=3000, times=0)
    fresh_sim.clear_requests()

    got, took = timed(write_errno, m.vps(vps_id, "power"), "restart\n")

    assert got == errno.ETIMEDOUT, os.strerror(got) if got else "success"
    assert took <= 4 * 1 + 3.5 + 2, f"took {took:.1f}s"
    line = m.read("vps", "hostup", vps_id, "last_action")
    assert re.fullmatch(rf"{ISO_UTC} restart failed - .*no answer from .* in time.*\n",
                        line), line
    assert fresh_sim.requests("POST") == [], "acted although the gate could not be read"


def test_a_stalled_action_fails_etimedout_after_one_timeout_and_one_post(fresh_sim,
                                                                        make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=300, timeout=2))
    m.expect_stderr(POWER_FAILED)
    vps_id = running(fresh_sim)
    fresh_sim.fault(action="delay", delay_ms=5000, method="POST", times=0)
    fresh_sim.clear_requests()

    got, took = timed(write_errno, m.vps(vps_id, "power"), "restart\n")

    assert got == errno.ETIMEDOUT, os.strerror(got) if got else "success"
    assert 1.5 <= took <= 4, f"took {took:.1f}s"
    assert len(fresh_sim.requests("POST")) == 1, "an action must never be sent twice"


@pytest.mark.parametrize("rule,want", [
    ({"action": "status", "status": 503}, errno.EIO),
    ({"action": "status", "status": 429}, errno.EAGAIN),
    ({"action": "drop"}, errno.EIO),
], ids=["503", "429", "drop"])
def test_a_power_write_whose_gate_read_keeps_failing_says_so(fresh_sim, make_mount, rule,
                                                            want):
    m = make_mount(hostup_config(fresh_sim, refresh=300))
    m.expect_stderr(POWER_FAILED)
    vps_id = running(fresh_sim)
    fresh_sim.fault(method="GET", path=r"/details$", times=0, **rule)
    fresh_sim.clear_requests()

    got, took = timed(write_errno, m.vps(vps_id, "power"), "restart\n")

    assert got == want, os.strerror(got) if got else "success"
    assert took <= 8
    line = m.read("vps", "hostup", vps_id, "last_action")
    assert re.fullmatch(rf"{ISO_UTC} restart failed .*checking whether 'restart' is "
                        rf"allowed.*\n", line), line
    assert fresh_sim.requests("POST") == []


def test_unmount_does_not_wait_for_a_control_write_stuck_on_a_silent_api(fresh_sim,
                                                                        make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=300, timeout=60))
    vps_id = running(fresh_sim)
    fresh_sim.fault(action="delay", delay_ms=30000, method="POST", times=0)
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys\n"
         "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)\n"
         "try:\n    os.write(fd, b'restart\\n')\nexcept OSError as e:\n"
         "    sys.exit(e.errno)\n",
         m.vps(vps_id, "power")])
    wait_for(lambda: fresh_sim.admin("GET", "/_sim/faults")[0]["hits"] > 0, timeout=5,
             what="the POST to be stuck in the API")

    os.kill(m.pid, signal.SIGTERM)   # `fusermount3 -u` would say busy: a writer is inside
    rc, took = timed(m.proc.wait, timeout=20)

    assert took < 5, f"the daemon took {took:.1f}s to exit"
    assert rc == 0
    assert writer.wait(timeout=10) != 0, "the abandoned write reported success"


# ---- limits by construction ----------------------------------------------------------

def test_more_resources_than_max_resources_is_an_account_error_and_keeps_the_data(
        fresh_sim, make_mount):
    count = len(fresh_sim.vps_ids())
    m = make_mount(hostup_config(fresh_sim, refresh=300, max_resources=count))
    m.expect_stderr(REFRESH_FAILED)
    before = data_snapshot(m)
    fresh_sim.create_vps({"id": "vps_01onetoomany000000000000000", "name": "one-too-many"})

    assert write_errno(refresh_path(m), "1\n") == errno.EIO

    assert data_snapshot(m) == before
    assert m.provider("state") == "stale\n"
    assert re.search(rf"account 'hostup': the API listed {count + 1} resources, more than "
                     rf"max_resources \({count}\); the last good data is kept",
                     m.provider("last_error"))


def test_an_account_over_max_resources_from_the_start_mounts_empty_and_says_why(
        fresh_sim, make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=300, max_resources=2))
    m.expect_stderr(REFRESH_FAILED + r"|mounted at .*hostup: error")

    assert os.listdir(m.p("vps", "hostup")) == []
    assert m.provider("state") == "error\n"
    assert "more than max_resources (2)" in m.provider("last_error")


@pytest.mark.parametrize("key,value", [("timeout", "0"), ("timeout", "1.5"),
                                       ("timeout", "3601"), ("max_resources", "0"),
                                       ("max_resources", "many")])
def test_bad_limits_in_the_config_stop_the_mount_with_a_message(fresh_sim, tmp_path, key,
                                                                 value):
    config = tmp_path / "config"
    config.write_text(hostup_config(fresh_sim) + f"{key} = {value}\n")
    config.chmod(0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()

    out = subprocess.run([INFRAFS, "-f",
                          "-o", f"config={config}", str(mnt)],
                         capture_output=True, text=True, timeout=10)

    assert out.returncode != 0
    assert re.search(rf"{re.escape(str(config))}:5: \[hostup\] {key}: '{re.escape(value)}'",
                     out.stderr), out.stderr
