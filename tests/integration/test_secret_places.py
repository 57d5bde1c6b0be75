"""Issue 15: a token never appears in argv, /proc, the environment of the
programs infrafs starts, the disk cache, any file of the tree, last_error or
the log at its most verbose. One test per place, each through the real
mount, searching the place itself for every form of a distinctive key (raw,
URL-encoded, JSON-escaped, and HTTP Basic's base64 of user:key).

Places asserted elsewhere, not repeated here:
- last_error and last_action when an API error echoes the credential, for
  every provider's auth scheme, and the mount command's output:
  test_security.py::test_credential_echoed_by_an_api_error_is_redacted_everywhere;
  last_action after successful writes: test_controls.py
  (test_every_write_accepted_or_not_rewrites_last_action); a key written
  into a control file: test_action_log.py
  (test_a_secret_written_to_a_control_file_is_never_logged).
- An environment token removed from /proc/PID/environ and from the
  environment of another account's token_command: test_security.py,
  test_env_token_is_removed_from_the_daemon_environment_and_hidden_from_token_commands.
- Core files: test_security.py::test_daemon_is_not_dumpable_unless_dumpable_is_given.

The tree test also searches last_action and last_error (of control files
and of refresh) while the echoes are shown, and the log test makes the same
writes. last_error has a test of its own for the one route that is not an
API's answer: a failing token_command's standard error."""

import errno
import json
import os
import re
import urllib.parse

import pytest

from conftest import (Simulator, mount_entry, mountpoint, q, read, sh, write_config,
                      write_errno)
from test_security import DEPLOYHQ_USER, SCHEMES, credential_forms

# Characters that URL encoding and JSON escaping ("\/") change, so that each
# form differs from the raw key; no shell or config syntax in it.
SECRET = "pl4ces/K3y+zq=W~9"
JSON_FORM = SECRET.replace("/", "\\/")
URL_FORM = urllib.parse.quote(SECRET, safe="")
B64 = credential_forms(SECRET, DEPLOYHQ_USER) - credential_forms(SECRET)
# Every form infrafs redacts (secret_forms, src/http/credential.c).
FORMS = credential_forms(SECRET, DEPLOYHQ_USER) | {
    JSON_FORM,
    re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), URL_FORM),
    *(f.replace("+", "-").replace("/", "_") for f in B64)}  # base64url

LISTED = ("hostup", "deployhq", "dokploy", "hostatlas")  # heo's refresh sends nothing
PROVIDERS = LISTED + ("heo",)


