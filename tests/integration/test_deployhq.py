"""DeployHQ through the real mount: configuration (user, url), HTTP Basic,
vps/ from /hosted_resources without the static sites, regions/ and sizes/
in every documented shape, a managed hosting part that fails without
blanking the VPSes, the `sync` and `retry_provision` controls, and
DeployHQ's error bodies as errno plus words in last_action."""

import base64
import errno
import http
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import (BY_ME, ISO_UTC, ROOT_ENTRIES, TOKEN, Simulator, account_config, bash,
                      is_mounted, q, read, sh, wait_for, write_errno)

USER = "demo@example.com"        # the simulator's default DeployHQ user
STATUSES = ("provisioning", "active", "suspended", "error", "destroying")
SYNC_FAILED = r"sync: '1' failed"
INCOMPLETE = r"refresh incomplete"


def dhq_config(sim, section="deployhq", **keys):
    keys.setdefault("user", USER)
    keys.setdefault("refresh", 300)
    return account_config(sim, "deployhq", section, **keys)


def admin(sim, method, path, body=None):
    return sim.admin(method, "/_sim/deployhq" + path, body, provider="deployhq")


def quoted(identifier):
    return urllib.parse.quote(identifier, safe="")


def resources(sim):
    """Every item of GET /hosted_resources as the simulator stores it."""
    return admin(sim, "GET", "/hosted_resources")["resources"]


def vpses(sim):
    return [r for r in resources(sim) if r.get("kind", "hosted_resource") in
            ("hosted_resource", None)]


def by_name(sim, name):
    return next(r for r in resources(sim) if r["name"] == name)


def patch(sim, identifier, fields):
    return admin(sim, "PATCH", "/hosted_resources/" + quoted(identifier), fields)


def calls(sim, method=None, path_re=None):
    """DeployHQ requests in the simulator's log."""
    return [r for r in sim.admin("GET", "/_sim/requests?provider=deployhq")
            if (method is None or r["method"] == method)
            and (path_re is None or re.search(path_re, r["path"]))]


def res_calls(identifier, suffix=""):
    return rf"^/hosted_resources/{re.escape(quoted(identifier))}{re.escape(suffix)}$"


@pytest.fixture
def dsim(fresh_sim):
    fresh_sim.configure(provider="deployhq", sync_seconds=1.0, provision_seconds=1.0)
    return fresh_sim


@pytest.fixture
def dmnt(dsim, make_mount):
    """infrafs mounted over the simulator's DeployHQ account."""
    return make_mount(dhq_config(dsim))


class D:
    """Paths and reads under vps/deployhq/<identifier>/."""

    def __init__(self, mnt, identifier, account="deployhq"):
        self.mnt = mnt
        self.dir = mnt.p("vps", account, identifier)

    def p(self, *parts):
        return os.path.join(self.dir, *parts)

    def read(self, *parts):
        return read(self.p(*parts))


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return str(path)


# ---- configuration and authentication ----------------------------------------

@pytest.mark.parametrize("missing", ["user", "url"])
def test_an_account_without_user_or_url_is_refused_naming_the_key(dsim, daemons, tmp_path,
                                                                  missing):
    lines = [line for line in dhq_config(dsim).splitlines()
             if not line.startswith(missing + " ")]
    config = write_config(tmp_path / "config", "\n".join(lines) + "\n")
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)

    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt)

    assert out.returncode != 0
    assert f"missing required key '{missing}' for type deployhq" in out.stderr, out.stderr
    assert config in out.stderr and "deployhq" in out.stderr
    assert not is_mounted(mnt)


def test_every_request_uses_http_basic_with_the_user_and_the_token(dmnt, dsim):
    dsim.clear_requests()
    dmnt.refresh("deployhq")

    sent = calls(dsim)
    assert {r["path"] for r in sent} == {"/hosted_resources", "/managed_hosting/regions",
                                         "/managed_hosting/sizes"}
    assert all(r["auth"] == "basic" for r in sent), sent
    # The simulator accepts only USER with the token: every answer was a 200.
    assert all(r["status"] == 200 for r in sent), sent
    assert dmnt.provider("state", "deployhq") == "ok\n"
    assert TOKEN not in dmnt.provider("url", "deployhq")


