"""doc/SEMANTICS.md §3 (the tree) and §4 (file contents), for HostUp."""

import json
import os
import re
import stat
import subprocess
import time

from conftest import resource_entries, ROOT_ENTRIES, TOKEN, hostup_config, read, sh, q, wait_for

# Entries infrafs adds to a HostUp VPS directory besides the API's fields.
SYNTHESIZED = {"json", "power", "last_action", "operation"}
CONTROLS = {"power", "refresh"}


def snake(key):
    """snake_case for the simple camelCase keys the simulator uses."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()


def scalar_text(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    return json.dumps(v)  # numbers as JSON writes them (the simulator is Python)


def element_name(element, index):
    for key in ("id", "identifier", "slug", "name"):
        if key in element:
            return str(element[key])
    return str(index)


def expected_entries(obj, prefix=""):
    """{relative path: file content, or None for a directory} for a JSON
    object, under the rules of doc/SEMANTICS.md §4."""
    out = {}
    for key, value in obj.items():
        path = prefix + snake(key)
        if isinstance(value, dict):
            out[path] = None
            out.update(expected_entries(value, path + "/"))
        elif isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
            out[path] = None
            for i, element in enumerate(value):
                sub = path + "/" + element_name(element, i)
                out[sub] = None
                out.update(expected_entries(element, sub + "/"))
        elif isinstance(value, list):
            out[path] = "".join(scalar_text(e) + "\n" for e in value)
        else:
            out[path] = scalar_text(value) + "\n" if value is not None else ""
    return out


def actual_entries(directory, skip_top=SYNTHESIZED):
    return resource_entries(directory, skip_top)


def all_paths(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield os.path.join(dirpath, name)


def restart_and_wait(mnt, vps_id):
    """Leave a finished operation in the VPS's directory (operation/ and
    its wait file are part of the tree too). Waits on operation/status, not
    operation/wait: test_controls.py tests that."""
    out = sh(f"echo restart > {q(mnt.vps(vps_id, 'power'))}")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: mnt.read("vps", "hostup", vps_id, "operation", "status") == "completed\n",
             timeout=10, what="the restart to complete")


def union(*objects):
    """One object holding every field of `objects`; where two hold the same
    field, they must agree (nested objects are merged field by field)."""
    out = {}
    for obj in objects:
        for key, value in obj.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = union(out[key], value)
            else:
                assert out.get(key, value) == value, f"the API disagrees with itself on {key}"
                out[key] = value
    return out


# ---- §3 The tree   (unchanged: SEMANTICS.md §3 is the tree too) ------------------------------------------------------------

def test_root_holds_readme_actions_inventory_providers_and_the_kinds_offered(mnt):
    assert sorted(os.listdir(mnt.path)) == sorted(ROOT_ENTRIES + ["vps"])
    assert os.listdir(mnt.p("providers")) == ["hostup"]
    assert os.listdir(mnt.p("vps")) == ["hostup"]


def test_readme_says_what_is_where_and_how_to_use_controls(mnt):
    text = mnt.read("README")

    for words in ("providers/", "vps/", "refresh", "power", "force", "last_action",
                  "operation/wait", "inventory", "inventory.json", "actions"):
        assert words in text, f"README does not mention {words}"


def test_account_directory_exists_even_without_resources(fresh_sim, make_mount):
    for vps_id in fresh_sim.vps_ids():
        fresh_sim.delete_vps(vps_id)

    m = make_mount(hostup_config(fresh_sim))

    assert os.listdir(m.p("vps")) == ["hostup"]
    assert os.listdir(m.p("vps", "hostup")) == []
    assert m.provider("state") == "ok\n"


def test_shell_loop_over_kind_and_account_walks_exactly_the_resources(mnt, fresh_sim):
    out = sh(f'for d in {q(mnt.path)}/vps/*/*/; do basename "$d"; done')

    assert out.returncode == 0
    assert sorted(out.stdout.split()) == sorted(fresh_sim.vps_ids())
    # Nothing but resources: no files, no hidden entries.
    assert sorted(sh(f"ls -A {q(mnt.p('vps', 'hostup'))}").stdout.split()) == \
        sorted(fresh_sim.vps_ids())
    assert sh(f"ls -A {q(mnt.p('vps'))}").stdout.split() == ["hostup"]


def test_unsafe_ids_from_the_api_never_escape_their_directory(fresh_sim, make_mount):
    unsafe = ["../../etc", "..", ".", "a/b", "100%", "../../../README"]
    for raw in unsafe:
        fresh_sim.create_vps({"id": raw})

    m = make_mount(hostup_config(fresh_sim))
    m.expect_stderr(r"skipped|unusable")  # in case infrafs logs what it skipped

    base = m.p("vps", "hostup")
    names = os.listdir(base)
    # The tree around the account is untouched.
    assert sorted(os.listdir(m.path)) == sorted(ROOT_ENTRIES + ["vps"])
    assert os.listdir(m.p("vps")) == ["hostup"]
    assert m.read("README").startswith("infrafs")
    for name in names:
        assert name not in (".", "..", "") and "/" not in name and "\0" not in name
        assert os.path.dirname(os.path.realpath(os.path.join(base, name))) == \
            os.path.realpath(base)
        assert stat.S_ISDIR(os.lstat(os.path.join(base, name)).st_mode)
    last_error = m.provider("last_error")
    by_id = {read(os.path.join(base, n, "id")): n for n in names}
    for raw in unsafe:
        shown = by_id.get(raw + "\n")
        assert shown is not None or raw in last_error, \
            f"id {raw!r} neither escaped into a directory nor reported in last_error"
        if shown is not None:
            assert shown != raw or raw not in (".", "..")
    # Every seeded VPS is still there.
    assert set(fresh_sim.vps_ids()) - set(unsafe) <= set(names)


def test_id_with_a_nul_byte_is_escaped_or_reported(fresh_sim, make_mount):
    fresh_sim.create_vps({"id": "x\u0000y"})

    m = make_mount(hostup_config(fresh_sim))
    m.expect_stderr(r"skipped|unusable")

    names = os.listdir(m.p("vps", "hostup"))
    assert "x" not in names, "the id was cut at its NUL byte"
    assert "x%00y" in names or "x" in m.provider("last_error")


def test_unsafe_field_names_never_escape_the_resource_directory(fresh_sim, make_mount):
    vps_id = fresh_sim.vps_ids()[0]
    unsafe = {"../evil": "unsafe-value-1", "a/b": "unsafe-value-2", ".": "unsafe-value-3",
              "..": "unsafe-value-4", "": "unsafe-value-5", "../../../../README": "unsafe-value-6"}
    fresh_sim.patch_vps(vps_id, dict(unsafe))

    m = make_mount(hostup_config(fresh_sim))
    m.expect_stderr(r"skipped|unusable")

    res = m.vps(vps_id)
    assert m.read("README").startswith("infrafs")
    names = os.listdir(res)
    for name in names:
        assert name not in (".", "..", "") and "/" not in name
    contents = {read(os.path.join(res, n)): n for n in names
                if os.path.isfile(os.path.join(res, n))}
    last_error = m.provider("last_error")
    for key, value in unsafe.items():
        reported = f'"{key}"' in last_error or f"'{key}'" in last_error
        assert value + "\n" in contents or reported, \
            f"field {key!r} neither escaped nor reported"
    # The values live in this resource only (its files and its json).
    hits = sh(f"grep -rl unsafe-value {q(m.path)}").stdout.split()
    assert hits and all(os.path.dirname(h) == res for h in hits), hits


def test_grep_r_over_the_whole_mount_works(mnt, fresh_sim):
    vps_id = fresh_sim.vps_ids()[0]
    name = fresh_sim.get_vps(vps_id)["name"]

    out = sh(f"grep -rx {q(name)} {q(mnt.path)}", timeout=20)

    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert mnt.vps(vps_id, "name") + ":" + name in out.stdout.splitlines()
    running = sh(f"grep -rlx running {q(mnt.p('vps'))}", timeout=20).stdout.split()
    assert sorted(running) == sorted(
        mnt.vps(i, "power_state") for i in fresh_sim.vps_with(powerState="running"))


# ---- §4 File contents   (SEMANTICS.md §4) ------------------------------------------------

def test_field_names_are_snake_case(mnt, fresh_sim):
    vps_id = fresh_sim.vps_ids()[0]
    res = mnt.vps(vps_id)

    for name in ("created_at", "power_state", "primary_ip", "service_status",
                 "operating_system/display_name", "billing/currency_code", "billing/is_payg",
                 "resources/cpu_cores", "location/country_code"):
        assert os.path.exists(os.path.join(res, name)), name
    # Every name taken from a field key is lower snake_case.
    for obj_dir in (res, os.path.join(res, "billing"), os.path.join(res, "resources")):
        for name in os.listdir(obj_dir):
            assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", name), name


def test_value_is_text_and_one_trailing_newline(fresh_sim, make_mount):
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {"name": "web-01", "pinned": True, "bandwidth": {"usedGb": 12.5},
                                 "resources": {"cpuCores": 4, "memoryGb": 0.5},
                                 "billing": {"amount": 49.0}, "note": "Malmö \"quoted\""})
    m = make_mount(hostup_config(fresh_sim))
    v = lambda *p: m.read("vps", "hostup", vps_id, *p)  # noqa: E731

    assert v("name") == "web-01\n"                    # strings unquoted
    assert v("note") == "Malmö \"quoted\"\n"
    assert v("pinned") == "true\n"
    assert v("resources", "cpu_cores") == "4\n"       # numbers as JSON writes them
    assert v("resources", "memory_gb") == "0.5\n"
    assert v("bandwidth", "used_gb") == "12.5\n"
    assert v("billing", "amount") == "49.0\n"
    assert v("id") == vps_id + "\n"
    out = sh(f"cat {q(m.vps(vps_id, 'name'))}")
    assert out.stdout == "web-01\n"


def test_null_field_is_a_zero_length_file(fresh_sim, make_mount):
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {"hostname": None, "primaryIp": None})
    m = make_mount(hostup_config(fresh_sim))

    for name in ("hostname", "primary_ip"):
        path = m.vps(vps_id, name)
        assert os.path.isfile(path)
        assert os.stat(path).st_size == 0
        assert sh(f"cat {q(path)}").stdout == ""


def test_nested_object_is_a_subdirectory(fresh_sim, make_mount):
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {"sshKey": {"fingerprint": "SHA256:abc", "addedAt": None,
                                            "owner": {"displayName": "Alice"}}})
    m = make_mount(hostup_config(fresh_sim))

    assert os.path.isdir(m.vps(vps_id, "ssh_key"))
    assert sorted(os.listdir(m.vps(vps_id, "ssh_key"))) == ["added_at", "fingerprint", "owner"]
    assert m.read("vps", "hostup", vps_id, "ssh_key", "fingerprint") == "SHA256:abc\n"
    assert m.read("vps", "hostup", vps_id, "ssh_key", "added_at") == ""
    assert m.read("vps", "hostup", vps_id, "ssh_key", "owner", "display_name") == "Alice\n"
    assert m.read("vps", "hostup", vps_id, "location", "city")  # the API's own nesting


def test_array_of_scalars_is_a_file_with_one_element_per_line(fresh_sim, make_mount):
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {"tags": ["production", "web", "customer:acme"],
                                 "ports": [22, 443, 8443.5], "flags": [True, False]})
    m = make_mount(hostup_config(fresh_sim))

    assert m.read("vps", "hostup", vps_id, "tags") == "production\nweb\ncustomer:acme\n"
    assert m.read("vps", "hostup", vps_id, "ports") == "22\n443\n8443.5\n"
    assert m.read("vps", "hostup", vps_id, "flags") == "true\nfalse\n"
    lines = sh(f"wc -l < {q(m.vps(vps_id, 'tags'))}").stdout.strip()
    assert lines == "3"


def test_array_of_objects_is_a_directory_named_by_id_identifier_slug_name_else_index(
        fresh_sim, make_mount):
    vps_id = fresh_sim.vps_ids()[0]
    fresh_sim.patch_vps(vps_id, {
        "disks": [{"id": "disk-1", "name": "root", "sizeGb": 20}, {"id": "disk-2", "sizeGb": 5}],
        "volumes": [{"identifier": "vol-a", "name": "data", "slug": "s"}],
        "zones": [{"slug": "se-sto", "name": "Stockholm"}],
        "users": [{"name": "alice"}, {"name": "bob"}],
        "addresses": [{"address": "10.0.0.1"}, {"address": "10.0.0.2"}],
    })
    m = make_mount(hostup_config(fresh_sim))
    ls = lambda *p: sorted(os.listdir(m.vps(vps_id, *p)))  # noqa: E731

    assert ls("disks") == ["disk-1", "disk-2"]
    assert m.read("vps", "hostup", vps_id, "disks", "disk-1", "size_gb") == "20\n"
    assert m.read("vps", "hostup", vps_id, "disks", "disk-1", "name") == "root\n"
    assert ls("volumes") == ["vol-a"]
    assert ls("zones") == ["se-sto"]
    assert ls("users") == ["alice", "bob"]
    assert ls("addresses") == ["0", "1"]
    assert m.read("vps", "hostup", vps_id, "addresses", "1", "address") == "10.0.0.2\n"


def test_json_is_the_whole_object_as_the_api_returned_it_pretty_printed(mnt, fresh_sim):
    # A stopped VPS: its live fields (uptime, CPU) do not move between reads.
    vps_id = fresh_sim.vps_with(powerState="stopped", serviceStatus="active")[0]
    text = mnt.read("vps", "hostup", vps_id, "json")

    obj = json.loads(text)
    assert text.endswith("}\n")
    assert text.count("\n") > len(obj), "not one field per line: not pretty-printed"
    assert re.search(r'^\s+"id": ', text, re.M), "not indented"

    item = next(v for v in fresh_sim.api_get("/api/v2/vps?limit=100")["data"]
                if v["id"] == vps_id)
    details = fresh_sim.api_get(f"/api/v2/vps/{vps_id}/details")
    status = fresh_sim.api_get(f"/api/v2/vps/{vps_id}/status")
    # The list's canonical object and the live status, field for field (what
    # /details adds inside nested objects is merged in too).
    merged = union(item, details, status)
    for key in union(item, status):
        assert obj.get(key, "<missing>") == merged[key], key
    assert set(obj) == set(item) | set(details) | set(status)


def test_json_holds_every_field_the_api_returned_including_nested_detail_fields(mnt, fresh_sim):
    vps_id = fresh_sim.vps_with(powerState="stopped", serviceStatus="active")[0]
    obj = json.loads(mnt.read("vps", "hostup", vps_id, "json"))

    item = next(v for v in fresh_sim.api_get("/api/v2/vps?limit=100")["data"]
                if v["id"] == vps_id)
    details = fresh_sim.api_get(f"/api/v2/vps/{vps_id}/details")
    status = fresh_sim.api_get(f"/api/v2/vps/{vps_id}/status")
    assert obj == union(item, details, status)
    assert mnt.read("vps", "hostup", vps_id, "bandwidth", "inbound_gb") == \
        json.dumps(details["bandwidth"]["inboundGb"]) + "\n"


def test_every_field_and_nothing_else_appears_as_files_matching_json(fresh_sim, make_mount):
    ids = fresh_sim.vps_ids()
    m = make_mount(hostup_config(fresh_sim))

    for vps_id in ids:
        obj = json.loads(m.read("vps", "hostup", vps_id, "json"))
        assert actual_entries(m.vps(vps_id)) == expected_entries(obj), vps_id


def test_st_size_is_the_exact_content_length_of_every_file(mnt, fresh_sim):
    restart_and_wait(mnt, fresh_sim.vps_with(powerState="running")[0])
    checked = 0
    for path in all_paths(mnt.path):
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                assert st.st_size == len(f.read()), path
            checked += 1
    assert checked > 100
    # The same through shell tools (wc -c reads the data when piped).
    one = mnt.vps(fresh_sim.vps_ids()[0])
    out = sh(f'cd {q(one)} && for f in $(find . -type f); do '
             f'echo "$f $(stat -c %s "$f") $(cat "$f" | wc -c)"; done')
    assert out.returncode == 0
    rows = [line.split() for line in out.stdout.splitlines()]
    assert len(rows) > 20
    for name, size, length in rows:
        assert size == length, name


def test_st_mtime_is_kept_for_unchanged_values_and_moves_for_changed_ones(mnt, fresh_sim):
    vps_id = fresh_sim.vps_ids()[0]
    name_path, host_path = mnt.vps(vps_id, "name"), mnt.vps(vps_id, "hostname")
    name0, host0 = os.stat(name_path).st_mtime, os.stat(host_path).st_mtime
    readme0 = os.stat(mnt.p("README")).st_mtime
    assert name0 <= time.time() + 1
    # mtimes have one-second resolution: let the clock pass the old value.
    wait_for(lambda: time.time() >= max(name0, host0) + 1.1, timeout=3, what="a new second")

    fresh_sim.patch_vps(vps_id, {"name": "renamed"})
    mnt.refresh()

    assert mnt.read("vps", "hostup", vps_id, "name") == "renamed\n"
    name1 = os.stat(name_path).st_mtime
    assert name1 > name0, "a changed value kept its old mtime"
    assert name1 <= time.time() + 1
    assert os.stat(host_path).st_mtime == host0, "an unchanged value got a new mtime"
    assert os.stat(mnt.p("README")).st_mtime == readme0
    # A second refresh that changes nothing keeps the new mtime.
    mnt.refresh()
    assert os.stat(name_path).st_mtime == name1


def test_files_are_0444_controls_0644_and_directories_0555(mnt, fresh_sim):
    restart_and_wait(mnt, fresh_sim.vps_with(powerState="running")[0])
    seen = set()
    for path in [mnt.path, *all_paths(mnt.path)]:
        mode = os.stat(path).st_mode
        name = os.path.basename(path)
        if stat.S_ISDIR(mode):
            want, kind = 0o555, "dir"
        else:
            assert stat.S_ISREG(mode), path
            want, kind = (0o644, "control") if name in CONTROLS else (0o444, "file")
        assert stat.S_IMODE(mode) == want, f"{path}: {oct(stat.S_IMODE(mode))}"
        seen.add(kind)
    assert seen == {"dir", "control", "file"}
    out = sh(f"stat -c %a {q(mnt.vps(fresh_sim.vps_ids()[0], 'power'))} "
             f"{q(mnt.vps(fresh_sim.vps_ids()[0], 'name'))} {q(mnt.p('vps'))}")
    assert out.stdout.split() == ["644", "444", "555"]


def test_files_are_owned_by_the_mounting_user(mnt):
    for path in [mnt.path, *all_paths(mnt.path)]:
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), path


def test_no_secret_appears_anywhere_in_the_tree(mnt):
    out = sh(f"grep -rl {q(TOKEN)} {q(mnt.path)}", timeout=20)
    assert out.returncode == 1 and out.stdout == "", out.stdout


def test_control_characters_in_names_from_the_api_are_escaped(fresh_sim, make_mount):
    """Names kept ESC and newline (`esc\\033[31mred`, `new\\nline`): `ls`
    could be used to attack a terminal. Escaped as %XX, like '/'."""
    fresh_sim.create_vps({"id": "esc\x1b[31mred", "name": "esc"})
    fresh_sim.create_vps({"id": "new\nline", "name": "nl", "tag\x1b]0;owned\x07": "x",
                          "list": [{"id": "bell\x07"}]})

    m = make_mount(hostup_config(fresh_sim))

    names = os.listdir(m.p("vps", "hostup"))
    assert "esc%1B[31mred" in names and "new%0Aline" in names
    assert m.read("vps", "hostup", "new%0Aline", "tag%1B]0;owned%07") == "x\n"
    assert os.listdir(m.p("vps", "hostup", "new%0Aline", "list")) == ["bell%07"]
    out = subprocess.run(["ls", "-R", m.p("vps")], capture_output=True, timeout=30)
    assert out.returncode == 0
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", out.stdout), out.stdout
    assert m.read("vps", "hostup", "esc%1B[31mred", "id") == "esc\x1b[31mred\n"


def test_an_api_field_cannot_pose_as_operation_wait_or_another_entry_of_ours(
        fresh_sim, make_mount):
    """A VPS with `"operation": {"wait": "x"}` showed operation/wait = x. The
    names infrafs adds are reserved: such a field shows with its first byte
    escaped (%6Fperation), whether or not our entry is there."""
    vps = fresh_sim.create_vps({"id": "vps_01posing00000000000000000", "name": "poser",
                                "powerState": "running", "serviceStatus": "active",
                                "operation": {"wait": "x", "status": "completed"},
                                "json": "fake", "power": "fake", "last_action": "fake"})["id"]

    m = make_mount(hostup_config(fresh_sim, refresh=300))
    d = m.vps(vps)

    assert not os.path.exists(os.path.join(d, "operation"))
    assert m.read("vps", "hostup", vps, "%6Fperation", "wait") == "x\n"
    assert m.read("vps", "hostup", vps, "%6Ason") == "fake\n"
    assert m.read("vps", "hostup", vps, "%70ower") == "fake\n"
    assert m.read("vps", "hostup", vps, "%6Cast_action") == "fake\n"
    assert m.read("vps", "hostup", vps, "power") == "start shutdown stop restart reset\n"
    assert json.loads(m.read("vps", "hostup", vps, "json"))["json"] == "fake"
    assert m.read("vps", "hostup", vps, "last_action") == ""
    # After an action, operation/ is ours, and the API's stays apart.
    out = sh(f"cd {q(d)} && echo restart > power && cat operation/wait", timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "completed\n"
    assert m.read("vps", "hostup", vps, "operation", "job_id") != ""
    assert m.read("vps", "hostup", vps, "%6Fperation", "wait") == "x\n"


def test_a_bad_detail_limit_is_refused_and_sends_nothing(fresh_sim, make_mount):
    for value in ("-1", "ten", "+5", "10000001"):
        fresh_sim.clear_requests()
        mnt = make_mount(hostup_config(fresh_sim, detail_limit=value))
        mnt.expect_stderr(r"refresh failed|mounted at .*\(hostup: error |detail_limit")

        assert ("detail_limit must be a whole number from 0 to 10000000, "
                f"not '{value}'") in mnt.provider("last_error")
        assert fresh_sim.requests() == []
