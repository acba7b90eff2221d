"""Hard and soft interrupt statistics (what ``lttng-irqstats`` computes).

Definitions (lttng-analyses'):

* hard IRQ: an ``irq_handler_entry`` on a CPU is ended by the next ``irq_handler_exit`` on that
  CPU if it is the next IRQ event there and has the same ``irq``; otherwise it is dropped.
  The name of an IRQ is the ``name`` of its last entry.
* soft IRQ: an ``irq_softirq_entry`` of vector ``vec`` on a CPU is ended by the next
  ``irq_softirq_exit`` of that vector on that CPU when no other entry of it came in between.
  Its raise latency is from the first ``irq_softirq_raise`` of that vector on that CPU after
  the previous entry of it (raises are level-triggered: later ones before the entry are
  folded into the first) to the entry; an entry with no such raise has no latency.

Interrupts are counted when their exit is in [begin, end]. Event names: LTTng's
(``irq_handler_*``, ``irq_softirq_*``), also ``softirq_*`` and perf's ``irq:*``.
Paired in one compiled pass per kind in trace order (:mod:`._machines`): no per-event Python loop.

Imports :mod:`tracewatch.ctf` and :mod:`tracewatch.kernel`; never output or cli.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ctf.trace import TraceSet
from ..errors import DecodeError
from ..kernel.fast import dense_index, texts
from ..kernel.layouts import KernelLayout, detect_layout
from ..kernel.state import ColumnSpec, KernelColumns, period_windows, read_columns
from . import Table
from ._machines import pair_hard_irqs, pair_soft_irqs
from ._stats import group_stats, histogram

__all__ = ["irq_histograms", "IrqResult", "irq_stats", "irq_periods", "irq_from_columns", "SOFTIRQ_NAMES", "NEEDED_EVENTS",
           "irq_layout"]

#: Softirq vector names, from include/linux/interrupt.h (lttng-analyses' names).
SOFTIRQ_NAMES: dict[int, str] = {0: "HI_SOFTIRQ", 1: "TIMER_SOFTIRQ", 2: "NET_TX_SOFTIRQ",
                                 3: "NET_RX_SOFTIRQ", 4: "BLOCK_SOFTIRQ", 5: "BLOCK_IOPOLL_SOFTIRQ",
                                 6: "TASKLET_SOFTIRQ", 7: "SCHED_SOFTIRQ", 8: "HRTIMER_SOFTIRQ",
                                 9: "RCU_SOFTIRQ"}

#: logical event -> actual names it may have, in order of preference
_IRQ_EVENTS: dict[str, tuple[str, ...]] = {
    "irq_handler_entry": ("irq_handler_entry", "irq:irq_handler_entry"),
    "irq_handler_exit": ("irq_handler_exit", "irq:irq_handler_exit"),
    "irq_softirq_raise": ("irq_softirq_raise", "softirq_raise", "irq:softirq_raise"),
    "irq_softirq_entry": ("irq_softirq_entry", "softirq_entry", "irq:softirq_entry"),
    "irq_softirq_exit": ("irq_softirq_exit", "softirq_exit", "irq:softirq_exit"),
}

NEEDED_EVENTS: list[str | tuple[str, ...]] = [("irq_handler_entry", "irq_softirq_entry"),
                                              ("irq_handler_exit", "irq_softirq_exit")]


@dataclass
class IrqResult:
    """Interrupt statistics over [begin, end] (ns since the epoch).

    ``hard``: irq, name, count, min_ns, avg_ns, max_ns, stdev_ns (sample standard deviation,
    NaN below two), by irq number. ``soft``: vec, name, the same duration statistics, then
    raise_count, min_latency_ns, avg_latency_ns, max_latency_ns, stdev_latency_ns (raise to
    entry; NaN without raises), by vector. ``log``: every interrupt in order of exit: hard
    (bool), nr, cpu, begin_ts, end_ts, duration_ns, raise_ts (-1: none or hard IRQ).
    ``fault``: with ``partial=True``, the :class:`~tracewatch.errors.DecodeError` that cut
    the trace short (the result then covers the events read before it); None otherwise.
    """

    begin: int
    end: int
    hard: Table
    soft: Table
    log: Table
    fault: DecodeError | None = field(default=None, compare=False, repr=False)

    @property
    def duration(self) -> int:
        return self.end - self.begin


def irq_layout(ts: TraceSet, layout: KernelLayout | None = None) -> KernelLayout:
    """The kernel layout of ``ts`` with the IRQ events it has added (logical LTTng names)."""
    layout = layout or detect_layout(ts)
    present = {c.name for c in ts.classes}
    extra: dict[str, str] = {}
    for logical, alts in _IRQ_EVENTS.items():
        for a in alts:
            if a in present:
                extra[logical] = a
                break
    return dataclasses.replace(layout, events={**layout.events, **extra})


def irq_stats(ts: TraceSet, begin: int | None = None, end: int | None = None,
              cpus: Collection[int] | None = None, irqs: Collection[int] | None = None,
              softirqs: Collection[int] | None = None,
              layout: KernelLayout | None = None, *, partial: bool = False) -> IrqResult:
    """Interrupt statistics of the trace set over [begin, end] (whole trace when None).

    ``cpus`` keeps interrupts on those CPUs; ``irqs``/``softirqs`` those IRQ numbers /
    vectors (when one of them is given, only the given kind is reported).
    ``partial``: on a corrupt or truncated trace, return the result over the events read
    before the fault, with the error in ``fault``, instead of raising
    :class:`~tracewatch.errors.DecodeError`.
    """
    return irq_from_columns(_read(ts, begin, end, layout, partial=partial), cpus, irqs, softirqs)


def needed_columns(layout: KernelLayout) -> ColumnSpec:
    """The columns irq reads (``layout``: from :func:`irq_layout`); raises
    :class:`~tracewatch.kernel.MissingEventsError` without its events."""
    layout.require("irq", NEEDED_EVENTS)
    return ColumnSpec({
        "irq_handler_entry": ("irq", "name"), "irq_handler_exit": ("irq",),
        "irq_softirq_raise": ("vec",), "irq_softirq_entry": ("vec",), "irq_softirq_exit": ("vec",)})


def _read(ts: TraceSet, begin: int | None, end: int | None, layout: KernelLayout | None,
          period: int | None = None, partial: bool = False) -> KernelColumns:
    layout = irq_layout(ts, layout)
    spec = needed_columns(layout)
    return read_columns(ts, layout, spec.wanted, begin, end, period=period, text="codes",
                        partial=partial)


def irq_periods(ts: TraceSet, period: int, begin: int | None = None, end: int | None = None,
                cpus: Collection[int] | None = None, irqs: Collection[int] | None = None,
                softirqs: Collection[int] | None = None,
                layout: KernelLayout | None = None, *, partial: bool = False) -> list[IrqResult]:
    """:func:`irq_stats` per window of ``period`` ns ([t, t + period), aligned on the first
    event of the range; windows without events left out), from one pass over the trace
    (``partial``: see :func:`irq_stats`; every window's result then holds the fault)."""
    kc = _read(ts, begin, end, layout, period, partial=partial)
    return [irq_from_columns(w, cpus, irqs, softirqs) for _, _, w in period_windows(kc)]


def _empty(fields: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.zeros(0, v) for k, v in fields.items()}


def irq_from_columns(kc: KernelColumns, cpus: Collection[int] | None = None,
                     irqs: Collection[int] | None = None,
                     softirqs: Collection[int] | None = None) -> IrqResult:
    """:func:`irq_stats` on columns already read."""
    lo = kc.first_ts if kc.first_ts is not None else 0
    hi = kc.last_ts if kc.last_ts is not None else 0
    want_hard = irqs is not None or softirqs is None
    want_soft = softirqs is not None or irqs is None

    # ---- hard IRQs
    he = kc.get("irq_handler_entry") or {"seq": np.zeros(0, np.int64), "timestamp": np.zeros(0, np.int64),
                                         "cpu": np.zeros(0, np.int32), "irq": np.zeros(0, np.int64),
                                         "name": np.empty(0, object)}
    hx = kc.get("irq_handler_exit") or _empty({"seq": np.int64, "timestamp": np.int64, "cpu": np.int32,
                                               "irq": np.int64})
    (eci, xci), ucpu = dense_index([he["cpu"].astype(np.int64), hx["cpu"].astype(np.int64)])
    ei, xr = pair_hard_irqs(he["seq"].astype(np.int64), eci, he["irq"].astype(np.int64),
                            hx["seq"].astype(np.int64), xci, hx["irq"].astype(np.int64), ucpu.size)
    h_begin, h_end = he["timestamp"][ei], hx["timestamp"][xr]
    h_nr, h_cpu, h_seq = he["irq"][ei].astype(np.int64), hx["cpu"][xr].astype(np.int64), hx["seq"][xr]
    hk = (h_end >= lo) & (h_end <= hi) & want_hard
    if cpus is not None:
        hk &= np.isin(h_cpu, np.fromiter(cpus, np.int64))
    if irqs is not None:
        hk &= np.isin(h_nr, np.fromiter(irqs, np.int64))
    h_begin, h_end, h_nr, h_cpu, h_seq = h_begin[hk], h_end[hk], h_nr[hk], h_cpu[hk], h_seq[hk]
    h_dur = (h_end - h_begin).astype(np.int64)
    unr, hinv = np.unique(h_nr, return_inverse=True)
    hst = group_stats(hinv, h_dur, unr.size)
    # name: that of the last entry of the IRQ (up to the end of the range)
    names = np.full(unr.size, "unknown", object)
    if unr.size:
        m = np.flatnonzero(he["timestamp"] <= hi)
        e_nr = he["irq"][m].astype(np.int64)
        pos = np.searchsorted(unr, e_nr)
        ok = (pos < unr.size) & (unr[np.minimum(pos, unr.size - 1)] == e_nr)
        last = np.full(unr.size, -1, np.int64)
        np.maximum.at(last, pos[ok], m[ok])
        has = last >= 0
        names[has] = texts(he["name"][last[has]])
    hard = Table({"irq": unr, "name": names, **hst})

    # ---- soft IRQs
    empty_v = {"seq": np.int64, "timestamp": np.int64, "cpu": np.int32, "vec": np.int64}
    se = kc.get("irq_softirq_entry") or _empty(empty_v)
    sx = kc.get("irq_softirq_exit") or _empty(empty_v)
    sr = kc.get("irq_softirq_raise") or _empty(empty_v)
    s_cpu = se["cpu"].astype(np.int64)
    (k_e, k_x, k_r), ukey = dense_index([(se["cpu"].astype(np.int64) << 32) | se["vec"].astype(np.int64),
                                         (sx["cpu"].astype(np.int64) << 32) | sx["vec"].astype(np.int64),
                                         (sr["cpu"].astype(np.int64) << 32) | sr["vec"].astype(np.int64)])
    sei, sxr, raise_ts = pair_soft_irqs(se["seq"].astype(np.int64), k_e, sx["seq"].astype(np.int64), k_x,
                                        sr["seq"].astype(np.int64), k_r, sr["timestamp"].astype(np.int64),
                                        ukey.size)
    s_begin, s_end = se["timestamp"][sei], sx["timestamp"][sxr]
    s_v, s_c, s_sq, s_raise = se["vec"][sei].astype(np.int64), s_cpu[sei], sx["seq"][sxr], raise_ts[sei]
    sk = (s_end >= lo) & (s_end <= hi) & want_soft
    if cpus is not None:
        sk &= np.isin(s_c, np.fromiter(cpus, np.int64))
    if softirqs is not None:
        sk &= np.isin(s_v, np.fromiter(softirqs, np.int64))
    s_begin, s_end, s_v, s_c, s_sq, s_raise = (s_begin[sk], s_end[sk], s_v[sk], s_c[sk], s_sq[sk],
                                               s_raise[sk])
    s_dur = (s_end - s_begin).astype(np.int64)
    uvec, sinv = np.unique(s_v, return_inverse=True)
    sst = group_stats(sinv, s_dur, uvec.size)
    has_r = s_raise >= 0
    lst = group_stats(sinv[has_r], (s_begin - s_raise)[has_r], uvec.size)
    soft = Table({"vec": uvec,
                  "name": np.array([SOFTIRQ_NAMES.get(v, str(v)) for v in uvec.tolist()], object),
                  **sst, "raise_count": lst["count"],
                  "min_latency_ns": np.where(lst["count"] > 0, lst["min_ns"], np.nan),
                  "avg_latency_ns": lst["avg_ns"],
                  "max_latency_ns": np.where(lst["count"] > 0, lst["max_ns"], np.nan),
                  "stdev_latency_ns": lst["stdev_ns"]})

    # ---- log
    order = np.argsort(np.concatenate([h_seq, s_sq]), kind="stable")
    log = Table({"hard": np.concatenate([np.ones(h_seq.size, bool), np.zeros(s_sq.size, bool)])[order],
                 "nr": np.concatenate([h_nr, s_v])[order],
                 "cpu": np.concatenate([h_cpu, s_c])[order],
                 "begin_ts": np.concatenate([h_begin, s_begin])[order],
                 "end_ts": np.concatenate([h_end, s_end])[order],
                 "duration_ns": np.concatenate([h_dur, s_dur])[order],
                 "raise_ts": np.concatenate([np.full(h_seq.size, -1, np.int64), s_raise])[order]})
    return IrqResult(lo, hi, hard, soft, log, fault=kc.fault)


def irq_histograms(r: IrqResult, resolution: int = 20) -> list[tuple[bool, int, str, Table]]:
    """Per hard IRQ and per softirq vector of ``r``: (hard, number, name, duration histogram)
    (lttng-irqfreq), in the order of ``r.hard`` then ``r.soft``."""
    log = r.log
    out: list[tuple[bool, int, str, Table]] = []
    for hard, table, key in ((True, r.hard, "irq"), (False, r.soft, "vec")):
        for x in table.rows():
            nr = int(x[key])
            m = (log["hard"] == hard) & (log["nr"] == nr)
            out.append((hard, nr, str(x["name"]), Table(histogram(log["duration_ns"][m], resolution))))
    return out
