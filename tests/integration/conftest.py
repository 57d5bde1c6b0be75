"""Fixtures for integration tests: a simulator of the providers' APIs and a
real infrafs mount driven with shell tools.

As sshfs's tests do: run the daemon with -f, wait until it is mounted (and
fail fast if it died), unmount with `fusermount3 -u`, require a clean exit,
and fail on unexpected warnings or sanitizer reports in its stderr.

Tests import the helpers below with `from conftest import ...`."""

import datetime
import json
import os
import pwd
import re
import signal
import ssl
import stat
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
INFRAFS = os.environ.get("INFRAFS_BIN", os.path.join(ROOT, "build", "infrafs"))
SIM = os.environ.get("INFRAFS_SIM", os.path.join(ROOT, "contrib", "infrafs-sim"))
TOKEN = "test-token"

# Lines in the daemon's stderr that fail a test unless it expects them.
SUSPICIOUS = re.compile(r"warning|error|==\d+==|runtime error|critical", re.I)

# What the root holds besides the kind directories.
ROOT_ENTRIES = ["README", "actions", "by-ip", "by-name", "events", "events.ndjson", "inventory",
                "inventory.json", "providers"]

# "2025-01-31T12:34:56Z": what last_refresh, next_refresh and last_action use.
ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def utc(text):
    """An ISO_UTC text as an aware datetime."""
    return datetime.datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


# How last_action ends for a write by the user running the tests (a regex).
BY_ME = re.escape(f" by {pwd.getpwuid(os.getuid()).pw_name} (uid {os.getuid()})")


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def is_mounted(path):
    with open("/proc/mounts") as mounts:
        return any(line.split()[1] == path for line in mounts)


def mount_entry(path):
    """The /proc/mounts fields of the (topmost) mount on `path`, or None."""
    found = None
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[1] == path:
                found = fields
    return found


def sh(cmd, timeout=30, **kw):
    """Run a shell command line (dash), capturing text output."""
    return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                          timeout=timeout, **kw)


def bash(cmd, timeout=30, **kw):
    """bash rather than dash where the test reads the shell's error text:
    dash says "I/O error" for every failed write, bash prints strerror."""
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                          timeout=timeout, **kw)


class Tail:
    """`tail -f` (or `-F`, by name) of a file of the tree, polling every
    0.1 s from its first line, as a context manager; `text()` is what it
    printed so far, `said()` its standard error."""

    def __init__(self, path, out_dir, by_name=False):
        self.out = os.path.join(out_dir, "tail.out")
        self.err = os.path.join(out_dir, "tail.err")
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(["tail", "-F" if by_name else "-f", "-s", "0.1",
                                          "-n", "+1", path], stdout=out, stderr=err)

    def text(self):
        with open(self.out) as f:
            return f.read()

    def said(self):
        with open(self.err) as f:
            return f.read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def q(path):
    """Quote a path for a shell command line."""
    return "'" + path.replace("'", "'\\''") + "'"


def write_errno(path, data):
    """Open `path` for writing with O_TRUNC (as `>` does) and write `data` in
    one write(); returns 0 or the errno of whichever call failed."""
    if isinstance(data, str):
        data = data.encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except OSError as e:
        return e.errno
    try:
        n = os.write(fd, data)
        assert n == len(data), f"short write: {n} of {len(data)}"
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


def read(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def snapshot(root):
    """{relative path: content or None for directories} of a whole subtree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            out[os.path.relpath(os.path.join(dirpath, f), root)] = read(os.path.join(dirpath, f))
    return out


def resource_entries(directory, skip_top):
    """As snapshot(directory), leaving out the top-level entries named in
    `skip_top` (what infrafs adds to a resource beside the API's fields)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        rel = os.path.relpath(dirpath, directory)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in skip_top]
            filenames = [f for f in filenames if f not in skip_top]
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel, d))] = None
        for f in filenames:
            out[os.path.normpath(os.path.join(rel, f))] = read(os.path.join(dirpath, f))
    return out


def timed(fn, *args, **kw):
    """(result, seconds) of fn(*args, **kw)."""
    start = time.monotonic()
    result = fn(*args, **kw)
    return result, time.monotonic() - start


