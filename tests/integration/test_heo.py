"""HEO Systems (`type = heo`) through a real mount: the VPS ids come from the
config, a refresh makes no request, `status` and its companions are infrafs's
own record of the last request HEO accepted, and `power` maps HEO's documented
answers onto doc/SEMANTICS.md §5.5 and §5.6 (errno, last_action)."""

import datetime
import errno
import json
import os
import re
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from conftest import (BY_ME, INFRAFS, ISO_UTC, TOKEN, Simulator, account_config, bash,
                      hostup_config, q, read, write_errno)

SCOPE = ["vps_101", "vps_102", "vps_103"]   # what the simulator's token may act on
OUT_OF_SCOPE = "vps_999"
NOTHING_YET = "nothing requested since mount (HEO reports no live state)\n"
POWER_FAILED = r"power: '[a-z ]+' failed"
ACTION_PATH = "/v1/hosting/cloud/vps-custom/"


def heo_config(sim, ids=" ".join(SCOPE), section="heo", token=TOKEN, **keys):
    return account_config(sim, "heo", section, token, vps=ids, refresh=300, **keys)


@pytest.fixture
def heo(fresh_sim):
    fresh_sim.configure(provider="heo", scope=SCOPE, provider_error=False,
                        rate_limit={"limit": 300, "window_s": 60})
    return fresh_sim


@pytest.fixture
def mnt(heo, make_mount):
    m = make_mount(heo_config(heo, " ".join(SCOPE + [OUT_OF_SCOPE])))
    heo.clear_requests()
    return m


def heo_requests(sim, method=None):
    return [r for r in sim.admin("GET", "/_sim/requests?provider=heo", provider="heo")
            if method is None or r["method"] == method]


def posts(sim, vps_id=None):
    return [r for r in heo_requests(sim, "POST")
            if vps_id is None or r["path"].startswith(ACTION_PATH + vps_id + "/")]


def accepted(sim):
    return sim.admin("GET", "/_sim/heo/actions", provider="heo")


def vps(mnt, vps_id, *parts, account="heo"):
    return mnt.vps(vps_id, *parts, account=account)


def rd(mnt, vps_id, name, account="heo"):
    return read(vps(mnt, vps_id, name, account=account))


def assert_recent_utc(stamp, slack=10):
    when = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) <= slack, f"{stamp} is not now in UTC ({now})"


def power(mnt, vps_id, command):
    """`echo COMMAND > power` in bash: (returncode, stderr)."""
    out = bash(f"echo {q(command)} > {q(vps(mnt, vps_id, 'power'))}")
    return out.returncode, out.stderr


# ---- the tree: ids from the config, no request to read anything ----------------------

def test_every_configured_id_is_a_vps_directory_and_nothing_else(mnt):
    assert sorted(os.listdir(mnt.p("vps", "heo"))) == sorted(SCOPE + [OUT_OF_SCOPE])
    assert mnt.provider("state", account="heo") == "ok\n"
    assert mnt.provider("type", account="heo") == "heo\n"


def test_a_refresh_makes_no_http_request(mnt, heo):
    mnt.refresh("heo")
    mnt.refresh("heo")

    assert heo_requests(heo) == []
    assert mnt.provider("requests", account="heo") == "0\n"
    assert mnt.provider("state", account="heo") == "ok\n"
    assert mnt.provider("last_error", account="heo") == ""


def test_mounting_makes_no_http_request(heo, make_mount):
    heo.clear_requests()
    m = make_mount(heo_config(heo))

    assert sorted(os.listdir(m.p("vps", "heo"))) == SCOPE
    assert heo_requests(heo) == []


def test_the_default_url_is_heos_public_origin_and_needs_no_network_to_mount(make_mount):
    m = make_mount("[heo]\ntype = heo\ntoken = t0ken\nvps = vps_1 vps_2\n")

    assert m.provider("url", account="heo") == "https://api.heo-systems.net\n"
    assert m.provider("state", account="heo") == "ok\n"
    assert sorted(os.listdir(m.p("vps", "heo"))) == ["vps_1", "vps_2"]