@pytest.mark.parametrize("keys", [{"user": "someone@example.com"}, {"token": "wrong"}],
                         ids=["wrong-user", "wrong-token"])
def test_wrong_credentials_make_the_account_unauthorized_and_say_so(dsim, make_mount, keys):
    mnt = make_mount(dhq_config(dsim, **keys))
    mnt.expect_stderr(r"refresh failed")

    assert mnt.provider("state", "deployhq") == "unauthorized\n"
    last_error = mnt.provider("last_error", "deployhq")
    assert "GET /hosted_resources: HTTP 401" in last_error, last_error
    assert "invalid_credentials" in last_error
    assert os.listdir(mnt.p("vps", "deployhq")) == []
    assert TOKEN not in last_error and "wrong" not in last_error


# ---- vps/: hosted resources ----------------------------------------------------

def test_vps_holds_exactly_the_hosted_resources_and_no_static_sites(dmnt, dsim):
    everything = resources(dsim)
    sites = [r["identifier"] for r in everything if r.get("kind") == "hosted_website"]
    wanted = [r["identifier"] for r in vpses(dsim)]
    assert len(sites) >= 2 and len(wanted) >= 5
    assert any("kind" not in r for r in everything), "the seed lacks a kind-less VPS"

    assert sorted(os.listdir(dmnt.p("vps", "deployhq"))) == sorted(wanted)
    assert not set(sites) & set(os.listdir(dmnt.p("vps", "deployhq")))
    assert dmnt.provider("last_error", "deployhq") == ""


def test_the_root_offers_vps_regions_and_sizes(dmnt):
    assert sorted(os.listdir(dmnt.path)) == sorted(ROOT_ENTRIES + ["regions", "sizes", "vps"])
    assert os.listdir(dmnt.p("regions")) == ["deployhq"]
    assert os.listdir(dmnt.p("sizes")) == ["deployhq"]


def test_every_field_is_a_file_ssh_key_a_directory_and_json_the_object(dmnt, dsim):
    vps = by_name(dsim, "web-server")
    d = D(dmnt, vps["identifier"])

    for key, value in vps.items():
        if isinstance(value, dict):
            assert os.path.isdir(d.p(key))
            for sub, subvalue in value.items():
                assert d.read(key, sub) == str(subvalue) + "\n", (key, sub)
        elif value is None:
            assert d.read(key) == ""
        else:
            assert d.read(key) == (json.dumps(value) if isinstance(value, float)
                                   else str(value)) + "\n", key
    assert sorted(os.listdir(d.dir)) == sorted(
        list(vps) + ["json", "sync", "retry_provision", "last_action"])
    assert sorted(os.listdir(d.p("ssh_key"))) == sorted(vps["ssh_key"])
    assert d.read("ssh_key", "fingerprint").startswith("SHA256:")
    assert json.loads(d.read("json")) == vps
    assert d.read("ip_address") == vps["ip_address"] + "\n"
    assert d.read("monthly_cost") == "6.0\n"


def test_a_null_field_is_an_empty_file(dmnt, dsim):
    staging = by_name(dsim, "staging")
    assert staging["ip_address"] is None

    assert D(dmnt, staging["identifier"]).read("ip_address") == ""


def test_every_documented_status_passes_through_unchanged(dmnt, dsim):
    shown = {v["identifier"]: D(dmnt, v["identifier"]).read("status") for v in vpses(dsim)}

    assert shown == {v["identifier"]: v["status"] + "\n" for v in vpses(dsim)}
    assert set(shown.values()) == {s + "\n" for s in STATUSES}


def test_new_vpses_appear_and_new_static_sites_do_not_after_a_refresh(dmnt, dsim):
    vps = admin(dsim, "POST", "/hosted_resources", {"name": "fresh", "status": "provisioning"})
    site = admin(dsim, "POST", "/hosted_resources", {"kind": "hosted_website", "name": "blog"})

    dmnt.refresh("deployhq")

    listed = os.listdir(dmnt.p("vps", "deployhq"))
    assert vps["identifier"] in listed and site["identifier"] not in listed
    assert D(dmnt, vps["identifier"]).read("status") == "provisioning\n"


