"""Issue 10, "what an attack probe found": the credential in error text, ids
of "." and "..", the token in the environment and in core files, hung
token_commands, control characters in secrets.

Every test drives the real binary: a real mount against the simulator, the
mount command as users run it, /proc, and the kernel's core dumps."""

import base64
import json
import os
import resource
import signal
import subprocess
import time
import urllib.parse

import pytest

from conftest import (INFRAFS, TOKEN, Simulator, account_config, hostup_config, is_mounted,
                      mountpoint, processes, read, wait_for, write_config, write_errno)

# A token with characters that URL encoding changes, so that its encoded form
# differs from the raw one; the simulator accepts it like any other.
ODD_TOKEN = "tok/en+key=1~x"
DEPLOYHQ_USER = "demo@example.com"  # the simulator's default --deployhq-user


# ---- A. the credential in error text ------------------------------------------------

def credential_forms(token, user=None):
    """Every way the account's credential can be written in text."""
    forms = {token, urllib.parse.quote(token, safe=""), urllib.parse.quote_plus(token)}
    if user is not None:
        b64 = base64.b64encode(f"{user}:{token}".encode()).decode()
        forms |= {b64, b64.rstrip("=")}
    return forms


def assert_no_credential(text, forms, where):
    shown = [f for f in forms if f in text]
    assert not shown, f"{where} shows the credential ({shown}):\n{text}"


# How each provider authenticates, what its refresh lists, and a control
# whose request carries the credential (kind, file, command, method, path).
SCHEMES = {
    "hostup": dict(header=lambda t, u: f"Authorization: Bearer {t}", keys={},
                   list_path=r"^/api/v2/vps$",
                   # power reads the action gate (/details) first
                   control=("vps", "power", "start", "GET", r"/details$")),
    "hostatlas": dict(header=lambda t, u: f"Authorization: Bearer {t}", keys={},
                      list_path=r"^/api/v1/servers$",
                      # the ping URL is on the account's own origin: it gets the key
                      control=("heartbeats", "ping", "1", "GET", r"^/heartbeat/")),
    "heo": dict(header=lambda t, u: f"Authorization: Bearer {t}", keys={"vps": "vps_101"},
                list_path=None,  # HEO's refresh makes no request
                control=("vps", "power", "start", "POST", r"/start$")),
    "dokploy": dict(header=lambda t, u: f"x-api-key: {t}", keys={},
                    list_path=r"^/api/project\.all$",
                    control=("deployments", "kill", "1", "POST", r"killProcess$")),
    "deployhq": dict(header=lambda t, u: "Authorization: Basic " +
                     base64.b64encode(f"{u}:{t}".encode()).decode(),
                     keys={"user": DEPLOYHQ_USER},
                     list_path=r"^/hosted_resources$",
                     control=("vps", "sync", "1", "POST", r"/sync$")),
}


def echo_body(provider, token, user):
    """An error answer that echoes the request, as the probe's server did:
    its auth header, and the token as a query string would carry it."""
    header = SCHEMES[provider]["header"](token, user)
    return json.dumps({"error": "bad_request",
                       "message": f"request was: GET /x?api_key="
                                  f"{urllib.parse.quote(token, safe='')} {header}"})


@pytest.fixture(scope="module")
def odd_sim(tmp_path_factory):
    s = Simulator(str(tmp_path_factory.mktemp("odd-sim")), token=ODD_TOKEN)
    yield s
    s.stop()


@pytest.fixture
def echo_sim(odd_sim):
    odd_sim.reset()
    yield odd_sim
    odd_sim.clear_faults()


def echo_config(sim, provider, **keys):
    return account_config(sim, provider, token=ODD_TOKEN, refresh=300,
                          **SCHEMES[provider]["keys"], **keys)


