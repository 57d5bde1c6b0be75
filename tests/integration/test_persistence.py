"""doc/SEMANTICS.md §7 (the disk cache, offline) and §6.4 (what a failed refresh does): each account's
last good data kept on disk (cache_dir), st_mtime as "when the value last
changed" across refreshes and remounts, offline mounts, retry backoff,
unauthorized accounts, and accounts that never wait on each other."""

import datetime
import errno
import json
import os
import re
import signal
import stat
import struct
import time

import pytest

from conftest import (ISO_UTC, TOKEN, hostup_config, q, sh, timed, wait_for,
                      utc, write_errno)

LIST = r"^/api/v2/vps$"
REFRESH_FAILED = r"refresh failed"
IGNORED = r"ignoring the cache file"


def seconds_until(text):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (utc(text) - now).total_seconds()


def mtime(path):
    return os.stat(path).st_mtime


def next_second(after):
    """Sleep until the wall clock is in a later whole second than `after`
    (file times have a resolution of one second)."""
    wait_for(lambda: int(time.time()) > int(after), timeout=3, what="a new second")


def list_requests(sim):
    return sim.requests("GET", LIST)


def cache_file(cache_dir, account="hostup"):
    return os.path.join(str(cache_dir), f"{account}.json")


# ---- the cache file's format, version 2 (src/persist.c describes it) ------------

V2_NAME = b"infrafs-cache\0\0\0"
MASK64 = (1 << 64) - 1


def checksum(data):
    """FNV-1a over little-endian 8-byte words, rotated by 29 after each
    multiply; the last word zero-padded, then the length."""
    def step(h, word):
        h = ((h ^ word) * 0x100000001b3) & MASK64
        return ((h << 29) | (h >> 35)) & MASK64
    h = 0xcbf29ce484222325
    whole = len(data) - len(data) % 8
    for (word,) in struct.iter_unpack("<Q", data[:whole]):
        h = step(h, word)
    h = step(h, int.from_bytes(data[whole:], "little"))
    return step(h, len(data))


