"""LAMI 1.0 output (what lttng-analyses prints with ``--mi``) and CSV output of tables.

LAMI (LTTng Analyses Machine Interface) 1.0 is a JSON document: ``{"results": [table...]}``
where each result table is ``{"class": name | {"inherit": name, "title": ...},
"time-range": {...}, "data": [[value...]...]}`` and each value a typed object such as
``{"class": "duration", "value": ns}``, ``{"class": "process", "name": .., "pid": .., "tid": ..}``,
``{"class": "ratio", "value": 0.25}`` or ``{"class": "unknown"}``. With ``--mi --metadata``
the document describes the analysis instead: title, version, authors, tags and, for each
table class, its title and column descriptions (title, class, unit).

The table classes, titles and row layouts are lttng-analyses' (cputop, schedstats,
syscallstats, irqstats, io, memtop), so that LAMI consumers (Trace Compass...) read ours the same way.

Owns the conversion of analysis results to LAMI objects and of :class:`Table` to CSV. May
import :mod:`tracewatch.analyses`; never :mod:`tracewatch.cli`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata as _md
from typing import Any, TextIO

import numpy as np

from ..analyses import Table
from ..analyses.cputop import CputopResult
from ..analyses.io import IoResult
from ..analyses.irq import IrqResult
from ..analyses.mem import MemResult
from ..analyses.periodic import CountResult
from ..analyses.sched import SchedResult
from ..analyses.syscalls import SyscallsResult

__all__ = ["LAMI_VERSION", "Column", "TableClass", "AnalysisSpec", "SPECS", "metadata", "document",
           "cputop_tables", "sched_tables", "syscalls_tables", "irq_tables", "io_tables", "mem_tables",
           "count_tables", "table_to_csv", "size", "disk", "path", "fd", "boolean",
           "duration", "number", "ratio", "string", "timestamp", "time_range", "process", "cpu",
           "irq", "syscall", "unknown"]

LAMI_VERSION = (1, 0)

Obj = dict[str, Any]


# ---------------------------------------------------------------- typed values

def unknown() -> Obj:
    return {"class": "unknown"}


def _num(cls: str, v: Any) -> Obj:
    if v is None:
        return unknown()
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return unknown()
    return {"class": cls, "value": v}


def number(v: Any) -> Obj:
    return _num("number", v)


def duration(ns: Any) -> Obj:
    """A duration in ns (``unknown`` for None/NaN)."""
    return _num("duration", ns)


def ratio(v: Any) -> Obj:
    return _num("ratio", v)


def timestamp(ns: Any) -> Obj:
    return _num("timestamp", ns)


def string(s: Any) -> Obj:
    return {"class": "string", "value": str(s)}


def time_range(begin: int, end: int) -> Obj:
    return {"class": "time-range", "begin": timestamp(int(begin)), "end": timestamp(int(end))}


def process(name: str | None = None, pid: int | None = None, tid: int | None = None) -> Obj:
    """A process/thread (keys left out when unknown; pid < 0 means unknown)."""
    o: Obj = {"class": "process"}
    if name is not None:
        o["name"] = str(name)
    if pid is not None and int(pid) >= 0:
        o["pid"] = int(pid)
    if tid is not None:
        o["tid"] = int(tid)
    return o


def cpu(cpu_id: int) -> Obj:
    return {"class": "cpu", "id": int(cpu_id)}


def irq(is_hard: bool, nr: int, name: str | None = None) -> Obj:
    o: Obj = {"class": "irq", "hard": bool(is_hard), "nr": int(nr)}
    if name is not None:
        o["name"] = str(name)
    return o


def syscall(name: str) -> Obj:
    return {"class": "syscall", "name": str(name)}


def size(nbytes: Any) -> Obj:
    """A size in bytes."""
    return _num("size", nbytes)


def disk(name: str) -> Obj:
    return {"class": "disk", "name": str(name)}


def path(p: str) -> Obj:
    return {"class": "path", "path": str(p)}


def fd(n: int) -> Obj:
    return {"class": "fd", "fd": int(n)}


def boolean(v: bool) -> Obj:
    return {"class": "bool", "value": bool(v)}


# ---------------------------------------------------------------- table classes, metadata

@dataclass(frozen=True)
class Column:
    title: str
    cls: str
    unit: str | None = None

    def native(self) -> Obj:
        o: Obj = {"title": self.title, "class": self.cls}
        if self.unit:
            o["unit"] = self.unit
        return o


@dataclass(frozen=True)
class TableClass:
    name: str
    title: str
    columns: tuple[Column, ...]

    def native(self) -> Obj:
        return {"title": self.title, "column-descriptions": [c.native() for c in self.columns]}


@dataclass(frozen=True)
class AnalysisSpec:
    title: str
    description: str
    tags: tuple[str, ...]
    table_classes: tuple[TableClass, ...]

    def table_class(self, name: str) -> TableClass:
        for t in self.table_classes:
            if t.name == name:
                return t
        raise KeyError(name)


def _c(title: str, cls: str, unit: str | None = None) -> Column:
    return Column(title, cls, unit)


_STATS_COLS = (_c("Minimum duration", "duration"), _c("Average duration", "duration"),
               _c("Maximum duration", "duration"),
               _c("Interrupt duration standard deviation", "duration"))

_SCHED_EVENT_COLS = (_c("Wakeup timestamp", "timestamp"), _c("Switch timestamp", "timestamp"),
                     _c("Scheduling latency", "duration"), _c("Priority", "number"),
                     _c("Target CPU", "cpu"), _c("Wakee process", "process"),
                     _c("Waker process", "process"))

SPECS: dict[str, AnalysisSpec] = {
    "cputop": AnalysisSpec(
        "Top CPU usage", "Per-TID, per-CPU, and total top CPU usage", ("cpu", "top"), (
            TableClass("per-process", "Per-TID top CPU usage", (
                _c("Process", "process"), _c("Migration count", "number", "migrations"),
                _c("Chronological priorities", "string"), _c("CPU usage", "ratio"))),
            TableClass("per-cpu", "Per-CPU top CPU usage", (_c("CPU", "cpu"), _c("CPU usage", "ratio"))),
            TableClass("total", "Total CPU usage", (_c("CPU usage", "ratio"),)),
        )),
    "sched": AnalysisSpec(
        "Scheduling latencies analysis", "Scheduling latencies statistics", ("sched", "stats"), (
            TableClass("per_tid_stats", "Sched switch latency stats (per-TID)", (
                _c("Wakee process", "process"), _c("Sched switch count", "number", "sched switches"),
                _c("Minimum latency", "duration"), _c("Average latency", "duration"),
                _c("Maximum latency", "duration"),
                _c("Scheduling latency standard deviation", "duration"),
                _c("Chronological priorities", "string"))),
            TableClass("log", "Sched switch latency log", _SCHED_EVENT_COLS),
            TableClass("top", "Sched switch latency top", _SCHED_EVENT_COLS),
            TableClass("freq", "Sched switch latency frequency distribution", (
                _c("Latency (lower bound)", "duration"), _c("Latency (upper bound)", "duration"),
                _c("Frequency", "number", "sched switches"))),
            TableClass("total_stats", "Sched switch latency stats (total)", (
                _c("Sched switch count", "number", "sched switches"),
                _c("Minimum latency", "duration"), _c("Average latency", "duration"),
                _c("Maximum latency", "duration"),
                _c("Scheduling latency standard deviation", "duration"))),
        )),
    "syscalls": AnalysisSpec(
        "System call statistics", "Per-TID and global system call statistics", ("syscall", "stats"), (
            TableClass("per-tid", "System call statistics", (
                _c("System call", "syscall"), _c("Call count", "number", "calls"),
                _c("Minimum call duration", "duration"), _c("Average call duration", "duration"),
                _c("Maximum call duration", "duration"),
                _c("Call duration standard deviation", "duration"),
                _c("Return values count", "string"))),
            TableClass("total", "Per-TID system call statistics", (
                _c("Process", "process"), _c("Total system call count", "number", "calls"))),
        )),
    "irq": AnalysisSpec(
        "System interrupt analysis", "Interrupt statistics", ("interrupt", "stats"), (
            TableClass("hard-stats", "Hardware interrupt statistics", (
                _c("Interrupt", "irq"), _c("Interrupt count", "number", "interrupts"), *_STATS_COLS)),
            TableClass("soft-stats", "Software interrupt statistics", (
                _c("Interrupt", "irq"), _c("Interrupt count", "number", "interrupts"), *_STATS_COLS,
                _c("Interrupt raise count", "number", "interrupt raises"),
                _c("Minimum raise latency", "duration"), _c("Average raise latency", "duration"),
                _c("Maximum raise latency", "duration"),
                _c("Interrupt raise latency standard deviation", "duration"))),
            TableClass("freq", "Interrupt handler duration frequency distribution", (
                _c("Duration (lower bound)", "duration"), _c("Duration (upper bound)", "duration"),
                _c("Frequency", "number", "interrupts"))),
        )),
    "io": AnalysisSpec(
        "I/O analysis", "System call/disk latency statistics and I/O usage top",
        ("io", "syscall", "stats", "top"), (
            TableClass("syscall-latency-stats", "System call latency statistics", (
                _c("System call category", "string"), _c("Call count", "number", "calls"),
                _c("Minimum call latency", "duration"), _c("Average call latency", "duration"),
                _c("Maximum call latency", "duration"),
                _c("System call latency standard deviation", "duration"))),
            TableClass("disk-latency-stats", "Partition latency statistics", (
                _c("Partition", "disk"), _c("Access count", "number", "accesses"),
                _c("Minimum access latency", "duration"), _c("Average access latency", "duration"),
                _c("Maximum access latency", "duration"),
                _c("System access latency standard deviation", "duration"))),
            TableClass("per-process-top", "Per-process top I/O operations", (
                _c("Process", "process"), _c("Total operations size", "size"),
                _c("Disk operations size", "size"), _c("Network operations size", "size"),
                _c("Unknown operations size", "size"))),
            TableClass("per-file-top", "Per-file top I/O operations", (
                _c("File path", "path"), _c("Operations size", "size"),
                _c("Operation count", "number", "operations"),
                _c("File descriptor owners (pid:fd)", "string"))),
            TableClass("per-disk-top-sector", "Per-disk top sector I/O operations", (
                _c("Disk", "disk"), _c("Sector count", "number", "sectors"))),
            TableClass("per-disk-top-request", "Per-disk top I/O requests", (
                _c("Disk", "disk"), _c("Request count", "number", "I/O requests"))),
        )),
    "count": AnalysisSpec(
        "Event counts", "Events per name (tracewatch live --analysis count)", ("count",), (
            TableClass("per-event", "Events per name", (
                _c("Event name", "string"), _c("Event count", "number", "events"))),
            TableClass("total", "Total events", (
                _c("Event count", "number", "events"), _c("Discarded events", "number", "events"))),
        )),
    "mem": AnalysisSpec(
        "Top memory usage", "Per-TID top allocated/freed memory", ("memory", "top"), (
            TableClass("allocd", "Per-TID top allocated memory", (
                _c("Process", "process"), _c("Allocated pages", "number", "pages"))),
            TableClass("freed", "Per-TID top freed memory", (
                _c("Process", "process"), _c("Freed pages", "number", "pages"))),
            TableClass("total", "Total allocated/freed memory", (
                _c("Total allocated pages", "number", "pages"), _c("Total freed pages", "number", "pages"))),
        )),
}


def _version() -> tuple[int, int, int, str | None]:
    try:
        v = _md.version("tracewatch")
    except _md.PackageNotFoundError:  # pragma: no cover - running from a source tree
        v = "0.0.0"
    parts = v.split(".", 3)
    nums: list[int] = []
    for p in parts[:3]:
        digits = "".join(ch for ch in p if ch.isdigit())
        nums.append(int(digits) if digits else 0)
    while len(nums) < 3:
        nums.append(0)
    extra = parts[3] if len(parts) > 3 else None
    return nums[0], nums[1], nums[2], extra


def metadata(analysis: str) -> Obj:
    """The LAMI 1.0 metadata document of an analysis (``--mi --metadata``)."""
    spec = SPECS[analysis]
    major, minor, patch, extra = _version()
    return {
        "mi-version": {"major": LAMI_VERSION[0], "minor": LAMI_VERSION[1]},
        "version": {"major": major, "minor": minor, "patch": patch, "extra": extra},
        "title": spec.title,
        "description": spec.description,
        "authors": ["tracewatch developers"],
        "tags": ["tracewatch", *spec.tags],
        "table-classes": {t.name: t.native() for t in spec.table_classes},
    }


def result_table(analysis: str, cls: str, begin: int, end: int, rows: Iterable[Sequence[Obj]],
                 subtitle: str | None = None) -> Obj:
    """A LAMI result table; with a subtitle its class is ``{"inherit": cls, "title": ...}``."""
    tc = SPECS[analysis].table_class(cls)
    klass: str | Obj = cls if subtitle is None else {"inherit": cls, "title": f"{tc.title} [{subtitle}]"}
    return {"class": klass, "time-range": time_range(begin, end), "data": [list(r) for r in rows]}


def document(tables: Iterable[Obj]) -> Obj:
    return {"results": list(tables)}


# ---------------------------------------------------------------- analyses -> tables

def _head(t: Table, top: int | None) -> Table:
    return t if top is None or top >= t.nrows else t.take(np.arange(top))


def cputop_tables(r: CputopResult, top: int | None = 10) -> list[Obj]:
    """per-process (per-TID, most used first, ``top`` rows), per-cpu and total tables."""
    per = _head(r.per_tid, top)
    rows = [(process(x["comm"], tid=x["tid"]), number(x["migrations"]), string(x["prios"]),
             ratio(x["ratio"])) for x in per.rows()]
    cpus = [(cpu(x["cpu"]), ratio(x["ratio"])) for x in r.per_cpu.rows()]
    return [result_table("cputop", "per-process", r.begin, r.end, rows),
            result_table("cputop", "per-cpu", r.begin, r.end, cpus),
            result_table("cputop", "total", r.begin, r.end, [(ratio(r.total),)])]


def sched_tables(r: SchedResult, top: int | None = None, total: bool = False) -> list[Obj]:
    """per_tid_stats (and total_stats when ``total``)."""
    per = _head(r.per_tid, top)
    rows = [(process(x["comm"], tid=x["tid"]), number(x["count"]), duration(x["min_ns"]),
             duration(x["avg_ns"]), duration(x["max_ns"]), duration(x["stdev_ns"]), string(x["prios"]))
            for x in per.rows()]
    out = []
    if total and r.total["count"]:
        t = r.total
        out.append(result_table("sched", "total_stats", r.begin, r.end, [(
            number(t["count"]), duration(t["min_ns"]), duration(t["avg_ns"]), duration(t["max_ns"]),
            duration(t["stdev_ns"]))]))
    if rows:
        out.append(result_table("sched", "per_tid_stats", r.begin, r.end, rows))
    return out


def sched_event_table(r: SchedResult, cls: str, latencies: Table) -> Obj:
    """A ``log`` or ``top`` table: one row per latency."""
    rows = [(timestamp(x["wakeup_ts"]), timestamp(x["switch_ts"]), duration(x["latency_ns"]),
             number(x["prio"]), cpu(int(x["cpu"])), process(x["comm"], tid=int(x["tid"])),
             process(tid=int(x["waker_tid"])) if int(x["waker_tid"]) >= 0 else unknown())
            for x in latencies.rows()]
    return result_table("sched", cls, r.begin, r.end, rows)


def irq_freq_table(r: IrqResult, hard: bool, nr: int, name: str, hist: Table) -> Obj:
    rows = [(duration(x["lo_ns"]), duration(x["hi_ns"]), number(x["count"])) for x in hist.rows()]
    what = f"{'IRQ' if hard else 'softirq'} {nr} ({name})"
    return result_table("irq", "freq", r.begin, r.end, rows, subtitle=what)


def sched_freq_table(r: SchedResult, hist: Table) -> Obj:
    rows = [(duration(x["lo_ns"]), duration(x["hi_ns"]), number(x["count"])) for x in hist.rows()]
    return result_table("sched", "freq", r.begin, r.end, rows)


def thread_label(comm: str, pid: int, tid: int) -> str:
    """``comm (pid, TID: tid)`` with ``?`` for an unknown pid (lttng-syscallstats' titles)."""
    return f"{comm} ({pid if pid >= 0 else '?'}, TID: {tid})"


def syscalls_tables(r: SyscallsResult, top: int | None = None) -> list[Obj]:
    """One per-tid table per thread (``top`` threads, most calls first), then the total table."""
    per_tid = _head(r.per_tid, top)
    ps = r.per_syscall
    tids = ps["tid"]
    # rows of each thread are contiguous in per_syscall, in per_tid order
    starts = np.flatnonzero(np.r_[True, tids[1:] != tids[:-1]]) if tids.size else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], tids.size] if tids.size else np.zeros(0, np.int64)
    cols = {k: ps[k].tolist() for k in ("syscall", "count", "min_ns", "avg_ns", "max_ns", "stdev_ns",
                                        "returns")}
    out = []
    for (s, e), t in zip(zip(starts.tolist(), ends.tolist(), strict=True), per_tid.rows(), strict=False):
        rows = [(syscall(cols["syscall"][i]), number(cols["count"][i]), duration(cols["min_ns"][i]),
                 duration(cols["avg_ns"][i]), duration(cols["max_ns"][i]),
                 duration(cols["stdev_ns"][i]), string(cols["returns"][i])) for i in range(s, e)]
        out.append(result_table("syscalls", "per-tid", r.begin, r.end, rows,
                                thread_label(t["comm"], t["pid"], t["tid"])))
    total = [(process(t["comm"], t["pid"], t["tid"]), number(t["count"])) for t in per_tid.rows()]
    out.append(result_table("syscalls", "total", r.begin, r.end, total))
    return out


