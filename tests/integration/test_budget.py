"""The request budget (src/budget.c) through the real mount, against the
simulator's enforced limits: background refresh keeps to refresh_share of
the limit and its interval stretches to fit, control writes never wait
behind it, no 429 is drawn, and providers/<account>/budget and progress
say what is going on."""

import os
import pty
import select
import subprocess
import sys
import time

from conftest import (INFRAFS, account_config, hostup_config, is_mounted, q, sh, timed, utc,
                      wait_for, write_config)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from budget import busiest  # noqa: E402  (the benchmark's own count)

API = r"^/api/v2/"


def budget(mnt, account="hostup"):
    """providers/<account>/budget as a dict of its "name value" lines."""
    return dict(line.split(" ", 1) for line in mnt.provider("budget", account).splitlines())


def progress(mnt, account="hostup"):
    return dict(line.split(" ", 1) for line in mnt.provider("progress", account).splitlines())


def api_requests(sim):
    return sim.requests(path_re=API)


def test_the_budget_file_shows_the_limit_the_api_announces(fresh_sim, make_mount):
    mnt = make_mount(hostup_config(fresh_sim, refresh=300))

    b = budget(mnt)
    sent = len(api_requests(fresh_sim))
    assert b["limit"] == "600" and b["window"] == "60"
    assert b["limit_source"] == "X-RateLimit-Limit"
    assert b["refresh_share"] == "50" and b["refresh_cap"] == "300"
    assert int(b["refresh_used"]) == int(b["refresh_sent"]) == sent > 0
    assert b["user_used"] == "0" and b["answers_429"] == "0"
    assert 0 < int(b["remaining"]) <= 600 - sent + 1
    assert b["interval"] == "300" and b["effective_interval"] == "300"
    p = progress(mnt)
    assert p["state"] == "idle"
    assert int(p["last_requests"]) == sent
    assert p["last_pages"] == "1" and p["last_resources"] == str(len(fresh_sim.vps_ids()))

    # An asked refresh is the user's: it does not count against refresh's share.
    mnt.refresh()
    after = budget(mnt)
    assert after["refresh_sent"] == b["refresh_sent"]
    assert int(after["user_sent"]) == len(api_requests(fresh_sim)) - sent > 0


def test_apis_that_say_no_limit_get_the_documented_default_or_the_configured_one(
        fresh_sim, make_mount):
    mnt = make_mount(account_config(fresh_sim, "heo", vps="vps_101") +
                     account_config(fresh_sim, "heo", section="heo2", vps="vps_102",
                                    rate_limit="120/30", refresh_share="20%"))

    b = budget(mnt, "heo")
    assert (b["limit"], b["window"], b["limit_source"]) == ("300", "60", "default for heo")
    assert b["refresh_cap"] == "150"
    b = budget(mnt, "heo2")
    assert (b["limit"], b["window"], b["limit_source"]) == ("120", "30",
                                                            "rate_limit in the config")
    assert (b["refresh_share"], b["refresh_cap"]) == ("20", "24")
    assert b["remaining"] == "unknown"


def test_background_refresh_keeps_to_its_share_and_the_interval_stretches(make_sim,
                                                                          make_mount):
    # 300 VPSes: 3 list pages a refresh, details off. 8 requests per 4 s,
    # half of it for refresh: 4 in any 5 s (the window and a second of
    # slack), so a refresh a second cannot be: one every 4 s at best.
    sim = make_sim("--vps-count", "300")
    sim.configure(rate_limit={"limit": 8, "window_s": 4})
    mnt = make_mount(hostup_config(sim, refresh=1, detail_limit=0, rate_limit="8/4"))
    start = time.monotonic()

    wait_for(lambda: len(api_requests(sim)) >= 12, timeout=40, what="four refreshes")

    log = api_requests(sim)
    assert [r for r in log if r["status"] != 200] == [], "drew a 429"
    times = [r["time"] for r in log]
    assert busiest(times, 4.9) <= 4, "refresh spent more than its share"
    b = budget(mnt)
    assert b["limit"] == "8" and b["limit_source"] == "rate_limit in the config"
    assert b["effective_interval"] == "4", b
    assert int(b["refresh_used"]) <= 4 and b["answers_429"] == "0"
    # Each refresh starts 4 s after the one before, not 1 s.
    assert time.monotonic() - start >= 8
    due = utc(mnt.provider("next_refresh")).timestamp() - time.time()
    assert due <= 4.5, f"next_refresh is {due:.1f} s away"