def add_echo_faults(sim, provider, body, with_list=True):
    scheme = SCHEMES[provider]
    _, _, _, method, path = scheme["control"]
    sim.fault(provider=provider, action="status", status=400, times=0, method=method,
              path=path, body=body, content_type="application/json")
    if with_list and scheme["list_path"]:
        sim.fault(provider=provider, action="status", status=400, times=0, method="GET",
                  path=scheme["list_path"], body=body, content_type="application/json")


@pytest.mark.parametrize("provider", sorted(SCHEMES))
def test_credential_echoed_by_an_api_error_is_redacted_everywhere(
        provider, echo_sim, make_mount, daemons, tmp_path):
    """The probe saw DeployHQ's `Authorization: Basic base64(user:key)` in
    last_error, the mount command's output and the log. Every provider's
    scheme: Bearer (hostup, hostatlas, heo), x-api-key (dokploy), Basic
    (deployhq)."""
    user = DEPLOYHQ_USER if provider == "deployhq" else None
    forms = credential_forms(ODD_TOKEN, user)
    body = echo_body(provider, ODD_TOKEN, user)
    assert any(f in body for f in forms - {ODD_TOKEN}), "the echo must hold an encoded form"
    scheme = SCHEMES[provider]
    kind, control, command, _, _ = scheme["control"]

    m = make_mount(echo_config(echo_sim, provider))
    m.expect_stderr(r"\[redacted\]")
    account_dir = m.p(kind, provider)
    resource = sorted(os.listdir(account_dir))[0]
    add_echo_faults(echo_sim, provider, body)

    if scheme["list_path"]:
        assert write_errno(m.p("providers", provider, "refresh"), "1\n") != 0
        last_error = m.provider("last_error", account=provider)
        assert "request was" in last_error and "[redacted]" in last_error, last_error
        assert_no_credential(last_error, forms, "last_error")

    assert write_errno(os.path.join(account_dir, resource, control), command + "\n") != 0
    last_action = read(os.path.join(account_dir, resource, "last_action"))
    assert " failed " in last_action and "[redacted]" in last_action, last_action
    assert_no_credential(last_action, forms, "last_action")
    assert "[redacted]" in m.stderr()
    assert_no_credential(m.stderr(), forms, "the daemon's log (stderr)")

    # The mount command without -f prints each failed account's last_error.
    if scheme["list_path"]:
        config = write_config(tmp_path / "daemon-config", echo_config(echo_sim, provider))
        mnt = mountpoint(tmp_path, "daemon-mnt")
        out, _ = daemons.run(["-o", f"config={config},startup_timeout=10", mnt], mnt)
        assert out.returncode == 0, out.stderr
        assert "[redacted]" in out.stdout, out.stdout
        assert_no_credential(out.stdout + out.stderr, forms, "the mount command's output")


# ---- B. ids "." and ".." ----------------------------------------------------------------

def test_dot_ids_never_redirect_requests_outside_their_vps(fresh_sim, make_mount):
    """The probe's API handed out a VPS id "..": infrafs then requested
    GET /api/v2/details and /api/v2/status with the token."""
    for vps_id in ("..", "."):
        fresh_sim.create_vps({"id": vps_id, "name": f"dots-{len(vps_id)}"})
    fresh_sim.clear_requests()
    m = make_mount(hostup_config(fresh_sim, refresh=300))

    # Named by the documented escape, and filled from the right VPS.
    assert m.read("vps", "hostup", "%2E%2E", "name") == "dots-2\n"
    assert m.read("vps", "hostup", "%2E", "name") == "dots-1\n"
    # An action: the gate read, the POST, the poll and the re-read.
    errno = write_errno(m.vps("%2E%2E", "power"), "restart\n")
    if errno == 0:
        assert m.read("vps", "hostup", "%2E%2E", "operation", "wait") == "completed\n"

    paths = [r["path"] for r in fresh_sim.requests() if r["provider"] == "hostup"]
    strays = [p for p in paths
              if not (p == "/api/v2/vps" or p.startswith("/api/v2/vps/")
                      or p.startswith("/api/jobs/"))]
    assert not strays, f"requests outside /api/v2/vps: {strays}"
    assert not [p for p in paths if p.startswith("/api/v2/vps/") and
                p.split("/")[4] in (".", "..")], paths
    assert errno == 0, os.strerror(errno)
    for encoded in ("%2E%2E", "%2E"):
        for suffix in ("/details", "/status"):
            assert f"/api/v2/vps/{encoded}{suffix}" in paths, paths
    assert "/api/v2/vps/%2E%2E/actions/restart" in paths, paths


