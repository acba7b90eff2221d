"""Discovery of a fleet's traces: which trace directories under a root belong to which host.

A fleet root holds one directory per collection (``ROOT/HOST/kernel/``, the output of an
LTTng session, often several traces: kernel/, ust/uid/.../64-bit/); a directory may also
hold the traces of several machines (a host and its guests, two ends of a TCP exchange).
Traces are found by their ``metadata`` files (:func:`tracewatch.ctf.trace.find_traces`) and
grouped, within each top-level directory under the root, by machine the way
:mod:`tracewatch.sync` tells machines apart (:func:`tracewatch.sync.host_id`: clock uuid,
else hostname, else path). The same machine under two top-level directories (two nights,
two copies) gives two hosts: each is named by its hostname, made unique with its directory
(``HOSTNAME@DIR``) when several share it.

Owns :class:`HostTraces` and :func:`discover`; imports :mod:`tracewatch.ctf`,
:mod:`tracewatch.sync` and :mod:`tracewatch.errors` only. Reads metadata only, never a
stream: a trace whose metadata cannot be read is its own host (the error shows up when it
is analysed).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from ..ctf.trace import Trace, find_traces
from ..errors import TracewatchError
from ..sync.matching import host_id

__all__ = ["HostTraces", "discover"]


@dataclass(frozen=True)
class HostTraces:
    """The traces of one host of a fleet.

    ``host``: its name in the fleet (unique); ``hostname``: the one its traces record (""
    when unknown); ``host_id``: :func:`tracewatch.sync.host_id` of its traces; ``paths``:
    its trace directories, sorted; ``nbytes``: the size of their stream files (the larger
    hosts are submitted first)."""

    host: str
    hostname: str
    host_id: str
    paths: tuple[str, ...]
    nbytes: int = 0


def _size(trace_dir: str) -> int:
    total = 0
    try:
        names = os.listdir(trace_dir)
    except OSError:
        return 0
    for name in names:
        p = os.path.join(trace_dir, name)
        if name != "metadata" and not name.startswith(".") and os.path.isfile(p):
            total += os.path.getsize(p)
    return total


def discover(root: str | os.PathLike[str]) -> list[HostTraces]:
    """The hosts whose traces are under ``root`` (see the module doc), in the order of their
    first trace directory. Raises :class:`~tracewatch.errors.TraceNotFoundError` when there
    is no trace under ``root``."""
    root_s = os.fspath(root)
    groups: dict[tuple[str, str], list[str]] = {}
    names: dict[tuple[str, str], str] = {}
    hostnames: dict[tuple[str, str], str] = {}
    for d in find_traces(root_s):
        rel = os.path.relpath(d, root_s)
        top = rel.split(os.sep)[0] if rel != "." else "."
        try:
            t = Trace.open(d)
            hid, hostname = host_id(t), t.hostname
        except (TracewatchError, OSError, ValueError):
            hid, hostname = d, ""
        key = (top, hid)
        groups.setdefault(key, []).append(d)
        if key not in names:
            hostnames[key] = hostname
            fallback = top if top != "." else os.path.basename(os.path.abspath(root_s))
            names[key] = hostname or fallback
    counts = Counter(names.values())
    out: list[HostTraces] = []
    taken: set[str] = set()
    for key, paths in groups.items():
        name = names[key]
        if counts[name] > 1:
            common = os.path.commonpath(paths) if len(paths) > 1 else paths[0]
            name = f"{name}@{os.path.relpath(common, root_s)}"
        label, k = name, 2
        while label in taken:
            label, k = f"{name}#{k}", k + 1
        taken.add(label)
        out.append(HostTraces(label, hostnames[key], key[1], tuple(sorted(paths)),
                              sum(_size(p) for p in paths)))
    return out
