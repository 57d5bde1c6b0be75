"""doc/SEMANTICS.md §6 (freshness) and §3.3 (/providers/<account>/), for HostUp."""

import datetime
import errno
import ctypes
import json
import mmap
import os
import re
import signal
import subprocess

import pytest

from conftest import (snapshot, ISO_UTC, TOKEN, hostup_config, sh, q, timed, wait_for,
                      utc, write_errno)

PROVIDER_FILES = {"type", "url", "state", "last_refresh", "next_refresh", "last_error",
                  "refresh_interval", "requests", "rate_limit_remaining", "refresh"}


def list_requests(sim):
    return sim.requests("GET", r"^/api/v2/vps$")


# ---- §6.3 After a refresh, every read shows the new data ---------------------------

def test_after_refresh_a_changed_field_reads_its_new_value_through_cat(mnt, fresh_sim):
    vps_id = fresh_sim.vps_ids()[0]
    name, city = mnt.vps(vps_id, "name"), mnt.vps(vps_id, "location", "city")
    # Prime the kernel's page and attribute caches with the old values.
    assert sh(f"cat {q(name)} {q(city)} && stat {q(name)}").returncode == 0
    old_json = mnt.read("vps", "hostup", vps_id, "json")

    fresh_sim.patch_vps(vps_id, {"name": "a-much-longer-name-than-before",
                                 "location": {"city": "Göteborg"}})
    mnt.refresh()

    assert sh(f"cat {q(name)}").stdout == "a-much-longer-name-than-before\n"
    assert sh(f"cat {q(city)}").stdout == "Göteborg\n"
    assert sh(f"stat -c %s {q(name)}").stdout == f"{len('a-much-longer-name-than-before') + 1}\n"
    assert sh(f"wc -c < {q(name)}").stdout.strip() == str(len("a-much-longer-name-than-before") + 1)
    new_json = json.loads(mnt.read("vps", "hostup", vps_id, "json"))
    assert new_json["name"] == "a-much-longer-name-than-before"
    assert new_json != json.loads(old_json)


def test_after_refresh_a_value_that_got_shorter_has_no_stale_tail(mnt, fresh_sim):
    vps_id = fresh_sim.vps_ids()[0]
    name = mnt.vps(vps_id, "name")
    fresh_sim.patch_vps(vps_id, {"name": "long-name-to-start-with"})
    mnt.refresh()
    assert sh(f"cat {q(name)}").stdout == "long-name-to-start-with\n"

    fresh_sim.patch_vps(vps_id, {"name": "s"})
    mnt.refresh()

    assert sh(f"cat {q(name)}").stdout == "s\n"


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_no_file_read_during_refreshes_keeps_a_value_older_than_the_last_refresh(
        mnt, fresh_sim):
    """The daemon pushes files' bytes into the kernel's page cache ahead of
    reads (a directory's files when one is read or listed, a changed file's
    new bytes after a refresh). With `grep -r` walking the tree through
    refreshes that change every name, each refresh must still be followed
    by every name reading its new value: no push of an older value may
    land after the invalidation that replaced it."""
    ids = fresh_sim.vps_ids()
    root = mnt.p("vps", "hostup")
    walker = subprocess.Popen(["sh", "-c", f"while :; do grep -r . {q(root)} >/dev/null; done"],
                              start_new_session=True)
    try:
        for round_ in range(12):
            for vps_id in ids:
                fresh_sim.patch_vps(vps_id, {"name": f"round-{round_}-{vps_id[-5:]}"})
            mnt.refresh()
            names = {vps_id: mnt.read("vps", "hostup", vps_id, "name") for vps_id in ids}
            assert names == {vps_id: f"round-{round_}-{vps_id[-5:]}\n" for vps_id in ids}
            out = sh(f"cat {q(root)}/*/name")
            assert sorted(out.stdout.split()) == \
                sorted(f"round-{round_}-{vps_id[-5:]}" for vps_id in ids)
    finally:
        os.killpg(walker.pid, signal.SIGKILL)
        walker.wait()
        wait_for(lambda: not group_alive(walker.pid), what="the walker's grep to exit")


