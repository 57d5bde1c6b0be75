"""Dokploy (type = dokploy) through the real mount: discovery of application
and compose deployments, their fields and `log`, the `kill` and `remove`
controls (doc/SEMANTICS.md §3-§5 and §10.5), and what a refused key looks like (§3.3, §10.5.7)."""

import errno
import json
import os
import re
import stat
import subprocess

import pytest

from conftest import BY_ME, ISO_UTC, TOKEN, account_config, is_mounted, q, sh, wait_for, write_errno

ACCOUNT = "dokploy"
FINISHED = ("done", "error", "cancelled")
# What the daemon logs when a control write fails (tests that provoke it).
KILL_FAILED = r"/kill: '?1'? failed"
REMOVE_FAILED = r"/remove: '?1'? failed"


# ---- helpers -------------------------------------------------------------------

def dokploy_config(sim, token=TOKEN, **keys):
    keys.setdefault("refresh", 300)
    return account_config(sim, "dokploy", ACCOUNT, token, **keys)


def admin(sim, method, path, body=None):
    return sim.admin(method, "/_sim/dokploy" + path, body, provider="dokploy")


def rows(sim):
    """Every deployment row the simulator holds, newest first."""
    return admin(sim, "GET", "/deployments")


def services(sim):
    return admin(sim, "GET", "/services")


def row_with(sim, status, has_pid=None, kind=None):
    """The first deployment in `status` (with or without a pid, of an
    application or of a compose service)."""
    for row in rows(sim):
        if row["status"] != status:
            continue
        if has_pid is not None and (row["pid"] is not None) != has_pid:
            continue
        if kind == "application" and not row["applicationId"]:
            continue
        if kind == "compose" and not row["composeId"]:
            continue
        return row
    raise AssertionError(f"the simulator has no {status} deployment like that")


def set_log(sim, dep_id, text):
    admin(sim, "PUT", f"/deployments/{dep_id}/log", {"log": text})


def dep(mnt, dep_id, *parts):
    return mnt.p("deployments", ACCOUNT, dep_id, *parts)


def listed(mnt):
    return sorted(os.listdir(mnt.p("deployments", ACCOUNT)))


def posts(sim, proc=""):
    return sim.requests("POST", rf"^/api/deployment\.{proc}")


def log_reads(sim, dep_id=None):
    return [r for r in sim.requests("GET", r"^/api/deployment\.readLogs$")
            if dep_id is None or r["query"].get("deploymentId") == dep_id]


@pytest.fixture
def dsim(fresh_sim):
    return fresh_sim


@pytest.fixture
def dmnt(dsim, make_mount):
    """infrafs mounted over the simulator's Dokploy account only."""
    return make_mount(dokploy_config(dsim))


# ---- discovery and the tree ------------------------------------------------------

def test_discovery_shows_every_application_and_compose_deployment(dmnt, dsim):
    expected = rows(dsim)
    assert any(r["applicationId"] for r in expected) and any(r["composeId"] for r in expected)

    assert listed(dmnt) == sorted(r["deploymentId"] for r in expected)
    assert "deployments" in os.listdir(dmnt.path)
    assert dmnt.provider("state", ACCOUNT) == "ok\n"
    assert dmnt.provider("last_error", ACCOUNT) == ""


def test_discovery_reads_project_all_then_each_services_deployments_with_x_api_key(
        dsim, make_mount):
    make_mount(dokploy_config(dsim))

    by_kind = {"application": set(), "compose": set()}
    for svc in services(dsim).values():
        by_kind[svc["kind"]].add(svc["id"])
    assert len(dsim.requests("GET", r"^/api/project\.all$")) == 1
    assert {r["query"]["applicationId"]
            for r in dsim.requests("GET", r"^/api/deployment\.all$")} == by_kind["application"]
    assert {r["query"]["composeId"]
            for r in dsim.requests("GET", r"^/api/deployment\.allByCompose$")} == \
        by_kind["compose"]
    sent = dsim.requests()
    assert sent and all(r["auth"] == "x-api-key" for r in sent), \
        "every request must carry the key in x-api-key"