def shown(data, where):
    """Fails if `data` (text or bytes) holds any form of the key."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    found = sorted(f for f in FORMS if f in text)
    assert not found, f"{where} holds the key as {found}:\n{text[:4000]}"


def echo_body(provider):
    """An error answer echoing the request in three forms at once: the auth
    header (raw key, or Basic's base64), the key URL-encoded, and the key
    JSON-escaped inside the JSON text (decoded, that is the raw key)."""
    header = SCHEMES[provider]["header"](SECRET, DEPLOYHQ_USER)
    return ('{"error":"bad_request","message":"request was: GET /x?api_key=%s %s '
            'body key=%s"}' % (URL_FORM, header, JSON_FORM))


@pytest.fixture(scope="module")
def key_sim(tmp_path_factory):
    s = Simulator(str(tmp_path_factory.mktemp("places-sim")), token=SECRET)
    yield s
    s.stop()


@pytest.fixture
def psim(key_sim):
    key_sim.reset()
    key_sim.configure(job_seconds=0.3)
    yield key_sim
    key_sim.clear_faults()


def running(sim):
    return sim.vps_with(powerState="running", serviceStatus="active")[0]


def every_source(sim, tmp_path):
    """One account per provider, their keys from every source: inline
    (hostup, heo), token_file (deployhq), token_command (dokploy) and the
    environment (hostatlas); returns (config text, environment)."""
    key_file = write_config(tmp_path / "deployhq.key", SECRET + "\n")
    command_file = write_config(tmp_path / "dokploy.key", SECRET + "\n")
    text = (f"[hostup]\ntype = hostup\nurl = {sim.url('hostup')}\ntoken = {SECRET}\n"
            f"[deployhq]\ntype = deployhq\nurl = {sim.url('deployhq')}\n"
            f"user = {DEPLOYHQ_USER}\ntoken_file = {key_file}\n"
            f"[dokploy]\ntype = dokploy\nurl = {sim.url('dokploy')}\n"
            f"token_command = cat {q(command_file)}\n"
            f"[hostatlas]\ntype = hostatlas\nurl = {sim.url('hostatlas')}\n"
            f"[heo]\ntype = heo\nurl = {sim.url('heo')}\nvps = vps_101\ntoken = {SECRET}\n")
    text = text.replace("\n[", "\nrefresh = 300\n[") + "refresh = 300\n"
    return text, {"INFRAFS_HOSTATLAS_TOKEN": SECRET}


def exercise(sim, m, while_failing=lambda: None):
    """What puts text in every place: successful actions, the key written
    into a control file, every list and some actions failing with an error
    that echoes the key (then `while_failing()` looks), then refreshes that
    work again (and save)."""
    m.expect_stderr(r"\[redacted\]")
    vps = running(sim)
    power = m.vps(vps, "power")
    assert write_errno(power, "restart\n") == 0
    assert m.read("vps", "hostup", vps, "operation", "wait") == "completed\n"
    dhq = sorted(os.listdir(m.p("vps", "deployhq")))[0]
    assert write_errno(m.p("vps", "deployhq", dhq, "sync"), "1\n") == 0
    assert write_errno(m.p("vps", "heo", "vps_101", "power"), "start\n") == 0
    assert write_errno(power, SECRET + "\n") == errno.EINVAL

    for provider in LISTED:
        sim.fault(provider=provider, action="status", status=400, times=0, method="GET",
                  path=SCHEMES[provider]["list_path"], body=echo_body(provider),
                  content_type="application/json")
        assert write_errno(m.p("providers", provider, "refresh"), "1\n") != 0
        assert "[redacted]" in m.provider("last_error", provider)
    for provider, path, control, command in (
            ("hostup", r"/actions/restart$", power, "restart"),
            ("heo", r"/stop$", m.p("vps", "heo", "vps_101", "power"), "stop")):
        sim.fault(provider=provider, action="status", status=400, times=0, method="POST",
                  path=path, body=echo_body(provider), content_type="application/json")
        assert write_errno(control, command + "\n") != 0
        assert "[redacted]" in read(os.path.join(os.path.dirname(control), "last_action"))
    while_failing()
    sim.clear_faults()
    for provider in PROVIDERS:
        m.refresh(provider)
        assert m.provider("state", provider) == "ok\n"
    return vps


def test_no_form_of_the_key_in_argv_proc_or_mounts(psim, daemons, tmp_path):
    """What any local user can read about the daemon: its argv
    (/proc/PID/cmdline), its threads' names and the mount table; its
    environment for root (or with -o dumpable). The daemon a mount without
    -f leaves behind, holding keys from all four sources. libfuse's
    fusermount3 (for a user other than root) inherits this same
    environment."""
    config_text, env = every_source(psim, tmp_path)
    config = write_config(tmp_path / "config", config_text)
    mnt = mountpoint(tmp_path)
    out, _ = daemons.run(["-o", f"config={config}", mnt], mnt,
                         env={**os.environ, **env, "PLACES_MARK": "inherited"})
    assert out.returncode == 0, out.stderr
    shown(out.stdout + out.stderr, "the mount command's output")
    (pid,) = daemons.alive()
    for provider in PROVIDERS:
        with open(os.path.join(mnt, "providers", provider, "state")) as f:
            assert f.read() == "ok\n", provider  # every key was read and works

    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read()
    assert mnt.encode() in cmdline and config.encode() in cmdline, cmdline
    shown(cmdline, "/proc/PID/cmdline")
    with open(f"/proc/{pid}/environ", "rb") as f:
        environ = f.read()
    assert b"PLACES_MARK=inherited\0" in environ
    shown(environ, "/proc/PID/environ")
    names = b""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm", "rb") as f:
            names += f.read()
    assert b"infrafs" in names
    shown(names, "the threads' names")
    entry = mount_entry(mnt)
    assert entry and entry[0] == config, entry
    with open(f"/proc/{pid}/mountinfo") as f:
        mountinfo = f.read()
    assert mnt in mountinfo
    shown(mountinfo, "/proc/PID/mountinfo")


# Run as a token_command: records what it and its parent (the shell, or
# infrafs where the shell execs its last command) were started with, then
# prints the key from a file (never from its own argv).
RECORDER = """\
import json, os, sys
def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode("utf-8", "surrogateescape")
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({"argv": cmdline("self"), "parent": cmdline(os.getppid()),
                          "env": dict(os.environ)}) + "\\n")
