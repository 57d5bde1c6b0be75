"""systemd: the units in contrib/systemd/ pass `systemd-analyze verify`,
and `infrafs -f` tells a NOTIFY_SOCKET it is ready only once the tree is
populated, and that it is stopping when unmounted."""

import glob
import os
import socket
import subprocess
import time

import pytest

from conftest import INFRAFS, ROOT, hostup_config, mountpoint, write_config

UNITS = sorted(glob.glob(os.path.join(ROOT, "contrib", "systemd", "*.*")))


def test_every_shipped_unit_passes_systemd_analyze_verify(tmp_path):
    if not os.access("/usr/bin/systemd-analyze", os.X_OK):
        pytest.skip("systemd-analyze is not installed")
    assert {os.path.basename(u) for u in UNITS} >= {
        "infrafs.service", "infrafs-user.service", "mnt-infra.mount", "mnt-infra.automount"}
    copies = []
    for unit in UNITS:   # the binary as built here, not yet installed
        copy = tmp_path / os.path.basename(unit)
        with open(unit) as f:
            copy.write_text(f.read().replace("/usr/bin/infrafs", INFRAFS))
        copies.append(str(copy))
    # --man=no: the man page is not installed from a build tree.
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", *copies],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr
    # A mount unit must be named after its Where=.
    name = subprocess.run(["systemd-escape", "-p", "--suffix=mount", "/mnt/infra"],
                          capture_output=True, text=True).stdout.strip()
    assert name == "mnt-infra.mount"


def messages(sock, until, want):
    """Datagrams from `sock` until one holds `want` or time runs out:
    [(seconds since `until`'s start, text)]."""
    got = []
    start, deadline = until
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096).decode()
        except socket.timeout:
            break
        got.append((time.monotonic() - start, data))
        if want in data.split("\n"):
            break
    return got


def test_ready_comes_once_the_tree_is_populated_and_stopping_at_unmount(fresh_sim, tmp_path):
    config = write_config(tmp_path / "config", hostup_config(fresh_sim))
    mnt = mountpoint(tmp_path)
    # The first list takes a second: READY must wait for it.
    fresh_sim.fault(action="delay", delay_ms=1000, method="GET", path=r"^/api/v2/vps$",
                    times=1)
    sock_path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, XDG_CACHE_HOME=str(tmp_path / "cache"))
    start = time.monotonic()
    proc = subprocess.Popen([INFRAFS, "-f", "-o", f"config={config}", mnt], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        got = messages(sock, (start, start + 30), "READY=1")
        vps = sorted(os.listdir(os.path.join(mnt, "vps", "hostup")))   # right at READY

        assert got and "READY=1" in got[-1][1].split("\n"), got
        at, text = got[-1]
        assert at >= 1.0, f"READY after {at:.2f} s, before the delayed list"
        assert vps == sorted(fresh_sim.vps_ids())
        assert f"STATUS=mounted at {mnt} (" in text and "hostup" in text, text
        assert "READY=1" not in "".join(t for _, t in got[:-1])

        subprocess.run(["fusermount3", "-u", mnt], check=True)
        later = time.monotonic()
        got = messages(sock, (later, later + 30), "STOPPING=1")
        assert got and "STOPPING=1" in got[-1][1].split("\n"), got
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            subprocess.run(["fusermount3", "-u", "-z", mnt])
            proc.kill()
            proc.wait()
        sock.close()