def test_an_item_without_an_identifier_is_skipped_and_reported(dmnt, dsim):
    admin(dsim, "POST", "/hosted_resources", {"identifier": None, "name": "anonymous"})

    dmnt.refresh("deployhq")

    assert sorted(os.listdir(dmnt.p("vps", "deployhq"))) == \
        sorted(v["identifier"] for v in vpses(dsim) if v["identifier"])
    last_error = dmnt.provider("last_error", "deployhq")
    assert re.search(r"hosted resource #\d+ \('anonymous'\) has no identifier", last_error), \
        last_error
    assert dmnt.provider("state", "deployhq") == "ok\n"


def test_an_identifier_with_a_slash_is_escaped_and_its_controls_reach_it(dmnt, dsim):
    admin(dsim, "POST", "/hosted_resources", {"identifier": "../up", "name": "odd"})
    dmnt.refresh("deployhq")
    dsim.clear_requests()

    assert "..%2Fup" in os.listdir(dmnt.p("vps", "deployhq"))
    assert sh(f"echo 1 > {q(dmnt.p('vps', 'deployhq', '..%2Fup', 'sync'))}").returncode == 0

    assert [r["path"] for r in calls(dsim, "POST")] == ["/hosted_resources/..%2Fup/sync"]
    assert not os.path.exists(dmnt.p("vps", "up"))


# ---- regions/ and sizes/ ---------------------------------------------------------

@pytest.mark.parametrize("shape", ["regions", "grouped", "array"])
def test_regions_are_listed_from_every_documented_shape(dsim, make_mount, shape):
    dsim.configure(provider="deployhq", regions_shape=shape)
    mnt = make_mount(dhq_config(dsim))

    regions = mnt.p("regions", "deployhq")
    assert sorted(os.listdir(regions)) == sorted(["nyc1", "sfo3", "ams3", "fra1", "lon1",
                                                  "sgp1"])
    assert read(os.path.join(regions, "ams3", "name")) == "Amsterdam 3\n"
    assert read(os.path.join(regions, "ams3", "slug")) == "ams3\n"
    assert json.loads(read(os.path.join(regions, "nyc1", "json")))["name"] == "New York 1"
    if shape == "grouped":
        assert read(os.path.join(regions, "ams3", "group")) == "Europe\n"
        assert read(os.path.join(regions, "nyc1", "group")) == "North America\n"
        # `json` is the region as the API sent it; the group is beside it.
        assert "group" not in json.loads(read(os.path.join(regions, "ams3", "json")))
    else:
        assert not os.path.exists(os.path.join(regions, "ams3", "group"))
    if shape == "array":
        assert read(os.path.join(regions, "sgp1", "available")) == "false\n"
    assert mnt.provider("last_error", "deployhq") == ""


@pytest.mark.parametrize("shape,fields", [
    ("sizes", {"label": "2 vCPU / 4 GB", "monthly_cost": "18.0", "currency": "gbp"}),
    ("array", {"description": "2 vCPU / 4 GB", "memory": "4096", "vcpus": "2", "disk": "80"}),
])
def test_sizes_are_listed_from_every_documented_shape(dsim, make_mount, shape, fields):
    dsim.configure(provider="deployhq", sizes_shape=shape)
    mnt = make_mount(dhq_config(dsim))

    sizes = mnt.p("sizes", "deployhq")
    assert sorted(os.listdir(sizes)) == ["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb",
                                         "s-2vcpu-4gb"]
    for key, value in fields.items():
        assert read(os.path.join(sizes, "s-2vcpu-4gb", key)) == value + "\n", key
    assert os.listdir(os.path.join(sizes, "s-2vcpu-4gb")).count("json") == 1


def test_without_beta_features_the_vpses_show_and_last_error_says_what_failed(
        dsim, make_mount):
    dsim.configure(provider="deployhq", beta_features=False)
    mnt = make_mount(dhq_config(dsim))
    mnt.expect_stderr(INCOMPLETE)

    assert sorted(os.listdir(mnt.p("vps", "deployhq"))) == \
        sorted(v["identifier"] for v in vpses(dsim))
    assert os.listdir(mnt.p("regions", "deployhq")) == []
    assert os.listdir(mnt.p("sizes", "deployhq")) == []
    assert mnt.provider("state", "deployhq") == "ok\n"
    last_error = mnt.provider("last_error", "deployhq")
    assert "regions not refreshed" in last_error and "sizes not refreshed" in last_error
    assert "GET /managed_hosting/regions: HTTP 403 api_access_restricted" in last_error
    assert "beta features" in last_error
    assert last_error.count("\n") == 1
    # A refresh that only partly failed still succeeds: the VPSes are current.
    assert write_errno(mnt.p("providers", "deployhq", "refresh"), "1\n") == 0


