"""The normalized inventory: /inventory (tab-separated, one row per resource
of every account, sorted by kind, account and name) and /inventory.json,
over all five providers, with values that agree with the resource
directories."""

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
    dirs = sorted(os.path.relpath(p, m.path) for p in
                  sh(f"ls -d {m.path}/*/*/*/").stdout.split()
                  if not p.startswith(f"{m.path}/providers/"))
    assert sorted(r["path"] for r in got) == [d.rstrip("/") for d in dirs]
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
