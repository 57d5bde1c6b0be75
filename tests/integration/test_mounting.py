"""doc/SEMANTICS.md §1, Mounting: the command line, the config file's name, daemon
start-up and its report, fstab options, /proc/mounts, --help, --version,
SIGHUP, and accounts that fail without breaking the others."""

import json
import os
import re
import signal
import subprocess

import pytest

from conftest import (INFRAFS, TOKEN, hostup_config, is_mounted, mount_entry, mountpoint,
                      read, sh, q, wait_for, write_config)


def test_without_f_returns_only_once_mounted_and_refreshed_and_prints_where(
        fresh_sim, daemons, tmp_path):
    config = write_config(tmp_path / "config", hostup_config(fresh_sim))
    mnt = mountpoint(tmp_path)
    # A slow API: the command must wait for the first refresh to finish.
    fresh_sim.fault(action="delay", delay_ms=1000, method="GET", path=r"^/api/v2/vps$")

    out, took = daemons.run(["-o", f"config={config}", mnt], mnt)

    assert out.returncode == 0, out.stderr
    assert took >= 1.0, f"returned after {took:.2f}s, before the first refresh ended"
    assert f"mounted at {mnt}" in out.stdout
    # Mounted and refreshed the moment it returned: no polling here.
    assert is_mounted(mnt)
    assert read(os.path.join(mnt, "providers", "hostup", "state")) == "ok\n"
    assert sorted(os.listdir(os.path.join(mnt, "vps", "hostup"))) == sorted(fresh_sim.vps_ids())


def test_without_f_the_wait_for_the_first_refresh_is_bounded_and_one_hung_account_blocks_no_other(
        fresh_sim, private_sim, daemons, tmp_path):
    """`startup_timeout=` is the bound (30 s by default, see --help)."""
    config = write_config(tmp_path / "config",
                          hostup_config(fresh_sim, section="good") +
                          hostup_config(private_sim, section="hung"))
    mnt = mountpoint(tmp_path)
    os.kill(private_sim.proc.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        out, took = daemons.run(["-o", f"config={config},startup_timeout=1", mnt], mnt)
        assert out.returncode == 0, out.stderr
        assert took < 5, f"the command waited {took:.1f}s for a hung API"
        assert f"mounted at {mnt}" in out.stdout
        assert is_mounted(mnt)
        # The working account is complete; the hung one exists and says so.
        assert sorted(os.listdir(os.path.join(mnt, "vps", "good"))) == \
            sorted(fresh_sim.vps_ids())
        assert read(os.path.join(mnt, "providers", "good", "state")) == "ok\n"
        assert os.listdir(os.path.join(mnt, "vps", "hung")) == []
        assert read(os.path.join(mnt, "providers", "hung", "state")) != "ok\n"
        assert read(os.path.join(mnt, "providers", "hung", "last_error")).strip()
    finally:
        os.kill(private_sim.proc.pid, signal.SIGCONT)


def test_bad_config_fails_with_nonzero_exit_and_a_message_naming_the_file_key_and_line(
        fresh_sim, daemons, tmp_path):
    config = write_config(tmp_path / "config",
                          hostup_config(fresh_sim) + "colour = red\n")
    mnt = mountpoint(tmp_path)

    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt)

    assert out.returncode != 0
    assert config in out.stderr
    assert "colour" in out.stderr and "hostup" in out.stderr
    assert re.search(r"\b5\b", out.stderr), "the message does not give the line (5)"
    assert not is_mounted(mnt)


def test_missing_config_file_fails_with_nonzero_exit_naming_the_file(daemons, tmp_path):
    mnt = mountpoint(tmp_path)
    missing = str(tmp_path / "no-such-config")

    out, _ = daemons.run(["-o", f"config={missing}", mnt], mnt)

    assert out.returncode != 0
    assert missing in out.stderr
    assert not is_mounted(mnt)


def test_missing_mountpoint_fails_with_nonzero_exit_and_says_why(fresh_sim, daemons, tmp_path):
    config = write_config(tmp_path / "config", hostup_config(fresh_sim))
    missing = str(tmp_path / "no-such-dir")

    out, _ = daemons.run(["-o", f"config={config}", missing], missing)

    assert out.returncode != 0
    assert "no-such-dir" in out.stderr
    assert not os.path.exists(missing)


