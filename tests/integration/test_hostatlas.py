"""HostAtlas (type = hostatlas) through a real mount: servers collected over
every page with their services and domains from the detail endpoint (read
concurrently but bounded, within the API's rate limit), incidents with their
server, heartbeats and their `ping` control (doc/SEMANTICS.md §3-§5 and §10.4)."""

import errno
import json
import os
import stat
import time

import pytest

from conftest import resource_entries, account_config, q, read, sh, wait_for, write_errno

ACCOUNT = "hostatlas"
REFRESH_FAILED = r"refresh failed"
# The first refresh failed: the mount says so when it is ready.
FIRST_REFRESH_FAILED = REFRESH_FAILED + r"|mounted at .*\(hostatlas: (error|unauthorized) "
PING_FAILED = r"ping: '.*' failed"
# Every HostAtlas server directory holds these besides the API's fields.
SYNTHESIZED = {"json"}


def config(sim, **keys):
    keys.setdefault("refresh", 300)
    return account_config(sim, "hostatlas", **keys)


def admin(sim, method, path, body=None):
    return sim.admin(method, "/_sim/hostatlas" + path, body, provider="hostatlas")


def ids(sim, kind):
    return [str(i) for i in admin(sim, "GET", f"/{kind}")["ids"]]


def stored(sim, kind, item_id):
    return admin(sim, "GET", f"/{kind}/{item_id}")


def configure(sim, **switches):
    sim.configure(provider="hostatlas", **switches)


def requests(sim, method="GET", path_re=r"^/api/v1/"):
    return [r for r in sim.requests(method, path_re) if r["provider"] == "hostatlas"]


def fault(sim, **rule):
    return sim.fault(provider="hostatlas", **rule)


def pings(sim):
    return admin(sim, "GET", "/pings")


def stats(sim):
    return admin(sim, "GET", "/stats")


def server_dir(mnt, server_id, *parts):
    return mnt.p("servers", ACCOUNT, str(server_id), *parts)


def heartbeat(mnt, hb_id, *parts):
    return mnt.p("heartbeats", ACCOUNT, str(hb_id), *parts)


