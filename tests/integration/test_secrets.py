"""Secrets that recover without a remount: a token_file or token_command is
read again when a refresh is asked for (the refresh file, SIGHUP), and
after the API refused the key during a refresh."""

import os
import signal
import time

from conftest import TOKEN, infrafs_pids, mountpoint, q, read, sh, wait_for, write_config


def secret_config(sim, tmp_path, source, refresh=300):
    """A HostUp account whose secret comes from `source` ("token_file" or
    "token_command"), reading the file `token`; returns (config, token file)."""
    token_file = tmp_path / "token"
    value = str(token_file) if source == "token_file" else f"cat {q(str(token_file))}"
    config = write_config(tmp_path / "config",
                          f"[hostup]\ntype = hostup\nurl = {sim.url('hostup')}\n"
                          f"{source} = {value}\nrefresh = {refresh}\n")
    return config, token_file


def set_token(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def provider(mnt, name):
    return read(os.path.join(mnt, "providers", "hostup", name))


def mount_unauthorized(sim, daemons, tmp_path, source):
    """Mounted with a wrong secret in the token file; (mountpoint, token file)."""
    config, token = secret_config(sim, tmp_path, source)
    set_token(token, "wrong-token")
    mnt = mountpoint(tmp_path)
    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt)
    assert out.returncode == 0, out.stderr
    assert provider(mnt, "state") == "unauthorized\n"
    assert os.listdir(os.path.join(mnt, "vps", "hostup")) == []
    return mnt, token


def test_a_fixed_token_file_is_read_again_when_a_refresh_is_asked_for(
        fresh_sim, daemons, tmp_path):
    mnt, token = mount_unauthorized(fresh_sim, daemons, tmp_path, "token_file")

    set_token(token, TOKEN)
    assert sh(f"echo 1 > {q(os.path.join(mnt, 'providers', 'hostup', 'refresh'))}"
              ).returncode == 0

    assert provider(mnt, "state") == "ok\n"
    assert sorted(os.listdir(os.path.join(mnt, "vps", "hostup"))) == \
        sorted(fresh_sim.vps_ids())
    assert TOKEN not in provider(mnt, "last_error")


def test_a_fixed_token_command_is_run_again_on_sighup(fresh_sim, daemons, tmp_path):
    mnt, token = mount_unauthorized(fresh_sim, daemons, tmp_path, "token_command")

    set_token(token, TOKEN)
    (pid,) = infrafs_pids(mnt)
    os.kill(pid, signal.SIGHUP)

    wait_for(lambda: provider(mnt, "state") == "ok\n", what="the account to recover")
    assert sorted(os.listdir(os.path.join(mnt, "vps", "hostup"))) == \
        sorted(fresh_sim.vps_ids())


def test_a_key_rotated_at_the_provider_and_in_the_token_file_needs_no_one(
        fresh_sim, daemons, tmp_path):
    config, token = secret_config(fresh_sim, tmp_path, "token_file", refresh=1)
    set_token(token, TOKEN)
    mnt = mountpoint(tmp_path)
    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt)
    assert out.returncode == 0, out.stderr
    assert provider(mnt, "state") == "ok\n"

    fresh_sim.configure(token="rotated-token")
    set_token(token, "rotated-token")
    fresh_sim.clear_requests()
    # The next periodic refresh is refused with the old key, reads the file
    # again and lists with the new one, without ever showing unauthorized.
    states = set()

    def listed_with_the_new_key():
        states.add(provider(mnt, "state"))
        return [r["status"] for r in fresh_sim.requests("GET", r"^/api/v2/vps$")][:2] == \
            [401, 200]

    wait_for(listed_with_the_new_key, timeout=15, what="a list with the new key")
    time.sleep(0.2)
    states.add(provider(mnt, "state"))
    assert states == {"ok\n"}


def test_a_token_file_gone_bad_fails_the_asked_refresh_with_the_fix_and_sends_nothing(
        fresh_sim, daemons, tmp_path):
    config, token = secret_config(fresh_sim, tmp_path, "token_file")
    set_token(token, TOKEN)
    mnt = mountpoint(tmp_path)
    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt)
    assert out.returncode == 0, out.stderr
    os.chmod(token, 0o644)
    fresh_sim.clear_requests()

    out = sh(f"echo 1 > {q(os.path.join(mnt, 'providers', 'hostup', 'refresh'))}")

    assert out.returncode != 0
    error = provider(mnt, "last_error")
    assert "token_file" in error and "chmod 600" in error, error
    assert TOKEN not in error
    assert fresh_sim.requests() == [], "a refused secret was sent"
    # The data stays; fixed, the next asked refresh works.
    assert sorted(os.listdir(os.path.join(mnt, "vps", "hostup"))) == \
        sorted(fresh_sim.vps_ids())
    os.chmod(token, 0o600)
    assert sh(f"echo 1 > {q(os.path.join(mnt, 'providers', 'hostup', 'refresh'))}"
              ).returncode == 0
    assert provider(mnt, "state") == "ok\n"


def test_a_token_command_run_again_inherits_no_descriptor_of_the_daemon(
        fresh_sim, daemons, tmp_path):
    """The daemon holds /dev/fuse, sockets to the APIs and its cache files
    by the time a refresh runs token_command again: none may reach it."""
    fds = tmp_path / "fds"
    script = tmp_path / "token.py"
    script.write_text("import os\n"
                      "names = sorted(os.listdir('/proc/self/fd'), key=int)\n"
                      "seen = {}\n"
                      "for n in names:\n"
                      "    try:\n"
                      "        seen[n] = os.readlink('/proc/self/fd/' + n)\n"
                      "    except OSError:\n"
                      "        seen[n] = '(listdir)'\n"
                      f"open({str(fds)!r}, 'w').write(repr(seen))\n"
                      f"print({TOKEN!r})\n")
    config = write_config(tmp_path / "config",
                          f"[hostup]\ntype = hostup\nurl = {fresh_sim.url('hostup')}\n"
                          f"token_command = /usr/bin/python3 {q(str(script))}\nrefresh = 300\n")
    mnt = mountpoint(tmp_path)
    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt)
    assert out.returncode == 0, out.stderr
    fds.unlink()

    assert sh(f"echo 1 > {q(os.path.join(mnt, 'providers', 'hostup', 'refresh'))}"
              ).returncode == 0

    # stdin, stdout, stderr, and the one listdir() itself opened.
    seen = eval(fds.read_text())  # noqa: S307 (a dict our script wrote)
    assert sorted(seen) == ["0", "1", "2", "3"] and seen["3"] == "(listdir)", seen
    assert provider(mnt, "state") == "ok\n"
