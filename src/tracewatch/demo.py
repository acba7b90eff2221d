"""``make demo``: write a small kernel-like CTF trace with the writer, then dump it.

(The VM monitoring use case replaces this once the simulator lands.)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def write_demo_trace(path: Path) -> None:
    from .ctf.writer import Int, String, Struct, TraceWriter

    with TraceWriter(str(path), hostname="demo-host", clock_offset_s=1_700_000_000) as w:
        sc = w.add_stream_class(header="compact")
        switch = sc.add_event_class("sched_switch", Struct([
            ("prev_comm", String()), ("prev_tid", Int(32, signed=True)), ("prev_prio", Int(32, signed=True)),
            ("prev_state", Int(64, signed=True)), ("next_comm", String()), ("next_tid", Int(32, signed=True)),
            ("next_prio", Int(32, signed=True))]))
        tasks = [("swapper/0", 0), ("bash", 1201), ("burnP6", 1777), ("critical_task", 3525)]
        for cpu in range(2):
            s = w.add_stream(sc, cpu=cpu)
            t = 1000 * (cpu + 1)
            for i in range(8):
                prev, nxt = tasks[(i + cpu) % 4], tasks[(i + cpu + 1) % 4]
                s.write(switch, t, {"prev_comm": prev[0], "prev_tid": prev[1], "prev_prio": 20,
                                    "prev_state": 1, "next_comm": nxt[0], "next_tid": nxt[1], "next_prio": 20})
                t += 1_500_000 + 250_000 * i


def main() -> int:
    from .cli.main import main as cli_main

    with tempfile.TemporaryDirectory(prefix="tracewatch-demo-") as tmp:
        path = Path(tmp) / "kernel"
        write_demo_trace(path)
        print(f"# wrote a demo trace to {path}; tracewatch dump {path}:", flush=True)
        return cli_main(["dump", str(path)])


if __name__ == "__main__":
    sys.exit(main())
