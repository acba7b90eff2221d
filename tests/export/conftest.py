"""Fixtures of the export tests: a private carbon-cache (Graphite) and a private Prometheus.

* ``carbon`` (module scope): ``carbon-cache --nodaemon`` (Debian's graphite-carbon) with its
  own carbon.conf in a temporary directory: line, pickle and cache-query receivers on free
  loopback ports, whisper files under that directory, one storage schema ``1s:<N>d`` with N
  days reaching back past the shared traces (2013): whisper keeps no point older than its
  retention, and the export tests backfill the traces' own timestamps. Files are created
  sparse (a 1 s archive over 14 years is ~5 GB of address space, a few KB on disk).
  :meth:`Carbon.read` reads every whisper file back with Debian's ``whisper`` module
  (``/usr/bin/python3``), :meth:`Carbon.stop`/:meth:`Carbon.start` stop and restart it on the
  same ports.
* ``prometheus_server``: ``prometheus`` (Debian's) run from a config in tmp_path that scrapes
  given targets every second, its TSDB in tmp_path, on a free loopback port; queried with
  :meth:`PrometheusServer.query` (HTTP API ``/api/v1/query``). Debian's systemd unit plays no
  part.
* The live fixtures (``sessiond``, ``relayd``, ``lttng_session``, ``ust_app``) of tests/live.

Only processes started here are ever stopped, by their Popen handle.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..live.conftest import _free_ports, _port_open, lttng_session, relayd, sessiond, ust_app  # noqa: F401

OLDEST_TRACE_S = 1_361_214_000  # lttng-kernel-tcp-sync, February 2013

_READ_WHISPER = r"""
import json, os, sys, whisper
root, frm, until = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = {}
for d, _, files in os.walk(root):
    for f in sorted(files):
        if not f.endswith(".wsp"):
            continue
        p = os.path.join(d, f)
        (start, end, step), values = whisper.fetch(p, frm, until)
        name = os.path.relpath(p, root)[:-4].replace(os.sep, ".")
        out[name] = [[start + i * step, v] for i, v in enumerate(values) if v is not None]
json.dump(out, sys.stdout)
"""


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Carbon:
    """A private carbon-cache (see the module doc)."""

    root: Path
    line_port: int = 0
    pickle_port: int = 0
    query_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def whisper_dir(self) -> Path:
        return self.root / "storage" / "whisper"

    def configure(self) -> None:
        self.line_port, self.pickle_port, self.query_port = _free_ports(3)
        conf = self.root / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        storage = self.root / "storage"
        days = math.ceil((time.time() - OLDEST_TRACE_S) / 86400) + 60
        (conf / "carbon.conf").write_text(f"""[cache]
STORAGE_DIR = {storage}/
LOCAL_DATA_DIR = {self.whisper_dir}/
WHISPER_DIR = {self.whisper_dir}/
CONF_DIR = {conf}/
LOG_DIR = {storage}/log/
PID_DIR = {storage}/
USER =
ENABLE_TAGS = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {self.line_port}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {self.pickle_port}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {self.query_port}
WHISPER_AUTOFLUSH = True
WHISPER_FALLOCATE_CREATE = False
WHISPER_SPARSE_CREATE = True
LOG_UPDATES = False
LOG_CREATES = False
LOG_LISTENER_CONN_SUCCESS = False
""")
        (conf / "storage-schemas.conf").write_text(f"[all]\npattern = .*\nretentions = 1s:{days}d\n")
        (conf / "storage-aggregation.conf").write_text(
            "[all]\npattern = .*\nxFilesFactor = 0\naggregationMethod = last\n")

    def start(self) -> None:
        if not self.line_port:
            self.configure()
        for _attempt in range(5):
            self.starts += 1
            log = open(self.root / f"carbon-{self.starts}.log", "wb")  # noqa: SIM115
            self.proc = subprocess.Popen(
                ["carbon-cache", f"--config={self.root / 'conf' / 'carbon.conf'}", "--nodaemon",
                 f"--pidfile={self.root / 'storage' / f'carbon-{self.starts}.pid'}", "start"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _port_open(self.line_port):
                    return
                time.sleep(0.1)
            _stop(self.proc)
            time.sleep(0.5)
        raise RuntimeError(f"carbon-cache did not start: {self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        _stop(proc)

    def log_tail(self) -> str:
        logs = sorted(self.root.glob("carbon-*.log"))
        return logs[-1].read_text(errors="replace")[-2000:] if logs else ""

    def read(self, frm: int, until: int) -> dict[str, dict[int, float]]:
        """Every whisper file's points in [frm, until] (s): metric path -> {timestamp: value}."""
        if not self.whisper_dir.exists():
            return {}
        proc = subprocess.run(["/usr/bin/python3", "-c", _READ_WHISPER, str(self.whisper_dir), str(frm),
                               str(until)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return {k: {int(t): float(v) for t, v in pts} for k, pts in json.loads(proc.stdout).items()}

    def wait_for(self, expected: dict[str, dict[int, float]], frm: int, until: int,
                 timeout: float = 60.0) -> dict[str, dict[int, float]]:
        """Read until every expected (path, timestamp) has a point (carbon writes
        asynchronously), or the timeout; returns the last read."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.read(frm, until)
            if all(t in got.get(p, {}) for p, pts in expected.items() for t in pts):
                return got
            if time.monotonic() > deadline:
                return got
            time.sleep(0.5)


def _require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages graphite-carbon, prometheus)")


@pytest.fixture(scope="module")
def carbon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Carbon]:
    _require("carbon-cache")
    if not Path("/usr/bin/python3").exists() or subprocess.run(
            ["/usr/bin/python3", "-c", "import whisper"], capture_output=True).returncode != 0:
        pytest.skip("needs Debian's python3-whisper (graphite-carbon depends on it)")
    c = Carbon(tmp_path_factory.mktemp("carbon"))
    c.start()
    yield c
    c.stop()


@dataclass
class PrometheusServer:
    """A private Prometheus scraping ``targets`` every second."""

    root: Path
    targets: list[str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    started: float = field(default=0.0)

    def start(self) -> None:
        self.port = _free_ports(1)[0]
        cfg = self.root / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: tracewatch\n    static_configs:\n"
            f"      - targets: {json.dumps(self.targets)}\n")
        log = open(self.root / "prometheus.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={self.root / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started = time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "prometheus.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        _stop(proc)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of a PromQL query (``/api/v1/query``): [{metric, value}...]."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[Any]:
    """A factory: ``prometheus_server([\"127.0.0.1:PORT\"])`` starts one (stopped at the end)."""
    _require("prometheus")
    servers: list[PrometheusServer] = []

    def make(targets: list[str]) -> PrometheusServer:
        s = PrometheusServer(tmp_path / f"prom-{len(servers)}", targets)
        s.root.mkdir()
        servers.append(s)
        s.start()
        return s

    yield make
    for s in servers:
        s.stop()