@pytest.mark.parametrize("status", [403, 404, 500])
def test_a_failing_regions_endpoint_keeps_the_last_regions_and_still_refreshes_the_vpses(
        dmnt, dsim, status):
    dmnt.expect_stderr(INCOMPLETE)
    vps = by_name(dsim, "web-server")
    before = sorted(os.listdir(dmnt.p("regions", "deployhq")))
    assert before
    dsim.fault(action="status", status=status, method="GET",
               path=r"^/managed_hosting/regions$", times=0)
    patch(dsim, vps["identifier"], {"name": "renamed"})

    assert write_errno(dmnt.p("providers", "deployhq", "refresh"), "1\n") == 0

    assert D(dmnt, vps["identifier"]).read("name") == "renamed\n"
    assert sorted(os.listdir(dmnt.p("regions", "deployhq"))) == before
    assert read(dmnt.p("regions", "deployhq", "ams3", "name")) == "Amsterdam 3\n"
    assert os.listdir(dmnt.p("sizes", "deployhq")), "sizes did not fail and must stay"
    last_error = dmnt.provider("last_error", "deployhq")
    assert f"GET /managed_hosting/regions: HTTP {status}" in last_error, last_error
    assert "sizes not refreshed" not in last_error
    assert dmnt.provider("state", "deployhq") == "ok\n"

    dsim.clear_faults()
    dmnt.refresh("deployhq")
    assert dmnt.provider("last_error", "deployhq") == ""


def test_after_a_remount_the_regions_saved_on_disk_stay_when_the_endpoint_fails(
        dsim, make_mount, tmp_path):
    cache = f"cache_dir={tmp_path / 'cache'}"
    dsim.configure(provider="deployhq", regions_shape="grouped")
    first = make_mount(dhq_config(dsim), extra_opts=[cache])
    regions = sorted(os.listdir(first.p("regions", "deployhq")))
    assert regions and read(first.p("regions", "deployhq", "ams3", "group")) == "Europe\n"
    assert first.umount() == 0
    dsim.configure(provider="deployhq", beta_features=False)

    second = make_mount(dhq_config(dsim), extra_opts=[cache])
    second.expect_stderr(INCOMPLETE)

    # The first refresh has finished (the mount waits for it): the VPSes
    # are fresh, the regions are the ones saved, not blanked.
    assert second.provider("state", "deployhq") == "ok\n"
    assert sorted(os.listdir(second.p("regions", "deployhq"))) == regions
    assert read(second.p("regions", "deployhq", "ams3", "group")) == "Europe\n"
    assert "regions not refreshed" in second.provider("last_error", "deployhq")
    assert calls(dsim, "GET", r"^/managed_hosting/regions$")[-1]["status"] == 403


def test_an_unrecognised_regions_answer_is_reported_and_the_old_regions_stay(dmnt, dsim):
    dmnt.expect_stderr(INCOMPLETE)
    dsim.fault(action="status", status=200, method="GET", path=r"^/managed_hosting/regions$",
               body='{"data": []}', times=0)

    dmnt.refresh("deployhq")

    assert "nyc1" in os.listdir(dmnt.p("regions", "deployhq"))
    assert "GET /managed_hosting/regions: unrecognised answer" in \
        dmnt.provider("last_error", "deployhq")


def test_a_failing_hosted_resources_list_keeps_everything_and_marks_the_account_stale(
        dmnt, dsim):
    dmnt.expect_stderr(r"refresh failed")
    listed = sorted(os.listdir(dmnt.p("vps", "deployhq")))
    dsim.fault(action="status", status=500, method="GET", path=r"^/hosted_resources$",
               times=0)

    assert write_errno(dmnt.p("providers", "deployhq", "refresh"), "1\n") == errno.EIO

    assert sorted(os.listdir(dmnt.p("vps", "deployhq"))) == listed
    assert os.listdir(dmnt.p("regions", "deployhq"))
    assert dmnt.provider("state", "deployhq") == "stale\n"
    assert "GET /hosted_resources: HTTP 500" in dmnt.provider("last_error", "deployhq")


