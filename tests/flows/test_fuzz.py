"""schemathesis against every operation of the edge's merged OpenAPI document, through the edge, with a valid agent
token and without (tests/fuzzing.py: the run, its checks and the checks left out). Bounded: FUZZ_EXAMPLES examples
per operation (default 3; without a token 1) and schemathesis's stateful phase over the document's links
(POST /link/create, then the operations that use its link and room); ``just fuzz`` runs it with more examples and
a time budget.

Every failure found is a failing test: an undocumented status, content type or shape, a schema-valid request
refused, a 405 without Allow, a 5xx that is not a documented third-party 502/503, an error outside the original's
envelope, a route needing a token that answers without refusing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fuzzing import run, summary

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
MAX_TIME = int(os.environ.get("FUZZ_MAX_TIME", "0")) or None
FIGURES = os.environ.get("FUZZ_FIGURES")  # a file the figures of each run are appended to (just fuzz)


@pytest.mark.parametrize("credential", ["agent-token", "no-token"])
def test_schemathesis_finds_nothing(suite, tmp_path: Path, credential: str) -> None:
    token = suite.agent_token(ttl=7200) if credential == "agent-token" else None
    # With a token every phase; without one the documented examples and fuzzing (every secured operation refuses),
    # one example per operation in the test suite.
    phases = "examples,coverage,fuzzing,stateful" if token else "examples,fuzzing"
    examples = EXAMPLES if token or MAX_TIME else 1
    data = run(suite.edge, tmp_path / "report.json", token=token, examples=examples, phases=phases, max_time=MAX_TIME)
    line = f"{credential}: {summary(data)}"
    print(line)
    if FIGURES:
        with open(FIGURES, "a", encoding="utf-8") as figures:
            figures.write(
                json.dumps(
                    {
                        "credential": credential,
                        **{k: data.get(k) for k in ("operations", "test_cases", "failures", "errors", "running_time")},
                    }
                )
                + "\n"
            )
    assert data.get("complete"), data["output"][-3000:]
    assert data["operations"]["tested"] >= 90, line
    assert data["test_cases"]["generated"] >= data["operations"]["tested"], line
    assert (data["failures"], data["errors"]) == ([], []), line + "\n" + data["output"][-12000:]
