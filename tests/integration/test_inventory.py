"""The normalized inventory: /inventory (tab-separated, one row per resource
of every account, sorted by kind, account and name) and /inventory.json,
over all five providers, with values that agree with the resource
directories."""

import glob
import json
import os

from conftest import account_config, hostup_config, sh

COLUMNS = ["kind", "account", "type", "id", "name", "status", "ip", "region", "path"]

# Each provider's table, as the man page documents it: the file in the
# resource directory that each column comes from.
MAPPING = {
    ("hostup", "vps"): {"name": "name", "status": "power_state", "ip": "primary_ip",
                        "region": "location/datacenter"},
    ("heo", "vps"): {},  # no live state: `status` says what was asked, not how it is
    ("deployhq", "vps"): {"name": "name", "status": "status", "ip": "ip_address",
                          "region": "region"},
    ("deployhq", "regions"): {"name": "name", "region": "slug"},
    ("deployhq", "sizes"): {"name": "label"},
    ("hostatlas", "servers"): {"name": "hostname", "status": "status", "ip": "ip_address"},
    ("hostatlas", "incidents"): {"name": "title", "status": "status"},
    ("hostatlas", "heartbeats"): {"name": "name", "status": "status"},
    ("dokploy", "deployments"): {"name": "title", "status": "status"},
}


def five_providers(sim):
    return (hostup_config(sim, refresh=300) +
            account_config(sim, "heo", "heo", vps="vps_101,vps_102", refresh=300) +
            account_config(sim, "deployhq", "deployhq", user="demo@example.com", refresh=300) +
            account_config(sim, "hostatlas", "hostatlas", refresh=300) +
            account_config(sim, "dokploy", "dokploy", refresh=300))


def rows(text):
    lines = text.splitlines()
    assert lines[0].split("\t") == COLUMNS
    out = []
    for line in lines[1:]:
        values = line.split("\t")
        assert len(values) == len(COLUMNS), line
        out.append(dict(zip(COLUMNS, values)))
    return out


def value(path):
    """A file's value as the inventory shows it: its one line, or ""."""
    if not os.path.isfile(path):
        return ""
    with open(path) as f:
        return f.read().removesuffix("\n")


def test_every_resource_of_every_provider_has_a_row_that_agrees_with_its_directory(
        fresh_sim, make_mount):
    m = make_mount(five_providers(fresh_sim))
    got = rows(m.read("inventory"))

    # A row for each resource directory, and nothing else.
    dirs = sh(f"cd {m.path} && find . -mindepth 3 -maxdepth 3 -type d "
              f"-not -path './providers/*'").stdout.split("\n")[:-1]
    assert sorted(r["path"] for r in got) == sorted(d.removeprefix("./") for d in dirs)
    assert {r["type"] for r in got} == {"hostup", "heo", "deployhq", "hostatlas", "dokploy"}
    for r in got:
        kind, account, entry = r["path"].split("/")
        assert (r["kind"], r["account"], r["id"]) == (kind, account, entry)
        mapping = MAPPING[(r["type"], r["kind"])]
        for column in ("name", "status", "ip", "region"):
            expected = value(m.p(r["path"], mapping[column])) if column in mapping else ""
            assert r[column] == expected, (r, column)
    # Sorted by kind, account, then name (and id among equal names).
    assert got == sorted(got, key=lambda r: (r["kind"], r["account"], r["name"], r["id"]))
    # The size stat reports is what cat reads.
    assert os.stat(m.p("inventory")).st_size == len(m.read("inventory").encode())

    # inventory.json: the same records, with null where the table is empty.
    records = json.loads(m.read("inventory.json"))
    assert [{k: v or "" for k, v in rec.items()} for rec in records] == got
    assert all(rec[c] is None for rec in records for c in ("name", "status", "ip", "region")
               if c not in MAPPING[(rec["type"], rec["kind"])])


def test_a_change_shows_in_the_inventory_after_a_refresh(fresh_sim, make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=300))
    vps_id = fresh_sim.vps_ids()[0]
    before = m.read("inventory")
    (row,) = [r for r in rows(before) if r["id"] == vps_id]
    assert row["name"] != "renamed-01"

    fresh_sim.patch_vps(vps_id, {"name": "renamed-01"})
    m.refresh()

    (row,) = [r for r in rows(m.read("inventory")) if r["id"] == vps_id]
    assert row["name"] == "renamed-01"
    assert any(r["name"] == "renamed-01" for r in json.loads(m.read("inventory.json")))
    # Looked up by name, as an operator would.
    out = sh(f"awk -F'\\t' '$5 == \"renamed-01\" {{print $9}}' {m.p('inventory')}")
    assert out.stdout == f"vps/hostup/{vps_id}\n"


