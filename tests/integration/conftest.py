"""Fixtures for integration tests: a simulator of the providers' APIs and a
real infrafs mount driven with shell tools.

As sshfs's tests do: run the daemon with -f, wait until it is mounted (and
fail fast if it died), unmount with `fusermount3 -u`, require a clean exit,
and fail on unexpected warnings or sanitizer reports in its stderr."""

import json
import os
import re
import stat
import subprocess
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
INFRAFS = os.environ.get("INFRAFS_BIN", os.path.join(ROOT, "build", "infrafs"))
SIM = os.environ.get("INFRAFS_SIM", os.path.join(ROOT, "contrib", "infrafs-sim"))
TOKEN = "test-token"

# Lines in the daemon's stderr that fail a test unless it expects them.
SUSPICIOUS = re.compile(r"warning|error|==\d+==|runtime error|critical", re.I)


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


class Simulator:
    """A running contrib/infrafs-sim and its admin API (/_sim/...)."""

    def __init__(self, tmpdir, *extra_args):
        self.ports_file = os.path.join(tmpdir, "ports.json")
        self.log = open(os.path.join(tmpdir, "sim.log"), "w")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", SIM, "--hostup-port", "0", "--token", TOKEN,
             "--ports-file", self.ports_file, "--quiet", "--job-seconds", "0.6",
             *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.ports_file) or self.proc.poll() is not None,
                 what="the simulator's ports file")
        assert self.proc.poll() is None, "simulator exited at start"
        with open(self.ports_file) as f:
            self.ports = json.load(f)

    def url(self, provider="hostup"):
        return f"http://127.0.0.1:{self.ports[provider]}"

    def admin(self, method, path, body=None, provider="hostup"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url(provider) + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
            return json.loads(text) if text else None

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

    def configure(self, **switches):
        return self.admin("POST", "/_sim/config", {"hostup": switches})

    def vps_ids(self):
        return self.admin("GET", "/_sim/hostup/vps")["ids"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Mount:
    """A running `infrafs -f` on a temporary mountpoint."""

    def __init__(self, tmpdir, config_text, extra_opts=(), env=None):
        self.dir = str(tmpdir)
        self.path = os.path.join(self.dir, "mnt")
        os.makedirs(self.path, exist_ok=True)
        self.config = os.path.join(self.dir, "config")
        with open(self.config, "w") as f:
            f.write(config_text)
        os.chmod(self.config, stat.S_IRUSR | stat.S_IWUSR)
        self.stderr_path = os.path.join(self.dir, "infrafs.stderr")
        self.expected = []
        opts = ["-o", f"config={self.config}"]
        for o in extra_opts:
            opts += ["-o", o]
        self.proc = subprocess.Popen(
            [INFRAFS, "-f", *opts, self.path],
            stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "w"),
            env={**os.environ, "G_DEBUG": "fatal-criticals", **(env or {})})
        wait_for(lambda: is_mounted(self.path) or self.proc.poll() is not None,
                 what="the mount")
        if self.proc.poll() is not None:
            raise AssertionError("infrafs exited before mounting:\n" + self.stderr())
        # -f mode prints "mounted at" once the first refresh has finished.
        wait_for(lambda: "mounted at" in self.stderr() or self.proc.poll() is not None,
                 timeout=40, what="the first refresh")

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def expect_stderr(self, pattern):
        """Declare a stderr line this test provokes on purpose."""
        self.expected.append(re.compile(pattern, re.I))

    def unexpected_lines(self):
        return [line for line in self.stderr().splitlines()
                if SUSPICIOUS.search(line)
                and not any(e.search(line) for e in self.expected)]

    def umount(self):
        if is_mounted(self.path):
            subprocess.run(["fusermount3", "-u", self.path], check=True)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            subprocess.run(["fusermount3", "-uz", self.path])
            raise AssertionError("infrafs did not exit after fusermount3 -u")


def hostup_config(sim, **keys):
    lines = ["[hostup]", "type = hostup", f"url = {sim.url('hostup')}", f"token = {TOKEN}"]
    lines += [f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


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

    def make(config_text, extra_opts=(), env=None, subdir=None):
        d = tmp_path / (subdir or f"m{len(mounts)}")
        d.mkdir()
        m = Mount(d, config_text, extra_opts, env)
        mounts.append(m)
        return m

    yield make
    for m in mounts:
        _finish(m)


@pytest.fixture
def mnt(fresh_sim, make_mount):
    """infrafs mounted over the simulator's HostUp account."""
    return make_mount(hostup_config(fresh_sim, refresh=300))