def _int_or_nan(v: float) -> float | int:
    return v if math.isnan(v) else int(v)


def irq_tables(r: IrqResult) -> list[Obj]:
    """hard-stats and soft-stats tables (each left out when empty, like lttng-irqstats)."""
    out = []
    hard = [(irq(True, x["irq"], x["name"]), number(x["count"]), duration(x["min_ns"]),
             duration(x["avg_ns"]), duration(x["max_ns"]), duration(x["stdev_ns"])) for x in r.hard.rows()]
    if hard:
        out.append(result_table("irq", "hard-stats", r.begin, r.end, hard))
    soft = [(irq(False, x["vec"], x["name"]), number(x["count"]), duration(x["min_ns"]),
             duration(x["avg_ns"]), duration(x["max_ns"]), duration(x["stdev_ns"]),
             number(x["raise_count"]), duration(_int_or_nan(x["min_latency_ns"])),
             duration(x["avg_latency_ns"]), duration(_int_or_nan(x["max_latency_ns"])),
             duration(x["stdev_latency_ns"])) for x in r.soft.rows()]
    if soft:
        out.append(result_table("irq", "soft-stats", r.begin, r.end, soft))
    return out


def io_tables(r: IoResult, top: int | None = 10) -> list[Obj]:
    """syscall-latency-stats, disk-latency-stats (when block requests were seen), per-process-top
    and per-file-top [read] and [write] (``top`` rows, most bytes first), per-disk-top-sector
    and -request."""
    lat = [(string(x["kind"]), number(x["count"]), duration(x["min_ns"]), duration(x["avg_ns"]),
            duration(x["max_ns"]), duration(x["stdev_ns"])) for x in r.latency.rows()]
    out = [result_table("io", "syscall-latency-stats", r.begin, r.end, lat)]
    if r.disk.nrows:
        dl = [(disk(x["disk"]), number(x["count"]), duration(x["min_ns"]), duration(x["avg_ns"]),
               duration(x["max_ns"]), duration(x["stdev_ns"])) for x in r.disk.rows()]
        out.append(result_table("io", "disk-latency-stats", r.begin, r.end, dl))
    pp = r.per_process
    for kind in ("read", "write"):
        col = pp[f"{kind}_bytes"]
        t = pp.take(np.argsort(-col, kind="stable"))
        t = _head(t.take(t[f"{kind}_bytes"] > 0), top)
        rows = [(process(x["comm"], x["pid"]), size(x[f"{kind}_bytes"]), unknown(), unknown(),
                 size(x[f"{kind}_bytes"])) for x in t.rows()]
        out.append(result_table("io", "per-process-top", r.begin, r.end, rows, kind))
    if r.per_file is not None:
        out.extend(_per_file_tables(r, r.per_file, top))
    if r.disk.nrows:
        by_sec = _head(r.disk.take(np.argsort(-r.disk["sectors"], kind="stable")), top)
        out.append(result_table("io", "per-disk-top-sector", r.begin, r.end,
                                [(disk(x["disk"]), number(x["sectors"])) for x in by_sec.rows()]))
        by_rq = _head(r.disk.take(np.argsort(-r.disk["count"], kind="stable")), top)
        out.append(result_table("io", "per-disk-top-request", r.begin, r.end,
                                [(disk(x["disk"]), number(x["count"])) for x in by_rq.rows()]))
    return out