def escaped(name):
    """A name as the tree shows it (man infrafs, "Names")."""
    if name in (".", ".."):
        return "%2E" * len(name)
    return "".join(f"%{ord(c):02X}" if c in "%/" or ord(c) < 0x20 or ord(c) == 0x7f else c
                   for c in name)


def links(directory):
    return {name: os.readlink(os.path.join(directory, name)) for name in os.listdir(directory)}


def test_by_name_and_by_ip_link_every_named_resource_of_every_provider(fresh_sim, make_mount):
    m = make_mount(five_providers(fresh_sim))
    got = rows(m.read("inventory"))
    by_name, by_ip = links(m.p("by-name")), links(m.p("by-ip"))

    # Every named resource is linked once, and every link is to a resource.
    named = [r for r in got if r["name"]]
    assert sorted(by_name.values()) == sorted("../" + r["path"] for r in named)
    # by-ip: the ip column, and HostUp's other addresses (ip_addresses/*/address).
    def addresses(r):
        out = [r["ip"]] if r["ip"] else []
        if r["type"] == "hostup":
            for f in sorted(glob.glob(m.p(r["path"], "ip_addresses", "*", "address"))):
                if value(f) and value(f) not in out:
                    out.append(value(f))
        return out
    assert sorted(by_ip.values()) == sorted("../" + r["path"] for r in got for _ in addresses(r))
    v6 = next(a for r in got for a in addresses(r) if ":" in a)
    assert os.path.isdir(m.p("by-ip", v6)) and os.path.exists(m.p("by-ip", v6, "primary_ip"))
    for name, target in by_name.items():
        (r,) = [r for r in named if "../" + r["path"] == target]
        # The plain name where no other resource has it, else told apart.
        shared = sum(o["name"] == r["name"] for o in named) > 1
        twins = sum(o["name"] == r["name"] and o["account"] == r["account"] for o in named) > 1
        expected = (f"{r['name']}@{r['account']}@{r['id']}" if twins
                    else f"{r['name']}@{r['account']}" if shared else r["name"])
        assert name == escaped(r["name"]) + expected[len(r["name"]):], (name, r)
    # As an operator uses them.
    out = sh(f"cd {m.p('by-name', 'web-01')} && cat power_state name")
    assert out.returncode == 0 and out.stdout.endswith("web-01\n"), out
    ip = next(r for r in got if r["type"] == "hostatlas" and r["ip"])
    out = sh(f"cat {m.p('by-ip', ip['ip'], 'hostname')}")
    assert out.stdout == ip["name"] + "\n"
    # Links are what ls -l and find show them as.
    assert sh(f"find {m.p('by-name')} -type l | wc -l").stdout.strip() == str(len(by_name))


def test_a_name_two_accounts_share_gets_each_account(fresh_sim, make_mount):
    m = make_mount(hostup_config(fresh_sim, refresh=300) +
                   hostup_config(fresh_sim, section="hostup2", refresh=300))
    vps_id = fresh_sim.vps_ids()[0]
    name = fresh_sim.get_vps(vps_id)["name"]

    by_name = links(m.p("by-name"))
    assert name not in by_name
    assert by_name[f"{name}@hostup"] == f"../vps/hostup/{vps_id}"
    assert by_name[f"{name}@hostup2"] == f"../vps/hostup2/{vps_id}"
    assert m.read("by-name", f"{name}@hostup2", "id") == vps_id + "\n"


def test_hostile_names_cannot_escape_and_twins_in_one_account_get_their_ids(fresh_sim,
                                                                           make_mount):
    for name in ("../../etc", "a/b", ".", "..", "twin", "twin"):
        fresh_sim.create_vps({"name": name})
    m = make_mount(hostup_config(fresh_sim, refresh=300))

    by_name = links(m.p("by-name"))
    for name, target in by_name.items():
        assert "/" not in name and name not in (".", "..")
        real = os.path.realpath(m.p("by-name", name))
        assert real.startswith(m.p("vps", "hostup") + "/"), (name, target, real)
        assert os.path.dirname(real) == m.p("vps", "hostup")
    assert {"..%2F..%2Fetc", "a%2Fb", "%2E", "%2E%2E"} <= set(by_name)
    twins = sorted(n for n in by_name if n.startswith("twin@"))
    assert len(twins) == 2 and all(n.startswith("twin@hostup@vps_") for n in twins), twins
    assert "twin" not in by_name
