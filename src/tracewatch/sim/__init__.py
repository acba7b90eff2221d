"""Deterministic simulator of a host running virtual machines, writing LTTng-like traces.

>>> from tracewatch.sim import simulate, build_scenario, gebai2014
>>> res = simulate(gebai2014(seed=1), "/tmp/gebai")        # doctest: +SKIP
>>> res.events, res.truth_path                               # doctest: +SKIP

:func:`simulate` runs a :class:`~tracewatch.sim.model.Scenario` (see
:mod:`tracewatch.sim.model`; :mod:`tracewatch.sim.scheduler` does the simulation) and writes,
under the output directory, one CTF trace per machine (``host/``, ``guest-NAME/``) through
:mod:`tracewatch.ctf.writer` plus ``truth.json`` (:mod:`tracewatch.sim.truth`).  The same
scenario and seed give byte-identical output.
"""

from __future__ import annotations

import gc
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import TracewatchError
from .emit import GUEST_EVENTS, HOST_EVENTS, TraceOut
from .model import (
    HOST_EPOCH_S,
    SCENARIOS,
    GuestSpec,
    GuestTaskSpec,
    HostTaskSpec,
    Scenario,
    build_scenario,
    gebai2014,
    parse_duration,
    parse_hog,
    paths,
)
from .scheduler import build_host, run_until
from .truth import GuestClock, build_truth

__all__ = ["simulate", "SimResult", "Scenario", "GuestSpec", "GuestTaskSpec", "HostTaskSpec",
           "build_scenario", "gebai2014", "paths", "parse_duration", "parse_hog", "SCENARIOS"]


@dataclass
class SimResult:
    """What :func:`simulate` produced: event counts, timings, paths."""

    outdir: Path
    truth_path: Path
    events: int
    per_machine: dict[str, int]
    sim_seconds: float
    write_seconds: float

    @property
    def events_per_second(self) -> float:
        total = self.sim_seconds + self.write_seconds
        return self.events / total if total > 0 else 0.0


def _trace_uuid(sc: Scenario, name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"tracewatch-sim:{sc.name}:{sc.seed}:{name}")


def simulate(sc: Scenario, outdir: str | os.PathLike[str], overwrite: bool = False,
             window: int = 200_000_000) -> SimResult:
    """Simulate ``sc`` and write ``outdir/host``, ``outdir/guest-NAME`` and
    ``outdir/truth.json``.  ``outdir`` must be empty or absent unless ``overwrite``.

    Every CPU is simulated ``window`` ns at a time, then the events of that window are
    written and dropped, so memory holds one window of events (plus the ground truth);
    the output does not depend on ``window``."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived tuples and no cycles: the cyclic GC only costs
    try:
        return _simulate(sc, outdir, overwrite, window)
    finally:
        if gc_was_enabled:
            gc.enable()


def _simulate(sc: Scenario, outdir: str | os.PathLike[str], overwrite: bool, window: int
              ) -> SimResult:
    sc.validate()
    if window <= 0:
        raise TracewatchError("window must be positive")
    out = Path(outdir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise TracewatchError(f"{out} is not empty (overwrite=True or --force replaces "
                             "a previous run)")
    out.mkdir(parents=True, exist_ok=True)
    t_sim = t_write = 0.0
    t0 = time.perf_counter()
    cpus, guests, threads = build_host(sc)
    env: dict[str, str | int] = {"sim_scenario": sc.name, "sim_seed": sc.seed}
    host = TraceOut(out / "host", sc.hostname, HOST_EVENTS, list(range(sc.cpus)),
                    HOST_EPOCH_S, 0, {**env, "sim_role": "host"}, _trace_uuid(sc, "host"))
    outs: list[TraceOut] = []
    for g in guests:
        clock = GuestClock(g.spec)
        name = f"guest-{g.spec.name}"
        outs.append(TraceOut(out / name, g.spec.name, GUEST_EVENTS,
                             [v.idx for v in g.vcpus], clock.origin // 1_000_000_000,
                             clock.origin % 1_000_000_000,
                             {**env, "sim_role": "guest", "vm_uid": g.spec.vm_uid},
                             _trace_uuid(sc, name), drift_ppb=clock.k))
    t1 = time.perf_counter()
    t_write += t1 - t0
    start = end = 0
    while end < sc.duration:
        end = min(end + window, sc.duration)
        t0 = time.perf_counter()
        run_until(cpus, guests, start, end)
        start = end
        t1 = time.perf_counter()
        for pc in cpus:
            host.write(pc.idx, pc.out)
            pc.out.clear()
        for g, o in zip(guests, outs, strict=True):
            for v in g.vcpus:
                o.write(v.idx, v.out)
                v.out.clear()
        t_sim += t1 - t0
        t_write += time.perf_counter() - t1
    t0 = time.perf_counter()
    counts = {"host": host.count}
    host.close()
    for g, o in zip(guests, outs, strict=True):
        counts[f"guest-{g.spec.name}"] = o.count
        o.close()
    t_write += time.perf_counter() - t0
    truth = build_truth(sc, cpus, guests, threads, counts)
    truth_path = out / "truth.json"
    truth_path.write_text(json.dumps(truth, separators=(",", ":")) + "\n")
    return SimResult(out, truth_path, sum(counts.values()), counts, t_sim, t_write)
