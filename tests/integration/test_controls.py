"""doc/SEMANTICS.md §5, control files, for HostUp: `power` on every VPS and `refresh`
on the account. Writes go through the shell (`echo`/`printf` with `>`) and,
where the exact errno matters, through os.open/os.write."""

import datetime
import errno
import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import (BY_ME, ISO_UTC, TOKEN, bash, hostup_config, q, read, sh, timed, wait_for,
                      write_errno)

COMMANDS = "start shutdown stop restart reset\n"
# What the daemon logs when a power command fails (tests that provoke it).
POWER_FAILED = r"power: '?restart'? failed"


def running(sim, n=0):
    return sim.vps_with(powerState="running", serviceStatus="active")[n]


def stopped(sim):
    return sim.vps_with(powerState="stopped", serviceStatus="active")[0]


def posts(sim, vps_id, action=""):
    return sim.requests("POST", rf"^/api/v2/vps/{re.escape(vps_id)}/actions/{action}")


def calls_for(sim, vps_id):
    """Every API request about this VPS (reads and actions)."""
    return sim.requests(path_re=rf"^/api/v2/vps/{re.escape(vps_id)}(/|$)")


def last_action(mnt, vps_id):
    return mnt.read("vps", "hostup", vps_id, "last_action")


def assert_recent_utc(stamp, slack=10):
    when = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) <= slack, f"{stamp} is not now in UTC ({now})"


def wait_status(mnt, vps_id, want, timeout=10):
    wait_for(lambda: mnt.read("vps", "hostup", vps_id, "operation", "status") == want + "\n",
             timeout=timeout, what=f"operation/status {want}")


# ---- reading a control file ------------------------------------------------------

def test_reading_power_lists_every_command_whatever_the_state(mnt, fresh_sim):
    for vps_id in (running(fresh_sim), stopped(fresh_sim)):
        out = sh(f"cat {q(mnt.vps(vps_id, 'power'))}")
        assert out.stdout == COMMANDS
        assert os.stat(mnt.vps(vps_id, "power")).st_size == len(COMMANDS)


def test_reading_refresh_lists_its_command(mnt):
    assert mnt.provider("refresh") == "1\n"


# ---- accepted commands -----------------------------------------------------------