# ---- the sync control ------------------------------------------------------------

def test_reading_sync_and_retry_provision_lists_their_command(dmnt, dsim):
    d = D(dmnt, by_name(dsim, "web-server")["identifier"])

    assert d.read("sync") == "1\n"
    assert d.read("retry_provision") == "1\n"
    assert oct(os.stat(d.p("sync")).st_mode & 0o777) == "0o644"
    assert not os.path.exists(d.p("power"))


def test_echo_1_to_sync_posts_once_and_records_sync_requested(dmnt, dsim):
    vps = by_name(dsim, "web-server")
    d = D(dmnt, vps["identifier"])
    dsim.clear_requests()

    out = sh(f"echo 1 > {q(d.p('sync'))}")

    assert out.returncode == 0 and out.stderr == ""
    posts = calls(dsim, "POST")
    assert [r["path"] for r in posts] == [f"/hosted_resources/{vps['identifier']}/sync"]
    assert posts[0]["body"] in (None, "") and posts[0]["auth"] == "basic"
    line = d.read("last_action")
    assert re.fullmatch(rf"{ISO_UTC} 1 ok 200 sync_requested{BY_ME}\n", line), line
    # Re-read at once, without waiting for the periodic refresh.
    wait_for(lambda: calls(dsim, "GET", res_calls(vps["identifier"])), timeout=5,
             what="the re-read after sync")
    assert [h["action"] for h in admin(dsim, "GET", "/syncs")] == ["sync"]


def test_after_sync_status_and_updated_at_move_without_a_refresh(dmnt, dsim):
    staging = by_name(dsim, "staging")
    d = D(dmnt, staging["identifier"])
    assert d.read("status") == "provisioning\n"
    before = d.read("updated_at")
    dsim.clear_requests()

    assert sh(f"echo 1 > {q(d.p('sync'))}").returncode == 0
    start = time.monotonic()

    # The simulated background sync takes 1 s: the immediate re-read sees
    # the old state, the one 2 s later the new.
    wait_for(lambda: d.read("status") == "active\n", timeout=8, what="status active")
    took = time.monotonic() - start
    assert 1.0 <= took <= 6, f"the new status showed after {took:.1f}s"
    assert d.read("updated_at") != before
    assert d.read("updated_at") == admin(
        dsim, "GET", "/hosted_resources/" + staging["identifier"])["updated_at"] + "\n"
    assert d.read("ip_address") != ""
    rereads = calls(dsim, "GET", res_calls(staging["identifier"]))
    assert len(rereads) == 2, rereads
    assert rereads[1]["time"] - rereads[0]["time"] >= 1.8
    assert calls(dsim, "GET", r"^/hosted_resources$") == [], "it waited for a refresh"
    assert dmnt.provider("state", "deployhq") == "ok\n"


@pytest.mark.parametrize("data", ["2\n", "sync\n", "1 force\n", "\n", "1\n1\n"],
                         ids=["two", "word", "force", "blank", "two-lines"])
def test_anything_but_1_to_sync_fails_with_einval_and_makes_no_api_call(dmnt, dsim, data):
    vps = by_name(dsim, "web-server")
    d = D(dmnt, vps["identifier"])
    dsim.clear_requests()

    assert write_errno(d.p("sync"), data) == errno.EINVAL

    assert calls(dsim) == []
    assert re.fullmatch(rf"{ISO_UTC} \S+ failed - .*\n", d.read("last_action"))


# DeployHQ's documented error bodies, each produced natively by the simulator
# (error_style switch) for a status injected on the sync POST.
ERROR_CASES = [
    ("coded", 404, errno.ENOENT, "404 record_not_found: hint: "),
    ("coded", 403, errno.EACCES, "403 api_access_restricted: hint: "),
    ("coded", 429, errno.EAGAIN, "429 rate_limited: hint: "),
    ("coded", 503, errno.EIO, "503 service_unavailable: hint: "),
    ("spec", 401, errno.EACCES, "401: "),
    ("spec", 500, errno.EIO, "500: "),
    ("error", 409, errno.EBUSY, "409: "),
    ("error", 400, errno.EINVAL, "400: "),
    ("errors", 422, errno.EINVAL, "422: "),
    ("fields", 422, errno.EINVAL, "422: "),
]


