"""docs/architecture.md is generated from the code (deploy/architecture.py) and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deploy.architecture import _matches

ROOT = Path(__file__).resolve().parents[2]


def test_the_architecture_page_is_current() -> None:
    # In its own process: it builds every service's app, which must not touch this test process's logging.
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "deploy.architecture", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:] + "\nrun `just generate` to regenerate it"


def test_subject_filters_match_like_nats() -> None:
    assert _matches("conference.room.>", "conference.room.closed")
    assert not _matches("conference.room.>", "conference.room")
    assert _matches("recording.*.started", "recording.egress.started")
    assert not _matches("recording.*.started", "recording.egress.room.started")
    assert _matches("link.link.created", "link.link.created") and not _matches("link.link.created", "link.link")
