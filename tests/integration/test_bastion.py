"""A team's bastion: one mount with allow_other, owned and moded with uid=,
gid= and umask=, and control_group= letting one group act. Driven as real
unprivileged users, created by the test (it runs as root)."""

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile

import pytest

from conftest import hostup_config, q, write_config


def run_as(user, cmd):
    return subprocess.run(["runuser", "-u", user, "--", "sh", "-c", cmd],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def team():
    """A group with one member, and a user outside it."""
    tag = secrets.token_hex(3)
    group, member, outsider = f"ifsops{tag}", f"ifsop{tag}", f"ifsro{tag}"
    made = []
    try:
        subprocess.run(["groupadd", group], check=True)
        made.append(("groupdel", group))
        for user, extra in ((member, ["-G", group]), (outsider, [])):
            subprocess.run(["useradd", "-M", "-N", "-s", "/bin/sh", *extra, user], check=True)
            made.append(("userdel", user))
        yield group, member, outsider
    finally:
        for cmd, name in reversed(made):
            subprocess.run([cmd, name])


@pytest.fixture
def shared_dir():
    """A mountpoint every user can reach (pytest's own directories are 0700)."""
    d = tempfile.mkdtemp(prefix="infrafs-bastion.", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def mount_shared(daemons, sim, tmp_path, where, opts):
    config = write_config(tmp_path / "config", hostup_config(sim))
    mnt = os.path.join(where, "mnt")
    os.mkdir(mnt)
    out, _ = daemons.run(["-o", ",".join([f"config={config}", "allow_other", *opts]), mnt],
                         mnt)
    assert out.returncode == 0, out.stderr
    return mnt


def test_control_group_members_act_others_only_read(fresh_sim, daemons, tmp_path, team,
                                                    shared_dir):
    group, member, outsider = team
    mnt = mount_shared(daemons, fresh_sim, tmp_path, shared_dir, [f"control_group={group}"])
    first, second = fresh_sim.vps_with(powerState="stopped")[:2]
    vps = lambda i, *p: os.path.join(mnt, "vps", "hostup", i, *p)  # noqa: E731

    assert subprocess.run(["stat", "-c", "%a %G", vps(first, "power")], capture_output=True,
                          text=True).stdout == f"664 {group}\n"
    for user in (member, outsider):   # both read everything
        out = run_as(user, f"ls {q(vps(first))} >/dev/null && cat {q(vps(first, 'name'))} "
                           f"{q(os.path.join(mnt, 'providers', 'hostup', 'state'))}")
        assert out.returncode == 0, (user, out.stderr)
        assert out.stdout.endswith("ok\n")

    fresh_sim.clear_requests()
    out = run_as(outsider, f"echo start > {q(vps(second, 'power'))}")
    assert out.returncode != 0 and "Permission denied" in out.stderr, out.stderr
    assert fresh_sim.requests("POST") == [], "a refused write reached the API"

    out = run_as(member, f"echo start > {q(vps(first, 'power'))}")
    assert out.returncode == 0, out.stderr
    posts = fresh_sim.requests("POST")
    assert len(posts) == 1 and first in posts[0]["path"], posts
    # last_action says who acted; the outsider's refused write never
    # reached infrafs (the kernel refused it).
    uid = pwd.getpwnam(member).pw_uid
    with open(vps(first, "last_action")) as f:
        line = f.read()
    assert " start ok " in line and line.endswith(f" by {member} (uid {uid})\n"), line
    # So does the action log, which everyone may read.
    out = run_as(outsider, f"cat {q(os.path.join(mnt, 'actions'))}")
    assert out.returncode == 0, out.stderr
    logged = [line.split("\t") for line in out.stdout.splitlines()]
    assert [f[1:5] for f in logged] == [[f"{member}({uid})", f"vps/hostup/{first}/power",
                                         "start", "ok"]], out.stdout


def test_uid_gid_and_umask_set_owner_and_modes(fresh_sim, daemons, tmp_path, team, shared_dir):
    group, member, outsider = team
    mnt = mount_shared(daemons, fresh_sim, tmp_path, shared_dir,
                       [f"uid={member}", f"gid={group}", "umask=027"])
    vps_id = fresh_sim.vps_with(powerState="stopped")[0]
    paths = {p: os.path.join(mnt, "vps", "hostup", vps_id, *p.split("/")[1:])
             for p in ("dir", "dir/name", "dir/power")}

    got = {p: subprocess.run(["stat", "-c", "%a %U %G", path], capture_output=True,
                             text=True).stdout for p, path in paths.items()}
    assert got == {"dir": f"550 {member} {group}\n", "dir/name": f"440 {member} {group}\n",
                   "dir/power": f"640 {member} {group}\n"}
    # The owner acts; the group reads; others may not even look.
    assert run_as(member, f"cat {q(paths['dir/name'])}").returncode == 0
    out = run_as(outsider, f"ls {q(paths['dir'])}")
    assert out.returncode != 0 and "Permission denied" in out.stderr
    fresh_sim.clear_requests()
    out = run_as(member, f"echo start > {q(paths['dir/power'])}")
    assert out.returncode == 0, out.stderr
    assert len(fresh_sim.requests("POST")) == 1


def test_bad_owner_options_fail_before_mounting_and_say_how(daemons, tmp_path, fresh_sim):
    config = write_config(tmp_path / "config", hostup_config(fresh_sim))
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    for opt, says in (("uid=no-such-user-xyz", "no such user"),
                      ("gid=no-such-group-xyz", "no such group"),
                      ("control_group=no-such-group-xyz", "no such group"),
                      ("umask=0999", "octal")):
        out, _ = daemons.run(["-o", f"config={config},{opt}", mnt], mnt)
        assert out.returncode != 0 and says in out.stderr and opt.split("=")[0] in out.stderr, \
            (opt, out.stderr)