@pytest.mark.parametrize("style,status,err,words", ERROR_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in ERROR_CASES])
def test_sync_errors_in_every_documented_form_give_their_errno_and_words_in_last_action(
        dmnt, dsim, style, status, err, words):
    dmnt.expect_stderr(SYNC_FAILED)
    vps = by_name(dsim, "web-server")
    d = D(dmnt, vps["identifier"])
    dsim.configure(provider="deployhq", error_style=style)
    dsim.fault(provider="deployhq", action="status", status=status, method="POST",
               path=r"/sync$", times=0)
    dsim.clear_requests()

    shell = bash(f"echo 1 > {q(d.p('sync'))}")
    assert shell.returncode != 0
    assert os.strerror(err) in shell.stderr, shell.stderr
    assert write_errno(d.p("sync"), "1\n") == err

    line = d.read("last_action")
    description = http.HTTPStatus(status).description
    assert re.fullmatch(rf"{ISO_UTC} 1 failed {status} .*\n", line), line
    assert words + description in line, line
    assert "POST /hosted_resources/" in line and TOKEN not in line
    if status != 429:  # a 429 may be retried: DeployHQ did not act on it
        assert len(calls(dsim, "POST")) == 2, "one write must be one POST"


def test_a_sync_error_body_given_verbatim_shows_its_words(dmnt, dsim):
    dmnt.expect_stderr(SYNC_FAILED)
    d = D(dmnt, by_name(dsim, "web-server")["identifier"])
    dsim.fault(provider="deployhq", action="status", status=422, method="POST", path=r"/sync$",
               body='{"base":["Sync already queued"],"region":["is unavailable"]}')

    assert write_errno(d.p("sync"), "1\n") == errno.EINVAL

    assert "HTTP 422: Sync already queued; region is unavailable" in d.read("last_action")


def test_sync_of_a_resource_deleted_meanwhile_fails_with_enoent(dmnt, dsim):
    dmnt.expect_stderr(SYNC_FAILED)
    vps = by_name(dsim, "api-server")
    admin(dsim, "DELETE", "/hosted_resources/" + vps["identifier"])

    assert write_errno(D(dmnt, vps["identifier"]).p("sync"), "1\n") == errno.ENOENT

    line = D(dmnt, vps["identifier"]).read("last_action")
    assert re.fullmatch(rf"{ISO_UTC} 1 failed 404 record_not_found: .*HTTP 404 "
                        r"record_not_found: hint: Check the identifier.*\n", line), line


def test_an_unreadable_answer_to_sync_gives_eio_and_says_it_may_have_been_requested(
        dmnt, dsim):
    dmnt.expect_stderr(SYNC_FAILED)
    d = D(dmnt, by_name(dsim, "web-server")["identifier"])
    dsim.fault(provider="deployhq", action="status", status=200, method="POST", path=r"/sync$",
               body="<html>maintenance</html>", content_type="text/html")

    assert write_errno(d.p("sync"), "1\n") == errno.EIO

    assert "may have been requested" in d.read("last_action")


# ---- retry_provision ---------------------------------------------------------------

def test_retry_provision_of_a_resource_in_error_provisions_it_again(dmnt, dsim):
    broken = by_name(dsim, "broken-build")
    d = D(dmnt, broken["identifier"])
    assert d.read("status") == "error\n"
    dsim.clear_requests()

    assert sh(f"echo 1 > {q(d.p('retry_provision'))}").returncode == 0

    assert [r["path"] for r in calls(dsim, "POST")] == \
        [f"/hosted_resources/{broken['identifier']}/retry_provision"]
    assert re.fullmatch(rf"{ISO_UTC} 1 ok 200 provisioning{BY_ME}\n", d.read("last_action"))
    wait_for(lambda: d.read("status") == "provisioning\n", timeout=5, what="provisioning")
    wait_for(lambda: d.read("status") == "active\n", timeout=8, what="active")