def test_busy_mountpoint_fails_with_nonzero_exit_and_says_why(mnt, daemons):
    # `mnt` is already an infrafs mount: a second one must be refused.
    out, _ = daemons.run(["-o", f"config={mnt.config}", mnt.path], mnt.path)

    stacked = sum(1 for line in open("/proc/mounts") if line.split()[1] == mnt.path)
    assert out.returncode != 0, f"mounted anyway ({stacked} mounts on {mnt.path})"
    assert mnt.path in out.stderr
    assert stacked == 1


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_config_with_inline_token_readable_by_group_or_others_is_refused_with_chmod_600(
        fresh_sim, daemons, tmp_path, mode):
    config = write_config(tmp_path / "config", hostup_config(fresh_sim), mode=mode)
    mnt = mountpoint(tmp_path)

    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt)

    assert out.returncode != 0
    assert config in out.stderr
    assert "chmod 600" in out.stderr
    assert TOKEN not in out.stderr + out.stdout
    assert not is_mounted(mnt)


def test_token_file_readable_by_group_or_others_is_refused_with_chmod_600(
        fresh_sim, daemons, tmp_path):
    token_file = write_config(tmp_path / "token", TOKEN + "\n", mode=0o644)
    config = write_config(tmp_path / "config",
                          f"[hostup]\ntype = hostup\nurl = {fresh_sim.url()}\n"
                          f"token_file = {token_file}\n", mode=0o644)
    mnt = mountpoint(tmp_path)

    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt)

    assert out.returncode != 0
    assert token_file in out.stderr
    assert "chmod 600" in out.stderr
    assert TOKEN not in out.stderr + out.stdout
    assert not is_mounted(mnt)


def test_source_argument_names_the_config_file(fresh_sim, make_mount, tmp_path):
    config = write_config(tmp_path / "elsewhere.conf",
                          hostup_config(fresh_sim, section="fromsource"))

    m = make_mount(None, source=config, config_opt=False)

    assert os.listdir(m.p("providers")) == ["fromsource"]
    assert sorted(os.listdir(m.p("vps", "fromsource"))) == sorted(fresh_sim.vps_ids())


def test_source_infrafs_and_no_source_mean_the_default_config(fresh_sim, make_mount, tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "infrafs").mkdir(parents=True)
    write_config(xdg / "infrafs" / "config", hostup_config(fresh_sim, section="default"))
    env = {"XDG_CONFIG_HOME": str(xdg)}

    named = make_mount(None, env=env, source="infrafs", config_opt=False)
    bare = make_mount(None, env=env, config_opt=False)

    for m in (named, bare):
        assert os.listdir(m.p("providers")) == ["default"]
        assert m.provider("state", account="default") == "ok\n"


def test_mount_needs_no_home_and_takes_relative_paths(fresh_sim, daemons, tmp_path):
    """Boot mounts have no HOME, and the daemon runs from /."""
    write_config(tmp_path / "token", TOKEN + "\n")
    write_config(tmp_path / "config",
                 f"[hostup]\ntype = hostup\nurl = {fresh_sim.url()}\ntoken_file = token\n")
    os.mkdir(tmp_path / "mnt")
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CONFIG_HOME")}

    out, _ = daemons.run(["-o", "config=config", "mnt"], "mnt", env=env, cwd=str(tmp_path))

    assert out.returncode == 0, out.stderr
    mnt = str(tmp_path / "mnt")
    assert is_mounted(mnt)
    assert read(os.path.join(mnt, "providers", "hostup", "state")) == "ok\n"
    # The daemon, running from /, still refreshes, on request and on SIGHUP.
    assert sh(f"echo 1 > {q(os.path.join(mnt, 'providers', 'hostup', 'refresh'))}").returncode == 0
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {"name": "renamed-for-the-daemon"})
    assert len(daemons.alive()) == 1
    os.kill(daemons.alive()[0], signal.SIGHUP)
    wait_for(lambda: read(os.path.join(mnt, "vps", "hostup", vps_id, "name")) ==
             "renamed-for-the-daemon\n", timeout=5, what="the daemon to refresh on SIGHUP")


