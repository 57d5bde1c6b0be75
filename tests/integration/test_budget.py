"""The request budget (src/budget.c) through the real mount, against the
simulator's enforced limits: background refresh keeps to refresh_share of
the limit and its interval stretches to fit, control writes never wait
behind it, no 429 is drawn, and providers/<account>/budget and progress
say what is going on."""

import os
import pty
import select
import subprocess
import time

from conftest import (INFRAFS, Simulator, hostup_config, is_mounted, q, sh, timed, utc,
                      wait_for, write_config)

API = r"^/api/v2/"


def budget(mnt, account="hostup"):
    """providers/<account>/budget as a dict of its "name value" lines."""
    return dict(line.split(" ", 1) for line in mnt.provider("budget", account).splitlines())


def progress(mnt, account="hostup"):
    return dict(line.split(" ", 1) for line in mnt.provider("progress", account).splitlines())


def api_requests(sim):
    return sim.requests(path_re=API)


def most_in_any_window(times, window):
    """The most of `times` (sorted) that any `window` seconds hold."""
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


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


def test_background_refresh_keeps_to_its_share_and_the_interval_stretches(tmp_path,
                                                                          make_mount):
    # 300 VPSes: 3 list pages a refresh, details off. 8 requests per 4 s,
    # half of it for refresh: 4 in any 5 s (the window and a second of
    # slack), so a refresh a second cannot be: one every 4 s at best.
    sim = Simulator(tmp_path, "--vps-count", "300")
    sim.configure(rate_limit={"limit": 8, "window_s": 4})
    mnt = make_mount(hostup_config(sim, refresh=1, detail_limit=0, rate_limit="8/4"))
    start = time.monotonic()

    wait_for(lambda: len(api_requests(sim)) >= 12, timeout=40, what="four refreshes")

    log = api_requests(sim)
    assert [r for r in log if r["status"] != 200] == [], "drew a 429"
    times = [r["time"] for r in log]
    assert most_in_any_window(times, 4.9) <= 4, "refresh spent more than its share"
    b = budget(mnt)
    assert b["limit"] == "8" and b["limit_source"] == "rate_limit in the config"
    assert b["effective_interval"] == "4", b
    assert int(b["refresh_used"]) <= 4 and b["answers_429"] == "0"
    # Each refresh starts 4 s after the one before, not 1 s.
    assert time.monotonic() - start >= 8
    due = utc(mnt.provider("next_refresh")).timestamp() - time.time()
    assert due <= 4.5, f"next_refresh is {due:.1f} s away"


def test_a_control_write_does_not_wait_behind_a_throttled_refresh(tmp_path, make_mount):
    # 2,000 VPSes: 20 list pages. A first mount keeps them on disk; the
    # second refreshes at 5 pages per 5 s (about 15 s) while it serves the
    # kept copy, and the mount returns after a second.
    sim = Simulator(tmp_path, "--vps-count", "2000", "--job-seconds", "0.5")
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


def test_the_foreground_command_shows_progress_on_a_terminal(tmp_path):
    # 1,000 VPSes at 2 pages per 3 s: a first refresh of several seconds.
    sim = Simulator(tmp_path, "--vps-count", "1000")
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