class Simulator:
    """A running contrib/infrafs-sim and its admin API (/_sim/...)."""

    def __init__(self, tmpdir, *extra_args, token=TOKEN, tls=None):
        """`tls`: (certificate, key) files to serve HTTPS with."""
        self.ports_file = os.path.join(tmpdir, "ports.json")
        self.log = open(os.path.join(tmpdir, "sim.log"), "w")
        self.token = token
        self.scheme = "https" if tls else "http"
        self.context = None
        if tls:
            # The test's own simulator, whatever certificate it was given
            # (an expired one, say): the admin API does not check it.
            self.context = ssl.create_default_context()
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        tls_args = ["--tls-cert", tls[0], "--tls-key", tls[1]] if tls else []
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", SIM, "--free-ports", "--token", token,
             "--ports-file", self.ports_file, "--quiet", "--job-seconds", "0.6",
             *tls_args, *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.ports_file) or self.proc.poll() is not None,
                 what="the simulator's ports file")
        assert self.proc.poll() is None, "simulator exited at start"
        with open(self.ports_file) as f:
            self.ports = json.load(f)

    def url(self, provider="hostup"):
        return f"{self.scheme}://127.0.0.1:{self.ports[provider]}"

    def admin(self, method, path, body=None, provider="hostup"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url(provider) + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=self.context) as resp:
            text = resp.read().decode()
            return json.loads(text) if text else None

    def api_get(self, path, provider="hostup"):
        """GET the provider API itself (as infrafs would), bypassing infrafs.
        Note that it shows up in the request log."""
        req = urllib.request.Request(self.url(provider) + path,
                                     headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10, context=self.context) as resp:
            return json.loads(resp.read().decode())

    def reset(self):
        self.admin("POST", "/_sim/reset", {})

    def requests(self, method=None, path_re=None):
        log = self.admin("GET", "/_sim/requests")
        return [r for r in log
                if (method is None or r["method"] == method)
                and (path_re is None or re.search(path_re, r["path"]))]

    def clear_requests(self):
        self.admin("DELETE", "/_sim/requests")

    def fault(self, **rule):
        return self.admin("POST", "/_sim/faults", rule)

    def clear_faults(self):
        self.admin("DELETE", "/_sim/faults")

    def configure(self, provider="hostup", **switches):
        return self.admin("POST", "/_sim/config", {provider: switches})

    def vps_ids(self):
        return self.admin("GET", "/_sim/hostup/vps")["ids"]

    def get_vps(self, vps_id):
        return self.admin("GET", "/_sim/hostup/vps/" + urllib.parse.quote(vps_id, safe=""))

    def patch_vps(self, vps_id, fields):
        return self.admin("PATCH", "/_sim/hostup/vps/" + urllib.parse.quote(vps_id, safe=""),
                          fields)

    def create_vps(self, fields=None):
        return self.admin("POST", "/_sim/hostup/vps", fields or {})

    def delete_vps(self, vps_id):
        return self.admin("DELETE", "/_sim/hostup/vps/" + urllib.parse.quote(vps_id, safe=""))

    def jobs(self):
        return self.admin("GET", "/_sim/hostup/jobs")

    def vps_with(self, **want):
        """Ids of the VPSes whose stored fields equal `want` (list order)."""
        return [i for i in self.vps_ids()
                if all(self.get_vps(i).get(k) == v for k, v in want.items())]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test left it stopped
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Mount:
    """A running `infrafs -f` on a temporary mountpoint.

    `source`: pass this SOURCE argument before the mountpoint; with
    `config_opt=False` no `-o config=` is given (SOURCE or the default names
    the configuration)."""

    def __init__(self, tmpdir, config_text, extra_opts=(), env=None, source=None,
                 config_opt=True):
        self.dir = str(tmpdir)
        self.path = os.path.join(self.dir, "mnt")
        os.makedirs(self.path, exist_ok=True)
        self.config = os.path.join(self.dir, "config")
        if config_text is not None:
            with open(self.config, "w") as f:
                f.write(config_text)
            os.chmod(self.config, stat.S_IRUSR | stat.S_IWUSR)
        self.stderr_path = os.path.join(self.dir, "infrafs.stderr")
        self.expected = []
        opts = ["-o", f"config={self.config}"] if config_opt else []
        for o in extra_opts:
            opts += ["-o", o]
        args = [INFRAFS, "-f", *opts] + ([source] if source else []) + [self.path]
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ, "G_DEBUG": "fatal-criticals",
                     # Each mount keeps its disk cache to itself unless the
                     # test says otherwise (cache_dir= or its own env).
                     "XDG_CACHE_HOME": os.path.join(self.dir, "cache"), **(env or {})})
        wait_for(lambda: is_mounted(self.path) or self.proc.poll() is not None,
                 what="the mount")
        if self.proc.poll() is not None:
            raise AssertionError("infrafs exited before mounting:\n" + self.stderr())
        # -f mode prints "mounted at" once the first refresh has finished.
        wait_for(lambda: "mounted at" in self.stderr() or self.proc.poll() is not None,
                 timeout=40, what="the first refresh")

    @property
    def pid(self):
        return self.proc.pid

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def read(self, *parts):
        return read(self.p(*parts))

    def vps(self, vps_id, *parts, account="hostup"):
        return self.p("vps", account, vps_id, *parts)

    def provider(self, name, account="hostup"):
        """Content of providers/<account>/<name>."""
        return self.read("providers", account, name)

    def refresh(self, account="hostup"):
        """`echo 1 > providers/<account>/refresh`; asserts it succeeded."""
        out = sh(f"echo 1 > {q(self.p('providers', account, 'refresh'))}")
        assert out.returncode == 0, f"refresh failed: {out.stderr}"

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def expect_stderr(self, pattern):
        """Declare a stderr line this test provokes on purpose."""
        self.expected.append(re.compile(pattern, re.I))

    def unexpected_lines(self):
        # Paths under the test's directory are named after the test: its
        # words ("error", "warning") are not the daemon's.
        return [line for line in self.stderr().splitlines()
                if SUSPICIOUS.search(line.replace(self.dir, "<dir>"))
                and not any(e.search(line) for e in self.expected)]

    def umount(self):
        if is_mounted(self.path):
            unmount_retrying_busy(self.path)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            subprocess.run(["fusermount3", "-uz", self.path])
            raise AssertionError("infrafs did not exit after fusermount3 -u")