def test_services_on_the_project_itself_are_discovered_too(dsim, make_mount):
    # Before v0.25 (and in the outdated public docs) there are no environments.
    dsim.configure(provider="dokploy", project_shape="legacy")
    mnt = make_mount(dokploy_config(dsim))

    assert listed(mnt) == sorted(r["deploymentId"] for r in rows(dsim))


def test_every_field_of_an_application_deployment_is_a_file(dmnt, dsim):
    row = row_with(dsim, "done", kind="application")
    d = row["deploymentId"]

    assert dmnt.read("deployments", ACCOUNT, d, "deployment_id") == d + "\n"
    assert dmnt.read("deployments", ACCOUNT, d, "application_id") == row["applicationId"] + "\n"
    assert dmnt.read("deployments", ACCOUNT, d, "compose_id") == ""  # null
    assert dmnt.read("deployments", ACCOUNT, d, "title") == row["title"] + "\n"
    assert dmnt.read("deployments", ACCOUNT, d, "log_path") == row["logPath"] + "\n"
    assert dmnt.read("deployments", ACCOUNT, d, "created_at") == row["createdAt"] + "\n"
    assert dmnt.read("deployments", ACCOUNT, d, "is_preview_deployment") == "false\n"
    assert dmnt.read("deployments", ACCOUNT, d, "pid") == ""
    assert json.loads(dmnt.read("deployments", ACCOUNT, d, "json")) == row


def test_a_compose_deployment_says_whose_it_is_in_compose_id(dmnt, dsim):
    row = row_with(dsim, "running", kind="compose")
    d = row["deploymentId"]
    owner = [s for s in services(dsim).values() if s["id"] == row["composeId"]]

    assert owner and owner[0]["kind"] == "compose"
    assert dmnt.read("deployments", ACCOUNT, d, "compose_id") == row["composeId"] + "\n"
    assert dmnt.read("deployments", ACCOUNT, d, "application_id") == ""


def test_status_is_running_done_error_cancelled_or_pending_as_dokploy_says(dmnt, dsim):
    shown = {d: dmnt.read("deployments", ACCOUNT, d, "status") for d in listed(dmnt)}

    assert shown == {r["deploymentId"]: r["status"] + "\n" for r in rows(dsim)}
    assert set(shown.values()) == {"running\n", "done\n", "error\n", "cancelled\n",
                                   "pending\n"}


def test_a_new_deployment_appears_and_a_removed_one_disappears_after_refresh(dmnt, dsim):
    gone = row_with(dsim, "done")["deploymentId"]
    new = admin(dsim, "POST", "/deployments", {"service": "blog-analytics",
                                                "title": "Compose up again"})
    admin(dsim, "DELETE", f"/deployments/{gone}")

    dmnt.refresh(ACCOUNT)

    assert new["deploymentId"] in listed(dmnt) and gone not in listed(dmnt)
    assert dmnt.read("deployments", ACCOUNT, new["deploymentId"], "title") == \
        "Compose up again\n"
    assert not os.path.exists(dep(dmnt, gone))


def test_an_application_deleted_during_discovery_does_not_fail_the_refresh(dmnt, dsim):
    # project.all still named it, its deployment list answers 404.
    first = dsim.requests("GET", r"^/api/deployment\.all$")[0]["query"]["applicationId"]
    dsim.fault(action="status", status=404, method="GET", path=r"^/api/deployment\.all$",
               body=json.dumps({"message": "Application not found", "code": "NOT_FOUND"}))

    dmnt.refresh(ACCOUNT)

    assert dmnt.provider("state", ACCOUNT) == "ok\n"
    assert listed(dmnt) == sorted(r["deploymentId"] for r in rows(dsim)
                                  if r["applicationId"] != first)


def test_an_answer_that_is_not_a_list_fails_the_refresh_with_eio_and_keeps_the_data(
        dmnt, dsim):
    dmnt.expect_stderr(r"refresh failed")
    before = listed(dmnt)
    dsim.fault(action="status", status=200, method="GET", path=r"^/api/project\.all$",
               body='{"projects": []}')

    assert write_errno(dmnt.p("providers", ACCOUNT, "refresh"), "1\n") == errno.EIO

    assert dmnt.provider("state", ACCOUNT) == "stale\n"
    assert "expected a JSON array" in dmnt.provider("last_error", ACCOUNT)
    assert listed(dmnt) == before


