"""The API reference at the edge: GET /openapi.json (deploy/edge/docs/openapi.json, merged from the services'
documents by deploy/edge/openapi.py) is current and covers the route table, its auth requirements and examples
hold against the running suite, and GET /docs renders every area in headless Chromium (which writes the README's
screenshot, docs/api-reference.png)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from deploy.edge.openapi import DOCUMENT, NO_TOKEN, disagreements, owning_route
from deploy.edge.routes import load

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "api-reference.png"
DOC: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
OPERATIONS = [(m, p, op) for p, ops in DOC["paths"].items() for m, op in ops.items()]
# Operations answered (HTTP 200, no FAIL envelope) with their documented examples on a fresh suite, once the
# documented POST /link/create example (room DemoRoom) has run: a sample across services and areas.
EXAMPLES_OK = [
    ("get", "/room/detail"),
    ("get", "/user/listparticipants"),
    ("get", "/chat/history"),
    ("get", "/link/share"),
    ("get", "/link/history"),
    ("get", "/status"),
]


def test_merged_document_is_up_to_date() -> None:
    # A subprocess: the generator imports every service's app, which this test process must not.
    result = subprocess.run(
        [sys.executable, "-m", "deploy.edge.openapi", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr + "\nrun `just generate` (python -m deploy.edge.openapi)"


def test_every_route_is_documented_and_every_operation_routed() -> None:
    table = load()
    assert disagreements(table, DOC["paths"]) == []
    unrouted = [f"{m} {p}" for m, p, _ in OPERATIONS if owning_route(table, p, m) is None]
    assert unrouted == []
    areas = [tag["name"] for tag in DOC["tags"]]
    for method, path, op in OPERATIONS:
        assert len(op["tags"]) == 1 and op["tags"][0] in areas, (method, path)
        assert "security" in op, f"{method} {path}: its auth requirement is not stated"
        ok = next(r for c, r in op["responses"].items() if c.startswith("2"))
        if "application/json" in ok.get("content", {}):
            assert "examples" in ok["content"]["application/json"], (method, path)
        for param in op.get("parameters", []):
            assert param["in"] == "query" and not param["required"] or "example" in param, (method, path, param)


def _sample(path: str, op: dict[str, Any]) -> str:
    for param in op.get("parameters", []):
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", str(param["example"]))
    return path


async def test_documented_credentials_are_required(suite) -> None:
    """Every operation documented as needing a credential refuses a request without one, in the original's way."""
    secured = [(m, p, op) for m, p, op in OPERATIONS if op["security"] and {} not in op["security"]]
    assert len(secured) > 20
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as client:
        for method, path, op in secured:
            response = await client.request(method.upper(), _sample(path, op), json={})
            # Documented: a 401 answer, else the original's auth failure with HTTP 200 (the "no_token" example).
            code = "401" if "401" in op["responses"] else "200"
            documented = op["responses"][code]["content"]["application/json"]
            expected = (int(code), documented.get("example") or documented["examples"]["no_token"]["value"])
            assert (response.status_code, response.json()) == expected, (method, path, response.text[:200])
        # And the reads documented as open answer without one (writes are left alone: they would change data).
        for method, path, op in OPERATIONS:
            if op["security"] or method != "get" or "application/json" not in op["responses"]["200"]["content"]:
                continue
            response = await client.get(_sample(path, op))
            assert response.status_code == 404 or response.json() != NO_TOKEN, f"{path} is documented as open"


async def test_documented_examples_work(suite) -> None:
    token = suite.agent_token()
    ops = {(m, p): op for m, p, op in OPERATIONS}
    create = ops[("post", "/link/create")]
    body = create["requestBody"]["content"]["application/json"]["example"]
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as client:
        created = await client.post("/link/create", json=body, headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 200 and created.json()["room"] == body["room"], created.text[:300]
        # /link/getdetail's example names a link: the one just created stands in for it.
        detail = await client.get("/link/getdetail", params={"linkId": created.json()["linkID"]})
        assert detail.json()["status"] == "OK", detail.text[:300]
        for method, path in EXAMPLES_OK:
            op = ops[(method, path)]
            params = {p["name"]: p["example"] for p in op.get("parameters", []) if p["in"] == "query"}
            response = await client.request(method.upper(), path, params=params)
            answer = response.json()
            failed = isinstance(answer, dict) and answer.get("status") == "FAIL"
            assert response.status_code == 200 and not failed, (path, params, response.text[:300])
        key = await client.get("/auth/create", headers={"x-api-key": suite.env["AUTH_API_KEY"]})
        assert key.json()["status"] == "OK", key.text[:300]


async def test_edge_serves_document_page_and_renderer(suite) -> None:
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as client:
        document = await client.get("/openapi.json")
        assert document.status_code == 200 and document.json() == DOC
        page = await client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text)
        assert len(assets) == 2 and not re.search(r'(?:src|href)="https?:', page.text), "no CDN at run time"
        for asset in assets:
            response = await client.get(asset)
            assert response.status_code == 200 and len(response.content) > 10_000, asset


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Chromium is missing: deploy/system-packages.sh installs Debian's `chromium`"
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--no-first-run", "--virtual-time-budget=10000", *args]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_docs_page_renders_every_area_in_chromium(suite) -> None:
    url = f"{suite.edge}/docs"
    dom = _chromium("--dump-dom", url).stdout
    rendered = set(re.findall(r'id="operations-tag-([^"]+)"', dom))
    assert rendered, dom[:2000]
    assert {tag["name"] for tag in DOC["tags"]} <= rendered
    # One operation of each area is listed under it (Swagger UI: operations-<tag>-<operationId>).
    for tag in DOC["tags"]:
        assert f'id="operations-{tag["name"]}-' in dom, tag["name"]
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    result = _chromium("--window-size=1280,2000", f"--screenshot={SCREENSHOT}", url)
    assert SCREENSHOT.exists() and SCREENSHOT.stat().st_size > 20_000, result.stderr[-1000:]
