"""`uv run python -m tests.bench`: every benchmark, three markdown tables (see tests/bench/report.py)."""

from tests.bench.report import main

raise SystemExit(main())
