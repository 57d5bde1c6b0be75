"""`infrafs --check [CONFIG]`: the config read, every secret resolved, one
cheap request per account, a verdict line each; exit 0 only if every
account is ok; nothing is mounted."""

import socket
import subprocess

from conftest import INFRAFS, TOKEN, account_config, hostup_config, write_config


def check(*args):
    return subprocess.run([INFRAFS, "--check", *args], capture_output=True, text=True,
                          timeout=120)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_check_gives_each_account_a_verdict_and_fails_if_one_is_not_ok(fresh_sim, tmp_path):
    config = write_config(tmp_path / "config",
                          hostup_config(fresh_sim, section="good") +
                          hostup_config(fresh_sim, section="badkey", token="wrong-token") +
                          f"[gone]\ntype = hostup\nurl = http://127.0.0.1:{closed_port()}\n"
                          f"token = {TOKEN}\ntimeout = 5\n" +
                          account_config(fresh_sim, "dokploy", "dokploy") +
                          account_config(fresh_sim, "deployhq", "deployhq",
                                         user="demo@example.com") +
                          account_config(fresh_sim, "hostatlas", "hostatlas") +
                          account_config(fresh_sim, "heo", "heo", vps="vps_101"))
    fresh_sim.clear_requests()

    out = check(config)

    assert out.returncode == 1, out.stdout + out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert list(lines) == ["good", "badkey", "gone", "dokploy", "deployhq", "hostatlas",
                           "heo"], out.stdout
    assert lines["good"] == "ok"
    assert lines["badkey"].startswith("unauthorized: ") and "fix the secret" in lines["badkey"]
    assert lines["gone"].startswith("unreachable: ") and "check url = " in lines["gone"]
    assert lines["dokploy"] == lines["deployhq"] == lines["hostatlas"] == "ok"
    assert lines["heo"].startswith("ok (the API answers; heo has no read endpoint")
    assert "wrong-token" not in out.stdout + out.stderr and TOKEN not in out.stdout
    # One request per reachable account, all reads.
    reqs = fresh_sim.requests()
    assert len(reqs) == 6 and {r["method"] for r in reqs} == {"GET"}, reqs


def test_check_exits_0_when_every_account_is_ok_and_mounts_nothing(fresh_sim, tmp_path):
    config = write_config(tmp_path / "config", hostup_config(fresh_sim))
    before = open("/proc/self/mounts").read()

    out = check("-o", f"config={config}")

    assert out.returncode == 0 and out.stdout == "hostup: ok\n", out.stdout + out.stderr
    assert open("/proc/self/mounts").read() == before


def test_check_of_a_bad_config_says_what_is_wrong(tmp_path):
    config = write_config(tmp_path / "config", "[x]\ntype = hostup\ncolour = red\n")
    out = check(config)
    assert out.returncode == 1 and "colour" in out.stderr and config in out.stderr