def test_fstab_only_options_are_accepted_and_ignored(fresh_sim, make_mount):
    m = make_mount(hostup_config(fresh_sim),
                   extra_opts=["noauto,_netdev,nofail,x-systemd.automount",
                               "auto,user,nouser,users,x-systemd.requires=network-online.target"])

    assert m.provider("state") == "ok\n"
    assert sorted(os.listdir(m.p("vps", "hostup"))) == sorted(fresh_sim.vps_ids())


def test_fstab_only_options_are_accepted_without_f(fresh_sim, daemons, tmp_path):
    config = write_config(tmp_path / "config", hostup_config(fresh_sim))
    mnt = mountpoint(tmp_path)

    out, _ = daemons.run(["-o", f"_netdev,nofail,noauto,x-systemd.automount,config={config}",
                          mnt], mnt)

    assert out.returncode == 0, out.stderr
    assert is_mounted(mnt)


def test_proc_mounts_shows_type_fuse_infrafs(mnt):
    entry = mount_entry(mnt.path)

    assert entry is not None
    assert entry[2] == "fuse.infrafs"
    assert entry[0] == mnt.config  # fsname: where the data comes from


def test_help_lists_own_options_with_defaults_and_libfuses_options():
    out = subprocess.run([INFRAFS, "--help"], capture_output=True, text=True, timeout=10)

    assert out.returncode == 0
    text = out.stdout + out.stderr
    assert "config=FILE" in text
    assert re.search(r"refresh=SECONDS.*\(60\)", text), "refresh= without its default"
    assert "MOUNTPOINT" in text
    for fuse_option in ("allow_other", "-f", "-d", "max_threads"):
        assert fuse_option in text, f"libfuse's {fuse_option} is missing"


def test_help_documents_offline_and_cache_dir_and_they_are_accepted(fresh_sim, make_mount,
                                                                       tmp_path):
    out = subprocess.run([INFRAFS, "--help"], capture_output=True, text=True, timeout=10)
    assert "offline" in out.stdout and "cache_dir=DIR" in out.stdout

    m = make_mount(hostup_config(fresh_sim), extra_opts=[f"cache_dir={tmp_path / 'cache'}"])
    assert m.provider("state") == "ok\n"


def test_version_prints_the_version():
    out = subprocess.run([INFRAFS, "--version"], capture_output=True, text=True, timeout=10)

    assert out.returncode == 0
    assert re.search(r"^infrafs version \d+\.\d+\.\d+", out.stdout, re.M), out.stdout


def test_version_through_a_pipe_prints_infrafs_first():
    # Through a pipe stdout is buffered, and libfuse's lines come partly
    # from fusermount3, a process of its own.
    out = subprocess.run(f"{q(INFRAFS)} --version | head -1", shell=True, capture_output=True,
                         text=True, timeout=10)

    assert re.fullmatch(r"infrafs version \d+\.\d+\.\d+\n", out.stdout), out.stdout


def test_an_unknown_option_is_refused_by_name_before_the_config_is_read(daemons, tmp_path):
    mnt = mountpoint(tmp_path)

    # A typo of config=: the default config, missing here, must not be
    # what the message is about.
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "no-config-here"))
    out, _ = daemons.run(["-o", f"confg={tmp_path / 'config'}", mnt], mnt, env=env)

    assert out.returncode != 0
    assert "unknown option" in out.stderr and "confg=" in out.stderr, out.stderr
    assert "--help" in out.stderr
    assert "config file not found" not in out.stderr, out.stderr
    assert not is_mounted(mnt)


def test_sighup_refreshes_every_account_now(fresh_sim, make_mount):
    first, second = fresh_sim.vps_ids()[:2]
    m = make_mount(hostup_config(fresh_sim, section="one", refresh=300) +
                   hostup_config(fresh_sim, section="two", refresh=300))
    assert m.read("vps", "one", first, "name") != "renamed-by-hup\n"
    fresh_sim.patch_vps(first, {"name": "renamed-by-hup"})
    fresh_sim.patch_vps(second, {"name": "also-renamed"})

    os.kill(m.pid, signal.SIGHUP)

    wait_for(lambda: m.read("vps", "one", first, "name") == "renamed-by-hup\n",
             timeout=5, what="account one to show the new name after SIGHUP")
    wait_for(lambda: m.read("vps", "two", second, "name") == "also-renamed\n",
             timeout=5, what="account two to show the new name after SIGHUP")
    assert m.proc.poll() is None, "SIGHUP killed the daemon"