def test_before_any_request_status_says_nothing_was_requested_and_no_live_state(mnt):
    d = vps(mnt, "vps_101")

    assert sorted(os.listdir(d)) == ["id", "json", "last_action", "message", "power",
                                     "requested_action", "requested_at", "status"]
    assert rd(mnt, "vps_101", "status") == NOTHING_YET
    assert rd(mnt, "vps_101", "id") == "vps_101\n"
    for name in ("requested_action", "requested_at", "message", "last_action"):
        assert rd(mnt, "vps_101", name) == "", name


def test_json_is_infrafss_own_record_with_the_same_fields_as_the_files(mnt):
    obj = json.loads(rd(mnt, "vps_102", "json"))

    assert obj == {"id": "vps_102", "status": NOTHING_YET.rstrip("\n"),
                   "requested_action": None, "requested_at": None, "message": None}


def test_reading_power_lists_start_stop_reset(mnt):
    assert rd(mnt, "vps_101", "power") == "start stop reset\n"
    assert os.stat(vps(mnt, "vps_101", "power")).st_size == len("start stop reset\n")


# ---- accepted requests ---------------------------------------------------------------

def test_echo_start_makes_exactly_one_post_and_status_says_start_requested(mnt, heo):
    rc, err = power(mnt, "vps_101", "start")

    assert rc == 0 and err == ""
    sent = posts(heo)
    assert [(r["path"], r["raw_query"], r["body"], r["auth"]) for r in sent] == \
        [(ACTION_PATH + "vps_101/start", "", None, "bearer")]
    # No waiting: the record is in the tree when write() returns.
    status = rd(mnt, "vps_101", "status")
    m = re.fullmatch(rf"start requested at ({ISO_UTC}) \(HEO reports no live state\)\n", status)
    assert m, status
    assert_recent_utc(m.group(1))
    assert rd(mnt, "vps_101", "requested_action") == "start\n"
    assert rd(mnt, "vps_101", "requested_at") == m.group(1) + "\n"
    assert rd(mnt, "vps_101", "message") == "Start action sent\n"
    assert re.fullmatch(rf"{ISO_UTC} start ok 200 Start action sent{BY_ME}\n",
                        rd(mnt, "vps_101", "last_action"))
    assert mnt.provider("requests", account="heo") == "1\n"
    assert [(a["vps_id"], a["action"]) for a in accepted(heo)] == [("vps_101", "start")]
    # Only the VPS written to changed.
    assert rd(mnt, "vps_102", "status") == NOTHING_YET
    assert len(posts(heo)) == 1, "the action was sent again"


def test_stop_is_a_plain_stop_sent_without_force(mnt, heo):
    rc, err = power(mnt, "vps_102", "stop")

    assert rc == 0, err
    assert [(r["path"], r["raw_query"]) for r in posts(heo)] == \
        [(ACTION_PATH + "vps_102/stop", "")]
    assert rd(mnt, "vps_102", "status").startswith("stop requested at ")
    assert rd(mnt, "vps_102", "message") == "Stop action sent\n"


def test_reset_force_sends_force_true_as_the_query(mnt, heo):
    rc, err = power(mnt, "vps_103", "reset force")

    assert rc == 0, err
    sent = posts(heo)
    assert len(sent) == 1
    assert sent[0]["path"] == ACTION_PATH + "vps_103/reset"
    assert sent[0]["query"] == {"force": "true"} and sent[0]["body"] is None
    assert accepted(heo)[0]["force"] is True
    assert rd(mnt, "vps_103", "status").startswith("reset requested at ")
    assert rd(mnt, "vps_103", "requested_action") == "reset\n"
    assert re.fullmatch(rf"{ISO_UTC} reset force ok 200 Reset action sent{BY_ME}\n",
                        rd(mnt, "vps_103", "last_action"))