# ---- log ------------------------------------------------------------------------------

def test_log_holds_the_deployments_log_tail_and_is_not_in_json(dsim, make_mount):
    row = row_with(dsim, "error")
    set_log(dsim, row["deploymentId"], "Cloning repo\nBuilding image\nexit code 1\n")
    mnt = make_mount(dokploy_config(dsim))

    assert mnt.read("deployments", ACCOUNT, row["deploymentId"], "log") == \
        "Cloning repo\nBuilding image\nexit code 1\n"
    assert "log" not in json.loads(mnt.read("deployments", ACCOUNT, row["deploymentId"], "json"))
    sent = log_reads(dsim, row["deploymentId"])
    assert len(sent) == 1 and sent[0]["query"]["tail"] == "200"
    assert os.stat(dep(mnt, row["deploymentId"], "log")).st_mode & 0o777 == 0o444


def test_log_is_the_last_200_lines_only(dmnt, dsim):
    # The seeded "Deploy 1b9e0d4" has a 500-line log.
    row = [r for r in rows(dsim) if r["title"] == "Deploy 1b9e0d4"][0]

    lines = dmnt.read("deployments", ACCOUNT, row["deploymentId"], "log").splitlines()

    assert len(lines) == 200
    assert lines[0].endswith("step 301 of 500") and lines[-1].endswith("step 500 of 500")


def test_log_is_bounded_to_256_kib_of_whole_lines(dsim, make_mount):
    row = row_with(dsim, "done")
    text = "".join(f"{i:04d} " + "x" * 1995 + "\n" for i in range(200))  # 400,000 bytes
    set_log(dsim, row["deploymentId"], text)
    mnt = make_mount(dokploy_config(dsim))

    shown = mnt.read("deployments", ACCOUNT, row["deploymentId"], "log")

    assert 200_000 < len(shown.encode()) <= 256 * 1024
    assert text.endswith(shown), "not the tail, or not whole lines"
    assert shown.startswith(tuple(f"{i:04d} " for i in range(200)))


def test_logs_are_read_by_the_refresher_never_by_a_read(dmnt, dsim):
    dsim.clear_requests()

    out = sh(f"cat {q(dmnt.p('deployments', ACCOUNT))}/*/log > /dev/null")

    assert out.returncode == 0, out.stderr
    assert dsim.requests() == []


def test_logs_are_read_concurrently_but_bounded(dsim, make_mount):
    dsim.configure(provider="dokploy", log_delay_ms=150)
    admin(dsim, "DELETE", "/stats")
    mnt = make_mount(dokploy_config(dsim))

    seen = admin(dsim, "GET", "/stats")
    assert seen["log_requests"] == len(rows(dsim))
    assert seen["max_in_flight"] == 4        # the default detail_concurrency
    assert all(os.path.isfile(dep(mnt, r["deploymentId"], "log")) for r in rows(dsim))


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_detail_concurrency_bounds_the_log_reads(dsim, make_mount, concurrency):
    dsim.configure(provider="dokploy", log_delay_ms=150)
    admin(dsim, "DELETE", "/stats")
    make_mount(dokploy_config(dsim, detail_concurrency=concurrency))

    assert admin(dsim, "GET", "/stats")["max_in_flight"] == concurrency


@pytest.mark.parametrize("value", ["0", "9", "four"])
def test_a_bad_detail_concurrency_is_refused_before_any_request(dsim, make_mount, value):
    dsim.clear_requests()
    mnt = make_mount(dokploy_config(dsim, detail_concurrency=value))
    mnt.expect_stderr(r"detail_concurrency|mounted at")

    assert "detail_concurrency must be a whole number from 1 to 8" in \
        mnt.provider("last_error", ACCOUNT)
    assert dsim.requests("GET", r"^/api/") == []


def test_running_logs_are_read_on_every_refresh_and_finished_ones_only_once(dmnt, dsim):
    live = {r["deploymentId"] for r in rows(dsim) if r["status"] not in FINISHED}
    finished = {r["deploymentId"] for r in rows(dsim) if r["status"] in FINISHED}
    assert live and finished
    dsim.clear_requests()

    dmnt.refresh(ACCOUNT)
    dmnt.refresh(ACCOUNT)

    counts = {}
    for r in log_reads(dsim):
        counts[r["query"]["deploymentId"]] = counts.get(r["query"]["deploymentId"], 0) + 1
    assert counts == {d: 2 for d in live}