def test_retry_provision_of_a_resource_not_in_error_fails_with_einval_and_says_why(
        dmnt, dsim):
    dmnt.expect_stderr(r"retry_provision: '1' failed")
    d = D(dmnt, by_name(dsim, "web-server")["identifier"])

    shell = bash(f"echo 1 > {q(d.p('retry_provision'))}")

    assert shell.returncode != 0 and "Invalid argument" in shell.stderr
    line = d.read("last_action")
    assert re.fullmatch(rf"{ISO_UTC} 1 failed 422 .*not in an error state.*\n", line), line
    assert d.read("status") == "active\n"


# ---- the demo ------------------------------------------------------------------------

def test_the_demo_config_has_a_user_and_mounts_deployhq(tmp_path, make_mount):
    demo = tmp_path / "demo.conf"
    sim = Simulator(str(tmp_path), "--demo-config", str(demo),
                    "--deployhq-user", "ops@example.com")
    try:  # the mount is unmounted by make_mount, after this
        wait_for(lambda: demo.exists(), what="the demo config")
        text = demo.read_text()
        section = text[text.index("[deployhq]"):]
        assert "user = ops@example.com\n" in section
        assert f"url = {sim.url('deployhq')}\n" in section

        mnt = make_mount(text)

        assert mnt.provider("state", "deployhq") == "ok\n"
        assert len(os.listdir(mnt.p("vps", "deployhq"))) == len(vpses(sim))
        assert os.listdir(mnt.p("regions", "deployhq"))
    finally:
        sim.stop()


# ---- the simulator itself ---------------------------------------------------------

def api(sim, method, path, user=USER, token=TOKEN):
    """(status, JSON body) of a DeployHQ API request, bypassing infrafs."""
    auth = base64.b64encode(f"{user}:{token}".encode()).decode()
    req = urllib.request.Request(sim.url("deployhq") + path, method=method,
                                 headers={"Authorization": f"Basic {auth}",
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def test_simulator_checks_basic_auth_and_answers_documented_errors(dsim):
    assert api(dsim, "GET", "/hosted_resources")[0] == 200
    for user, token in ((USER, "wrong"), ("other@example.com", TOKEN)):
        status, body = api(dsim, "GET", "/hosted_resources", user, token)
        assert status == 401 and body["error_code"] == "invalid_credentials"
    dsim.configure(provider="deployhq", error_style="spec")
    status, body = api(dsim, "GET", "/hosted_resources/nope")
    assert status == 404 and body["status"] == 404 and "nope" in body["error"]
    dsim.configure(provider="deployhq", beta_features=False)
    assert api(dsim, "GET", "/managed_hosting/sizes")[0] == 403
    assert api(dsim, "GET", "/hosted_resources")[0] == 200


def test_simulator_sync_and_retry_provision_change_the_resource_in_the_background(dsim):
    staging = by_name(dsim, "staging")
    path = "/hosted_resources/" + staging["identifier"]

    assert api(dsim, "POST", path + "/sync") == (200, {"status": "sync_requested"})
    assert api(dsim, "GET", path)[1]["status"] == "provisioning"
    wait_for(lambda: api(dsim, "GET", path)[1]["status"] == "active", timeout=5,
             what="the simulated sync")
    assert api(dsim, "GET", path)[1]["updated_at"] > staging["updated_at"]

    status, body = api(dsim, "POST", path + "/retry_provision")
    assert status == 422 and "not in an error state" in body["error"]
    broken = by_name(dsim, "broken-build")
    assert api(dsim, "POST", f"/hosted_resources/{broken['identifier']}/retry_provision") == \
        (200, {"status": "provisioning"})
    assert [(h["action"], h["identifier"]) for h in admin(dsim, "GET", "/syncs")] == \
        [("sync", staging["identifier"]), ("retry_provision", broken["identifier"])]


def test_simulator_switches_are_validated_and_reset(dsim):
    for bad in ({"error_style": "xml"}, {"regions_shape": "tree"}, {"beta_features": 1},
                {"nope": True}):
        with pytest.raises(urllib.error.HTTPError) as e:
            dsim.configure(provider="deployhq", **bad)
        assert e.value.code == 400
    dsim.configure(provider="deployhq", regions_shape="grouped")
    assert "grouped_regions" in api(dsim, "GET", "/managed_hosting/regions")[1]
    dsim.reset()
    assert dsim.admin("GET", "/_sim/config")["deployhq"]["regions_shape"] == "regions"