def test_one_account_with_a_wrong_token_does_not_block_the_mount_and_says_unauthorized(
        fresh_sim, daemons, tmp_path):
    config = write_config(tmp_path / "config",
                          hostup_config(fresh_sim, section="good") +
                          hostup_config(fresh_sim, section="bad", token="wrong-token"))
    mnt = mountpoint(tmp_path)

    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt)

    assert out.returncode == 0, out.stderr
    assert f"mounted at {mnt}" in out.stdout
    p = lambda *parts: os.path.join(mnt, *parts)  # noqa: E731
    assert sorted(os.listdir(p("providers"))) == ["bad", "good"]
    assert read(p("providers", "bad", "state")) == "unauthorized\n"
    assert "401" in read(p("providers", "bad", "last_error"))
    assert os.listdir(p("vps", "bad")) == []
    assert read(p("providers", "good", "state")) == "ok\n"
    assert read(p("providers", "good", "last_error")) == ""
    assert sorted(os.listdir(p("vps", "good"))) == sorted(fresh_sim.vps_ids())
    assert "wrong-token" not in out.stdout + out.stderr


def test_umount_as_root_unmounts_and_the_daemon_exits_cleanly(mnt):
    out = subprocess.run(["umount", mnt.path], capture_output=True, text=True, timeout=30)

    assert out.returncode == 0, out.stderr
    assert mnt.proc.wait(timeout=30) == 0
    assert not is_mounted(mnt.path)


