"""``tracewatch live ... --analysis``: argument errors, without daemons (the live behaviour is
tested against real daemons in tests/live/test_periodic.py)."""

from __future__ import annotations

from .test_analyses_cli import run


def test_analysis_needs_a_session_url() -> None:
    rc, out, err = run("live", "net://127.0.0.1:1", "--analysis", "count")
    assert rc == 2 and "--analysis needs a session URL" in err and out == ""


def test_unknown_analysis_and_bad_period_are_usage_errors() -> None:
    url = "net://127.0.0.1:1/host/h/s"
    rc, _, err = run("live", url, "--analysis", "count,bogus")
    assert rc == 2 and "bogus" in err and "cputop" in err
    rc, _, err = run("live", url, "--analysis", "count", "--period", "0s")
    assert rc == 2 and "positive" in err


def test_unreachable_relayd_is_a_one_line_error() -> None:
    rc, out, err = run("live", "net://127.0.0.1:1/host/h/s", "--analysis", "count", "--timeout", "2")
    assert rc == 1 and out == "" and err.startswith("tracewatch: error: ") and err.count("\n") == 1
