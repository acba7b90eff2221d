"""Parsing of time options (``--begin``/``--end``)."""

from __future__ import annotations

import re

import click

__all__ = ["parse_time_ns", "parse_duration_ns"]


def parse_time_ns(text: str | None) -> int | None:
    """``1457113582.794565804`` (seconds since the epoch) or ``1457113582794565804`` (ns)."""
    if text is None:
        return None
    m = re.fullmatch(r"(-?\d+)\.(\d{1,9})", text)
    if m:
        return int(m.group(1)) * 1_000_000_000 + int(m.group(2).ljust(9, "0"))
    if re.fullmatch(r"-?\d+", text):
        v = int(text)
        return v if abs(v) >= 10**12 else v * 1_000_000_000
    raise click.BadParameter(f"{text!r}: expected SECONDS[.NANOSECONDS] since the epoch or nanoseconds")


_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
          "h": 3_600_000_000_000}


def parse_duration_ns(text: str | None) -> int | None:
    """``1s``, ``500ms``, ``2.5s``, ``100us``, ``10ns``, ``1m``, ``1h`` (a bare number: seconds)
    as a positive number of nanoseconds."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|ms|s|m|h)?\s*", text)
    if not m:
        raise click.BadParameter(f"{text!r}: expected a duration such as 1s, 500ms, 100us")
    whole, _, frac = m.group(1).partition(".")
    unit = _UNITS[m.group(2) or "s"]
    ns = int(whole or "0") * unit + (int(frac) * unit) // (10 ** len(frac)) if frac else int(whole) * unit
    if ns <= 0:
        raise click.BadParameter(f"{text!r}: the duration must be positive")
    return ns