print(open(sys.argv[2]).read().strip())
"""


def test_a_token_command_is_started_with_no_key_in_its_argv_or_environment(
        psim, make_mount, tmp_path):
    """The programs infrafs starts are token_commands (as root, libfuse
    mounts and unmounts without a helper). Every run, at start and when a
    refresh is asked for, gets infrafs's environment without any key of
    any account (inline, token_file, environment) and an argv of its own
    command line."""
    record = tmp_path / "runs.ndjson"
    (tmp_path / "recorder.py").write_text(RECORDER)
    write_config(tmp_path / "command.key", SECRET + "\n")
    write_config(tmp_path / "file.key", SECRET + "\n")
    url = psim.url("hostup")
    text = "".join(f"[{name}]\ntype = hostup\nurl = {url}\nrefresh = 300\n{source}\n"
                   for name, source in (
                       ("inline", f"token = {SECRET}"),
                       ("file", f"token_file = {tmp_path / 'file.key'}"),
                       ("env", ""),
                       ("command", f"token_command = /usr/bin/python3 {q(str(tmp_path))}"
                                   f"/recorder.py {q(str(record))} {q(str(tmp_path))}"
                                   "/command.key")))
    m = make_mount(text, env={"INFRAFS_ENV_TOKEN": SECRET, "PLACES_MARK": "inherited"})
    m.refresh("command")

    runs = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(runs) == 2, runs  # at start, and for the asked refresh
    for run in runs:
        assert run["env"].get("PLACES_MARK") == "inherited" and "PATH" in run["env"]
        assert "recorder.py" in run["argv"] and run["parent"], run
        shown("\n".join([run["argv"], run["parent"]] +
                        [f"{k}={v}" for k, v in run["env"].items()]),
              "a token_command's argv or environment")
    for name in ("inline", "file", "env", "command"):
        assert m.provider("state", name) == "ok\n", name


def test_the_disk_cache_never_holds_a_form_of_the_key(psim, make_mount, tmp_path):
    """Every byte of every file under cache_dir (each account's saved data,
    the action log, the change stream's logs) after actions, errors that
    echo the key, and the saves of the refreshes that followed."""
    config_text, env = every_source(psim, tmp_path)
    cache = tmp_path / "cache-dir"
    m = make_mount(config_text, extra_opts=[f"cache_dir={cache}"], env=env)
    vps = exercise(psim, m)

    files = {p.relative_to(cache).as_posix(): p.read_bytes()
             for p in cache.rglob("*") if p.is_file()}
    for name, data in files.items():
        shown(data, f"cache_dir/{name}")
    # What was searched: each account's copy, and the logs with the echoes.
    assert {f"{p}.json" for p in PROVIDERS} | {"actions.log", "events.log",
                                               "events.ndjson"} <= set(files), sorted(files)
    assert vps.encode() in files["hostup.json"]
    assert b"[redacted]" in files["actions.log"] and b"restart" in files["actions.log"]
    assert b"[redacted]" in files["events.log"], files["events.log"]


def test_no_file_of_the_tree_holds_a_form_of_the_key(psim, make_mount, tmp_path):
    """grep -r over the whole mount, while the errors are shown and after
    the refreshes that followed: every resource, provider and control file,
    last_action, last_error, /actions, /events, the inventories."""
    config_text, env = every_source(psim, tmp_path)
    m = make_mount(config_text, env=env)
    patterns = tmp_path / "patterns"
    patterns.write_text("\n".join(sorted(FORMS)) + "\n")
    redacted = set()

    def grep_tree():
        leak = sh(f"grep -r -F -f {q(str(patterns))} {q(m.path)}")
        assert leak.returncode == 1 and leak.stderr == "", leak.stdout + leak.stderr
        # Where the echoes left "[redacted]": proof that grep read them.
        found = sh(f"grep -r -l -F '[redacted]' {q(m.path)}")
        redacted.update(os.path.relpath(p, m.path) for p in found.stdout.split())

    vps = exercise(psim, m, grep_tree)
    grep_tree()
    assert {f"providers/{p}/last_error" for p in LISTED} | \
        {f"providers/{p}/last_action" for p in LISTED} | \
        {f"vps/hostup/{vps}/last_action", "vps/heo/vps_101/last_action",
         "actions", "events", "events.ndjson"} <= redacted, sorted(redacted)


def test_the_log_at_debug_level_never_holds_a_form_of_the_key(psim, make_mount, tmp_path):
    """-o debug (-d: libfuse's request trace and infrafs's debug messages)
    logs everything there is, every level's messages included: startup,
    each action, the failures and their retries. Syslog and the journal get
    the same lines."""
    config_text, env = every_source(psim, tmp_path)
    m = make_mount(config_text, extra_opts=["debug"], env=env)
    m.expect_stderr(r"^\s*unique: \d+, (error|success)")  # libfuse's trace
    m.expect_stderr(r"^infrafs: debug: ")
    # A read that fails twice (the retries' debug lines) echoing the key.
    psim.fault(provider="hostup", action="status", status=503, times=2, method="GET",
               path=r"/details$", body=echo_body("hostup"), content_type="application/json")
    vps = running(psim)
    assert write_errno(m.vps(vps, "power"), "restart\n") == 0
    assert m.read("vps", "hostup", vps, "operation", "wait") == "completed\n"
    exercise(psim, m)

    log = m.stderr()
    shown(log, "the log")
    assert "debug: " in log and "unique: " in log, log[-2000:]
    assert "retrying" in log and "[redacted]" in log


def test_a_failing_token_command_that_prints_the_key_keeps_it_out_of_last_error(
        psim, make_mount, tmp_path):
    """A token_command's standard error goes into last_error and the log
    when it fails (its first line). A wrapper that says the key it used
    there, when run again for an asked refresh, shows [redacted]."""
    script = tmp_path / "key.sh"
    script.write_text(f"#!/bin/sh\nif [ -e {q(str(tmp_path / 'ran'))} ]; then\n"
                      f"  echo 'failed with {SECRET} or {URL_FORM}' >&2\n  exit 1\nfi\n"
                      f"touch {q(str(tmp_path / 'ran'))}\necho '{SECRET}'\n")
    m = make_mount(f"[hostup]\ntype = hostup\nurl = {psim.url('hostup')}\nrefresh = 300\n"
                   f"token_command = sh {q(str(script))}\n")
    m.expect_stderr(r"\[redacted\]")

    assert write_errno(m.p("providers", "hostup", "refresh"), "1\n") != 0

    last_error = m.provider("last_error")
    assert "stderr: failed with [redacted] or [redacted]" in last_error, last_error
    shown(last_error, "last_error")
    shown(m.provider("last_action"), "the refresh's last_action")
    assert "[redacted]" in m.stderr()
    shown(m.stderr(), "the log")