def test_status_shows_the_last_accepted_request(mnt, heo):
    assert power(mnt, "vps_101", "start")[0] == 0
    assert power(mnt, "vps_101", "stop")[0] == 0

    assert rd(mnt, "vps_101", "status").startswith("stop requested at ")
    assert rd(mnt, "vps_101", "requested_action") == "stop\n"
    assert len(posts(heo, "vps_101")) == 2


def test_the_record_survives_refreshes(mnt, heo):
    assert power(mnt, "vps_101", "start")[0] == 0
    before = rd(mnt, "vps_101", "status")

    mnt.refresh("heo")

    assert rd(mnt, "vps_101", "status") == before
    assert len(heo_requests(heo)) == 1


def test_a_failed_request_keeps_the_last_accepted_one_in_status(mnt, heo):
    mnt.expect_stderr(POWER_FAILED)
    assert power(mnt, "vps_101", "start")[0] == 0
    status = rd(mnt, "vps_101", "status")
    heo.configure(provider="heo", provider_error=True)

    assert write_errno(vps(mnt, "vps_101", "power"), "stop\n") == errno.EIO

    assert rd(mnt, "vps_101", "status") == status
    assert rd(mnt, "vps_101", "requested_action") == "start\n"
    assert " stop failed 502 " in rd(mnt, "vps_101", "last_action")


def test_concurrent_writes_to_several_vpses_each_make_one_post(mnt, heo):
    results = {}

    def run(vps_id):
        results[vps_id] = write_errno(vps(mnt, vps_id, "power"), "start\n")

    threads = [threading.Thread(target=run, args=(v,)) for v in SCOPE]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert results == {v: 0 for v in SCOPE}
    assert sorted(r["path"] for r in posts(heo)) == \
        sorted(ACTION_PATH + v + "/start" for v in SCOPE)
    for v in SCOPE:
        assert rd(mnt, v, "status").startswith("start requested at "), v


def test_a_new_mount_starts_with_nothing_requested_and_offline_shows_the_cached_copy(
        heo, make_mount, tmp_path):
    cache = f"cache_dir={tmp_path / 'cache'}"
    first = make_mount(heo_config(heo), extra_opts=(cache,))
    assert power(first, "vps_101", "start")[0] == 0
    first.refresh("heo")    # the disk cache is written after a refresh
    recorded = rd(first, "vps_101", "status")
    assert first.umount() == 0

    offline = make_mount(heo_config(heo), extra_opts=(cache, "offline"))
    assert rd(offline, "vps_101", "status") == recorded
    assert offline.umount() == 0

    heo.clear_requests()
    again = make_mount(heo_config(heo), extra_opts=(cache,))
    assert rd(again, "vps_101", "status") == NOTHING_YET
    assert heo_requests(heo) == []


# ---- refused locally: EINVAL, no request -------------------------------------------------

@pytest.mark.parametrize("command", ["reset", "stop force", "start force", "restart",
                                     "shutdown", "reboot", ""])
def test_commands_heo_does_not_take_fail_with_einval_and_make_no_request(mnt, heo, command):
    assert write_errno(vps(mnt, "vps_101", "power"), command + "\n") == errno.EINVAL

    assert posts(heo) == []
    assert rd(mnt, "vps_101", "status") == NOTHING_YET


def test_echo_reset_fails_with_einval_and_last_action_asks_for_force(mnt, heo):
    rc, err = power(mnt, "vps_101", "reset")

    assert rc != 0 and "Invalid argument" in err
    assert posts(heo) == []
    line = rd(mnt, "vps_101", "last_action")
    assert re.fullmatch(rf"{ISO_UTC} reset failed - .*'reset force'.*\n", line), line


# ---- HEO's errors ------------------------------------------------------------------------

