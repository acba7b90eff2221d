"""Parsing of time options (``--begin``/``--end``)."""

from __future__ import annotations

import re

import click

__all__ = ["parse_time_ns"]


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
