"""contrib/demo.sh: the README's first command. Each demo has its own
simulator on free ports and its state kept per mountpoint, so that demos
at two mountpoints run side by side and a second run at one mountpoint
never stops the other's simulator."""

import os
import signal
import subprocess

import pytest

from conftest import ROOT, is_mounted, wait_for


def demo(mnt, runtime):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime))
    return subprocess.run(["sh", os.path.join(ROOT, "contrib", "demo.sh"), str(mnt)],
                          capture_output=True, text=True, timeout=600, env=env)


def state_of(mnt, runtime):
    return runtime / "infrafs-demo" / str(mnt).replace("/", "%")


def sim_pid(mnt, runtime):
    return int((state_of(mnt, runtime) / "sim.pid").read_text())


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def refresh_works(mnt):
    """A forced refresh succeeds: the demo's simulator answers."""
    with open(os.path.join(mnt, "providers", "hostup", "refresh"), "w") as f:
        f.write("1\n")
    with open(os.path.join(mnt, "providers", "hostup", "state")) as f:
        return f.read() == "ok\n"


@pytest.fixture
def demos(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir()
    mounts = []
    yield runtime, mounts
    for mnt in mounts:
        if is_mounted(str(mnt)):
            subprocess.run(["fusermount3", "-u", str(mnt)])
        pid_file = state_of(mnt, runtime) / "sim.pid"
        if pid_file.exists() and alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


def test_two_demos_run_side_by_side_and_a_second_run_stops_only_its_own_simulator(
        tmp_path, demos):
    runtime, mounts = demos
    one, two = tmp_path / "one", tmp_path / "two"
    mounts += [one, two]

    for mnt in (one, two):
        out = demo(mnt, runtime)
        assert out.returncode == 0, out.stderr
        assert is_mounted(str(mnt))
        assert len(os.listdir(mnt / "vps" / "hostup")) == 5
    first_one, first_two = sim_pid(one, runtime), sim_pid(two, runtime)
    assert first_one != first_two
    assert (state_of(one, runtime) / "ports.json").read_text() != \
        (state_of(two, runtime) / "ports.json").read_text()

    out = demo(one, runtime)   # again at the first mountpoint

    assert out.returncode == 0, out.stderr
    wait_for(lambda: not alive(first_one), what="the first demo's old simulator to stop")
    assert alive(sim_pid(one, runtime)) and sim_pid(one, runtime) != first_one
    assert alive(first_two) and sim_pid(two, runtime) == first_two
    assert refresh_works(str(one)) and refresh_works(str(two))
    assert f"kill $(cat '{state_of(one, runtime)}/sim.pid')" in out.stdout
