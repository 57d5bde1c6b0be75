"""Validators of the providers' behaviour switches (/_sim/config): each takes
the JSON value and returns it normalised or raises SimError. Validators that
only one provider needs live in its module."""

from .messages import SimError


def v_bool(value):
    if not isinstance(value, bool):
        raise SimError(400, "must be true or false")
    return value


def v_count(value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SimError(400, "must be a non-negative integer")
    return value


def v_seconds(value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise SimError(400, "must be a non-negative number")
    return float(value)


def v_str(value):
    if not isinstance(value, str) or not value:
        raise SimError(400, "must be a non-empty string")
    return value


def v_choice(*choices):
    def check(value):
        if value not in choices:
            raise SimError(400, f"must be one of {', '.join(choices)}")
        return value
    return check


def v_rate_limit(value):
    if not isinstance(value, dict):
        raise SimError(400, 'must be {"limit": N, "window_s": S}')
    limit, window = value.get("limit"), value.get("window_s")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise SimError(400, "limit must be an integer >= 1")
    if not isinstance(window, (int, float)) or isinstance(window, bool) or window <= 0:
        raise SimError(400, "window_s must be a number > 0")
    return {"limit": limit, "window_s": window}
