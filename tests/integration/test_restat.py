"""Re-stats (src/restat.c): what a first walk leaves stale in the kernel is
re-stated in the background, so that a second walk asks nothing, and never
while it would make `fusermount3 -u` say "busy".

The kernel marks a directory's attributes stale after each uncached listing,
and a file's after each READ, on our read-write superblock. Requests are
counted in libfuse's debug log (`-o debug`), which names the process that
caused each one."""

import os
import re
import subprocess
import threading
import time

from conftest import Simulator, hostup_config, is_mounted, wait_for

VPSES = 1500
REQUEST = re.compile(r"unique: \d+, opcode: (\w+) \(\d+\), nodeid: \d+, insize: \d+, pid: (\d+)")


def requests(mnt, start=0):
    """(opcode, pid) of each request in the debug log after byte `start`."""
    with open(mnt.stderr_path) as f:
        f.seek(start)
        return [m.groups() for m in REQUEST.finditer(f.read())]


def log_size(mnt):
    return os.path.getsize(mnt.stderr_path)


def daemon_threads(mnt):
    return {tid for tid in os.listdir(f"/proc/{mnt.pid}/task")}


def walk(path):
    """grep -r over the tree; returns grep's pid."""
    proc = subprocess.Popen(["grep", "-r", ".", path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1), err
    return str(proc.pid)


def test_a_second_walk_asks_no_attributes_once_the_first_walks_stale_ones_are_restated(
        tmp_path, make_mount):
    sim = Simulator(tmp_path, "--vps-count", str(VPSES))
    mnt = make_mount(hostup_config(sim, refresh=3600, detail_limit=0),
                     extra_opts=("startup_timeout=120", "debug"))
    # The debug log reports error replies (ENOENT to a shell's probes).
    mnt.expect_stderr(r"^\s*unique: \d+, error: ")
    try:
        dirs = sum(len(d) for _, d, _ in os.walk(mnt.path))
        walk(mnt.path)   # lists every directory, READs the control files
        # Another process's requests let the re-stats run (restat.c): keep
        # asking about names that do not exist until none is left to do.
        own = daemon_threads(mnt)
        stop = threading.Event()

        def poke():
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    os.stat(os.path.join(mnt.path, f"no-such-entry-{i}"))
                except FileNotFoundError:
                    pass

        poker = threading.Thread(target=poke)
        poker.start()
        try:
            poked = time.monotonic()

            def restats_settled():
                # None for 5 s is settled too, and the count below says why.
                before = sum(1 for op, pid in requests(mnt) if op == "GETATTR" and pid in own)
                time.sleep(1.0)
                after = sum(1 for op, pid in requests(mnt) if op == "GETATTR" and pid in own)
                return after == before and (after > 0 or time.monotonic() - poked > 5)
            wait_for(restats_settled, timeout=120, interval=0, what="the re-stats to end")
        finally:
            stop.set()
            poker.join()
        start = log_size(mnt)
        grep = walk(mnt.path)
        asked = [op for op, pid in requests(mnt, start) if pid == grep]
        getattrs = asked.count("GETATTR")
        # Without re-stats: one per directory and one per control file READ.
        assert getattrs <= dirs // 50, (
            f"the second walk sent {getattrs} GETATTRs for {dirs} directories "
            f"(requests by grep: {len(asked)})")
    finally:
        sim.stop()


def test_an_unmount_just_after_a_walk_is_not_refused_as_busy(tmp_path, make_mount):
    """A re-stat holds the mount busy while it is answered. After a walk
    they wait for another process's requests: an unmount comes first."""
    sim = Simulator(tmp_path, "--vps-count", str(VPSES))
    try:
        for _ in range(3):
            mnt = make_mount(hostup_config(sim, refresh=3600, detail_limit=0),
                             extra_opts=("startup_timeout=120",))
            walk(mnt.path)   # leaves thousands of inodes to re-stat
            time.sleep(0.1)
            out = subprocess.run(["fusermount3", "-u", mnt.path], capture_output=True,
                                 text=True)
            assert out.returncode == 0, f"fusermount3 -u right after a walk: {out.stderr}"
            assert not is_mounted(mnt.path)
    finally:
        sim.stop()