@pytest.mark.parametrize("flags", [
    [],
    ["-n"],
    ["-v"],
    ["-s", "-v"],
], ids=["plain", "nomtab", "verbose", "sloppy-verbose"])
def test_mount_helper_accepts_what_mount8_passes_from_fstab(fresh_sim, daemons, tmp_path,
                                                            flags):
    """mount(8) runs /sbin/mount.fuse.infrafs SOURCE DIR [-s] [-f] [-n] [-v] -o OPTS,
    with no HOME at boot."""
    helper = tmp_path / "mount.fuse.infrafs"
    helper.symlink_to(INFRAFS)
    config = write_config(tmp_path / "config", hostup_config(fresh_sim))
    mnt = mountpoint(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CONFIG_HOME")}
    opts = "rw,nosuid,nodev,noauto,_netdev,nofail,x-systemd.automount,x-systemd.idle-timeout=60"

    out, _ = daemons.run([config, mnt, *flags, "-o", opts], mnt, env=env, program=str(helper))

    assert out.returncode == 0, out.stderr
    assert mount_entry(mnt)[2] == "fuse.infrafs"
    assert read(os.path.join(mnt, "providers", "hostup", "state")) == "ok\n"


def test_fake_mount_from_mount8_checks_the_config_and_mounts_nothing(fresh_sim, tmp_path):
    """`mount -f` passes -f to the helper: fake, not foreground."""
    helper = tmp_path / "mount.fuse.infrafs"
    helper.symlink_to(INFRAFS)
    config = write_config(tmp_path / "config", hostup_config(fresh_sim))
    mnt = mountpoint(tmp_path)

    out = subprocess.run([str(helper), config, mnt, "-f", "-o", "rw,noauto"],
                         capture_output=True, text=True, timeout=30)

    assert out.returncode == 0, out.stderr
    assert mount_entry(mnt) is None

    broken = write_config(tmp_path / "broken", "[x]\ntype = nosuch\n")
    out = subprocess.run([str(helper), broken, mnt, "-f", "-o", "rw"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "nosuch" in out.stderr


def test_install_provides_the_mount_helpers(tmp_path):
    build = os.path.dirname(INFRAFS)
    if not os.path.isdir(os.path.join(build, "meson-private")):
        pytest.skip("INFRAFS_BIN is not in a meson build directory")
    dest = tmp_path / "dest"
    out = subprocess.run(["meson", "install", "-C", build, "--destdir", str(dest),
                          "--no-rebuild", "--quiet"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    installed = {p.name: p for p in dest.rglob("*")}
    assert "infrafs" in installed
    for helper in ("mount.infrafs", "mount.fuse.infrafs"):
        assert helper in installed, f"{helper} is not installed"
        link = installed[helper]
        target = os.readlink(link)
        assert os.path.basename(target) == "infrafs"
        # The link names where infrafs is installed (under DESTDIR here).
        assert os.path.exists(str(dest) + target if os.path.isabs(target)
                              else os.path.join(os.path.dirname(link), target))
    # The man page is built only where scdoc was found at meson setup; when
    # the build has its target, meson install must install it.
    with open(os.path.join(build, "meson-info", "intro-targets.json")) as f:
        builds_man = any(t["name"] == "infrafs.1" for t in json.load(f))
    if builds_man:
        assert "infrafs.1" in installed, "the man page is not installed"
        assert installed["infrafs.1"].parent.name == "man1"


def test_allow_other_turns_on_default_permissions(fresh_sim, make_mount):
    """infrafs does not check who writes a control file, so when other users
    are let in the kernel must enforce the 0644 modes."""
    m = make_mount(hostup_config(fresh_sim), extra_opts=["allow_other"])
    opts = mount_entry(m.path)[3].split(",")
    assert "allow_other" in opts and "default_permissions" in opts


def run_foreground(args, mnt, env=None, stderr=subprocess.PIPE):
    """`infrafs -f ARGS MNT` until mounted, then unmounted: its stderr."""
    proc = subprocess.Popen([INFRAFS, "-f", *args, mnt], stdout=subprocess.DEVNULL,
                            stderr=stderr, env=env, text=True)
    try:
        wait_for(lambda: is_mounted(mnt) and os.listdir(os.path.join(mnt, "providers")),
                 timeout=30, what="the mount")
        # The startup report comes once the first refreshes are done.
        wait_for(lambda: read(os.path.join(mnt, "providers", "bad", "state")) != "stale\n",
                 timeout=30, what="the first refresh")
    finally:
        subprocess.run(["fusermount3", "-u", mnt])
        out = proc.communicate(timeout=30)[1]
    return proc.returncode, out


def good_and_bad_config(sim, tmp_path):
    return write_config(tmp_path / "config",
                        hostup_config(sim, section="good") +
                        hostup_config(sim, section="bad", token="wrong-token"))


def test_log_level_leaves_out_what_is_less_severe(fresh_sim, tmp_path):
    config = good_and_bad_config(fresh_sim, tmp_path)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    mnt = mountpoint(tmp_path)

    rc, default = run_foreground(["-o", f"config={config}"], mnt, env)
    assert rc == 0
    rc, warnings = run_foreground(["-o", f"config={config},log_level=warning"], mnt, env)
    assert rc == 0

    assert "infrafs: mounted at" in default            # a notice
    assert "warning: account 'bad': refresh failed" in default
    assert "warning: account 'bad': refresh failed" in warnings
    assert "mounted at" not in warnings, warnings
    assert "wrong-token" not in default + warnings


def test_under_systemd_each_log_line_carries_its_journal_priority(fresh_sim, tmp_path):
    config = good_and_bad_config(fresh_sim, tmp_path)
    mnt = mountpoint(tmp_path)
    log = tmp_path / "stderr"
    with open(log, "w") as stderr:
        st = os.fstat(stderr.fileno())
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"),
                   JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        rc, _ = run_foreground(["-o", f"config={config}"], mnt, env, stderr=stderr)
    assert rc == 0
    lines = log.read_text().splitlines()
    assert any(re.fullmatch(r"<4>infrafs: warning: account 'bad': refresh failed.*", line)
               for line in lines), lines
    assert any(line.startswith("<5>infrafs: mounted at") for line in lines), lines
    assert all(re.match(r"<[0-7]>", line) for line in lines), lines


def test_a_bad_log_level_is_refused_naming_the_levels(daemons, tmp_path, fresh_sim):
    config = write_config(tmp_path / "config", hostup_config(fresh_sim))
    mnt = mountpoint(tmp_path)
    out, _ = daemons.run(["-o", f"config={config},log_level=loud", mnt], mnt)
    assert out.returncode != 0
    assert "log_level=loud" in out.stderr and "warning, notice" in out.stderr
    assert not is_mounted(mnt)