# ---- C. the token in the environment, core files, hung token_commands -----------------

def environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read()


def test_env_token_is_removed_from_the_daemon_environment_and_hidden_from_token_commands(
        fresh_sim, make_mount, daemons, tmp_path):
    """INFRAFS_<ACCOUNT>_TOKEN stayed in /proc/PID/environ and was passed to
    every other account's token_command."""
    dump = tmp_path / "token_command.env"
    text = (f"[hostup]\ntype = hostup\nurl = {fresh_sim.url('hostup')}\nrefresh = 300\n"
            f"[heo]\ntype = heo\nurl = {fresh_sim.url('heo')}\nvps = vps_101\n"
            f"token_command = env > '{dump}'; echo {TOKEN}\n")
    env = {**os.environ, "INFRAFS_HOSTUP_TOKEN": TOKEN}

    m = make_mount(text, env={"INFRAFS_HOSTUP_TOKEN": TOKEN})
    assert m.provider("state") == "ok\n"  # the token from the environment works
    environ = environ_of(m.pid)
    assert b"INFRAFS_HOSTUP_TOKEN" not in environ and TOKEN.encode() not in environ
    assert b"PATH=" in environ  # the rest of the environment is still there
    seen = dump.read_text()
    assert "PATH=" in seen
    assert "INFRAFS_HOSTUP_TOKEN" not in seen and TOKEN not in seen, seen

    # The daemon a mount without -f leaves behind, too.
    dump.unlink()
    config = write_config(tmp_path / "daemon-config", text)
    mnt = mountpoint(tmp_path, "daemon-mnt")
    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt, env=env)
    assert out.returncode == 0, out.stderr
    (pid,) = daemons.alive()
    environ = environ_of(pid)
    assert b"INFRAFS_HOSTUP_TOKEN" not in environ and TOKEN.encode() not in environ
    assert TOKEN not in dump.read_text()


def default_signals():
    """In the child before exec: SIGQUIT at its default action (a core
    dump) and nothing blocked, whatever the test runner left to inherit."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def run_until_mounted(args, cwd, env):
    """`infrafs -f ARGS` in `cwd`; returns the process once it is mounted."""
    stderr_path = os.path.join(cwd, "infrafs.stderr")
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([INFRAFS, "-f", *args], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=default_signals)

    def stderr():
        with open(stderr_path) as f:
            return f.read()

    wait_for(lambda: "mounted at" in stderr() or proc.poll() is not None, timeout=40,
             what="the mount")
    assert proc.poll() is None, f"infrafs exited:\n{stderr()}"
    return proc


def wait_for_dump(pid, timeout=120):
    """The wait status of `pid`, which is dumping core. A dump that does not
    end in `timeout` seconds fails the test, naming the threads' states,
    rather than hanging the suite."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.1)
    states = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                states[tid] = (fields[0], f.read())
        except OSError:
            pass
    with open(f"/proc/{pid}/status") as f:
        masks = [line.strip() for line in f if line.startswith(("Sig", "ShdPnd"))]
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the core dump did not end in {timeout} s; threads: {states}; "
                         f"{masks}")