class Mapped:
    """A file mapped and never touched, so that mincore() tells whether its
    first page is in the kernel's page cache without anything being READ."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)

    def __init__(self, path):
        self.path = path
        fd = os.open(path, os.O_RDONLY)
        try:
            self.addr = self.libc.mmap(None, 1, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        finally:
            os.close(fd)
        if self.addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), f"mmap {path}")
        self.vec = ctypes.create_string_buffer(1)

    def resident(self):
        if self.libc.mincore(self.addr, 1, self.vec) != 0:
            raise OSError(ctypes.get_errno(), f"mincore {self.path}")
        return bool(self.vec.raw[0] & 1)

    def close(self):
        self.libc.munmap(self.addr, 1)


def test_the_end_of_a_listing_during_a_reading_walk_comes_after_its_files_are_cached(
        mnt, fresh_sim):
    """While something reads files (grep -r), the daemon pushes a listed
    directory's files into the page cache, and answers the listing's end
    only then: the walker, which reads them next, never has to READ them
    (nor, later, stat them again)."""
    ids = fresh_sim.vps_ids()
    # Enough files that a push not waited for is still going on when the
    # listing returns.
    labels = {f"k{i:04d}": f"v{i}" for i in range(2000)}
    fresh_sim.patch_vps(ids[1], {"labels": labels})
    mnt.refresh()
    listed = mnt.vps(ids[1], "labels")
    maps = [Mapped(os.path.join(listed, k)) for k in labels]   # looked up, not listed
    try:
        assert not any(m.resident() for m in maps)
        assert mnt.read("vps", "hostup", ids[0], "name")   # a READ: a reading walk, for 2 s
        assert sorted(os.listdir(listed)) == sorted(labels)   # to the listing's end
        # Last listed first: a push stores in listing order.
        cached = [m.resident() for m in reversed(maps)]
    finally:
        for m in maps:
            m.close()
    assert cached == [True] * len(maps)
    assert mnt.read("vps", "hostup", ids[1], "labels", "k1999") == "v1999\n"


def test_after_refresh_a_deleted_vps_is_gone_and_its_paths_give_enoent(mnt, fresh_sim):
    ids = fresh_sim.vps_ids()
    gone = ids[1]
    # Prime the dentry, attribute, page and readdir caches.
    assert sh(f"ls {q(mnt.p('vps', 'hostup'))} && cat {q(mnt.vps(gone, 'name'))} && "
              f"ls {q(mnt.vps(gone))}").returncode == 0

    fresh_sim.delete_vps(gone)
    mnt.refresh()

    assert sorted(sh(f"ls {q(mnt.p('vps', 'hostup'))}").stdout.split()) == \
        sorted(set(ids) - {gone})
    out = sh(f"cat {q(mnt.vps(gone, 'name'))}")
    assert out.returncode != 0 and "No such file or directory" in out.stderr
    for path in (mnt.vps(gone), mnt.vps(gone, "name")):
        with pytest.raises(OSError) as e:
            os.stat(path)
        assert e.value.errno == errno.ENOENT
    loop = sh(f'for d in {q(mnt.path)}/vps/*/*/; do basename "$d"; done').stdout.split()
    assert gone not in loop


def test_after_refresh_a_new_vps_appears(mnt, fresh_sim):
    new_id = "vps_01newvpscreatedbythetest0"
    # A lookup of the name before it exists must not be remembered.
    assert not os.path.exists(mnt.vps(new_id))

    fresh_sim.create_vps({"id": new_id, "name": "brand-new"})
    mnt.refresh()

    assert new_id in sh(f"ls {q(mnt.p('vps', 'hostup'))}").stdout.split()
    assert sh(f"cat {q(mnt.vps(new_id, 'name'))}").stdout == "brand-new\n"


def test_after_an_action_the_vps_shows_its_new_state_without_a_refresh(mnt, fresh_sim):
    vps_id = fresh_sim.vps_with(powerState="stopped", serviceStatus="active")[0]
    state = mnt.vps(vps_id, "power_state")
    assert sh(f"cat {q(state)}").stdout == "stopped\n"
    fresh_sim.clear_requests()

    assert sh(f"echo start > {q(mnt.vps(vps_id, 'power'))}").returncode == 0
    wait_for(lambda: mnt.read("vps", "hostup", vps_id, "operation", "status") == "completed\n",
             timeout=10, what="the start to complete")

    assert sh(f"cat {q(state)}").stdout == "running\n"
    assert list_requests(fresh_sim) == [], "needed a full refresh to see the new state"


# ---- §6.2 Reads never wait on the network -------------------------------------------

def test_reads_answer_from_memory_within_2s_while_the_api_hangs(mnt, fresh_sim):
    ids = fresh_sim.vps_ids()
    before = snapshot(mnt.p("vps"))
    requests_before = int(mnt.provider("requests"))
    os.kill(fresh_sim.proc.pid, signal.SIGSTOP)  # connections open, nothing answers
    try:
        os.kill(mnt.pid, signal.SIGHUP)           # a refresh now hangs on the API
        checks = {
            "ls": f"ls -lR {q(mnt.path)}",
            "cat": f"cat {q(mnt.path)}/vps/hostup/*/name",
            "stat": f"stat {q(mnt.vps(ids[0], 'json'))} {q(mnt.vps(ids[0]))}",
            "grep -r": f"grep -r -l running {q(mnt.p('vps'))}",
            "find": f"find {q(mnt.path)} -name power_state",
            "missing name": f"! stat {q(mnt.vps('vps_does_not_exist'))}",
            "statfs": f"stat -f {q(mnt.path)}",
            "provider": f"cat {q(mnt.p('providers', 'hostup', 'state'))}",
        }
        for what, cmd in checks.items():
            out, took = timed(sh, cmd, timeout=30)
            assert out.returncode == 0, f"{what}: {out.stderr}"
            assert took < 2, f"{what} took {took:.1f}s while the API hangs"
        assert snapshot(mnt.p("vps")) == before
    finally:
        os.kill(fresh_sim.proc.pid, signal.SIGCONT)
    # The hung refresh completes once the API answers again.
    wait_for(lambda: int(mnt.provider("requests")) > requests_before, timeout=15,
             what="the refresh to finish after the API woke up")


def test_a_failed_refresh_keeps_the_data_and_says_stale_and_why(mnt, fresh_sim):
    before = snapshot(mnt.p("vps"))
    mnt.expect_stderr(r"refresh failed")
    fresh_sim.fault(action="status", status=500, method="GET", path=r"^/api/v2/vps$", times=0)
    fresh_sim.patch_vps(fresh_sim.vps_ids()[0], {"name": "not-seen-yet"})

    assert write_errno(mnt.p("providers", "hostup", "refresh"), "1\n") == errno.EIO

    assert mnt.provider("state") == "stale\n"
    last_error = mnt.provider("last_error")
    assert "500" in last_error and last_error.endswith("\n") and last_error.count("\n") == 1
    assert TOKEN not in last_error
    assert snapshot(mnt.p("vps")) == before

    fresh_sim.clear_faults()
    mnt.refresh()
    assert mnt.provider("state") == "ok\n"
    assert mnt.provider("last_error") == ""
    assert mnt.read("vps", "hostup", fresh_sim.vps_ids()[0], "name") == "not-seen-yet\n"


def test_an_unauthorized_refresh_keeps_the_data_and_says_unauthorized(mnt, fresh_sim):
    before = snapshot(mnt.p("vps"))
    mnt.expect_stderr(r"refresh failed")
    fresh_sim.fault(action="status", status=401, method="GET", path=r"^/api/v2/vps$", times=0)

    assert write_errno(mnt.p("providers", "hostup", "refresh"), "1\n") == errno.EACCES

    assert mnt.provider("state") == "unauthorized\n"
    assert "401" in mnt.provider("last_error")
    assert snapshot(mnt.p("vps")) == before


def test_an_account_whose_first_refresh_failed_says_error(fresh_sim, make_mount):
    fresh_sim.fault(action="status", status=500, method="GET", path=r"^/api/v2/vps$", times=0)

    m = make_mount(hostup_config(fresh_sim))
    m.expect_stderr(r"refresh failed|mounted at .*hostup: error")

    assert m.provider("state") == "error\n"
    assert "500" in m.provider("last_error")
    assert os.listdir(m.p("vps", "hostup")) == []


# ---- §7 The disk cache -----------------------------------------------------------

def test_a_mount_with_the_api_down_serves_the_last_data_kept_on_disk(fresh_sim, make_mount,
                                                                      tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = make_mount(hostup_config(fresh_sim), env=env)
    before = snapshot(first.p("vps"))
    assert first.umount() == 0
    fresh_sim.fault(action="status", status=500, method="GET", times=0)

    second = make_mount(hostup_config(fresh_sim), env=env)
    second.expect_stderr(r"refresh failed|mounted at .*hostup: (stale|error)")

    assert sorted(os.listdir(second.p("vps", "hostup"))) == sorted(fresh_sim.vps_ids())
    names = {k: v for k, v in before.items() if k.endswith("/name")}
    assert {k: v for k, v in snapshot(second.p("vps")).items() if k.endswith("/name")} == names
    assert second.provider("state") in ("stale\n", "error\n")


def test_an_offline_mount_serves_the_disk_cache_without_network(fresh_sim, make_mount, tmp_path):
    cache = f"cache_dir={tmp_path / 'cache'}"
    first = make_mount(hostup_config(fresh_sim), extra_opts=[cache])
    assert first.umount() == 0
    fresh_sim.clear_requests()

    second = make_mount(hostup_config(fresh_sim), extra_opts=[cache, "offline"])

    assert sorted(os.listdir(second.p("vps", "hostup"))) == sorted(fresh_sim.vps_ids())
    assert second.provider("state") == "offline\n"
    assert fresh_sim.requests() == []


def test_inode_numbers_follow_the_path_across_refreshes_and_remounts(fresh_sim, make_mount,
                                                                    tmp_path):
    """The man page's promise: st_ino is derived from the path. A changed
    file, its unchanged sibling, their directory and a file in the root keep
    theirs across a refresh and a remount, and a listing's d_ino agrees
    with stat."""
    cache = f"cache_dir={tmp_path / 'cache'}"
    vps_id = fresh_sim.vps_ids()[0]
    rel = [("vps", "hostup", vps_id), ("vps", "hostup", vps_id, "name"),
           ("vps", "hostup", vps_id, "power_state"), ("README",)]

    def inos(m):
        return [os.stat(m.p(*r)).st_ino for r in rel]

    first = make_mount(hostup_config(fresh_sim), extra_opts=[cache])
    before = inos(first)
    assert len(set(before)) == len(before)
    listed = {e.name: e.inode() for e in os.scandir(first.p("vps", "hostup", vps_id))}
    assert [listed["name"], listed["power_state"]] == before[1:3]

    fresh_sim.patch_vps(vps_id, {"name": "renamed-after-the-first-stat"})
    first.refresh()
    assert first.read("vps", "hostup", vps_id, "name") == "renamed-after-the-first-stat\n"
    assert inos(first) == before
    assert first.umount() == 0

    second = make_mount(hostup_config(fresh_sim), extra_opts=[cache])
    assert inos(second) == before


# ---- §6.5 Rate limits ----------------------------------------------------------------

def test_429_with_retry_after_on_the_list_makes_the_refresh_wait_then_succeed(mnt, fresh_sim):
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {"name": "after-429"})
    fresh_sim.clear_requests()
    fresh_sim.fault(action="status", status=429, method="GET", path=r"^/api/v2/vps$", times=1)

    out, took = timed(sh, f"echo 1 > {q(mnt.p('providers', 'hostup', 'refresh'))}")

    assert out.returncode == 0, out.stderr
    lists = list_requests(fresh_sim)
    assert [r["status"] for r in lists] == [429, 200], "hammered (or gave up on) the API"
    assert lists[1]["time"] - lists[0]["time"] >= 0.95, "did not wait for Retry-After: 1"
    assert took >= 0.95
    assert mnt.provider("state") == "ok\n"
    assert mnt.read("vps", "hostup", vps_id, "name") == "after-429\n"


def test_an_exhausted_rate_limit_budget_slows_reads_down_without_429s(fresh_sim, make_mount):
    # 6 requests at once, then 5 per second: a refresh needs 11. infrafs's
    # own pacing is set far from binding: what the answers say must do.
    fresh_sim.configure(rate_limit={"limit": 6, "window_s": 1.2})

    m = make_mount(hostup_config(fresh_sim, rate_limit="1000/1"))

    log = fresh_sim.requests()
    assert len(log) >= 11
    assert [r["status"] for r in log if r["status"] != 200] == [], \
        "infrafs ran into the rate limit instead of waiting for X-RateLimit-Reset"
    assert log[-1]["time"] - log[0]["time"] >= 0.9, "no slowing down at Remaining: 0"
    assert m.provider("state") == "ok\n"
    assert sorted(os.listdir(m.p("vps", "hostup"))) == sorted(fresh_sim.vps_ids())


# ---- §3.3 /providers/<account>/ --------------------------------------------------------

def test_provider_directory_describes_the_account(mnt, fresh_sim):
    p = lambda name: mnt.provider(name)  # noqa: E731

    assert PROVIDER_FILES <= set(os.listdir(mnt.p("providers", "hostup")))
    assert p("type") == "hostup\n"
    assert p("url") == fresh_sim.url() + "\n"
    assert p("state") == "ok\n"
    assert p("last_error") == ""
    assert p("refresh_interval") == "300\n"
    assert re.fullmatch(rf"{ISO_UTC}\n", p("last_refresh"))
    assert re.fullmatch(rf"{ISO_UTC}\n", p("next_refresh"))
    last, nxt = utc(p("last_refresh")), utc(p("next_refresh"))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - last).total_seconds()) < 30
    assert abs((nxt - last).total_seconds() - 300) <= 2
    assert int(p("requests")) == len(fresh_sim.requests())
    assert re.fullmatch(r"\d+\n", p("rate_limit_remaining"))


def test_provider_files_never_show_the_secret(mnt):
    out = sh(f"grep -r {q(TOKEN)} {q(mnt.p('providers'))}")
    assert out.returncode == 1 and out.stdout == ""


def test_requests_counts_every_http_request_and_grows(mnt, fresh_sim):
    first = int(mnt.provider("requests"))
    assert first == len(fresh_sim.requests()) > 0

    mnt.refresh()

    second = int(mnt.provider("requests"))
    assert second > first
    assert second == len(fresh_sim.requests())


def test_rate_limit_remaining_is_what_the_api_said_last(fresh_sim, make_mount):
    # A budget that barely refills during the test: exact arithmetic.
    fresh_sim.configure(rate_limit={"limit": 1000, "window_s": 100000})

    m = make_mount(hostup_config(fresh_sim))
    assert int(m.provider("rate_limit_remaining")) == 1000 - len(fresh_sim.requests())

    m.refresh()
    assert int(m.provider("rate_limit_remaining")) == 1000 - len(fresh_sim.requests())


def test_last_refresh_and_next_refresh_move_with_each_refresh(mnt):
    last0 = utc(mnt.provider("last_refresh"))
    wait_for(lambda: datetime.datetime.now(datetime.timezone.utc) >=
             last0 + datetime.timedelta(seconds=1.05), timeout=3, what="a new second")

    mnt.refresh()

    last1, next1 = utc(mnt.provider("last_refresh")), utc(mnt.provider("next_refresh"))
    assert last1 > last0
    assert abs((next1 - last1).total_seconds() - 300) <= 2


# ---- §6.1 Periodic refresh --------------------------------------------------------------

def test_accounts_refresh_every_refresh_seconds_in_the_background(fresh_sim, make_mount):
    # A limit that allows a refresh a second: a smaller one stretches the
    # interval (test_budget.py).
    fresh_sim.configure(rate_limit={"limit": 100000, "window_s": 60})
    vps_id = fresh_sim.vps_ids()[0]
    m = make_mount(hostup_config(fresh_sim, refresh=1))
    name = m.vps(vps_id, "name")
    assert m.provider("refresh_interval") == "1\n"
    old = sh(f"cat {q(name)}").stdout  # in the page cache now

    fresh_sim.patch_vps(vps_id, {"name": "changed-in-the-background"})

    wait_for(lambda: sh(f"cat {q(name)}").stdout == "changed-in-the-background\n",
             timeout=5, what="the periodic refresh to show the new name")
    assert old != "changed-in-the-background\n"
    lists = [r["time"] for r in list_requests(fresh_sim)]
    wait_for(lambda: len(list_requests(fresh_sim)) >= len(lists) + 2, timeout=5,
             what="two more periodic refreshes")


def test_refresh_option_is_the_default_interval_and_the_config_overrides_it(fresh_sim,
                                                                              make_mount):
    both = hostup_config(fresh_sim, section="fast") + \
        hostup_config(fresh_sim, section="slow", refresh=300)

    m = make_mount(both, extra_opts=["refresh=1"])

    assert m.provider("refresh_interval", account="fast") == "1\n"
    assert m.provider("refresh_interval", account="slow") == "300\n"
    start = int(m.provider("requests", account="fast"))
    wait_for(lambda: int(m.provider("requests", account="fast")) > start, timeout=5,
             what="the account without `refresh` to refresh every second")