def scalar_text(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true\n" if v else "false\n"
    return (v if isinstance(v, str) else json.dumps(v)) + "\n"


def expected_entries(obj, prefix=""):
    """{relative path: content, None for a directory} under doc/SEMANTICS.md §4, for
    the simulator's snake_case objects."""
    out = {}
    for key, value in obj.items():
        path = prefix + key
        if isinstance(value, dict):
            out[path] = None
            out.update(expected_entries(value, path + "/"))
        elif isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
            out[path] = None
            for i, element in enumerate(value):
                name = next((str(element[k]) for k in ("id", "identifier", "slug", "name")
                             if k in element), str(i))
                out[path + "/" + name] = None
                out.update(expected_entries(element, path + "/" + name + "/"))
        elif isinstance(value, list):
            out[path] = "".join(scalar_text(e) for e in value)
        else:
            out[path] = scalar_text(value)
    return out


def actual_entries(directory, skip_top=SYNTHESIZED):
    return resource_entries(directory, skip_top)


@pytest.fixture
def ha(fresh_sim, make_mount):
    """infrafs mounted over the simulator's HostAtlas account."""
    return make_mount(config(fresh_sim))


# ---- the tree -----------------------------------------------------------------------

def test_the_account_shows_servers_incidents_and_heartbeats(ha, fresh_sim):
    for kind in ("servers", "incidents", "heartbeats"):
        assert sorted(os.listdir(ha.p(kind, ACCOUNT)), key=int) == \
            sorted(ids(fresh_sim, kind), key=int), kind
    assert ha.provider("type", account=ACCOUNT) == "hostatlas\n"
    assert ha.provider("state", account=ACCOUNT) == "ok\n"
    assert ha.provider("last_error", account=ACCOUNT) == ""
    assert "heartbeats/" in ha.read("README") and "ping" in ha.read("README")


def test_paging_collects_every_server(fresh_sim, make_mount):
    configure(fresh_sim, server_count=73, max_per_page=10)
    mnt = make_mount(config(fresh_sim))

    assert sorted(os.listdir(mnt.p("servers", ACCOUNT)), key=int) == \
        sorted(ids(fresh_sim, "servers"), key=int)
    assert len(os.listdir(mnt.p("servers", ACCOUNT))) == 73
    pages = [r["query"] for r in requests(fresh_sim, path_re=r"^/api/v1/servers$")]
    # Asked for 100 a page, given 10: infrafs follows meta to page 8 and stops.
    assert [p["page"] for p in pages] == [str(n) for n in range(1, 9)]
    assert all(p["per_page"] == "100" for p in pages)


def test_cursor_paging_collects_every_server(fresh_sim, make_mount):
    configure(fresh_sim, server_count=45, max_per_page=10, pagination="cursor")
    mnt = make_mount(config(fresh_sim))

    assert len(os.listdir(mnt.p("servers", ACCOUNT))) == 45
    pages = [r["query"] for r in requests(fresh_sim, path_re=r"^/api/v1/servers$")]
    assert len(pages) == 5
    assert "cursor" not in pages[0]
    assert [p.get("cursor") for p in pages[1:]] == ["o10", "o20", "o30", "o40"]


@pytest.mark.parametrize("page_body,words", [
    ({"data": [{"id": 1, "hostname": "a"}], "meta": {"per_page": 1, "next_cursor": "again"}},
     "cursor 'again' a second time"),
    ({"data": [{"id": 1, "hostname": "a"}], "meta": {"total": 500, "per_page": 1}},
     "every item on this page was already read"),
    ({"data": [{"id": 1, "hostname": "a"}], "meta": {"total": 500, "page": 1, "per_page": 1}},
     "answered page 1 instead of page 2"),
], ids=["repeated-cursor", "same-items-again", "page-ignored"])
def test_endless_paging_is_stopped(fresh_sim, make_mount, page_body, words):
    fault(fresh_sim, action="status", status=200, path=r"^/api/v1/servers$", times=0,
          body=json.dumps(page_body))
    mnt = make_mount(config(fresh_sim))
    mnt.expect_stderr(FIRST_REFRESH_FAILED)

    assert mnt.provider("state", account=ACCOUNT) == "error\n"
    assert words in mnt.provider("last_error", account=ACCOUNT)
    assert len(requests(fresh_sim, path_re=r"^/api/v1/servers$")) == 2


def test_a_server_shows_list_and_detail_fields(ha, fresh_sim):
    server_id = ids(fresh_sim, "servers")[0]
    detail = stored(fresh_sim, "servers", server_id)
    want = expected_entries(detail)
    want["services_count"] = f"{len(detail['services'])}\n"
    want["domains_count"] = f"{len(detail['domains'])}\n"

    assert actual_entries(server_dir(ha, server_id)) == want
    shown = json.loads(read(server_dir(ha, server_id, "json")))
    assert shown["services"] == detail["services"] and shown["services_count"] == 4


def test_services_and_domains_are_directories_named_by_name(ha, fresh_sim):
    server = stored(fresh_sim, "servers", "47")

    assert sorted(os.listdir(server_dir(ha, 47, "services"))) == \
        sorted(s["name"] for s in server["services"])
    assert sorted(os.listdir(server_dir(ha, 47, "domains"))) == \
        sorted(d["name"] for d in server["domains"])
    assert sh(f"cat {q(server_dir(ha, 47, 'services', 'nginx', 'status'))}").stdout == "stopped\n"
    assert read(server_dir(ha, 47, "services", "nginx", "version")) == "1.24.0\n"
    for domain in server["domains"]:
        assert read(server_dir(ha, 47, "domains", domain["name"], "ssl_expiry")) == \
            domain["ssl_expiry"] + "\n"
    assert stat.S_ISDIR(os.stat(server_dir(ha, 47, "services", "nginx")).st_mode)


def test_details_are_read_concurrently_but_bounded(fresh_sim, make_mount):
    configure(fresh_sim, server_count=24, detail_delay_ms=150)
    mnt = make_mount(config(fresh_sim))

    seen = stats(fresh_sim)
    assert seen["detail_requests"] == 24
    assert seen["max_in_flight"] == 4        # the default detail_concurrency
    assert all(os.path.isdir(server_dir(mnt, s, "services")) for s in ids(fresh_sim, "servers"))


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_detail_concurrency_sets_the_bound(fresh_sim, make_mount, concurrency):
    configure(fresh_sim, server_count=16, detail_delay_ms=150)
    make_mount(config(fresh_sim, detail_concurrency=concurrency))

    assert stats(fresh_sim)["max_in_flight"] == concurrency
    assert stats(fresh_sim)["detail_requests"] == 16


@pytest.mark.parametrize("key, value, says", [
    *[("detail_concurrency", v, "a whole number from 1 to 8") for v in ("0", "9", "four", "-1")],
    *[("detail_max_age", v, "a whole number of seconds from 0 to 2592000")
      for v in ("-1", "ten", "2592001")],
])
def test_a_bad_detail_key_is_refused(fresh_sim, make_mount, key, value, says):
    mnt = make_mount(config(fresh_sim, **{key: value}))
    mnt.expect_stderr(FIRST_REFRESH_FAILED + "|" + key)

    assert f"{key} must be {says}" in mnt.provider("last_error", account=ACCOUNT)
    assert requests(fresh_sim) == []


def test_details_are_read_by_the_refresh_never_by_a_read(fresh_sim, make_mount):
    mnt = make_mount(config(fresh_sim, detail_max_age=0))
    fresh_sim.clear_requests()
    out = sh(f"find {q(mnt.path)} -type f -exec cat {{}} + > /dev/null; ls -lR {q(mnt.path)}")
    assert out.returncode == 0, out.stderr
    assert requests(fresh_sim) == []
    mnt.refresh(account=ACCOUNT)
    assert len(requests(fresh_sim, path_re=r"^/api/v1/servers/")) == 30


def test_a_detail_is_read_again_only_for_a_changed_list_item(ha, fresh_sim):
    fresh_sim.clear_requests()
    ha.refresh(account=ACCOUNT)
    assert requests(fresh_sim, path_re=r"^/api/v1/servers/") == []
    assert os.path.isdir(server_dir(ha, 47, "services"))       # the kept detail is shown

    admin(fresh_sim, "PATCH", "/servers/47", {"status": "offline", "kernel": "6.1.0-99"})
    ha.refresh(account=ACCOUNT)

    assert [r["path"] for r in requests(fresh_sim, path_re=r"^/api/v1/servers/")] == \
        ["/api/v1/servers/47"]
    assert read(server_dir(ha, 47, "status")) == "offline\n"
    assert read(server_dir(ha, 47, "kernel")) == "6.1.0-99\n"


def test_a_detail_older_than_detail_max_age_is_read_again(fresh_sim, make_mount):
    mnt = make_mount(config(fresh_sim, detail_max_age=2))
    # A field only the detail has: the list item stays the same.
    admin(fresh_sim, "PATCH", "/servers/47", {"kernel": "6.1.0-99"})
    mnt.refresh(account=ACCOUNT)
    assert read(server_dir(mnt, 47, "kernel")) != "6.1.0-99\n"

    time.sleep(2.2)
    fresh_sim.clear_requests()
    mnt.refresh(account=ACCOUNT)

    assert len(requests(fresh_sim, path_re=r"^/api/v1/servers/")) == 30
    assert read(server_dir(mnt, 47, "kernel")) == "6.1.0-99\n"



@pytest.mark.parametrize("reset_format", ["epoch", "iso"])
def test_a_small_rate_limit_is_honoured_without_errors(fresh_sim, make_mount, reset_format):
    # 8 requests per 2 s, 23 to make: lists of servers, incidents and
    # heartbeats, then 20 details with 4 workers.
    # The API's X-RateLimit-Limit does not say its window: the config does,
    # and lets refresh spend all of it (nothing else runs).
    configure(fresh_sim, server_count=20, reset_format=reset_format,
              rate_limit={"limit": 8, "window_s": 2})
    mnt = make_mount(config(fresh_sim, rate_limit="8/2", refresh_share="100%"))

    sent = requests(fresh_sim)
    assert len(sent) == 23
    assert [r for r in sent if r["status"] != 200] == []          # no 429 at all
    assert sent[-1]["time"] - sent[0]["time"] >= 2.5               # it had to wait
    assert mnt.provider("last_error", account=ACCOUNT) == ""
    assert all(os.path.isdir(server_dir(mnt, s, "services")) for s in ids(fresh_sim, "servers"))
    assert mnt.provider("rate_limit_remaining", account=ACCOUNT).strip().isdigit()


def test_a_429_with_retry_after_is_waited_out_and_retried(fresh_sim, make_mount):
    fault(fresh_sim, action="status", status=429, path=r"^/api/v1/servers/50$")
    mnt = make_mount(config(fresh_sim))

    tries = requests(fresh_sim, path_re=r"^/api/v1/servers/50$")
    assert [r["status"] for r in tries] == [429, 200]
    assert tries[1]["time"] - tries[0]["time"] >= 0.95            # Retry-After: 1
    assert os.path.isdir(server_dir(mnt, 50, "services"))
    assert mnt.provider("last_error", account=ACCOUNT) == ""


def test_a_failed_detail_keeps_the_server_and_says_so(ha, fresh_sim):
    services = sorted(os.listdir(server_dir(ha, 47, "services")))
    admin(fresh_sim, "PATCH", "/servers/47", {"status": "offline"})
    fault(fresh_sim, action="status", status=500, path=r"^/api/v1/servers/47$", times=0)
    ha.expect_stderr(r"server_error")

    ha.refresh(account=ACCOUNT)

    # The list's fresh fields, and the detail's from the last good read.
    assert read(server_dir(ha, 47, "status")) == "offline\n"
    assert read(server_dir(ha, 47, "hostname")) == "web-prod-01\n"
    assert sorted(os.listdir(server_dir(ha, 47, "services"))) == services
    assert read(server_dir(ha, 47, "kernel")) == stored(fresh_sim, "servers", "47")["kernel"] + "\n"
    assert ha.provider("state", account=ACCOUNT) == "ok\n"
    last_error = ha.provider("last_error", account=ACCOUNT)
    assert "servers 47: details not refreshed" in last_error
    assert "GET /api/v1/servers/47: HTTP 500 server_error" in last_error
    assert last_error.count("\n") == 1
    # Every other server is complete and not mentioned.
    assert "servers 50" not in last_error


def test_a_detail_never_read_leaves_the_list_fields(fresh_sim, make_mount):
    fault(fresh_sim, action="status", status=403, path=r"^/api/v1/servers/53$", times=0)
    mnt = make_mount(config(fresh_sim))

    assert read(server_dir(mnt, 53, "hostname")) == stored(fresh_sim, "servers", "53")["hostname"] + "\n"
    assert read(server_dir(mnt, 53, "services_count")) == \
        f"{len(stored(fresh_sim, 'servers', '53')['services'])}\n"
    assert not os.path.exists(server_dir(mnt, 53, "services"))
    last_error = mnt.provider("last_error", account=ACCOUNT)
    assert "servers 53: details not read, only the list's fields are shown" in last_error
    assert "HTTP 403 forbidden" in last_error
    # Once the detail answers again, the account is whole and quiet.
    fresh_sim.clear_faults()
    mnt.refresh(account=ACCOUNT)
    assert os.path.isdir(server_dir(mnt, 53, "services"))
    assert mnt.provider("last_error", account=ACCOUNT) == ""


def test_a_server_gone_from_the_list_leaves_the_tree(ha, fresh_sim):
    admin(fresh_sim, "DELETE", "/servers/50")
    ha.refresh(account=ACCOUNT)
    assert "50" not in os.listdir(ha.p("servers", ACCOUNT))


def test_status_vocabulary_passes_through_unchanged(ha, fresh_sim):
    admin(fresh_sim, "PATCH", "/servers/47", {"status": "maintenance",
                                              "services": [{"name": "nginx", "version": "1.25.0",
                                                            "status": "restarting"}]})
    admin(fresh_sim, "PATCH", "/incidents/891", {"status": "acknowledged"})
    ha.refresh(account=ACCOUNT)

    assert read(server_dir(ha, 47, "status")) == "maintenance\n"
    assert read(server_dir(ha, 47, "services", "nginx", "status")) == "restarting\n"
    assert os.listdir(server_dir(ha, 47, "services")) == ["nginx"]
    assert read(ha.p("incidents", ACCOUNT, "891", "status")) == "acknowledged\n"
    assert read(heartbeat(ha, 14, "status")) == "fail\n"


def test_a_server_without_a_usable_id_is_skipped_and_reported(fresh_sim, make_mount):
    admin(fresh_sim, "POST", "/servers", {"id": None, "hostname": "ghost"})
    mnt = make_mount(config(fresh_sim))

    assert len(os.listdir(mnt.p("servers", ACCOUNT))) == 30
    assert "no usable id" in mnt.provider("last_error", account=ACCOUNT)


# ---- incidents -------------------------------------------------------------------------

def test_an_incidents_server_is_a_directory(ha, fresh_sim):
    incident = ha.p("incidents", ACCOUNT, "891")

    assert stat.S_ISDIR(os.stat(os.path.join(incident, "server")).st_mode)
    assert sorted(os.listdir(os.path.join(incident, "server"))) == ["hostname", "id"]
    assert read(os.path.join(incident, "server", "id")) == "47\n"
    assert read(os.path.join(incident, "server", "hostname")) == "web-prod-01\n"
    assert read(os.path.join(incident, "title")) == "nginx process stopped\n"
    assert read(os.path.join(incident, "severity")) == "critical\n"
    # An incident about no server: a null field is an empty file.
    assert read(ha.p("incidents", ACCOUNT, "880", "server")) == ""


# ---- heartbeats and ping -----------------------------------------------------------------

def test_reading_ping_lists_its_command(ha):
    assert sh(f"cat {q(heartbeat(ha, 12, 'ping'))}").stdout == "1\n"
    assert stat.S_IMODE(os.stat(heartbeat(ha, 12, "ping")).st_mode) == 0o644
    assert read(heartbeat(ha, 12, "last_action")) == ""


def test_ping_requests_the_ping_url_exactly_once(ha, fresh_sim):
    token = stored(fresh_sim, "heartbeats", "12")["token"]
    port = fresh_sim.ports["hostatlas"]
    assert read(heartbeat(ha, 12, "ping_url")) == f"http://127.0.0.1:{port}/heartbeat/{token}\n"
    fresh_sim.clear_requests()

    out = sh(f"backup() {{ true; }}; backup && echo 1 > {q(heartbeat(ha, 12, 'ping'))}")

    assert out.returncode == 0 and out.stderr == ""
    sent = [p for p in pings(fresh_sim)]
    assert [(p["heartbeat_id"], p["method"]) for p in sent] == [(12, "GET")]
    # On the API's own origin, the request carries the key like any other.
    assert sent[0]["auth"] == "bearer"
    assert [r["path"] for r in fresh_sim.requests() if r["path"].startswith("/heartbeat/")] == \
        [f"/heartbeat/{token}"]
    assert read(heartbeat(ha, 12, "last_action")).split()[1:5] == ["1", "ok", "200", "pinged"]
    wait_for(lambda: read(heartbeat(ha, 12, "status")) == "ok\n", what="status ok")
    assert read(heartbeat(ha, 12, "last_ping_at")) != ""


def test_ping_to_another_origin_never_sends_the_key(ha, fresh_sim):
    port = fresh_sim.ports["hostatlas"]
    configure(fresh_sim, ping_origin=f"http://localhost:{port}")
    ha.refresh(account=ACCOUNT)
    assert read(heartbeat(ha, 13, "ping_url")).startswith(f"http://localhost:{port}/heartbeat/")

    assert write_errno(heartbeat(ha, 13, "ping"), "1\n") == 0

    sent = pings(fresh_sim)
    assert len(sent) == 1
    assert sent[0]["heartbeat_id"] == 13 and sent[0]["host"] == f"localhost:{port}"
    assert sent[0]["auth"] is None


def test_ping_url_of_another_scheme_is_refused_without_a_request(ha, fresh_sim):
    body = {"data": [{"id": 12, "name": "nightly-backup", "status": "new",
                      "ping_url": "file:///etc/passwd"}],
            "meta": {"total": 1, "page": 1, "per_page": 100}}
    fault(fresh_sim, action="status", status=200, path=r"^/api/v1/heartbeats$", times=0,
          body=json.dumps(body))
    ha.refresh(account=ACCOUNT)
    ha.expect_stderr(PING_FAILED)

    assert write_errno(heartbeat(ha, 12, "ping"), "1\n") == errno.EIO
    assert pings(fresh_sim) == []
    assert "refusing a 'file' URL; infrafs only requests http and https" in \
        read(heartbeat(ha, 12, "last_action"))


def test_ping_of_a_deleted_heartbeat_is_enoent(ha, fresh_sim):
    admin(fresh_sim, "DELETE", "/heartbeats/14")
    ha.expect_stderr(PING_FAILED)

    assert write_errno(heartbeat(ha, 14, "ping"), "1") == errno.ENOENT
    line = read(heartbeat(ha, 14, "last_action"))
    assert " 1 failed 404 not_found: " in line and "No heartbeat has this ping URL" in line


@pytest.mark.parametrize("command", ["2", "1 force", " \n", "ping", "1\n1\n"])
def test_ping_refuses_other_input_without_a_request(ha, fresh_sim, command):
    ha.expect_stderr(PING_FAILED)
    assert write_errno(heartbeat(ha, 12, "ping"), command) == errno.EINVAL
    assert pings(fresh_sim) == []
    assert " failed - " in read(heartbeat(ha, 12, "last_action"))


def test_ping_without_a_ping_url_looks_again_then_fails(ha, fresh_sim):
    # The API lists the heartbeat without its ping_url: infrafs asks the
    # list once more before giving up, and requests nothing else.
    body = {"data": [{"id": 12, "name": "nightly-backup", "status": "new"}],
            "meta": {"total": 1, "page": 1, "per_page": 100}}
    fault(fresh_sim, action="status", status=200, path=r"^/api/v1/heartbeats$", times=0,
          body=json.dumps(body))
    ha.refresh(account=ACCOUNT)
    fresh_sim.clear_requests()
    ha.expect_stderr(PING_FAILED)

    assert write_errno(heartbeat(ha, 12, "ping"), "1\n") == errno.EIO

    assert [r["path"] for r in requests(fresh_sim)] == ["/api/v1/heartbeats"]
    assert pings(fresh_sim) == []
    assert "heartbeat 12 has no ping_url" in read(heartbeat(ha, 12, "last_action"))


def test_ping_after_a_remount_from_the_disk_cache_finds_the_url(fresh_sim, make_mount, tmp_path):
    # The tree comes from the disk cache (this mount's refresh fails), so
    # infrafs has not seen the ping_url in this run: it looks it up.
    cache = f"cache_dir={tmp_path / 'cache'}"
    first = make_mount(config(fresh_sim), extra_opts=[cache])
    assert first.umount() == 0
    fault(fresh_sim, action="status", status=500, path=r"^/api/v1/servers$", times=0)
    second = make_mount(config(fresh_sim), extra_opts=[cache])
    second.expect_stderr(FIRST_REFRESH_FAILED + r"|mounted at .*hostatlas: stale")
    assert os.path.isdir(heartbeat(second, 12))
    fresh_sim.clear_requests()

    assert write_errno(heartbeat(second, 12, "ping"), "1") == 0

    assert [p["heartbeat_id"] for p in pings(fresh_sim)] == [12]
    assert [r["path"] for r in requests(fresh_sim, path_re=r"^/api/v1/heartbeats")][:1] == \
        ["/api/v1/heartbeats"]


# ---- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["nested", "flat"])
@pytest.mark.parametrize("status,code,want", [
    (401, "unauthenticated", errno.EACCES), (403, "forbidden", errno.EACCES),
    (404, "not_found", errno.ENOENT), (409, "conflict", errno.EBUSY),
    (422, "validation_failed", errno.EINVAL), (429, "rate_limited", errno.EAGAIN),
    (500, "server_error", errno.EIO), (503, "service_unavailable", errno.EIO),
])
def test_ping_errors_map_to_errno_and_last_action(ha, fresh_sim, shape, status, code, want):
    configure(fresh_sim, error_shape=shape)
    fault(fresh_sim, action="status", status=status, path=r"^/heartbeat/")
    ha.expect_stderr(PING_FAILED)

    assert write_errno(heartbeat(ha, 12, "ping"), "1\n") == want

    line = read(heartbeat(ha, 12, "last_action"))
    assert f" 1 failed {status} {code}: " in line
    assert line.count("\n") == 1 and fresh_sim.token not in line
    # Refused before or after acting, a ping is never repeated by infrafs.
    assert len(pings(fresh_sim)) == 0 and \
        len(fresh_sim.requests(path_re=r"^/heartbeat/")) == 1


@pytest.mark.parametrize("status,want,state", [
    (401, errno.EACCES, "unauthorized"), (403, errno.EACCES, "unauthorized"),
    (500, errno.EIO, "stale"),
])
def test_refresh_errors_map_to_errno_and_last_error(ha, fresh_sim, status, want, state):
    fault(fresh_sim, action="status", status=status, path=r"^/api/v1/incidents$", times=0)
    ha.expect_stderr(REFRESH_FAILED)

    assert write_errno(ha.p("providers", ACCOUNT, "refresh"), "1\n") == want

    assert ha.provider("state", account=ACCOUNT) == state + "\n"
    assert f"GET /api/v1/incidents?page=1&per_page=100: HTTP {status}" in \
        ha.provider("last_error", account=ACCOUNT)
    # The last good data stays.
    assert len(os.listdir(ha.p("incidents", ACCOUNT))) == 4


def test_a_wrong_key_says_unauthorized(fresh_sim, make_mount):
    mnt = make_mount(config(fresh_sim, token="not-the-key"))
    mnt.expect_stderr(FIRST_REFRESH_FAILED)

    assert mnt.provider("state", account=ACCOUNT) == "unauthorized\n"
    last_error = mnt.provider("last_error", account=ACCOUNT)
    assert "HTTP 401 unauthenticated: Invalid or missing API key" in last_error
    assert "not-the-key" not in last_error
    assert os.listdir(mnt.p("servers", ACCOUNT)) == []


# ---- the simulator itself ------------------------------------------------------------------

def raw_get(sim, path, token=None):
    """(status, headers, parsed body) of a GET on the HostAtlas port."""
    import urllib.error
    import urllib.request
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(sim.url("hostatlas") + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


def test_simulator_sends_rate_limit_headers_on_every_api_answer(fresh_sim):
    for path, token, status in [("/api/v1/servers", fresh_sim.token, 200),
                                ("/api/v1/servers/1", fresh_sim.token, 404),
                                ("/api/v1/incidents", None, 401)]:
        got, headers, body = raw_get(fresh_sim, path, token)
        assert got == status
        assert headers["X-RateLimit-Limit"] == "600"
        assert headers["X-RateLimit-Remaining"].isdigit()
        assert headers["X-RateLimit-Reset"].isdigit()
        if status != 200:
            assert set(body["error"]) == {"code", "message"}


def test_simulator_answers_429_with_retry_after_when_the_bucket_is_empty(fresh_sim):
    configure(fresh_sim, rate_limit={"limit": 2, "window_s": 60}, error_shape="flat")
    answers = [raw_get(fresh_sim, "/api/v1/heartbeats", fresh_sim.token) for _ in range(3)]

    assert [a[0] for a in answers] == [200, 200, 429]
    status, headers, body = answers[2]
    assert int(headers["Retry-After"]) >= 1 and headers["X-RateLimit-Remaining"] == "0"
    assert body["code"] == "rate_limited" and body["status"] == 429 and body["message"]