def dumps_core(sim, tmp_path, name, extra_opts):
    """Mounts in the foreground, kills the daemon with SIGQUIT (whose default
    action is a core dump) and tells whether the kernel wrote a core."""
    work = tmp_path / name
    work.mkdir()
    config = write_config(work / "config", hostup_config(sim, refresh=300))
    mnt = mountpoint(work)
    # ASan turns core dumps off by itself (disable_coredump); here they are
    # the point, and its shadow memory is marked not to be dumped anyway.
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache"),
           "ASAN_OPTIONS": f"{asan}{':' if asan else ''}disable_coredump=0"}
    proc = run_until_mounted(["-o", f"config={config}", *extra_opts, mnt], str(work), env)
    try:
        os.kill(proc.pid, signal.SIGQUIT)
        status = wait_for_dump(proc.pid)
        proc.returncode = -1  # reaped here, where the core-dump bit is visible
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-uz", mnt])
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGQUIT, status
    for leftover in work.glob("core*"):
        leftover.unlink()  # large, and full of secrets by definition
    return os.WCOREDUMP(status)


def test_daemon_is_not_dumpable_unless_dumpable_is_given(fresh_sim, tmp_path):
    """A core image of a healthy daemon held the token 17 times. Not dumpable,
    the kernel writes no core at all (fs.suid_dumpable 0, the default).

    Observed through the one effect of PR_SET_DUMPABLE that also holds for a
    daemon running as root: the core dump. (Root keeps reading
    /proc/PID/environ and attaching debuggers either way.) -o dumpable is the
    control that shows cores are written here at all."""
    with open("/proc/sys/fs/suid_dumpable") as f:
        if f.read().strip() != "0":
            pytest.skip("fs.suid_dumpable is not 0: the kernel dumps non-dumpable "
                        "processes too")
    limits = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (limits[1], limits[1]))
    try:
        if limits[1] == 0:
            pytest.skip("core dumps are forbidden here (hard RLIMIT_CORE 0)")
        assert dumps_core(fresh_sim, tmp_path, "dumpable", ["-o", "dumpable"]), \
            "with -o dumpable the kernel should have written a core"
        assert not dumps_core(fresh_sim, tmp_path, "default", []), \
            "infrafs wrote a core file, which holds every account's secret"
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, limits)


# An argument no other process on the machine has.
HUNG_SLEEP = "98765.25"


def hung_sleeps():
    """Pids of live `sleep HUNG_SLEEP` processes."""
    return [pid for pid, argv in processes() if argv[:2] == [b"sleep", HUNG_SLEEP.encode()]]


def test_hung_token_command_is_killed_with_everything_it_started(fresh_sim, daemons, tmp_path):
    """`token_command = sleep 1000` left its child running after the
    timeout (10 s, see man infrafs)."""
    assert not hung_sleeps()
    config = write_config(tmp_path / "config",
                          f"[hostup]\ntype = hostup\nurl = {fresh_sim.url('hostup')}\n"
                          f"token_command = sleep {HUNG_SLEEP} & sleep {HUNG_SLEEP}\n")
    mnt = mountpoint(tmp_path)
    try:
        out, took = daemons.run(["-o", f"config={config}", mnt], mnt, timeout=60)
        assert out.returncode == 1
        assert f"{config}:4: [hostup] token_command: did not finish within 10 s" in out.stderr
        assert took < 20
        assert not is_mounted(mnt)
        # Killed at once; a moment for the kernel to finish them off.
        time.sleep(0.5)
        assert not hung_sleeps(), "the token_command's processes outlived its timeout"
    finally:
        for pid in hung_sleeps():
            os.kill(pid, signal.SIGKILL)


# ---- D. control characters in secrets --------------------------------------------------

def test_control_character_in_a_secret_stops_the_mount_naming_file_line_and_key(
        fresh_sim, daemons, tmp_path):
    """A fuzzer's inline `token = "x \\x03y"` was accepted."""
    config = write_config(tmp_path / "config",
                          f"[hostup]\ntype = hostup\nurl = {fresh_sim.url('hostup')}\n"
                          "token = \"x \x03y\"\n")
    mnt = mountpoint(tmp_path)
    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt)
    assert out.returncode == 1
    assert (f"{config}:4: [hostup] token: the secret holds a control character "
            "(byte 0x03); remove it") in out.stderr, out.stderr
    assert not is_mounted(mnt)
