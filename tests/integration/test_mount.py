"""Mounting and the tree's shape (CONTRACT §1, §3, §7)."""

import os
import subprocess


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)


def test_tree_lists_every_vps_of_the_account(mnt, fresh_sim):
    listed = sorted(os.listdir(mnt.p("vps", "hostup")))
    assert listed == sorted(fresh_sim.vps_ids())
    assert sorted(os.listdir(mnt.path)) == ["README", "providers", "vps"]


def test_cat_shows_field_value_with_one_newline(mnt, fresh_sim):
    vps = fresh_sim.vps_ids()[0]
    out = sh(f"cat {mnt.p('vps', 'hostup', vps, 'id')}")
    assert out.returncode == 0
    assert out.stdout == vps + "\n"


def test_provider_directory_reports_ok_state(mnt):
    out = sh(f"cat {mnt.p('providers', 'hostup', 'state')}")
    assert out.stdout == "ok\n"
    assert open(mnt.p("providers", "hostup", "type")).read() == "hostup\n"