def test_a_running_log_shows_new_lines_after_refresh(dmnt, dsim):
    d = row_with(dsim, "running")["deploymentId"]
    admin(dsim, "POST", f"/deployments/{d}/log", {"append": "Step 99: pushing image"})

    dmnt.refresh(ACCOUNT)

    assert dmnt.read("deployments", ACCOUNT, d, "log").endswith("Step 99: pushing image\n")


def test_a_deployment_that_finishes_gets_its_log_read_once_more_then_never(dmnt, dsim):
    d = row_with(dsim, "running")["deploymentId"]
    admin(dsim, "PATCH", f"/deployments/{d}", {"status": "done", "pid": None})
    admin(dsim, "POST", f"/deployments/{d}/log", {"append": "Deployment finished"})
    dsim.clear_requests()

    dmnt.refresh(ACCOUNT)
    dmnt.refresh(ACCOUNT)

    assert len(log_reads(dsim, d)) == 1
    assert dmnt.read("deployments", ACCOUNT, d, "log").endswith("Deployment finished\n")


def test_a_vanished_deployments_kept_log_is_forgotten(dmnt, dsim):
    # If the kept log outlived its deployment, a new deployment that reuses
    # the id would show the old text.
    row = row_with(dsim, "done")
    d = row["deploymentId"]
    assert dmnt.read("deployments", ACCOUNT, d, "log") != ""
    admin(dsim, "DELETE", f"/deployments/{d}")
    dmnt.refresh(ACCOUNT)
    assert d not in listed(dmnt)
    admin(dsim, "POST", "/deployments", {"deploymentId": d, "applicationId": row["applicationId"],
                                         "composeId": row["composeId"], "status": "done",
                                         "log": "a different log\n"})

    dmnt.refresh(ACCOUNT)

    assert dmnt.read("deployments", ACCOUNT, d, "log") == "a different log\n"


def test_a_log_that_cannot_be_read_keeps_the_last_one_and_the_refresh_succeeds(dmnt, dsim):
    d = row_with(dsim, "running")["deploymentId"]
    before = dmnt.read("deployments", ACCOUNT, d, "log")
    admin(dsim, "POST", f"/deployments/{d}/log", {"append": "not seen"})
    dsim.fault(action="status", status=500, method="GET", path=r"^/api/deployment\.readLogs$",
               times=0)

    dmnt.refresh(ACCOUNT)

    assert dmnt.provider("state", ACCOUNT) == "ok\n"
    assert dmnt.read("deployments", ACCOUNT, d, "log") == before


def test_logs_survive_a_remount_and_finished_ones_are_not_read_again(tmp_path, dsim,
                                                                      make_mount):
    cache = f"cache_dir={tmp_path / 'cache'}"
    first = make_mount(dokploy_config(dsim), extra_opts=[cache], subdir="first")
    done = row_with(dsim, "done")["deploymentId"]
    running = row_with(dsim, "running")["deploymentId"]
    logs = {d: first.read("deployments", ACCOUNT, d, "log") for d in (done, running)}
    assert all(logs.values())
    assert first.umount() == 0
    dsim.fault(action="status", status=500, method="GET", path=r"^/api/deployment\.readLogs$",
               times=0)
    dsim.clear_requests()

    mnt = make_mount(dokploy_config(dsim), extra_opts=[cache])

    assert mnt.provider("state", ACCOUNT) == "ok\n"
    assert log_reads(dsim, done) == []     # finished: the saved log is final
    assert log_reads(dsim, running)        # running: asked again (and it failed)
    for d, text in logs.items():
        assert mnt.read("deployments", ACCOUNT, d, "log") == text
    assert "log not refreshed" in mnt.provider("last_error", ACCOUNT)


# ---- kill and remove --------------------------------------------------------------

