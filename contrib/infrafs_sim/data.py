"""Helpers for the providers' generated data: ISO 8601 time stamps,
ULID-like ids, and the deep merge that admin edits use."""

import base64
import os
import time


def iso_ms(epoch):
    """UTC ISO 8601 with milliseconds and Z, as the HostUp docs show."""
    sec, ms = divmod(int(round(epoch * 1000)), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{ms:03d}Z"


def iso_s(epoch):
    """UTC ISO 8601 to the second, as the HostAtlas examples show."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# RFC 4648 base32 output mapped onto Crockford's lowercase alphabet gives
# ULID-looking ids ("vps_01hx...") from random bytes in one C-speed pass.
_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
                           "0123456789abcdefghjkmnpqrstvwxyz")


def ulid_like(prefix, raw=None):
    """prefix + "01" + 24 Crockford chars (15 bytes of randomness)."""
    raw = os.urandom(15) if raw is None else raw
    return prefix + "01" + base64.b32encode(raw).decode().translate(_CROCKFORD)


def deep_merge(target, patch):
    """Merge `patch` into `target` in place: objects merge recursively, any
    other value (null included) replaces. Null does not delete because the
    provider fields are nullable, not optional."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        else:
            target[key] = value
    return target
