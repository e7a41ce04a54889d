"""schemathesis against the edge's merged OpenAPI document (deploy/edge/docs/openapi.json): the run and the suite's
own checks. One of the topic modules of test helpers listed in support.py; tests/flows/test_fuzz.py runs it in the
test suite (few examples), ``just fuzz`` longer.

The schemathesis CLI runs in a subprocess (every phase: the documented examples, coverage, fuzzing and the stateful
phase that follows the document's links), only against 127.0.0.1, with this module as its hooks module
(SCHEMATHESIS_HOOKS): the checks below join schemathesis's own. Its JSON report gives the figures.

Checks of schemathesis left out, and why (the original's wire behaviour, documented, that frontends rely on):

- ``not_a_server_error``: replaced by ``no_undocumented_server_error`` (the documented 502/503 of an unconfigured or
  failing third party - LiveKit, the radio API - are answers, not faults);
- ``ignored_auth`` and ``missing_required_header``: the original answered a missing or rejected token with HTTP 200
  and its FAIL envelope, not 401; ``credential_refused_in_envelope`` checks exactly that instead;
- ``negative_data_rejection``: the original accepted loose input (strings for numbers, unknown fields) and answered
  it with its own messages, often HTTP 200 ``{"status":"FAIL"}``; envelopes and no-5xx are still checked;
- ``object_level_authorization``: the authorization matrix (issue 17) covers it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import schemathesis

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "deploy" / "edge" / "docs" / "openapi.json"
CHECKS = [
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "use_after_free",
    "ensure_resource_availability",
    # this module's
    "no_undocumented_server_error",
    "error_in_envelope",
    "credential_refused_in_envelope",
    "schema_valid_request_accepted",
]
# Refusals of schema-valid requests the document cannot rule out: what they name does not exist (the original
# answered these with 400 and its message), or a file's content does not match its declared type.
NOT_EXPRESSIBLE = ("Invalid room", "Invalid Room", "Invalid service", "Invalid mobile", "Room not found",
                   "Bad Request", "invalid linkID", "Unsupported video type",
                   "Unsupported file type", "does not match", "Invalid session")  # fmt: skip
# Third-party or dependency failures the document states (ERROR_CODES of deploy/edge/openapi.py).
THIRD_PARTY = {502, 503}
# The original's error shapes (components Fail, NotFound, SuccessFail, ErrorOnly, ProxyError of the document).
_STATUS_WORDS = {"FAIL", "NOT FOUND", "ERROR"}


def _documented(case: Any, status: int) -> dict[str, Any] | None:
    responses = case.operation.definition.raw.get("responses", {})
    return responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")


def is_envelope(body: Any) -> bool:
    """One of the original's error shapes."""
    if not isinstance(body, dict):
        return False
    if body.get("status") in _STATUS_WORDS:
        return True
    if body.get("success") is False or (isinstance(body.get("error"), str) and "status" not in body):
        return True
    return set(body) == {"message"} and isinstance(body["message"], str)  # link's and case's not-found


@schemathesis.check
def no_undocumented_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    status = response.status_code
    if status >= 500 and not (status in THIRD_PARTY and _documented(case, status)):
        raise AssertionError(f"server error {status}: {response.text[:300]}")
    return None


@schemathesis.check
def error_in_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx answer is the original's: a JSON error shape, or a text the document states for that route."""
    if response.status_code < 400:
        return None
    kind = (response.headers.get("content-type") or [""])[0]  # schemathesis: lowercase names, lists of values
    if kind.startswith("application/json"):
        try:
            body = json.loads(response.text)
        except ValueError as exc:
            raise AssertionError(f"{response.status_code}: not JSON: {response.text[:200]}") from exc
        if not is_envelope(body):
            raise AssertionError(f"{response.status_code}: not the original's envelope: {response.text[:200]}")
        return None
    documented = _documented(case, response.status_code) or {}
    if kind.split(";")[0] in documented.get("content", {}):  # the original's text answer (or Engine.IO's)
        return None
    raise AssertionError(f"{response.status_code} answered as {kind or 'no content type'}: {response.text[:200]}")


@schemathesis.check
def credential_refused_in_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """An operation documented as needing the bearer token, called without one: the original's refusal."""
    security = case.operation.definition.raw.get("security") or []
    if security != [{"bearer": []}]:
        return None
    headers = {k.lower() for k in (response.request.headers or {})}
    if "authorization" in headers:
        return None
    if case.meta is not None and not case.meta.generation.mode.is_positive:
        return None  # an invalid request (e.g. a path no route matches: 404) may be refused for its input first
    try:
        body = json.loads(response.text)
    except ValueError:
        body = None
    refused = response.status_code in (200, 401, 403) and isinstance(body, dict) and body.get("status") == "FAIL"
    if not refused:
        raise AssertionError(f"no token, yet {response.status_code}: {response.text[:200]}")
    return None


@schemathesis.check
def schema_valid_request_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's positive_data_acceptance, except for refusals the document cannot express (NOT_EXPRESSIBLE):
    a request the document calls valid is not answered 4xx (404, 401/403 and 409 allowed)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not 400 <= response.status_code < 500:
        return None
    if response.status_code in (401, 403, 404, 409, 413, 429):
        return None
    if "authorization" not in {k.lower() for k in (response.request.headers or {})}:
        return None  # without a token a refusal is the original's answer (credential_refused_in_envelope)
    if any(text in response.text for text in NOT_EXPRESSIBLE):
        return None
    raise AssertionError(f"a schema-valid request refused: {response.status_code} {response.text[:200]}")


def run(
    edge: str,
    report: Path,
    *,
    token: str | None,
    examples: int,
    phases: str = "examples,coverage,fuzzing,stateful",
    max_time: int | None = None,
    seed: int | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """One schemathesis run against ``edge`` (127.0.0.1 only); its JSON report, with the console output."""
    assert edge.startswith("http://127.0.0.1:"), edge
    # GET /notification/events streams for as long as it is read: its first event is the answer to check, not
    # the request timeout's worth of keep-alives (which held a worker 20 s per case).
    config = report.parent / "schemathesis.toml"
    config.write_text("max-stream-events = 1\n", encoding="utf-8")
    argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", str(DOCUMENT), "--url", edge,
            "--checks", ",".join(CHECKS), "--phases", phases, "--max-examples", str(examples),
            "--workers", "2", "--request-timeout", "20", "--report", "json", "--report-json-path", str(report),
            "--output-truncate", "true", "--suppress-health-check", "all", "--warnings", "off"]  # fmt: skip
    if token:
        argv += ["--header", f"Authorization: Bearer {token}"]
    if max_time:
        argv += ["--max-time", str(max_time)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzzing", "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    budget = timeout or (max_time or 0) + 900
    result = subprocess.run(argv, cwd=report.parent, env=env, capture_output=True, text=True, timeout=budget)
    data = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    data["output"] = result.stdout + result.stderr
    report.with_suffix(".txt").write_text(data["output"], encoding="utf-8")
    return data


def summary(data: dict[str, Any]) -> str:
    cases = data.get("test_cases", {})
    ops = data.get("operations", {})
    return (
        f"{ops.get('tested', 0)} operations, {cases.get('generated', 0)} cases, "
        f"{cases.get('unique_failures', 0)} unique failures, {len(data.get('errors', []))} errors"
    )