def read_cache(path):
    """A version 2 cache file as a dict shaped like version 1's JSON, after
    checking its name, version, length and checksum."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:16] == V2_NAME, data[:16]
    version, stated_sum, length, last_refresh, count = struct.unpack_from("<IQQqI", data, 16)
    assert (version, length) == (2, len(data))
    assert stated_sum == checksum(data[28:]), "checksum does not match"
    pos = 48

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def text():
        nonlocal pos
        n = take("<I")
        pos += n
        return data[pos - n:pos].decode("utf-8", "surrogateescape")

    out = {"version": version, "account": text(), "type": text(), "url": text(),
           "last_refresh": last_refresh, "resources": []}
    for _ in range(count):
        r = {"kind": text(), "id": text(), "object": json.loads(text())}
        extra = text()
        if extra:
            r["extra_files"] = json.loads(extra)
        base, n = take("<qI")
        r["mtimes"] = {"base": base, "other": {text(): take("<q") for _ in range(n)}}
        out["resources"].append(r)
    assert pos == len(data)
    return out


def write_v1_cache(path, sim, resources, last_refresh, account="hostup"):
    """A cache file as infrafs wrote it before format version 2: one JSON
    document."""
    with open(path, "w") as f:
        json.dump({"format": "infrafs-cache", "version": 1, "account": account,
                   "type": "hostup", "url": sim.url(), "last_refresh": last_refresh,
                   "resources": resources}, f)


def names(mnt, account="hostup"):
    return sorted(os.listdir(mnt.p("vps", account)))


# ---- st_mtime: when the value last changed ---------------------------------------

def test_an_unchanged_files_mtime_survives_a_refresh_and_a_changed_ones_moves(mnt, fresh_sim):
    first, second = fresh_sim.vps_ids()[:2]
    name, other = mnt.vps(first, "name"), mnt.vps(second, "name")
    t0, t0_other = mtime(name), mtime(other)
    next_second(max(t0, t0_other))

    fresh_sim.patch_vps(second, {"name": "renamed"})
    mnt.refresh()

    assert mtime(name) == t0, "an unchanged value got a new mtime on refresh"
    assert mnt.read("vps", "hostup", second, "name") == "renamed\n"
    assert mtime(other) > t0_other, "a changed value kept its old mtime"
    assert abs(mtime(other) - time.time()) < 5


def test_mtimes_survive_a_remount_with_the_same_cache(fresh_sim, make_mount, tmp_path):
    cache = f"cache_dir={tmp_path / 'cache'}"
    first_id, second_id = fresh_sim.vps_ids()[:2]
    first = make_mount(hostup_config(fresh_sim), extra_opts=[cache])
    kept = {p: mtime(first.vps(first_id, *p)) for p in
            [("name",), ("hostname",), ("location", "city"), (), ("location",)]}
    changed_before = mtime(first.vps(second_id, "name"))
    assert first.umount() == 0
    next_second(max(kept.values()))
    fresh_sim.patch_vps(second_id, {"name": "renamed-while-unmounted"})

    # Offline: exactly what was saved, before any refresh.
    offline = make_mount(hostup_config(fresh_sim), extra_opts=[cache, "offline"])
    for parts, t in kept.items():
        assert mtime(offline.vps(first_id, *parts)) == t, parts
    assert mtime(offline.vps(second_id, "name")) == changed_before
    assert offline.umount() == 0

    # Online: the first refresh keeps unchanged values' times, moves the rest.
    online = make_mount(hostup_config(fresh_sim), extra_opts=[cache])
    assert online.provider("state") == "ok\n"
    for parts, t in kept.items():
        assert mtime(online.vps(first_id, *parts)) == t, parts
    assert online.read("vps", "hostup", second_id, "name") == "renamed-while-unmounted\n"
    assert mtime(online.vps(second_id, "name")) > changed_before


# ---- the cache file ----------------------------------------------------------------

def test_the_cache_file_is_version_2_mode_0600_without_temporary_files_or_secrets(
        fresh_sim, make_mount, tmp_path):
    cache_dir = tmp_path / "cache" / "deeper"   # created by infrafs
    m = make_mount(hostup_config(fresh_sim), extra_opts=[f"cache_dir={cache_dir}"])
    m.refresh()
    m.refresh()

    # (actions.log: the writes to refresh, in the action log)
    assert sorted(os.listdir(cache_dir)) == ["actions.log", "hostup.json"], \
        "temporary files left behind"
    st = os.stat(cache_file(cache_dir))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o700
    with open(cache_file(cache_dir), "rb") as f:
        assert TOKEN.encode() not in f.read()
    saved = read_cache(cache_file(cache_dir))
    assert saved["account"] == "hostup" and saved["url"] == fresh_sim.url()
    assert saved["type"] == "hostup"
    assert sorted(r["id"] for r in saved["resources"]) == sorted(fresh_sim.vps_ids())
    assert saved["last_refresh"] == int(utc(m.provider("last_refresh")).timestamp())


def test_the_cache_follows_each_successful_refresh_and_a_failed_one_leaves_it(
        fresh_sim, make_mount, tmp_path):
    cache_dir = tmp_path / "cache"
    m = make_mount(hostup_config(fresh_sim), extra_opts=[f"cache_dir={cache_dir}"])
    m.expect_stderr(REFRESH_FAILED)
    vps_id = fresh_sim.vps_ids()[0]

    fresh_sim.patch_vps(vps_id, {"name": "saved-name"})
    m.refresh()
    saved = {r["id"]: r for r in read_cache(cache_file(cache_dir))["resources"]}
    assert saved[vps_id]["object"]["name"] == "saved-name"

    before = os.stat(cache_file(cache_dir))
    fresh_sim.fault(action="status", status=500, method="GET", path=LIST, times=1)
    fresh_sim.patch_vps(vps_id, {"name": "never-seen"})
    assert write_errno(m.p("providers", "hostup", "refresh"), "1\n") == errno.EIO

    after = os.stat(cache_file(cache_dir))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_remount_with_the_api_down_starts_from_the_cache_as_stale(fresh_sim, make_mount,
                                                                    tmp_path):
    cache = f"cache_dir={tmp_path / 'cache'}"
    first = make_mount(hostup_config(fresh_sim), extra_opts=[cache])
    saved_refresh = first.provider("last_refresh")
    assert first.umount() == 0
    fresh_sim.fault(action="status", status=500, method="GET", path=LIST, times=0)

    second = make_mount(hostup_config(fresh_sim), extra_opts=[cache])
    second.expect_stderr(REFRESH_FAILED + r"|mounted at .*hostup: stale")

    assert names(second) == sorted(fresh_sim.vps_ids())
    assert second.provider("state") == "stale\n"
    assert second.provider("last_refresh") == saved_refresh
    assert "500" in second.provider("last_error")


def valid_cache_of(sim, make_mount, tmp_path, section="hostup", url=None):
    """The bytes of a cache file written by a real mount of `section`."""
    cache_dir = tmp_path / f"donor-{section}-{'other-url' if url else 'same-url'}"
    config = hostup_config(sim, section=section)
    if url:
        config = config.replace(f"url = {sim.url()}", f"url = {url}")
    m = make_mount(config, extra_opts=[f"cache_dir={cache_dir}"])
    assert m.umount() == 0
    with open(cache_file(cache_dir, section), "rb") as f:
        return f.read()


def flip(data, at):
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]


def with_version(data, version):
    return data[:16] + struct.pack("<I", version) + data[20:]


CORRUPT = "corrupt or not an infrafs cache of this version"
FOREIGN = "saved for another account, type or url"
# name: (the file's bytes from a good one, what the warning says)
DAMAGES = {
    "garbage": (lambda good, other: b"this is not JSON {", CORRUPT),
    "truncated": (lambda good, other: good[:len(good) // 2], "truncated or damaged"),
    "empty": (lambda good, other: b"", CORRUPT),
    # One bit of one byte in the middle of a resource's text
    "flipped-byte": (lambda good, other: flip(good, len(good) // 2),
                     r"damaged \(its checksum does not match its content\)"),
    # Same simulator, but another url: the data may be another API's.
    "other-url": (lambda good, other: other(
        url=other.sim.url().replace("127.0.0.1", "localhost")), FOREIGN),
    "other-account": (lambda good, other: other(section="other"), FOREIGN),
    "other-version": (lambda good, other: with_version(good, 99),
                      "infrafs cache of format version 99, which this infrafs does not read"),
    "other-json-version": (lambda good, other: json.dumps(
        {"format": "infrafs-cache", "version": 99, "account": "hostup", "type": "hostup",
         "url": other.sim.url(), "resources": []}).encode(), CORRUPT),
    "deeply-nested": (lambda good, other: b"[" * 100000 + b"]" * 100000, CORRUPT),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_or_foreign_cache_file_is_ignored_with_a_warning(
        fresh_sim, make_mount, tmp_path, damage):
    good = valid_cache_of(fresh_sim, make_mount, tmp_path)

    def other(**kw):
        return valid_cache_of(fresh_sim, make_mount, tmp_path, **kw)
    other.sim = fresh_sim
    make, why = DAMAGES[damage]
    data = make(good, other)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    with open(cache_file(cache_dir), "wb") as f:
        f.write(data)

    # Offline, nothing but the file could fill the tree: it stays empty.
    offline = make_mount(hostup_config(fresh_sim), extra_opts=[f"cache_dir={cache_dir}",
                                                               "offline"])
    offline.expect_stderr(IGNORED)
    assert re.search(rf"warning: account 'hostup': {IGNORED} .*hostup\.json: .*{why}",
                     offline.stderr()), offline.stderr()
    assert names(offline) == []
    assert offline.provider("state") == "offline\n"
    # Not only in the log (issue 10): last_error says why the tree is empty.
    last_error = offline.provider("last_error")
    assert re.search(rf"offline.*nothing to show: .*{IGNORED} .*hostup\.json", last_error), \
        last_error
    assert offline.umount() == 0

    # Online, the mount works and the next refresh replaces the file.
    online = make_mount(hostup_config(fresh_sim), extra_opts=[f"cache_dir={cache_dir}"])
    online.expect_stderr(IGNORED)
    assert online.provider("state") == "ok\n"
    assert names(online) == sorted(fresh_sim.vps_ids())
    wait_for(lambda: cache_is_for(cache_file(cache_dir), "hostup"), timeout=5,
             what="the cache file to be rewritten")


def cache_is_for(path, account):
    try:
        return read_cache(path)["account"] == account
    except AssertionError:
        return False


def test_a_version_1_cache_is_served_offline_and_the_next_save_writes_version_2(
        fresh_sim, make_mount, tmp_path):
    """An upgrade keeps the copy an earlier infrafs saved, mtimes included."""
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    ids = sorted(fresh_sim.vps_ids())
    write_v1_cache(cache_file(cache_dir), fresh_sim, [
        {"kind": "vps", "id": vps_id,
         "object": {"id": vps_id, "name": f"saved-{i}", "location": {"city": "Oslo"}},
         "mtimes": {"base": 1600000000, "other": {"name": 1500000000 + i}}}
        for i, vps_id in enumerate(ids)], last_refresh=1600000000)
    fresh_sim.clear_requests()

    offline = make_mount(hostup_config(fresh_sim), extra_opts=[f"cache_dir={cache_dir}",
                                                               "offline"])
    assert names(offline) == ids
    assert offline.read("vps", "hostup", ids[1], "name") == "saved-1\n"
    assert offline.read("vps", "hostup", ids[1], "location", "city") == "Oslo\n"
    assert mtime(offline.vps(ids[1], "name")) == 1500000001
    assert mtime(offline.vps(ids[1], "location", "city")) == 1600000000
    assert offline.provider("last_refresh") == "2020-09-13T12:26:40Z\n"
    assert fresh_sim.requests() == []
    assert offline.umount() == 0
    with open(cache_file(cache_dir), "rb") as f:
        assert f.read(1) == b"{", "an offline mount rewrote the cache"

    online = make_mount(hostup_config(fresh_sim), extra_opts=[f"cache_dir={cache_dir}"])
    assert online.provider("state") == "ok\n"
    saved = read_cache(cache_file(cache_dir))
    assert saved["version"] == 2
    assert sorted(r["id"] for r in saved["resources"]) == ids
    by_id = {r["id"]: r for r in saved["resources"]}
    assert by_id[ids[1]]["object"]["name"] == fresh_sim.get_vps(ids[1])["name"]
    assert online.umount() == 0

    # And the version 2 copy serves an offline mount in turn.
    again = make_mount(hostup_config(fresh_sim), extra_opts=[f"cache_dir={cache_dir}",
                                                             "offline"])
    assert names(again) == ids
    assert again.read("vps", "hostup", ids[1], "name") == \
        fresh_sim.get_vps(ids[1])["name"] + "\n"


def test_an_unwritable_cache_dir_is_a_warning_and_the_mount_still_works(fresh_sim, make_mount,
                                                                        tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be\n")

    m = make_mount(hostup_config(fresh_sim), extra_opts=[f"cache_dir={blocker / 'infrafs'}"])
    m.expect_stderr(r"warning: account 'hostup': cannot create the cache directory")
    m.expect_stderr(r"warning: log .*actions.log: cannot create its directory")
    m.refresh()
    m.refresh()

    assert m.provider("state") == "ok\n"
    assert names(m) == sorted(fresh_sim.vps_ids())
    said = re.findall(r"warning: account 'hostup': cannot create the cache directory "
                      r".*not-a-directory/infrafs: Not a directory; .*cache_dir=", m.stderr())
    assert len(said) == 1, "the same problem is warned about after every refresh"
    # The action log says so once too, and /actions has both writes.
    assert len(re.findall(r"warning: log .*not-a-directory/infrafs/actions.log: "
                          r"cannot create its directory", m.stderr())) == 1
    assert len(m.read("actions").splitlines()) == 2


def deep_field(levels):
    deep = "bottom"
    for _ in range(levels):
        deep = {"d": deep}
    return deep


def test_an_object_as_deep_as_the_api_may_send_loads_back_from_the_cache(
        fresh_sim, make_mount, tmp_path):
    """json-c refuses JSON nested beyond its depth limit (32). The list answer
    {"data": [VPS]} uses some of it; the cache file wraps each VPS in more
    levels of its own, and must still load whatever the API could send."""
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {"deep": deep_field(29)})
    too_deep = make_mount(hostup_config(fresh_sim, detail_limit=0))
    too_deep.expect_stderr(r"refresh failed: .*nested more than 32 levels|mounted at")
    assert too_deep.provider("state") == "error\n", "not at json-c's limit: test is moot"
    assert "nested more than 32 levels deep" in too_deep.provider("last_error")

    fresh_sim.patch_vps(vps_id, {"deep": deep_field(28)})   # the deepest accepted
    cache = f"cache_dir={tmp_path / 'cache'}"
    first = make_mount(hostup_config(fresh_sim, detail_limit=0), extra_opts=[cache])
    path = ["deep"] + ["d"] * 28
    assert first.provider("state") == "ok\n"
    assert first.read("vps", "hostup", vps_id, *path) == "bottom\n"
    assert first.umount() == 0

    second = make_mount(hostup_config(fresh_sim, detail_limit=0), extra_opts=[cache, "offline"])

    assert names(second) == sorted(fresh_sim.vps_ids())
    assert second.read("vps", "hostup", vps_id, *path) == "bottom\n"


# ---- offline -----------------------------------------------------------------------

@pytest.fixture
def offline(fresh_sim, make_mount, tmp_path):
    """An offline mount of a cache written by a first, online mount."""
    cache = f"cache_dir={tmp_path / 'cache'}"
    first = make_mount(hostup_config(fresh_sim, refresh=1), extra_opts=[cache])
    assert first.umount() == 0
    fresh_sim.clear_requests()
    return make_mount(hostup_config(fresh_sim, refresh=1), extra_opts=[cache, "offline"])


def test_offline_serves_the_tree_and_sends_no_request_at_all(offline, fresh_sim):
    vps_id = fresh_sim.vps_ids()[0]
    assert names(offline) == sorted(fresh_sim.vps_ids())
    assert offline.read("vps", "hostup", vps_id, "name") == \
        fresh_sim.get_vps(vps_id)["name"] + "\n"
    assert sh(f"grep -r -q . {q(offline.p('vps'))}").returncode == 0
    assert offline.provider("state") == "offline\n"
    assert "offline" in offline.provider("last_error")
    assert offline.provider("next_refresh") == ""

    os.kill(offline.pid, signal.SIGHUP)
    time.sleep(2.5)   # longer than refresh = 1

    assert fresh_sim.requests() == []
    assert offline.provider("requests") == "0\n"


def test_offline_power_write_fails_with_erofs_and_says_why_in_last_action(offline, fresh_sim):
    vps_id = fresh_sim.vps_with(powerState="running", serviceStatus="active")[0]
    offline.expect_stderr(r"power: 'restart' failed")

    assert write_errno(offline.vps(vps_id, "power"), "restart\n") == errno.EROFS

    line = offline.read("vps", "hostup", vps_id, "last_action")
    assert re.fullmatch(rf"{ISO_UTC} restart failed - .*offline.*\n", line), line
    assert fresh_sim.requests() == []


def test_offline_refresh_write_fails_with_erofs_and_says_why_in_last_action(offline, fresh_sim):
    out = sh(f"echo 1 > {q(offline.p('providers', 'hostup', 'refresh'))}")
    assert out.returncode != 0

    assert write_errno(offline.p("providers", "hostup", "refresh"), "1\n") == errno.EROFS
    line = offline.provider("last_action")
    assert re.fullmatch(rf"{ISO_UTC} 1 failed - .*offline.*\n", line), line
    assert fresh_sim.requests() == []
    assert names(offline) == sorted(fresh_sim.vps_ids())


def test_offline_without_a_cache_shows_an_empty_account_that_says_offline(fresh_sim,
                                                                        make_mount):
    m = make_mount(hostup_config(fresh_sim), extra_opts=["offline"])

    assert names(m) == []
    assert m.provider("state") == "offline\n"
    assert fresh_sim.requests() == []
    assert re.search(r"nothing to show: no copy of account 'hostup' was saved at \S+hostup\.json",
                     m.provider("last_error")), m.provider("last_error")


def test_temporary_files_of_a_killed_save_are_removed_at_the_next_save(fresh_sim, make_mount,
                                                                        tmp_path):
    """A save writes hostup.json.XXXXXX and renames it: four SIGKILLs during
    saves left 58 MB of them. Those old enough that no save can still be
    writing them go at the next save; a fresh one (another mount sharing the
    directory, mid-save) stays."""
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    stale = [cache_dir / f"hostup.json.{suffix}" for suffix in ("a1B2c3", "ZZZZZZ")]
    fresh = cache_dir / "hostup.json.Q9q9Q9"
    unrelated = [cache_dir / "hostup.json.toolongname", cache_dir / "other.json.a1B2c3"]
    hour_ago = time.time() - 3600
    for f in stale + [fresh] + unrelated:
        f.write_bytes(b"{" * 1000)
    for f in stale + unrelated:
        os.utime(f, (hour_ago, hour_ago))

    m = make_mount(hostup_config(fresh_sim, refresh=300), extra_opts=[f"cache_dir={cache_dir}"])
    m.refresh()

    left = sorted(p.name for p in cache_dir.iterdir())
    assert left == sorted(["actions.log", "hostup.json", fresh.name] +
                          [f.name for f in unrelated]), left
    assert read_cache(cache_dir / "hostup.json")["account"] == "hostup"


# ---- retries after a failed refresh --------------------------------------------------

def test_after_a_failed_list_the_retry_is_due_in_about_5s_and_happens_by_itself(mnt,
                                                                                  fresh_sim):
    mnt.expect_stderr(REFRESH_FAILED)
    fresh_sim.fault(action="status", status=500, method="GET", path=LIST, times=1)
    fresh_sim.clear_requests()

    assert write_errno(mnt.p("providers", "hostup", "refresh"), "1\n") == errno.EIO
    failed_at = time.time()

    assert mnt.provider("state") == "stale\n"
    due = seconds_until(mnt.provider("next_refresh"))
    assert 2.5 <= due <= 6.5, f"next_refresh is {due:.1f}s ahead, not ~5 s (interval is 300)"
    wait_for(lambda: mnt.provider("state") == "ok\n", timeout=12,
             what="the automatic retry to succeed")
    lists = list_requests(fresh_sim)
    assert [r["status"] for r in lists] == [500, 200]
    assert 3.5 <= lists[1]["time"] - failed_at <= 6.5
    assert 290 <= seconds_until(mnt.provider("next_refresh")) <= 301
    assert mnt.provider("last_error") == ""


def test_retry_delays_double_and_never_exceed_the_interval(fresh_sim, make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=12))
    m.expect_stderr(REFRESH_FAILED)
    fresh_sim.fault(action="status", status=500, method="GET", path=LIST, times=0)
    refresh = m.p("providers", "hostup", "refresh")

    dues = []
    for _ in range(3):
        assert write_errno(refresh, "1\n") == errno.EIO
        dues.append(seconds_until(m.provider("next_refresh")))

    # 5 s, 10 s, then 20 s capped at the interval (12 s); +-20 % jitter, and
    # up to 2 s less as next_refresh and its base are whole seconds.
    assert 2.5 <= dues[0] <= 6.5, dues
    assert 5.5 <= dues[1] <= 12.5, dues
    assert 7.5 <= dues[2] <= 14.5, dues


def test_the_retry_waits_for_the_apis_rate_limit_reset(mnt, fresh_sim):
    mnt.expect_stderr(REFRESH_FAILED)
    reset = int(time.time()) + 20
    fresh_sim.fault(action="status", status=500, method="GET", path=LIST, times=0,
                    headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    fresh_sim.clear_requests()

    assert write_errno(mnt.p("providers", "hostup", "refresh"), "1\n") == errno.EIO

    due = utc(mnt.provider("next_refresh")).timestamp()
    assert reset - 2 <= due <= reset + 5, "retry scheduled before the rate limit resets"
    time.sleep(7)
    assert len(list_requests(fresh_sim)) == 1, "retried while the API said to wait"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_says_unauthorized_and_is_not_retried_until_asked(mnt, fresh_sim,
                                                                       status):
    mnt.expect_stderr(REFRESH_FAILED)
    fresh_sim.fault(action="status", status=status, method="GET", path=LIST, times=0)
    fresh_sim.clear_requests()

    assert write_errno(mnt.p("providers", "hostup", "refresh"), "1\n") == errno.EACCES

    assert mnt.provider("state") == "unauthorized\n"
    assert str(status) in mnt.provider("last_error")
    assert mnt.provider("next_refresh") == ""
    assert sorted(os.listdir(mnt.p("vps", "hostup"))) == sorted(fresh_sim.vps_ids())
    time.sleep(8)   # beyond the first retry delay (5 s +20 %)
    assert len(list_requests(fresh_sim)) == 1, "retried a refused key by itself"

    os.kill(mnt.pid, signal.SIGHUP)   # asking again is allowed: one more try
    wait_for(lambda: len(list_requests(fresh_sim)) == 2, timeout=5, what="the SIGHUP refresh")
    time.sleep(1)
    assert mnt.provider("state") == "unauthorized\n"

    fresh_sim.clear_faults()          # the key was fixed
    mnt.refresh()
    assert mnt.provider("state") == "ok\n"
    assert mnt.provider("last_error") == ""
    assert 290 <= seconds_until(mnt.provider("next_refresh")) <= 301


# ---- accounts never wait on each other ----------------------------------------------

def test_a_stalled_account_does_not_delay_another_accounts_refresh(fresh_sim, private_sim,
                                                                 make_mount):
    config = hostup_config(fresh_sim, section="fast", refresh=300) + \
        hostup_config(private_sim, section="stalled", refresh=300, timeout=20)
    m = make_mount(config)
    private_sim.fault(action="delay", delay_ms=15000, method="GET", times=0)
    os.kill(m.pid, signal.SIGHUP)   # both refresh; one gets stuck
    wait_for(lambda: private_sim.admin("GET", "/_sim/faults")[0]["hits"] > 0, timeout=5,
             what="the stalled account's refresh to be stuck in the API")
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {"name": "fresh-while-the-other-hangs"})

    out, took = timed(sh, f"echo 1 > {q(m.p('providers', 'fast', 'refresh'))}")

    assert out.returncode == 0, out.stderr
    assert took < 2, f"the healthy account's refresh took {took:.1f}s"
    assert m.read("vps", "fast", vps_id, "name") == "fresh-while-the-other-hangs\n"
    _, took = timed(sh, f"cat {q(m.p('providers', 'stalled', 'state'))} && "
                        f"ls {q(m.p('vps', 'stalled'))}")
    assert took < 2
    # Unmounting abandons the stalled request instead of waiting it out.
    private_sim.clear_faults()
    _, took = timed(m.umount)
    assert took < 5, f"unmount waited {took:.1f}s for a stalled API"