def assert_failed(mnt, vps_id, command, err, status, code=None, says=""):
    line = rd(mnt, vps_id, "last_action")
    assert re.fullmatch(rf"({ISO_UTC}) {command} failed {status} .*\n", line), line
    if code:
        assert f" failed {status} {code}: " in line, line
    assert says in line, line
    assert TOKEN not in line
    assert rd(mnt, vps_id, "status") == NOTHING_YET
    return line


def test_an_id_outside_the_keys_scope_gives_eacces_and_last_action_says_unauthorized(mnt, heo):
    mnt.expect_stderr(POWER_FAILED)

    rc, err = power(mnt, OUT_OF_SCOPE, "start")

    assert rc != 0 and os.strerror(errno.EACCES) in err, err
    assert len(posts(heo, OUT_OF_SCOPE)) == 1
    assert_failed(mnt, OUT_OF_SCOPE, "start", errno.EACCES, 403, "unauthorized",
                  "You do not have access to this VPS")
    assert accepted(heo) == []


def test_a_wrong_token_gives_eacces_with_heos_401(heo, make_mount):
    m = make_mount(heo_config(heo, token="wrong-token"))
    m.expect_stderr(POWER_FAILED)

    assert write_errno(vps(m, "vps_101", "power"), "start\n") == errno.EACCES

    line = assert_failed(m, "vps_101", "start", errno.EACCES, 401, "unauthorized",
                         "Missing, invalid, or revoked API key")
    assert "wrong-token" not in line


def test_provider_error_502_gives_eio(mnt, heo):
    mnt.expect_stderr(POWER_FAILED)
    heo.configure(provider="heo", provider_error=True)

    rc, err = power(mnt, "vps_101", "start")

    assert rc != 0 and os.strerror(errno.EIO) in err, err
    assert len(posts(heo)) == 1, "an action must never be sent twice"
    assert_failed(mnt, "vps_101", "start", errno.EIO, 502, "provider_error",
                  "Failed to send action")


def test_rate_limit_429_in_plain_text_gives_eagain(mnt, heo):
    mnt.expect_stderr(POWER_FAILED)
    heo.configure(provider="heo", rate_limit={"limit": 1, "window_s": 60})
    assert power(mnt, "vps_101", "start")[0] == 0

    rc, err = power(mnt, "vps_102", "start")

    assert rc != 0 and os.strerror(errno.EAGAIN) in err, err
    limited = posts(heo, "vps_102")
    assert [r["status"] for r in limited] == [429]
    assert_failed(mnt, "vps_102", "start", errno.EAGAIN, 429, None, "Too many requests")


@pytest.mark.parametrize("status,code,err", [
    (400, "bad_request", errno.EINVAL),
    (401, "unauthorized", errno.EACCES),
    (403, "unauthorized", errno.EACCES),
    (404, "not_found", errno.ENOENT),
    (405, "method_not_allowed", errno.EIO),
    (429, None, errno.EAGAIN),
    (500, "internal_server_error", errno.EIO),
    (502, "provider_error", errno.EIO),
])
def test_each_documented_error_maps_to_its_errno_with_code_in_last_action(
        mnt, heo, status, code, err):
    mnt.expect_stderr(POWER_FAILED)
    heo.fault(provider="heo", action="status", status=status, method="POST",
              path=r"/vps_101/stop$", times=0)

    assert write_errno(vps(mnt, "vps_101", "power"), "stop\n") == err

    assert_failed(mnt, "vps_101", "stop", err, status, code)
    assert len(posts(heo)) == 1


# ---- a 200 that is not HEO's success answer ------------------------------------------------

