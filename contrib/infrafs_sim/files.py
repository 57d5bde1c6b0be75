"""The files the simulator writes once it listens: the ports file
(--ports-file) and the demo config (--demo-config). Both are written
atomically, so that a reader never sees half of one."""

import json
import os


def write_atomic(path, text, mode=0o666):
    """Write `text` to a temporary file created with `mode` (less the
    umask), sync it, and rename it to `path`."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_ports_file(path, ports):
    """{"provider": port, ...}: a test waits for this file to appear."""
    write_atomic(path, json.dumps(ports) + "\n")


def write_demo_config(path, sections):
    """Mode 0600 from the start: it holds tokens, and infrafs refuses a
    group- or other-readable config with an inline token."""
    write_atomic(path, "# infrafs demo: every account talks to the local simulator.\n"
                 + "\n".join(sections), 0o600)