def test_kill_and_remove_list_1_when_read(dmnt, dsim):
    for status in ("running", "done"):
        d = row_with(dsim, status)["deploymentId"]
        for control in ("kill", "remove"):
            assert dmnt.read("deployments", ACCOUNT, d, control) == "1\n"
            assert stat.S_IMODE(os.stat(dep(dmnt, d, control)).st_mode) == 0o644


def test_kill_on_a_running_deployment_makes_one_post_with_its_id(dmnt, dsim):
    d = row_with(dsim, "running", has_pid=True)["deploymentId"]
    dsim.clear_requests()

    out = sh(f"echo 1 > {q(dep(dmnt, d, 'kill'))}")

    assert out.returncode == 0 and out.stderr == ""
    sent = posts(dsim)
    assert [r["path"] for r in sent] == ["/api/deployment.killProcess"]
    assert json.loads(sent[0]["body"]) == {"deploymentId": d}
    assert sent[0]["content_type"].startswith("application/json")
    assert re.fullmatch(ISO_UTC + r" 1 ok 200 .+\n",
                        dmnt.read("deployments", ACCOUNT, d, "last_action"))


def test_after_kill_the_deployment_is_reread_without_a_refresh(dmnt, dsim):
    d = row_with(dsim, "running", has_pid=True)["deploymentId"]

    assert write_errno(dep(dmnt, d, "kill"), "1\n") == 0

    wait_for(lambda: dmnt.read("deployments", ACCOUNT, d, "status") == "error\n",
             what="status error after kill")
    assert dmnt.read("deployments", ACCOUNT, d, "pid") == ""
    assert dmnt.read("deployments", ACCOUNT, d, "log") != "", "the log vanished"


def test_kill_on_a_finished_deployment_fails_with_einval_and_last_action_has_dokploys_words(
        dmnt, dsim):
    dmnt.expect_stderr(KILL_FAILED)
    d = row_with(dsim, "done")["deploymentId"]
    dsim.clear_requests()

    assert write_errno(dep(dmnt, d, "kill"), "1\n") == errno.EINVAL

    assert len(posts(dsim, "killProcess")) == 1
    line = dmnt.read("deployments", ACCOUNT, d, "last_action")
    assert re.fullmatch(ISO_UTC + r" 1 failed 400 BAD_REQUEST: .*Deployment is not running"
                        + BY_ME + "\n", line), line
    assert dmnt.read("deployments", ACCOUNT, d, "status") == "done\n"


def test_remove_makes_one_post_and_the_deployment_is_gone_when_the_write_returns(dmnt, dsim):
    d = row_with(dsim, "error")["deploymentId"]
    assert d in listed(dmnt)
    dsim.clear_requests()

    assert write_errno(dep(dmnt, d, "remove"), "1\n") == 0

    # No wait, no refresh: gone from ls the moment write() returned.
    assert d not in listed(dmnt)
    assert write_errno(dep(dmnt, d, "status"), "") == errno.ENOENT
    sent = posts(dsim)
    assert [r["path"] for r in sent] == ["/api/deployment.removeDeployment"]
    assert json.loads(sent[0]["body"]) == {"deploymentId": d}
    assert d not in {r["deploymentId"] for r in rows(dsim)}
    assert dsim.requests("GET") == [], "remove needs no re-read"


def test_a_removed_deployment_never_reappears_from_a_list_read_before_the_removal(
        dmnt, dsim):
    """A refresh read the deployments of the application, then the
    deployment was removed, then the refresh ended: the removed deployment
    came back until the next refresh. Action results win."""
    row = row_with(dsim, "error", kind="application")
    d = row["deploymentId"]
    dsim.fault(action="late", provider="dokploy", method="GET",
               path=r"^/api/deployment\.all", delay_ms=1500, times=0)
    dsim.clear_requests()
    refresh = subprocess.Popen(["sh", "-c",
                                f"echo 1 > {q(dmnt.p('providers', ACCOUNT, 'refresh'))}"])
    try:
        wait_for(lambda: [r for r in dsim.requests("GET", r"^/api/deployment\.all")
                          if r["query"].get("applicationId") == row["applicationId"]],
                 timeout=20, what="the application's deployments to be read")
        assert write_errno(dep(dmnt, d, "remove"), "1\n") == 0
        assert d not in listed(dmnt)
    finally:
        assert refresh.wait(timeout=60) == 0
    dsim.clear_faults()

    assert d not in listed(dmnt)
    dmnt.refresh(ACCOUNT)
    assert d not in listed(dmnt)