@pytest.mark.parametrize("body,says", [
    ('{"success":false,"error":"provider_error","message":"Failed to send action"}',
     'provider_error: .*"success": false \\(provider_error: Failed to send action\\)'),
    ('{"status":"requested"}', 'no "success": true'),
    ('{"success":true,"action":"start","vps_id":"vps_102","status":"requested"}',
     "about VPS 'vps_102', not 'vps_101'"),
], ids=["success-false", "no-success", "other-vps"])
def test_a_200_that_is_not_a_success_answer_is_eio_and_not_recorded(mnt, heo, body, says):
    mnt.expect_stderr(POWER_FAILED)
    heo.fault(provider="heo", action="status", status=200, body=body, method="POST",
              path=r"/start$")

    assert write_errno(vps(mnt, "vps_101", "power"), "start\n") == errno.EIO

    line = assert_failed(mnt, "vps_101", "start", errno.EIO, 200)
    assert re.search(says, line), line
    assert "check it in the HEO dashboard" in line


def test_an_unreadable_200_is_eio_and_not_recorded(mnt, heo):
    mnt.expect_stderr(POWER_FAILED)
    heo.fault(provider="heo", action="malformed", method="POST", path=r"/start$")

    assert write_errno(vps(mnt, "vps_101", "power"), "start\n") == errno.EIO

    line = assert_failed(mnt, "vps_101", "start", errno.EIO, 200)
    assert "not a JSON object" in line


def test_no_connection_gives_ehostunreach(make_mount):
    m = make_mount("[heo]\ntype = heo\nurl = http://127.0.0.1:9\n"
                   "token = unused-token\nvps = vps_1\n")
    m.expect_stderr(POWER_FAILED + r"|no connection")

    assert write_errno(vps(m, "vps_1", "power"), "start\n") == errno.EHOSTUNREACH

    line = rd(m, "vps_1", "last_action")
    assert re.fullmatch(rf"{ISO_UTC} start failed - .*no connection.*\n", line), line
    assert rd(m, "vps_1", "status") == NOTHING_YET


# ---- config: `vps =` ----------------------------------------------------------------------

@pytest.mark.parametrize("ids,says", [
    ("vps_1 vps_2 vps_1", "id 'vps_1' is listed twice"),
    ("vps_1 ../etc", "id '../etc' is not usable"),
    ("vps_1 a/b", "id 'a/b' is not usable"),
    ("vps_1,,vps_2", "empty id"),
    ("vps_1 vps_2?force=true", "id 'vps_2?force=true' is not usable"),
], ids=["duplicate", "dot-dot", "slash", "empty", "query"])
def test_bad_vps_ids_are_refused_naming_account_and_id_and_other_accounts_work(
        heo, make_mount, ids, says):
    m = make_mount(heo_config(heo, ids, section="bad") + hostup_config(heo, refresh=300))
    m.expect_stderr(r"account 'bad': refresh failed|mounted at .*\(bad: error \(account 'bad'")
    heo.clear_requests()

    assert m.provider("state", account="bad") == "error\n"
    last_error = m.provider("last_error", account="bad")
    assert "account 'bad'" in last_error and says in last_error, last_error
    assert os.listdir(m.p("vps", "bad")) == []
    # Nothing of it reached HEO, and the other account is untouched.
    m.refresh("hostup")
    assert heo_requests(heo) == []
    assert m.provider("state") == "ok\n"
    assert sorted(os.listdir(m.p("vps", "hostup"))) == sorted(heo.vps_ids())


def test_commas_between_ids_are_accepted(heo, make_mount):
    m = make_mount(heo_config(heo, "vps_101, vps_102,vps_103"))

    assert sorted(os.listdir(m.p("vps", "heo"))) == SCOPE


@pytest.mark.parametrize("line,says", [("", "missing required key 'vps'"),
                                       ("vps =\n", "vps: empty value")],
                         ids=["missing", "empty"])