def test_echo_restart_makes_exactly_one_post_and_succeeds(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    fresh_sim.clear_requests()

    out = sh(f"echo restart > {q(mnt.vps(vps_id, 'power'))}")

    assert out.returncode == 0 and out.stderr == ""
    sent = posts(fresh_sim, vps_id)
    assert [r["path"] for r in sent] == [f"/api/v2/vps/{vps_id}/actions/restart"]
    assert sent[0]["body"] in (None, "")  # graceful: no body
    wait_status(mnt, vps_id, "completed")
    assert len(posts(fresh_sim, vps_id)) == 1, "the action was sent again"


def test_printf_restart_without_newline_works_too(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    fresh_sim.clear_requests()

    out = sh(f"printf restart > {q(mnt.vps(vps_id, 'power'))}")

    assert out.returncode == 0, out.stderr
    assert len(posts(fresh_sim, vps_id, "restart")) == 1


def test_surrounding_white_space_is_ignored(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    fresh_sim.clear_requests()

    assert write_errno(mnt.vps(vps_id, "power"), " \t restart  \n") == 0

    assert len(posts(fresh_sim, vps_id, "restart")) == 1


def test_restart_force_asks_for_the_forced_restart(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    fresh_sim.clear_requests()

    assert sh(f"echo 'restart force' > {q(mnt.vps(vps_id, 'power'))}").returncode == 0

    sent = posts(fresh_sim, vps_id)
    assert len(sent) == 1 and sent[0]["path"].endswith("/actions/restart")
    assert sent[0]["body"] and '"force":true' in sent[0]["body"].replace(" ", "")


@pytest.mark.parametrize("command,action", [("reset force", "reset"), ("stop force", "stop"),
                                            ("shutdown", "shutdown")])
def test_forced_and_plain_commands_make_one_post_each(mnt, fresh_sim, command, action):
    vps_id = running(fresh_sim)
    fresh_sim.clear_requests()

    out = sh(f"echo '{command}' > {q(mnt.vps(vps_id, 'power'))}")

    assert out.returncode == 0, out.stderr
    assert [r["path"] for r in posts(fresh_sim, vps_id)] == \
        [f"/api/v2/vps/{vps_id}/actions/{action}"]


def test_start_on_a_stopped_vps_makes_one_post(mnt, fresh_sim):
    vps_id = stopped(fresh_sim)
    fresh_sim.clear_requests()

    assert sh(f"echo start > {q(mnt.vps(vps_id, 'power'))}").returncode == 0

    assert len(posts(fresh_sim, vps_id, "start")) == 1


# ---- refused locally: EINVAL, no API call ------------------------------------------

def assert_refused_locally(mnt, sim, vps_id, data):
    sim.clear_requests()
    assert write_errno(mnt.vps(vps_id, "power"), data) == errno.EINVAL
    shell = bash(f"printf '%s' {q(data)} > {q(mnt.vps(vps_id, 'power'))}")
    assert shell.returncode != 0
    assert "Invalid argument" in shell.stderr
    assert calls_for(sim, vps_id) == [], "a command refused locally reached the API"


def test_reset_without_force_fails_with_einval_and_makes_no_api_call(mnt, fresh_sim):
    assert_refused_locally(mnt, fresh_sim, running(fresh_sim), "reset\n")


def test_stop_without_force_fails_with_einval_and_makes_no_api_call(mnt, fresh_sim):
    assert_refused_locally(mnt, fresh_sim, running(fresh_sim), "stop\n")


@pytest.mark.parametrize("command", ["start force", "shutdown force"])
def test_forcing_a_command_that_takes_no_force_fails_with_einval(mnt, fresh_sim, command):
    assert_refused_locally(mnt, fresh_sim, stopped(fresh_sim), command + "\n")


@pytest.mark.parametrize("data", ["reboot\n", "RESTART\n", "restart now\n", "\n", "  \t\n",
                                  "restart\nreset force\n", "rest\0art\n", "x" * 300 + "\n"],
                         ids=["unknown", "upper-case", "extra-word", "blank", "white-space",
                              "two-lines", "nul", "too-long"])
def test_unknown_or_malformed_command_fails_with_einval_and_makes_no_api_call(
        mnt, fresh_sim, data):
    vps_id = running(fresh_sim)
    fresh_sim.clear_requests()

    assert write_errno(mnt.vps(vps_id, "power"), data) == errno.EINVAL

    assert calls_for(fresh_sim, vps_id) == []


def test_a_second_write_in_one_open_is_not_a_command(mnt, fresh_sim):
    """One write at offset 0 is one command: a write further on is refused."""
    vps_id = running(fresh_sim)
    fresh_sim.clear_requests()
    fd = os.open(mnt.vps(vps_id, "power"), os.O_WRONLY | os.O_TRUNC)
    try:
        assert os.write(fd, b"restart\n") == 8
        with pytest.raises(OSError) as e:
            os.write(fd, b"reset force\n")
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    assert [r["path"] for r in posts(fresh_sim, vps_id)] == \
        [f"/api/v2/vps/{vps_id}/actions/restart"]


def test_writing_anything_but_1_to_refresh_fails_with_einval_and_makes_no_api_call(
        mnt, fresh_sim):
    fresh_sim.clear_requests()

    assert write_errno(mnt.p("providers", "hostup", "refresh"), "2\n") == errno.EINVAL

    assert fresh_sim.requests() == []


def test_concurrent_writes_to_refresh_are_each_judged_on_their_own_bytes(mnt, fresh_sim):
    """The kernel sends a write's bytes from the page cache: refilling the
    command list there while another write was in flight turned a refused
    `2` into `1`, and a refresh ran (found in CI)."""
    refresh = mnt.p("providers", "hostup", "refresh")
    writer = ("import errno, os, sys\n"
              "flags = os.O_WRONLY | (os.O_TRUNC if sys.argv[2] == 'trunc' else 0)\n"
              "accepted = 0\n"
              "for _ in range(300):\n"
              "    fd = os.open(sys.argv[1], flags)\n"
              "    try:\n"
              "        os.write(fd, b'2\\n')\n"
              "        accepted += 1\n"
              "    except OSError as e:\n"
              "        assert e.errno == errno.EINVAL, e\n"
              "    os.close(fd)\n"
              "print(accepted)\n")
    fresh_sim.clear_requests()
    writers = [subprocess.Popen([sys.executable, "-c", writer, refresh, how],
                                stdout=subprocess.PIPE, text=True)
               for how in ("trunc", "trunc", "trunc", "notrunc")]
    reader = subprocess.Popen(["sh", "-c", f"for i in $(seq 200); do ls -l "
                               f"{q(os.path.dirname(refresh))} >/dev/null; "
                               f"cat {q(refresh)} >/dev/null; done"])
    accepted = [w.communicate(timeout=120)[0].strip() for w in writers]
    assert reader.wait(timeout=120) == 0
    assert [w.returncode for w in writers] == [0] * 4
    assert accepted == ["0"] * 4, "writes of '2' accepted, per writer"
    assert fresh_sim.requests() == []
    assert read(refresh) == "1\n"


# ---- API errors ------------------------------------------------------------------

@pytest.mark.parametrize("status,code,err", [
    (400, "invalid_request", errno.EINVAL),
    (401, "unauthorized", errno.EACCES),
    (403, "forbidden", errno.EACCES),
    (404, "not_found", errno.ENOENT),
    (409, "vps_not_ready", errno.EBUSY),
    (422, None, errno.EINVAL),
    (429, "rate_limited", errno.EAGAIN),
    (500, "internal_error", errno.EIO),
    (502, "upstream_error", errno.EIO),
    (503, "service_unavailable", errno.EIO),
])
def test_http_error_on_the_action_fails_the_write_with_its_errno_and_says_why_in_last_action(
        mnt, fresh_sim, status, code, err):
    vps_id = running(fresh_sim)
    mnt.expect_stderr(POWER_FAILED)
    fresh_sim.fault(action="status", status=status, method="POST",
                    path=r"/actions/restart$", times=0)
    fresh_sim.clear_requests()

    shell = bash(f"echo restart > {q(mnt.vps(vps_id, 'power'))}")
    assert shell.returncode != 0
    assert os.strerror(err) in shell.stderr, shell.stderr
    assert write_errno(mnt.vps(vps_id, "power"), "restart\n") == err

    line = last_action(mnt, vps_id)
    assert re.fullmatch(rf"({ISO_UTC}) restart failed {status} (\S+)[: ].*\n", line), line
    assert line.count("\n") == 1
    if code:
        assert f" {status} {code}" in line, line
    assert_recent_utc(line.split()[0])
    assert TOKEN not in line
    if status != 429:  # a 429 may be retried: the provider did not act
        assert len(posts(fresh_sim, vps_id)) == 2, "one write must be one POST"


def test_dropped_connection_during_the_action_gives_eio_and_no_second_post(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    mnt.expect_stderr(POWER_FAILED)
    fresh_sim.fault(action="drop", method="POST", path=r"/actions/restart$", times=1)
    fresh_sim.clear_requests()

    assert write_errno(mnt.vps(vps_id, "power"), "restart\n") == errno.EIO

    assert len(posts(fresh_sim, vps_id)) == 1
    assert re.fullmatch(rf"{ISO_UTC} restart failed .*\n", last_action(mnt, vps_id))


def test_truncated_answer_to_the_action_gives_eio(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    mnt.expect_stderr(POWER_FAILED)
    fresh_sim.fault(action="truncated", method="POST", path=r"/actions/restart$", times=0)

    assert write_errno(mnt.vps(vps_id, "power"), "restart\n") == errno.EIO

    assert re.fullmatch(rf"{ISO_UTC} restart failed .*\n", last_action(mnt, vps_id))


def test_unreadable_answer_to_the_action_gives_eio(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    mnt.expect_stderr(POWER_FAILED)
    fresh_sim.fault(action="malformed", method="POST", path=r"/actions/restart$", times=0)

    assert write_errno(mnt.vps(vps_id, "power"), "restart\n") == errno.EIO

    assert re.fullmatch(rf"{ISO_UTC} restart failed .*\n", last_action(mnt, vps_id))


def test_no_connection_gives_ehostunreach(private_sim, make_mount):
    m = make_mount(hostup_config(private_sim, refresh=300))
    m.expect_stderr(POWER_FAILED + r"|no connection")
    vps_id = private_sim.vps_with(powerState="running", serviceStatus="active")[0]
    private_sim.stop()

    shell = bash(f"echo restart > {q(m.vps(vps_id, 'power'))}")

    assert shell.returncode != 0
    assert os.strerror(errno.EHOSTUNREACH) in shell.stderr, shell.stderr
    assert re.fullmatch(rf"{ISO_UTC} restart failed - .*\n", last_action(m, vps_id))


def test_an_action_the_vps_is_not_ready_for_fails_with_ebusy_and_says_why(mnt, fresh_sim):
    vps_id = stopped(fresh_sim)
    mnt.expect_stderr(POWER_FAILED)

    shell = bash(f"echo restart > {q(mnt.vps(vps_id, 'power'))}")

    assert shell.returncode != 0
    assert os.strerror(errno.EBUSY) in shell.stderr
    line = last_action(mnt, vps_id)
    assert re.fullmatch(rf"{ISO_UTC} restart failed .*stopped.*\n", line), line
    assert fresh_sim.jobs() == []


# ---- last_action -----------------------------------------------------------------

def test_every_write_accepted_or_not_rewrites_last_action(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    power = mnt.vps(vps_id, "power")
    assert last_action(mnt, vps_id) == ""

    assert write_errno(power, "bogus\n") == errno.EINVAL
    first = last_action(mnt, vps_id)
    assert re.fullmatch(rf"({ISO_UTC}) bogus failed \S+ .+\n", first), first
    assert_recent_utc(first.split()[0])

    assert write_errno(power, "reset\n") == errno.EINVAL
    second = last_action(mnt, vps_id)
    assert re.fullmatch(rf"{ISO_UTC} reset failed \S+ .*force.*\n", second), second

    assert sh(f"echo restart > {q(power)}").returncode == 0
    third = last_action(mnt, vps_id)
    assert re.fullmatch(rf"{ISO_UTC} restart ok 202\b.*\n", third), third
    assert os.stat(mnt.vps(vps_id, "last_action")).st_size == len(third.encode())
    assert TOKEN not in first + second + third


def test_refresh_writes_rewrite_the_accounts_last_action(mnt):
    assert sh(f"echo 1 > {q(mnt.p('providers', 'hostup', 'refresh'))}").returncode == 0
    ok = mnt.provider("last_action")
    assert re.fullmatch(rf"{ISO_UTC} 1 ok .*\n", ok), ok

    assert write_errno(mnt.p("providers", "hostup", "refresh"), "now\n") == errno.EINVAL
    failed = mnt.provider("last_action")
    assert re.fullmatch(rf"{ISO_UTC} now failed .*\n", failed), failed


# ---- reading a control file while it is written (issue 10, item 5) --------------------

def slow_posts(sim, seconds=3):
    """Every power action answers after `seconds`."""
    sim.fault(action="delay", provider="hostup", method="POST", path=r"/actions/",
              delay_ms=int(seconds * 1000), times=0)


def write_in_background(path, data, flags=os.O_WRONLY | os.O_TRUNC):
    """One write() of `data` by another process; returns it (exit 0 = ok)."""
    return subprocess.Popen([sys.executable, "-c",
                             "import os, sys\n"
                             f"fd = os.open(sys.argv[1], {flags})\n"
                             "os.write(fd, sys.argv[2].encode())\n", path, data])


def reads_during(writer, path, want, wait_first=None):
    """Reads `path` with cat until `writer` exits; asserts every read gave
    `want` promptly. Returns how many reads there were."""
    if wait_first:
        wait_for(wait_first, timeout=5, what="the write to reach the API")
    reads = 0
    while writer.poll() is None:
        out, took = timed(sh, f"cat {q(path)}", timeout=20)
        assert out.stdout == want, f"read {out.stdout!r} during the write"
        assert took < 1.5, f"a read took {took:.1f}s during the write"
        reads += 1
    assert writer.wait(timeout=20) == 0
    return reads


@pytest.mark.parametrize("read_before", [False, True], ids=["never-read", "cached"])
def test_reading_power_during_a_slow_echo_to_it_lists_the_commands(mnt, fresh_sim, read_before):
    """With `>`, `cat power` read empty during the write: the kernel set the
    size to 0 itself at open(O_TRUNC). With its page cached, readers saw
    the written bytes over the command list."""
    vps_id = running(fresh_sim)
    power = mnt.vps(vps_id, "power")
    if read_before:
        assert read(power) == COMMANDS
    slow_posts(fresh_sim)
    writer = write_in_background(power, "restart\n")
    reads = reads_during(writer, power, COMMANDS,
                         wait_first=lambda: posts(fresh_sim, vps_id, "restart"))
    assert reads > 3
    assert read(power) == COMMANDS


def test_after_a_dd_notrunc_write_power_still_lists_the_commands(mnt, fresh_sim):
    """`dd conv=notrunc` writes without truncating: readers saw
    `start\nshutdown stop restart reset` for seconds after it returned
    (the written bytes over the cached command list)."""
    vps_id = running(fresh_sim)
    power = mnt.vps(vps_id, "power")
    assert read(power) == COMMANDS
    slow_posts(fresh_sim, 2)
    writer = write_in_background(power, "restart\n", flags=os.O_WRONLY)
    reads_during(writer, power, COMMANDS,
                 wait_first=lambda: posts(fresh_sim, vps_id))
    for _ in range(20):
        assert read(power) == COMMANDS
        time.sleep(0.05)
    assert os.stat(power).st_size == len(COMMANDS)


def test_reading_refresh_while_a_write_to_it_waits_on_the_api(fresh_sim, make_mount):
    """The refresh file never read before the write (its page not cached)."""
    m = make_mount(hostup_config(fresh_sim, refresh=300))
    refresh = m.p("providers", "hostup", "refresh")
    fresh_sim.fault(action="delay", delay_ms=3000, method="GET", path=r"^/api/v2/vps$",
                    times=0)
    writer = write_in_background(refresh, "1\n")
    reads = reads_during(writer, refresh, "1\n", wait_first=lambda: fresh_sim.admin(
        "GET", "/_sim/faults")[0]["hits"] > 0)
    assert reads > 1
    assert read(refresh) == "1\n"


def test_a_shared_writable_mapping_of_power_never_performs_an_action(mnt, fresh_sim):
    """mmap(MAP_SHARED) + msync flushed the page as a WRITE, which ran the
    command in it. Only write() acts."""
    vps_id = running(fresh_sim)
    power = mnt.vps(vps_id, "power")
    fresh_sim.clear_requests()
    out = subprocess.run([sys.executable, "-c", """
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[:8] = b"restart\\n"
try:
    m.flush()
    print("flushed")
except OSError as e:
    print("refused", e.errno)
m.close()
try:
    os.fsync(fd)
except OSError:
    pass
os.close(fd)
""", power], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    time.sleep(0.5)
    assert posts(fresh_sim, vps_id) == []
    assert fresh_sim.jobs() == []
    assert read(power) == COMMANDS
    assert last_action(mnt, vps_id) == ""


# ---- asynchronous operations -------------------------------------------------------

def test_after_restart_operation_shows_status_job_id_and_poll_url(mnt, fresh_sim):
    vps_id = running(fresh_sim)

    assert sh(f"echo restart > {q(mnt.vps(vps_id, 'power'))}").returncode == 0

    op = mnt.vps(vps_id, "operation")
    assert sorted(os.listdir(op)) == ["job_id", "poll_url", "status", "wait"]
    jobs = [j for j in fresh_sim.jobs() if j["vpsId"] == vps_id]
    assert len(jobs) == 1
    job = jobs[0]["jobId"]
    assert mnt.read("vps", "hostup", vps_id, "operation", "job_id") == job + "\n"
    assert mnt.read("vps", "hostup", vps_id, "operation", "poll_url") == f"/api/jobs/{job}\n"
    assert mnt.read("vps", "hostup", vps_id, "operation", "status") in \
        ("queued\n", "in_progress\n", "completed\n")
    assert re.fullmatch(rf"{ISO_UTC} restart ok 202 queued {job}{BY_ME}\n",
                        last_action(mnt, vps_id))


@pytest.mark.parametrize("setup,command,final", [
    ({}, "restart", "completed"),
    ({"fail_next_jobs": 1}, "restart", "failed"),
    ({"job_shape": "legacy"}, "shutdown", "completed"),
], ids=["completed", "failed", "legacy-shape"])
def test_cat_operation_wait_blocks_until_terminal_and_prints_the_final_status(
        mnt, fresh_sim, setup, command, final):
    vps_id = running(fresh_sim)
    if setup:
        fresh_sim.configure(**setup)

    out, took = timed(sh, f"echo {command} > {q(mnt.vps(vps_id, 'power'))} && "
                          f"cat {q(mnt.vps(vps_id, 'operation', 'wait'))}")

    assert out.returncode == 0, out.stderr
    assert took >= 0.5, f"returned after {took:.2f}s; the job takes 0.6s"
    assert [j["status"] for j in fresh_sim.jobs()] == [final]
    assert out.stdout == final + "\n"


def test_after_wait_returns_status_and_power_state_show_the_new_state(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    d = mnt.vps(vps_id)
    assert mnt.read("vps", "hostup", vps_id, "power_state") == "running\n"

    out = sh(f"cd {q(d)} && echo shutdown > power && cat operation/wait > /dev/null && "
             f"cat operation/status power_state && stat -c %s power_state")

    assert out.returncode == 0, out.stderr
    assert out.stdout == "completed\nstopped\n8\n"
    assert fresh_sim.get_vps(vps_id)["powerState"] == "stopped"


def test_a_refresh_whose_list_was_read_before_an_action_ended_does_not_undo_it(
        fresh_sim, make_mount):
    """The periodic list was answered with the VPS still running, but
    arrived after the shutdown had ended and been re-read: the tree showed
    `running` again until the next refresh. Action results win. (No detail
    reads: they would come after the action and hide the stale list.)"""
    mnt = make_mount(hostup_config(fresh_sim, refresh=300, detail_limit=0))
    vps_id = running(fresh_sim)
    d = mnt.vps(vps_id)
    fresh_sim.fault(action="late", method="GET", path=r"^/api/v2/vps$", delay_ms=2500)
    fresh_sim.clear_requests()
    refresh = subprocess.Popen(["sh", "-c",
                                f"echo 1 > {q(mnt.p('providers', 'hostup', 'refresh'))}"])
    try:
        wait_for(lambda: fresh_sim.requests("GET", r"^/api/v2/vps$"), timeout=5,
                 what="the list to be read")
        out = sh(f"cd {q(d)} && echo shutdown > power && cat operation/wait > /dev/null && "
                 f"cat power_state")
        assert out.returncode == 0, out.stderr
        assert out.stdout == "stopped\n"
    finally:
        assert refresh.wait(timeout=20) == 0

    assert mnt.read("vps", "hostup", vps_id, "power_state") == "stopped\n"
    assert json.loads(mnt.read("vps", "hostup", vps_id, "json"))["powerState"] == "stopped"
    # The next list, read after the action, is taken as it is.
    fresh_sim.patch_vps(vps_id, {"powerState": "running"})
    mnt.refresh()
    assert mnt.read("vps", "hostup", vps_id, "power_state") == "running\n"


def test_a_job_that_fails_ends_failed_and_the_vps_keeps_its_state(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    fresh_sim.configure(fail_next_jobs=1)

    out = sh(f"cd {q(mnt.vps(vps_id))} && echo shutdown > power && "
             f"cat operation/wait > /dev/null && cat operation/status power_state")

    assert out.returncode == 0, out.stderr
    assert out.stdout == "failed\nrunning\n"


def test_the_legacy_job_shape_works_as_well(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    fresh_sim.configure(job_shape="legacy")

    out = sh(f"cd {q(mnt.vps(vps_id))} && echo shutdown > power && "
             f"cat operation/wait > /dev/null && cat operation/status power_state")

    assert out.returncode == 0, out.stderr
    assert out.stdout == "completed\nstopped\n"


def test_operation_wait_does_not_block_other_readers(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    fresh_sim.configure(job_seconds=2)
    assert sh(f"echo restart > {q(mnt.vps(vps_id, 'power'))}").returncode == 0
    waiters = [subprocess.Popen(["cat", mnt.vps(vps_id, "operation", "wait")],
                                stdout=subprocess.DEVNULL) for _ in range(12)]
    try:
        out, took = timed(sh, f"ls -R {q(mnt.path)} > /dev/null && "
                              f"cat {q(mnt.vps(vps_id, 'name'))}")
        assert out.returncode == 0
        assert took < 2, f"ls/cat took {took:.1f}s while operation/wait readers block"
        assert all(w.poll() is None for w in waiters), "wait returned before the job ended"
    finally:
        for w in waiters:
            w.wait(timeout=15)


# ---- read-only files, refresh --------------------------------------------------------

@pytest.mark.parametrize("parts", [("vps", "hostup", None, "name"), ("vps", "hostup", None, "json"),
                                   ("providers", "hostup", "state"), ("README",), ("actions",)],
                         ids=["field", "json", "provider-state", "readme", "actions"])
def test_writes_to_read_only_files_fail_with_eacces(mnt, fresh_sim, parts):
    vps_id = running(fresh_sim)
    path = mnt.p(*[vps_id if p is None else p for p in parts])
    before = open(path).read()

    assert write_errno(path, "x\n") == errno.EACCES
    shell = bash(f"echo x > {q(path)}")
    assert shell.returncode != 0
    assert "Permission denied" in shell.stderr

    assert open(path).read() == before


def test_nothing_can_be_created_or_removed(mnt, fresh_sim):
    d = mnt.vps(running(fresh_sim))
    for cmd in (f"touch {q(d)}/new", f"mkdir {q(d)}/new", f"rm -f {q(d)}/name",
                f"mv {q(d)}/name {q(d)}/other"):
        assert sh(cmd).returncode != 0, cmd
    assert os.path.exists(os.path.join(d, "name"))
    assert not os.path.exists(os.path.join(d, "new"))


def test_echo_1_to_refresh_returns_once_the_refresh_has_finished(mnt, fresh_sim):
    vps_id = fresh_sim.vps_ids()[0]
    before = mnt.provider("last_refresh")
    fresh_sim.patch_vps(vps_id, {"name": "after-refresh"})
    fresh_sim.fault(action="delay", delay_ms=800, method="GET", path=r"^/api/v2/vps$")

    out, took = timed(sh, f"echo 1 > {q(mnt.p('providers', 'hostup', 'refresh'))} && "
                          f"cat {q(mnt.vps(vps_id, 'name'))}")

    assert out.returncode == 0, out.stderr
    assert took >= 0.8, f"returned after {took:.2f}s, before the (slow) list answered"
    assert out.stdout == "after-refresh\n"
    assert mnt.provider("state") == "ok\n"
    assert mnt.provider("last_refresh") >= before


def test_a_refresh_that_fails_makes_the_write_fail_and_keeps_the_old_data(mnt, fresh_sim):
    ids = fresh_sim.vps_ids()
    name = mnt.read("vps", "hostup", ids[0], "name")
    mnt.expect_stderr(r"refresh failed")
    fresh_sim.patch_vps(ids[0], {"name": "never-seen"})
    fresh_sim.fault(action="status", status=500, method="GET", path=r"^/api/v2/vps$", times=0)

    shell = bash(f"echo 1 > {q(mnt.p('providers', 'hostup', 'refresh'))}")
    assert shell.returncode != 0
    assert os.strerror(errno.EIO) in shell.stderr
    assert write_errno(mnt.p("providers", "hostup", "refresh"), "1\n") == errno.EIO

    assert sorted(os.listdir(mnt.p("vps", "hostup"))) == sorted(ids)
    assert mnt.read("vps", "hostup", ids[0], "name") == name
    assert mnt.provider("state") == "stale\n"
    assert "500" in mnt.provider("last_error")


def test_binary_bytes_written_to_power_leave_last_action_valid_text(mnt, fresh_sim):
    """last_action kept the raw bytes a user wrote; now one line of text,
    every unprintable byte as \\xNN."""
    vps_id = running(fresh_sim)

    assert write_errno(mnt.vps(vps_id, "power"),
                       b"\x1b[31mred\xff\xfe\x00x\r\nend\n") == errno.EINVAL

    with open(mnt.vps(vps_id, "last_action"), "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")  # valid UTF-8, or this raises
    assert text.endswith("\n") and text.count("\n") == 1
    assert not re.search(r"[\x00-\x1f\x7f]", text[:-1]), text
    command = text.split(" ")[1]
    assert command == r"\x1B[31mred\xFF\xFE\x00x\x0D\x0Aend", command
    assert posts(fresh_sim, vps_id) == []