def _per_file_tables(r: IoResult, pf: Table, top: int | None) -> list[Obj]:
    out = []
    for kind in ("read", "write"):
        t = pf.take(np.argsort(-pf[f"{kind}_bytes"], kind="stable"))
        t = _head(t.take(t[f"{kind}_bytes"] > 0), top)
        rows = [(path(x["path"]), size(x[f"{kind}_bytes"]), number(x[f"{kind}_count"]),
                 string(x["fds"])) for x in t.rows()]
        out.append(result_table("io", "per-file-top", r.begin, r.end, rows, kind))
    return out


def count_tables(r: CountResult, discarded: int = 0) -> list[Obj]:
    """per-event (most frequent first) and total (events, events discarded by the tracer)."""
    rows = [(string(x["name"]), number(x["count"])) for x in r.per_name.rows()]
    return [result_table("count", "per-event", r.begin, r.end, rows),
            result_table("count", "total", r.begin, r.end, [(number(r.total), number(discarded))])]


def mem_tables(r: MemResult, top: int | None = 10) -> list[Obj]:
    """allocd and freed (``top`` threads each, most pages first) and total tables."""
    pt = r.per_tid
    out = []
    for cls, col in (("allocd", "allocated"), ("freed", "freed")):
        t = _head(pt.take(np.lexsort((pt["tid"], -pt[col]))), top)
        out.append(result_table("mem", cls, r.begin, r.end,
                                [(process(x["comm"], x["pid"], x["tid"]), number(x[col])) for x in t.rows()]))
    out.append(result_table("mem", "total", r.begin, r.end, [(number(r.total_allocated), number(r.total_freed))]))
    return out


# ---------------------------------------------------------------- CSV

def table_to_csv(t: Table, out: TextIO | None = None) -> str:
    """The table as CSV (header of column names; NaN as an empty field). Written to ``out``
    when given; the text is returned either way."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(t.columns)
    for row in t.rows():
        w.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in row.values()])
    text = buf.getvalue()
    if out is not None:
        out.write(text)
    return text