def unmount_retrying_busy(path, attempts=20):
    """`fusermount3 -u` at the end of a test, tried again while it says
    busy. A re-stat of infrafs's own (src/restat.c) that is in flight when
    the test's last read ends can hold the mount busy for a few
    milliseconds: seen once in a CI run, on a mount refreshing every
    second. test_restat.py asserts the unmount right after a walk without
    this."""
    for attempt in range(attempts):
        out = subprocess.run(["fusermount3", "-u", path], capture_output=True, text=True)
        if out.returncode == 0:
            if attempt:
                print(f"fusermount3 -u {path}: busy {attempt} time(s) first")
            return
        if "busy" not in out.stderr or attempt == attempts - 1:
            raise subprocess.CalledProcessError(out.returncode, out.args, out.stdout,
                                                out.stderr)
        time.sleep(0.1)


def account_config(sim, provider, section=None, token=TOKEN, **keys):
    """One account section of type `provider` pointing at the simulator;
    `keys` are further config keys (user=..., vps=..., refresh=...)."""
    lines = [f"[{section or provider}]", f"type = {provider}",
             f"url = {sim.url(provider)}", f"token = {token}"]
    lines += [f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def hostup_config(sim, section="hostup", token=TOKEN, **keys):
    return account_config(sim, "hostup", section, token, **keys)


def write_config(path, text, mode=0o600):
    """Write a config file (str or bytes) with `mode`; returns its path."""
    data = text.encode() if isinstance(text, str) else text
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return str(path)


def mountpoint(tmp_path, name="mnt"):
    path = tmp_path / name
    path.mkdir()
    return str(path)


def processes():
    """(pid, argv as a list of bytes) of every live process (no zombies)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv != [b""] and not _is_zombie(int(entry)):
            yield int(entry), argv


def infrafs_pids(arg=None):
    """Pids of infrafs processes (whose argv holds `arg`, when given)."""
    return {pid for pid, argv in processes()
            if os.path.basename(argv[0]).endswith(b"infrafs")
            and (arg is None or arg.encode() in argv)}


class Daemons:
    """`infrafs` run without -f (as users and fstab do): the command returns
    once mounted and leaves a daemon, cleaned up at the end of the test."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.mountpoints = []
        self.pids = set()

    def run(self, args, mountpoint, env=None, timeout=60, cwd=None, program=INFRAFS):
        """Run `infrafs ARGS` (or `program`, e.g. a mount.infrafs link), where
        ARGS holds `mountpoint` as given; `env` is the whole environment
        (default: ours). Returns (CompletedProcess, seconds it took)."""
        self.mountpoints.append(os.path.abspath(os.path.join(cwd or "", mountpoint)))
        # The disk cache stays in this test's directory unless the test's
        # own environment names one.
        given = env
        env = dict(os.environ if given is None else given)
        if given is None or "XDG_CACHE_HOME" not in given:
            env["XDG_CACHE_HOME"] = str(self.tmp / "cache")
        before = infrafs_pids()
        start = time.monotonic()
        try:
            out = subprocess.run([program, *args], capture_output=True, text=True,
                                 timeout=timeout, cwd=cwd, env=env)
        finally:
            # The daemon this command left behind (ours, so ours to stop).
            self.pids |= infrafs_pids(mountpoint) - before
        return out, time.monotonic() - start

    def alive(self):
        return [p for p in self.pids if not _is_zombie(p)]

    def cleanup(self):
        for mp in self.mountpoints:
            while is_mounted(mp):
                if subprocess.run(["fusermount3", "-u", mp]).returncode != 0:
                    subprocess.run(["fusermount3", "-uz", mp])
                    break
        try:
            wait_for(lambda: not self.alive(), timeout=30,
                     what="the infrafs daemons to exit after unmount")
        finally:
            for p in self.alive():
                os.kill(p, signal.SIGKILL)


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    s = Simulator(str(tmp_path_factory.mktemp("sim")))
    yield s
    s.stop()


@pytest.fixture
def fresh_sim(sim):
    sim.reset()
    sim.configure(job_seconds=0.6)
    yield sim
    sim.clear_faults()


@pytest.fixture
def private_sim(tmp_path):
    """A simulator of this test's own, for tests that stop or kill it."""
    s = Simulator(str(tmp_path))
    yield s
    s.stop()


@pytest.fixture
def make_sim(tmp_path):
    """Simulators of this test's own, started with extra arguments
    (make_sim("--vps-count", "300")) and stopped after the test. Ask for it
    before make_mount, so that the mounts end first."""
    sims = []

    def make(*extra_args, tls=None):
        d = tmp_path / f"sim{len(sims)}"
        d.mkdir()
        sims.append(Simulator(str(d), *extra_args, tls=tls))
        return sims[-1]

    yield make
    for s in sims:
        s.stop()


def _finish(mnt):
    try:
        rc = mnt.umount()
    finally:
        if is_mounted(mnt.path):
            subprocess.run(["fusermount3", "-uz", mnt.path])
    assert rc == 0, f"infrafs exited with {rc}:\n{mnt.stderr()}"
    bad = mnt.unexpected_lines()
    assert not bad, "unexpected lines in infrafs's stderr:\n" + "\n".join(bad)


@pytest.fixture
def make_mount(tmp_path):
    mounts = []

    def make(config_text, extra_opts=(), env=None, subdir=None, **kw):
        d = tmp_path / (subdir or f"m{len(mounts)}")
        d.mkdir()
        m = Mount(d, config_text, extra_opts, env, **kw)
        mounts.append(m)
        return m

    yield make
    failures = []
    for m in mounts:
        try:
            _finish(m)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)


@pytest.fixture
def mnt(fresh_sim, make_mount):
    """infrafs mounted over the simulator's HostUp account."""
    return make_mount(hostup_config(fresh_sim, refresh=300))


@pytest.fixture
def daemons(tmp_path):
    d = Daemons(tmp_path)
    yield d
    d.cleanup()



def memory_kib(pid):
    """(VmRSS, VmHWM) of process `pid` in KiB: its resident memory now and
    at its peak (since it started or since reset_peak)."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return tuple(int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM"))


def reset_peak(pid):
    """Make VmHWM start again from the current RSS (proc(5) clear_refs)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
