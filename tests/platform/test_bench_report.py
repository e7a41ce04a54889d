"""Smoke test of the benchmark report (`just bench` = `python -m tests.bench`): a quick run restricted to one cheap
HTTP route for 2 s without the original stack prints the machine and command lines, Table 1 with its columns and
numeric cells for the route, and the memory table with a numeric idle and peak RSS for every process it started.
Figures are not checked against anything (the benchmark has no thresholds), only that they are figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from deploy.local import discover_services

ROOT = Path(__file__).resolve().parents[2]
NUMBER = re.compile(r"^\d[\d,]*(\.\d+)?$")
TABLE1 = [
    "route or scenario", "suite req/s", "original req/s", "ratio", "p50 ms suite / original",
    "p99 ms suite / original", "CPU ms per request suite / original",
]  # fmt: skip


def tables(output: str) -> list[list[list[str]]]:
    """The markdown tables of ``output``: each a list of rows (header first, separator dropped) of cells."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*output.splitlines(), ""]:
        if line.startswith("|") and line.endswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if not all(set(cell) <= {"-"} and cell for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def number(cell: str) -> float:
    assert NUMBER.match(cell), f"not a number: {cell!r}"
    return float(cell.replace(",", ""))


def test_quick_report_prints_the_tables_with_figures() -> None:
    argv = [sys.executable, "-m", "tests.bench", "--quick", "--only", "roomdetail", "--duration", "2", "--no-baseline"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"^machine: \d+ cores, \S+, load average [\d.]+ [\d.]+ [\d.]+", out, re.M), out
    assert "command: `uv run python -m tests.bench --quick --only roomdetail --duration 2 --no-baseline`" in out

    by_header = {tuple(t[0]): t[1:] for t in tables(out)}
    side_by_side = by_header[tuple(TABLE1)]
    assert [row[0] for row in side_by_side] == ["GET /room/detail (edge)"]
    row = side_by_side[0]
    assert number(row[1]) > 0  # suite req/s
    assert row[2] == row[3] == "—"  # no baseline in this run
    for cell in row[4:]:  # suite / original
        ours, theirs = cell.split(" / ")
        assert number(ours) > 0 and theirs == "—", cell

    memory = next(rows for header, rows in by_header.items() if header[0] == "process")
    header = next(h for h in by_header if h[0] == "process")
    assert list(header) == ["process", "RSS idle MB", "PSS idle MB", "RSS peak MB: HTTP routes"]
    assert {r[0] for r in memory} == {*discover_services(), "edge", "nats", "redis"}
    for name, idle, pss, peak in memory:
        assert 1 <= number(idle) <= number(peak) * 1.2, (name, idle, peak)
        assert 1 <= number(pss) <= number(idle), (name, pss, idle)  # shared pages count once