def test_a_missing_or_empty_vps_key_stops_the_mount_naming_file_section_and_key(
        heo, tmp_path, line, says):
    config = tmp_path / "config"
    config.write_text(f"[heo]\ntype = heo\nurl = {heo.url('heo')}\ntoken = {TOKEN}\n{line}")
    config.chmod(0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()

    out = subprocess.run([INFRAFS, "-f", "-o", f"config={config}", str(mnt)],
                         capture_output=True, text=True, timeout=30)

    assert out.returncode != 0
    assert says in out.stderr and "[heo]" in out.stderr and str(config) in out.stderr, out.stderr


# ---- the demo config -----------------------------------------------------------------------

def test_demo_config_lists_ids_in_scope_and_one_outside_it(tmp_path, make_mount):
    demo = tmp_path / "demo.conf"
    sim = Simulator(str(tmp_path), "--demo-config", str(demo))
    try:
        text = demo.read_text()
        m = make_mount(text)
        m.expect_stderr(POWER_FAILED)
        ids = sorted(os.listdir(m.p("vps", "heo")))
        assert set(SCOPE) <= set(ids) and OUT_OF_SCOPE in ids

        assert write_errno(vps(m, "vps_101", "power"), "start\n") == 0
        assert write_errno(vps(m, OUT_OF_SCOPE, "power"), "start\n") == errno.EACCES
    finally:
        sim.stop()


def test_status_is_current_the_moment_the_write_returns(mnt, heo):
    """No re-read in the background: the next read after write() sees it."""
    for i in range(20):
        command = ("start", "stop")[i % 2]
        path = vps(mnt, "vps_101", "power")
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, command.encode() + b"\n")
        finally:
            os.close(fd)
        assert read(vps(mnt, "vps_101", "requested_action")) == command + "\n", i


# ---- the simulator's HEO (what the tests above rely on) --------------------------------------

def heo_call(sim, method, path, token=TOKEN, body=None):
    """(status, content type, body text) straight from the simulated API."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(sim.url("heo") + path, data=data, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


@pytest.mark.parametrize("method,path,token,body,status,error", [
    ("POST", "vps_101/start", TOKEN, None, 200, None),
    ("POST", "vps_101/reset", TOKEN, None, 400, "confirmation_required"),
    ("POST", "vps_101/reset?force=false", TOKEN, None, 400, "confirmation_required"),
    ("POST", "vps_101/reset", TOKEN, {"force": True}, 200, None),
    ("POST", "vps_101/reset?force=true", TOKEN, None, 200, None),
    ("POST", "vps_999/start", TOKEN, None, 403, "unauthorized"),
    ("POST", "vps_101/start", None, None, 401, "unauthorized"),
    ("POST", "vps_101/start", "wrong", None, 401, "unauthorized"),
    ("POST", "vps_101/reboot", TOKEN, None, 404, "not_found"),
    ("GET", "vps_101/start", TOKEN, None, 405, "method_not_allowed"),
])
def test_simulator_answers_as_heo_documents(heo, method, path, token, body, status, error):
    got, ctype, text = heo_call(heo, method, ACTION_PATH + path, token, body)

    assert got == status, text
    assert ctype == "application/json"
    answer = json.loads(text)
    if error:
        assert answer["success"] is False and answer["error"] == error and answer["message"]
    else:
        action = path.split("/")[1].split("?")[0]
        assert answer == {"success": True, "action": action, "vps_id": "vps_101",
                          "status": "requested",
                          "message": f"{action.capitalize()} action sent"}


def test_simulator_rate_limit_is_plain_text_and_provider_error_is_502(heo):
    heo.configure(provider="heo", rate_limit={"limit": 1, "window_s": 60})
    assert heo_call(heo, "POST", ACTION_PATH + "vps_101/start")[0] == 200
    assert heo_call(heo, "POST", ACTION_PATH + "vps_101/start")[:2] == \
        (429, "text/plain; charset=utf-8")

    heo.configure(provider="heo", rate_limit={"limit": 100, "window_s": 60},
                  provider_error=True)
    status, _, text = heo_call(heo, "POST", ACTION_PATH + "vps_101/start")
    assert status == 502 and json.loads(text)["error"] == "provider_error"
    assert [a["action"] for a in accepted(heo)] == ["start"]
    log = heo_requests(heo, "POST")
    assert [r["status"] for r in log] == [200, 429, 502]
