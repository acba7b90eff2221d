"""``tracewatch sync``: the clock transforms that put every trace on one time base."""

from __future__ import annotations

import json
from typing import Any

import click

from .. import open as open_traces
from ..sync import HullAccuracy, SyncResult, TraceSync, synchronize, to_decimal


def _warn(msg: str) -> None:
    click.echo(f"tracewatch: warning: {msg}", err=True)


def _accuracy_doc(a: HullAccuracy | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {"slope_min": to_decimal(a.slope_min), "slope_max": to_decimal(a.slope_max),
            "slope_width": to_decimal(a.slope_width, 6),
            "offset_min": to_decimal(a.offset_min), "offset_max": to_decimal(a.offset_max),
            "time_error_ns": a.time_error_ns}


def _trace_doc(t: TraceSync) -> dict[str, Any]:
    inv = t.from_reference
    return {
        "trace": t.path, "host": t.hostname, "host_id": t.host_id, "reference": t.reference,
        "parent": t.parent, "formula": "t_ref = slope * t_trace + offset",
        "slope": to_decimal(t.transform.slope), "offset": to_decimal(t.transform.offset),
        "from_reference": {"formula": "t_trace = slope * t_ref + offset",
                           "slope": to_decimal(inv.slope), "offset": to_decimal(inv.offset)},
        "pairs": t.pairs, "quality": t.quality.value if t.quality else None,
        "kept_quality": t.good_quality.value if t.good_quality else None,
        "accuracy": _accuracy_doc(t.accuracy),
    }


def mi_document(res: SyncResult) -> dict[str, Any]:
    """The ``--mi`` JSON document (slopes and offsets as decimal strings: exact enough)."""
    return {"mi-version": {"major": 1, "minor": 0}, "command": "sync",
            "reference": res.reference, "results": [_trace_doc(t) for t in res.traces]}


def _text(res: SyncResult) -> str:
    ref = next(t for t in res.traces if t.reference)
    lines = [f"Reference: {ref.hostname or '?'} (host id {res.reference})",
             "Transforms: t_ref = slope * t_trace + offset (ns)", ""]
    for t in res.traces:
        lines.append(f"{t.path}")
        lines.append(f"  host       {t.hostname or '?'} ({t.host_id})")
        if t.reference:
            lines.append("  reference  yes (identity)")
            lines.append("")
            continue
        parent = next((x.hostname for x in res.traces if x.host_id == t.parent), t.parent)
        lines.append(f"  reference  no (synchronized with {parent})")
        lines.append(f"  slope      {to_decimal(t.transform.slope)}")
        lines.append(f"  offset     {to_decimal(t.transform.offset)} ns")
        q = t.quality.value if t.quality else "-"
        if t.good_quality is not None:
            q += f" (kept the last {t.good_quality.value} result)"
        lines.append(f"  pairs      {t.pairs}")
        lines.append(f"  quality    {q}")
        a = t.accuracy
        if a is None:
            lines.append("  accuracy   unknown (one extreme line missing)")
        else:
            lines.append(f"  accuracy   slope width {float(a.slope_width):.3e}, offset in "
                         f"[{to_decimal(a.offset_min, 20)}, {to_decimal(a.offset_max, 20)}] ns, "
                         f"time error <= {a.time_error_ns:.0f} ns")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--mi", is_flag=True, help="Print a JSON document instead of text.")
@click.option("--allow-fail", is_flag=True,
              help="When a pair's hulls cross (FAIL), keep its last good result instead of "
                   "stopping with an error.")
def sync(paths: tuple[str, ...], mi: bool, allow_fail: bool) -> None:
    """Compute the clock transform of each trace under PATHS to the reference machine.

    Uses matched TCP packets (inet_sock_local_out/in, net_dev_queue/netif_receive_skb) and
    the vmsync hypercall exchange between guests and hosts; the reference is the machine with
    the smallest host id (clock uuid).  Prints, per trace: host, whether it is the
    reference, slope and offset of t_ref = slope * t_trace + offset, the number of matched
    pairs with the machine it is synchronized with, the quality and the accuracy.
    """
    ts = open_traces(*paths, on_warning=_warn)
    try:
        res = synchronize(ts, strict=not allow_fail)
    finally:
        ts.close()
    if mi:
        click.echo(json.dumps(mi_document(res), indent=2))
    else:
        click.echo(_text(res))
