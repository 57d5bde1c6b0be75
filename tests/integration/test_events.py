"""The change stream: /events (UTC time, path, change, old, new; tab-separated)
and /events.ndjson, from comparing each refresh with the one before (and the
first after a mount with the disk cache), kept in cache_dir, followed by
`tail -f`."""

import json
import re

from conftest import ISO_UTC, Tail, hostup_config, q, sh, wait_for

FIELDS = ["time", "path", "change", "old", "new"]


def events(m):
    out = []
    for line in m.read("events").splitlines():
        values = line.split("\t")
        assert len(values) == len(FIELDS), line
        assert re.fullmatch(ISO_UTC, values[0]), line
        out.append(tuple(values[1:]))
    return out


def test_appearing_disappearing_and_changing_resources_are_events(fresh_sim, make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=300))
    first, second = fresh_sim.vps_ids()[:2]
    old = fresh_sim.get_vps(first)
    gone_name = fresh_sim.get_vps(second)["name"]
    assert events(m) == []  # mounting is no change

    fresh_sim.patch_vps(first, {"name": "renamed-01"})
    fresh_sim.delete_vps(second)
    new_id = fresh_sim.create_vps({"name": "brand-new-01"})["id"]
    m.refresh()

    got = events(m)
    assert got == [(f"vps/hostup/{new_id}", "appeared", "-", "brand-new-01"),
                   (f"vps/hostup/{first}", "name", old["name"], "renamed-01"),
                   (f"vps/hostup/{second}", "disappeared", gone_name, "-")], got
    # The same as JSON lines.
    records = [json.loads(line) for line in m.read("events.ndjson").splitlines()]
    assert [(r["path"], r["change"], r["old"], r["new"]) for r in records] == \
        [(p, c, None if o == "-" else o, None if n == "-" else n) for p, c, o, n in got]
    # A refresh that finds nothing new adds nothing.
    m.refresh()
    assert len(events(m)) == 3


def test_an_action_and_an_accounts_state_are_events(fresh_sim, make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=300))
    vps_id = fresh_sim.vps_with(powerState="running", serviceStatus="active")[0]
    assert sh(f"echo restart > {q(m.vps(vps_id, 'power'))} && "
              f"cat {q(m.vps(vps_id, 'operation', 'wait'))}").returncode == 0
    job = m.read("vps", "hostup", vps_id, "operation", "job_id").strip()

    assert (f"vps/hostup/{vps_id}/power", "action", "restart",
            f"op:completed {job} (see /actions)") in events(m)

    m.expect_stderr(r"refresh failed|401")
    fresh_sim.fault(action="status", status=401, method="GET", path=r"^/api/v2/vps$", times=0)
    assert sh(f"echo 1 > {q(m.p('providers', 'hostup', 'refresh'))}").returncode != 0
    fresh_sim.clear_faults()
    (state,) = [e for e in events(m) if e[1] == "state"]
    assert state[0] == "providers/hostup" and state[2] == "ok"
    assert state[3].startswith("unauthorized (") and "401" in state[3], state


def test_tail_f_sees_a_change(fresh_sim, make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=300))
    vps_id = fresh_sim.vps_ids()[0]
    with Tail(m.p("events"), m.dir) as tail:
        fresh_sim.patch_vps(vps_id, {"name": "tailed-01"})
        m.refresh()
        wait_for(lambda: "\tname\t" in tail.text(), timeout=10, what="the change in tail -f")
        (line,) = tail.text().splitlines()
        assert line.split("\t")[1:3] + line.split("\t")[4:] == [f"vps/hostup/{vps_id}", "name",
                                                               "tailed-01"]


def test_changes_made_while_unmounted_are_listed_after_a_remount(fresh_sim, make_mount,
                                                                 tmp_path):
    cache = tmp_path / "cache"
    first = make_mount(hostup_config(fresh_sim, refresh=300), [f"cache_dir={cache}"])
    vps_id = fresh_sim.vps_ids()[0]
    before = fresh_sim.get_vps(vps_id)["name"]
    first.umount()

    fresh_sim.patch_vps(vps_id, {"name": "offline-rename-01"})
    second = make_mount(hostup_config(fresh_sim, refresh=300), [f"cache_dir={cache}"])

    # The mount returns after its first refresh, compared with the disk cache.
    assert (f"vps/hostup/{vps_id}", "name", before, "offline-rename-01") in events(second)
    assert (cache / "events.log").read_text() == second.read("events")


def test_tail_F_follows_events_across_their_rotation(fresh_sim, make_mount, tmp_path):
    cache = tmp_path / "cache"
    m = make_mount(hostup_config(fresh_sim, refresh=300), [f"cache_dir={cache}",
                                                            "events_max=1024"])
    vps_id = fresh_sim.vps_ids()[0]
    with Tail(m.p("events"), m.dir, by_name=True) as tail:
        # About 100 bytes a change: the log starts over every ten or so.
        for n in range(25):
            fresh_sim.patch_vps(vps_id, {"name": f"rotated-{n:02d}"})
            m.refresh()
            wait_for(lambda: f"\trotated-{n:02d}\n" in tail.text(), timeout=10,
                     what=f"change {n} in tail -F")
        names = [line.split("\t")[4] for line in tail.text().splitlines()]
        assert names == [f"rotated-{n:02d}" for n in range(25)]
        assert "truncated" in tail.said()
    assert (cache / "events.log.1").exists()
    assert len((cache / "events.log").read_text()) <= 1024
