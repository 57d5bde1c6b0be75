

def test_allow_other_turns_on_default_permissions(fresh_sim, make_mount):
    """infrafs does not check who writes a control file, so when other users
    are let in the kernel must enforce the 0644 modes."""
    from conftest import hostup_config
    m = make_mount(hostup_config(fresh_sim), extra_opts=["allow_other"])
    with open("/proc/mounts") as f:
        line = next(l for l in f if l.split()[1] == m.path)
    opts = line.split()[3].split(",")
    assert "allow_other" in opts and "default_permissions" in opts