def test_a_control_write_does_not_wait_behind_a_throttled_refresh(tmp_path, make_sim,
                                                                  make_mount):
    # 2,000 VPSes: 20 list pages. A first mount keeps them on disk; the
    # second refreshes at 5 pages per 5 s (about 15 s) while it serves the
    # kept copy, and the mount returns after a second.
    sim = make_sim("--vps-count", "2000", "--job-seconds", "0.5")
    cache = f"cache_dir={tmp_path / 'cache'}"
    first = make_mount(hostup_config(sim, detail_limit=0), extra_opts=[cache], subdir="first")
    assert first.umount() == 0
    sim.configure(rate_limit={"limit": 10, "window_s": 4})
    sim.clear_requests()
    mnt = make_mount(hostup_config(sim, refresh=3600, detail_limit=0, rate_limit="10/4"),
                     extra_opts=[cache, "startup_timeout=1"])

    wait_for(lambda: progress(mnt).get("state") == "refreshing"
             and int(progress(mnt)["pages"]) >= 1, timeout=10,
             what="progress to show the refresh under way")
    p = progress(mnt)
    assert int(p["resources"]) == 100 * int(p["pages"]) and int(p["pages"]) < 20
    assert p["last_resources"] == "2000"   # the kept copy's: how far there is to go

    vps_id = next(i for i in reversed(sim.vps_ids())
                  if sim.get_vps(i).get("powerState") == "running"
                  and sim.get_vps(i).get("serviceStatus") == "active")
    out, took = timed(sh, f"echo restart > {q(mnt.vps(vps_id, 'power'))}")

    assert out.returncode == 0, out.stderr
    assert took < 1.0, f"the write took {took:.2f} s behind the refresh"
    assert progress(mnt)["state"] == "refreshing", "the refresh ended first: no test"
    posts = sim.requests("POST", API)
    assert [r["status"] for r in posts] == [202]
    wait_for(lambda: progress(mnt)["state"] == "idle", timeout=60, what="the refresh")
    assert [r for r in api_requests(sim) if r["status"] != 200 and r["method"] == "GET"] == []
    p = progress(mnt)
    assert p["last_pages"] == "20" and p["last_resources"] == "2000"
    b = budget(mnt)
    assert int(b["user_sent"]) >= 2 and b["answers_429"] == "0"


def test_the_foreground_command_shows_progress_on_a_terminal(tmp_path, make_sim):
    # 1,000 VPSes at 2 pages per 3 s: a first refresh of several seconds.
    sim = make_sim("--vps-count", "1000")
    sim.configure(rate_limit={"limit": 4, "window_s": 2})
    config = write_config(tmp_path / "config",
                          hostup_config(sim, detail_limit=0, rate_limit="4/2"))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    leader, follower = pty.openpty()
    proc = subprocess.Popen([INFRAFS, "-f", "-o", f"config={config}", str(mnt)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=follower, env={**os.environ,
                                                  "XDG_CACHE_HOME": str(tmp_path / "cache")})
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"mounted at" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:
                    break
    finally:
        if is_mounted(str(mnt)):
            subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
        proc.wait(timeout=30)
        os.close(leader)
    text = seen.decode(errors="replace")
    lines = [p for p in text.split("\r") if "first refresh:" in p]
    assert lines, text
    assert any("hostup: " in p and " pages, " in p and " resources, " in p for p in lines)
    # The line is cleared before the mount is reported.
    assert "\r\x1b[K" in text and text.index("mounted at") > text.rindex("first refresh:")


def test_details_are_read_again_only_for_changed_vpses(fresh_sim, make_mount):
    mnt = make_mount(hostup_config(fresh_sim, refresh=300))
    ids = fresh_sim.vps_ids()
    assert len(fresh_sim.requests("GET", r"/details$")) == len(ids)
    fresh_sim.patch_vps(ids[1], {"name": "renamed"})
    fresh_sim.clear_requests()

    mnt.refresh()

    assert [r["path"] for r in fresh_sim.requests("GET", r"/(details|status)$")] == [
        f"/api/v2/vps/{ids[1]}/details", f"/api/v2/vps/{ids[1]}/status"]
    assert mnt.read("vps", "hostup", ids[1], "name") == "renamed\n"
    # The others keep the fields their details gave.
    assert all(os.path.exists(mnt.vps(i, "actions", "can_start", "allowed")) for i in ids)


def test_details_read_before_a_remount_stand_in_until_read_again(tmp_path, fresh_sim,
                                                                 make_mount):
    cache = f"cache_dir={tmp_path / 'cache'}"
    first = make_mount(hostup_config(fresh_sim), extra_opts=[cache], subdir="first")
    ids = fresh_sim.vps_ids()
    assert first.umount() == 0
    # The details cannot be read now; they are not due anyway.
    fresh_sim.fault(action="status", status=500, method="GET", path=r"/(details|status)$",
                    times=0)
    fresh_sim.clear_requests()

    mnt = make_mount(hostup_config(fresh_sim), extra_opts=[cache])

    assert mnt.provider("state") == "ok\n" and mnt.provider("last_error") == ""
    assert fresh_sim.requests("GET", r"/(details|status)$") == []
    assert all(os.path.exists(mnt.vps(i, "actions", "can_start", "allowed")) for i in ids)
    assert all(mnt.read("vps", "hostup", i, "login", "username").strip() for i in ids)
