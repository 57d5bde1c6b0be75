"""The action log: /actions at the root of the tree, one tab-separated line
per control write (accepted or refused) and per operation's end, kept in
cache_dir/actions.log across remounts, rotated by size, sent to the log at
notice level, followed by `tail -f` and `tail -F`, and free of secrets."""

import os
import pwd
import re
import stat

from conftest import ISO_UTC, TOKEN, Tail, hostup_config, q, sh, wait_for

ME = f"{pwd.getpwuid(os.getuid()).pw_name}({os.getuid()})"
FIELDS = ["time", "writer", "path", "command", "result", "http", "message", "operation"]


def records(text):
    """/actions as dicts of its fields."""
    out = []
    for line in text.splitlines():
        values = line.split("\t")
        assert len(values) == len(FIELDS), f"not {len(FIELDS)} fields: {line!r}"
        out.append(dict(zip(FIELDS, values)))
    return out


def running(sim, n=0):
    return sim.vps_with(powerState="running", serviceStatus="active")[n]


def test_every_write_is_logged_with_its_outcome_and_its_operations_end(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    power = mnt.vps(vps_id, "power")
    assert mnt.read("actions") == ""
    mnt.expect_stderr(r"power: 'explode' failed")

    assert sh(f"echo restart > {q(power)} && cat {q(mnt.vps(vps_id, 'operation', 'wait'))}"
              ).returncode == 0
    assert sh(f"echo explode > {q(power)}").returncode != 0
    mnt.refresh()

    got = records(mnt.read("actions"))
    job = mnt.read("vps", "hostup", vps_id, "operation", "job_id").strip()
    path = f"vps/hostup/{vps_id}/power"
    assert [(r["path"], r["command"], r["result"], r["http"], r["operation"]) for r in got] == [
        (path, "restart", "ok", "202", job),
        (path, "restart", "op:completed", "-", job),
        (path, "explode", "failed", "-", "-"),
        ("providers/hostup/refresh", "1", "ok", "-", "-"),
    ]
    assert all(re.fullmatch(ISO_UTC, r["time"]) and r["writer"] == ME for r in got)
    assert got[2]["message"].startswith("unknown command 'explode'; power accepts: ")
    # The same lines, in words, at notice level.
    err = mnt.stderr()
    assert re.search(rf"{re.escape(path)}: 'restart' ok 202: \S+, operation {job} by ", err)
    assert f"{path}: 'restart' op:completed, operation {job} by " in err
    # Exact size: cat and a read at the old end agree with stat.
    assert os.stat(mnt.p("actions")).st_size == len(mnt.read("actions").encode())


def test_a_failed_action_is_logged_with_the_providers_answer(mnt, fresh_sim):
    vps_id = running(fresh_sim)
    mnt.expect_stderr(r"power: 'restart' failed")
    fresh_sim.fault(action="status", status=409, method="POST", path=r"/actions/restart$",
                    times=0)

    assert sh(f"echo restart > {q(mnt.vps(vps_id, 'power'))}").returncode != 0

    (r,) = records(mnt.read("actions"))
    assert (r["result"], r["http"]) == ("failed", "409"), r
    # The provider's code and message, as last_action has them.
    assert r["message"] != "-" and r["message"] in mnt.read("vps", "hostup", vps_id,
                                                          "last_action")


def test_the_log_is_kept_in_cache_dir_and_shown_after_a_remount(fresh_sim, make_mount,
                                                                 tmp_path):
    cache = tmp_path / "cache"
    first = make_mount(hostup_config(fresh_sim), [f"cache_dir={cache}"])
    vps_id = running(fresh_sim)
    assert sh(f"echo restart > {q(first.vps(vps_id, 'power'))}").returncode == 0
    before = wait_for(lambda: "op:" in first.read("actions") and first.read("actions"),
                      what="the operation's end in /actions")
    first.umount()

    kept = cache / "actions.log"
    assert kept.read_text() == before
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    second = make_mount(hostup_config(fresh_sim), [f"cache_dir={cache}"])
    assert second.read("actions") == before
    second.refresh()
    assert second.read("actions").startswith(before)
    assert len(records(second.read("actions"))) == len(records(before)) + 1


def test_tail_f_prints_actions_as_they_happen(mnt, fresh_sim):
    with Tail(mnt.p("actions"), mnt.dir) as tail:
        for n in range(3):
            mnt.refresh()
            wait_for(lambda: len(tail.text().splitlines()) == n + 1, timeout=10,
                     what=f"line {n + 1} in tail -f")
        assert tail.text() == mnt.read("actions")


def test_tail_F_follows_the_log_across_its_rotation(fresh_sim, make_mount, tmp_path):
    cache = tmp_path / "cache"
    m = make_mount(hostup_config(fresh_sim), [f"cache_dir={cache}", "actions_max=1024"])
    m.expect_stderr(r"power: 'word\d+' failed")
    power = m.vps(running(fresh_sim), "power")
    with Tail(m.p("actions"), m.dir, by_name=True) as tail:
        # Refused commands: about 200 bytes each, so the log starts over
        # every few lines. At a pace tail can see (as people act).
        for n in range(16):
            assert sh(f"echo word{n} > {q(power)}").returncode != 0
            wait_for(lambda: f"\tword{n}\t" in tail.text(), timeout=10,
                     what=f"word{n} in tail -F")
        lines = tail.text().splitlines()
        assert [r["command"] for r in records("\n".join(lines))] == [f"word{n}"
                                                                      for n in range(16)]
        assert "truncated" in tail.said()
    # On disk: this generation within the bound, the one before as .1.
    current = (cache / "actions.log").read_text()
    previous = (cache / "actions.log.1").read_text()
    assert current == m.read("actions") and len(current) <= 1024
    on_disk = (previous + current).splitlines()
    assert len(on_disk) < 16 and lines[-len(on_disk):] == on_disk


def test_a_bad_actions_max_or_events_max_is_refused_before_mounting(fresh_sim, daemons, tmp_path):
    config = tmp_path / "config"
    config.write_text(hostup_config(fresh_sim))
    config.chmod(0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fresh_sim.clear_requests()
    for option in ("actions_max", "events_max"):
        for bad in ("12", "lots", "-1M", "5G"):
            out, _ = daemons.run(["-o", f"config={config},{option}={bad}", str(mnt)], str(mnt))
            assert out.returncode != 0
            assert f"{option}={bad}: give the log's size in bytes" in out.stderr
            assert not os.path.ismount(mnt)
    assert fresh_sim.requests() == []


def test_a_secret_written_to_a_control_file_is_never_logged(mnt, fresh_sim):
    mnt.expect_stderr(r"power: '\[redacted\]' failed")

    assert sh(f"echo {TOKEN} > {q(mnt.vps(running(fresh_sim), 'power'))}").returncode != 0

    text = mnt.read("actions")
    assert "[redacted]" in text and TOKEN not in text
    assert TOKEN not in mnt.stderr()
    kept = os.path.join(mnt.dir, "cache", "infrafs", "actions.log")
    assert TOKEN not in open(kept).read()
