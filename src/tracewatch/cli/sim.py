"""``tracewatch sim``: simulate a host running VMs and write its traces plus ground truth."""

from __future__ import annotations

import click

from ..errors import TracewatchError
from ..sim import build_scenario, gebai2014, parse_duration, simulate
from ..sim.model import paths


@click.command()
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--scenario", type=click.Choice(["generic", "gebai2014", "paths"]),
              default="generic", show_default=True,
              help="generic: N guests x M vCPUs on P CPUs; gebai2014: the Gebai & Dagenais "
                   "(2014) use case (VMs Ubuntu and Debian, burnP6 on the host); paths: "
                   "critical path ground truth (TCP request/response between VMs front and "
                   "back, a wakeup chain, a host hog; guest clocks = host clock). --guests, "
                   "--vcpus and --cpus only apply to generic.")
@click.option("--guests", type=click.IntRange(0, 10_000), default=2, show_default=True,
              help="Number of VMs (generic scenario).")
@click.option("--vcpus", type=click.IntRange(1, 64), default=2, show_default=True,
              help="vCPUs per VM (generic scenario).")
@click.option("--cpus", type=click.IntRange(1, 1024), default=4, show_default=True,
              help="Physical CPUs of the host (generic scenario).")
@click.option("--duration", default="2s", show_default=True,
              help="Simulated time (e.g. 2s, 500ms, 1m).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed: the same seed gives byte-identical output.")
@click.option("--hog", "hogs", multiple=True, metavar="NAME[:cpu=C][:on=DUR][:off=DUR]"
              "[:prio=P][:phase=DUR]",
              help="Add a CPU hog on the host (repeatable), e.g. burnP6:cpu=0:on=260ms:"
                   "off=1s:prio=0 (prio is LTTng's: 20 = nice 0, 0 = nice -20).")
@click.option("--sync-period", default="100ms", show_default=True,
              help="Period of the guest/host sync exchanges (generic scenario).")
@click.option("--tcp-period", default="20ms", show_default=True,
              help="Mean period of the TCP segments each paired guest (1-2, 3-4, ...) sends "
                   "to its peer (generic scenario; 0 disables).")
@click.option("--force", is_flag=True, help="Overwrite the traces of a previous run in OUTDIR.")
def sim(outdir: str, scenario: str, guests: int, vcpus: int, cpus: int, duration: str,
        seed: int, hogs: tuple[str, ...], sync_period: str, tcp_period: str,
        force: bool) -> None:
    """Simulate a host running VMs; write OUTDIR/host, OUTDIR/guest-NAME (CTF traces) and
    OUTDIR/truth.json (ground truth: clock transforms, vCPU preemptions, hypervisor time,
    per-thread real/apparent run time, critical task executions)."""
    dur = parse_duration(duration)
    if scenario == "gebai2014":
        sc = gebai2014(duration=dur, seed=seed, hogs=list(hogs))
    elif scenario == "paths":
        sc = paths(duration=dur, seed=seed, hogs=list(hogs))
    else:
        sc = build_scenario(guests=guests, vcpus=vcpus, cpus=cpus, duration=dur, seed=seed,
                            hogs=list(hogs), sync_period=parse_duration(sync_period),
                            tcp_period=parse_duration(tcp_period))
    try:
        res = simulate(sc, outdir, overwrite=force)
    except ValueError as e:  # the writer refuses a non-empty directory
        raise TracewatchError(str(e)) from None
    total = res.sim_seconds + res.write_seconds
    click.echo(f"wrote {res.events} events ({len(res.per_machine)} traces) to {res.outdir} in "
               f"{total:.2f}s (simulation {res.sim_seconds:.2f}s, writing "
               f"{res.write_seconds:.2f}s, {res.events_per_second:,.0f} events/s); "
               f"truth: {res.truth_path}")