def test_remove_of_a_deployment_already_gone_fails_with_enoent(dmnt, dsim):
    dmnt.expect_stderr(REMOVE_FAILED)
    d = row_with(dsim, "cancelled")["deploymentId"]
    admin(dsim, "DELETE", f"/deployments/{d}")

    assert write_errno(dep(dmnt, d, "remove"), "1\n") == errno.ENOENT

    assert re.fullmatch(ISO_UTC + r" 1 failed 404 NOT_FOUND: .*Deployment not found"
                        + BY_ME + "\n", dmnt.read("deployments", ACCOUNT, d, "last_action"))


@pytest.mark.parametrize("control", ["kill", "remove"])
@pytest.mark.parametrize("text", ["kill\n", "remove\n", "1 force\n", "2\n", "yes\n", "\n"])
def test_anything_but_1_is_refused_with_einval_and_no_api_call(dmnt, dsim, control, text):
    dmnt.expect_stderr(rf"/{control}: .* failed")
    d = row_with(dsim, "running", has_pid=True)["deploymentId"]
    dsim.clear_requests()

    assert write_errno(dep(dmnt, d, control), text) == errno.EINVAL

    assert dsim.requests() == []
    assert " failed - " in dmnt.read("deployments", ACCOUNT, d, "last_action")
    assert d in listed(dmnt)


# ---- refused keys -------------------------------------------------------------------

def test_a_foreign_key_makes_the_account_unauthorized(dsim, make_mount):
    mnt = make_mount(dokploy_config(dsim, token="someone-elses-key"))
    mnt.expect_stderr(r"refresh failed|mounted at .*dokploy: unauthorized")

    assert mnt.provider("state", ACCOUNT) == "unauthorized\n"
    error = mnt.provider("last_error", ACCOUNT)
    assert "401" in error and "Unauthorized" in error and "token" in error
    assert "someone-elses-key" not in error
    assert listed(mnt) == []


def test_a_rate_limited_key_gets_401_so_the_refresh_fails_with_eacces_and_keeps_the_data(
        dmnt, dsim):
    dmnt.expect_stderr(r"refresh failed")
    before = {d: dmnt.read("deployments", ACCOUNT, d, "status") for d in listed(dmnt)}
    dsim.configure(provider="dokploy", rate_limit={"limit": 1, "window_s": 3600})

    assert write_errno(dmnt.p("providers", ACCOUNT, "refresh"), "1\n") == errno.EACCES

    assert dmnt.provider("state", ACCOUNT) == "unauthorized\n"
    assert "401" in dmnt.provider("last_error", ACCOUNT)
    assert {d: dmnt.read("deployments", ACCOUNT, d, "status") for d in listed(dmnt)} == before


def test_401_on_kill_fails_the_write_with_eacces(dmnt, dsim):
    dmnt.expect_stderr(KILL_FAILED)
    d = row_with(dsim, "running", has_pid=True)["deploymentId"]
    dsim.fault(action="status", status=401, method="POST",
               path=r"^/api/deployment\.killProcess$")

    assert write_errno(dep(dmnt, d, "kill"), "1\n") == errno.EACCES

    assert re.fullmatch(ISO_UTC + r" 1 failed 401 .*Unauthorized.*\n",
                        dmnt.read("deployments", ACCOUNT, d, "last_action"))
    assert row_with(dsim, "running", has_pid=True)["deploymentId"] == d, "it was killed"


# ---- configuration ----------------------------------------------------------------------

def test_a_dokploy_account_without_url_is_refused_naming_the_key(dsim, daemons, tmp_path):
    config = tmp_path / "config"
    config.write_text(f"[{ACCOUNT}]\ntype = dokploy\ntoken = {TOKEN}\n")
    config.chmod(0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()

    out, _ = daemons.run(["-o", f"config={config}", str(mnt)], str(mnt))

    assert out.returncode != 0
    assert "url" in out.stderr and ACCOUNT in out.stderr
    assert not is_mounted(str(mnt))
