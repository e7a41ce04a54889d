"""The attack corpus, through the edge: SQL injection, path traversal (plain, encoded, double-encoded, ``....//``),
header injection (CRLF), oversized bodies and headers, malformed JSON and multipart, wrong content types and Unicode
edge cases, sent to every parameter of every operation of the merged OpenAPI document (path and query parameters,
JSON and form body fields, multipart file names) and to every route of the route table (deploy/routes.toml), with a
valid agent token so the inputs get past the credential check.

Checked: no 5xx besides a documented third-party 502/503; every error in the original's envelope (or the text the
document states for that route); no response header an input injected; no file content served from outside the
media roots; no file named by the corpus anywhere outside the media roots; and the databases unchanged (CHECKSUM
TABLE of every table of every service, before and after) across each operation whose answers were all errors,
and, for an operation that accepted some inputs, across its refused inputs sent again on their own.
Bounded: a few thousand requests (a third of the corpus per parameter; all of it with ATTACK_FULL=1), 8 at a time
(ATTACK_CONCURRENCY)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import nats
import pytest

from deploy.edge.openapi import DOCUMENT
from deploy.edge.routes import load
from deploy.local import NO_DATABASE, LocalSuite, discover_services
from tests.fuzzing import THIRD_PARTY, is_envelope
from tests.instances import private_suite
from tests.support import query

ROOT = Path(__file__).resolve().parents[2]
DOC: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
OPERATIONS = [(m, p, op) for p, ops in DOC["paths"].items() for m, op in ops.items() if "socket.io" not in p]
MARK = "atk" + uuid.uuid4().hex[:8]  # names every file the corpus tries to create
CONCURRENCY = int(os.environ.get("ATTACK_CONCURRENCY", "8"))

SQL = [
    "' OR '1'='1",
    "1' OR 1=1 -- ",
    '" OR ""="',
    "1; DROP TABLE links; --",
    "' UNION SELECT NULL, @@version -- ",
    "1' AND SLEEP(2) AND '1'='1",
    "admin'/*",
    "\\'; DELETE FROM conference_room; --",
]
TRAVERSAL = [
    f"../../../../../../tmp/{MARK}",
    "../../../../../../etc/passwd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    f"....//....//....//tmp/{MARK}",
    "..\\..\\..\\windows\\win.ini",
    "/etc/passwd",
    "..%c0%af..%c0%afetc/passwd",
]
CRLF = ["x\r\nX-Injected: 1", "x%0d%0aX-Injected:%201", "x\r\nSet-Cookie: atk=1\r\n\r\n<html>", "x\nX-Injected: 1"]
UNICODE = [
    "\u0000",
    "nul\u0000byte",
    "\u202egnp.exe",
    "\ufeffbom",
    "𝕳𝖊𝖑𝖑𝖔 🚑🧯",
    "e\u0301\u0301\u0301",
    "ห้องฉุกเฉิน",
    "\uffff\ufffe",
    "A" * 20_000,
    "",
    " ",
    "-1",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "null",
    "[]",
    "{}",
    "true",
]
VALUES = SQL + TRAVERSAL + CRLF + UNICODE
# The test suite sends every third value of the corpus to each parameter, rotating from one parameter to the next
# (every value still reaches many parameters, each parameter every kind of attack); ``just fuzz`` (ATTACK_FULL=1)
# sends every value to every parameter.
FULL = os.environ.get("ATTACK_FULL") == "1"


def _values(index: int) -> list[str]:
    """The corpus values parameter number ``index`` of an operation gets."""
    return VALUES if FULL else VALUES[index % 3 :: 3]


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.problems: list[str] = []


def _example(param: dict[str, Any]) -> str:
    return str(param.get("example", "1"))


def _body_fields(op: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    content = op.get("requestBody", {}).get("content", {})
    for kind in ("application/json", "multipart/form-data"):
        if kind in content:
            schema = content[kind].get("schema", {})
            if "$ref" in schema:
                schema = DOC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
            example = content[kind].get("example") or {}
            fields = {name: example.get(name, "1") for name in schema.get("properties", {})}
            return kind, fields
    return None, {}


def _url(path: str, op: dict[str, Any], override: dict[str, str] | None = None, raw: bool = False) -> str:
    override = override or {}
    for param in op.get("parameters", []):
        if param["in"] == "path":
            value = override.get(param["name"], _example(param))
            path = path.replace("{" + param["name"] + "}", value if raw else quote(value, safe=""))
    return path


def _query(op: dict[str, Any], override: dict[str, str] | None = None) -> dict[str, str]:
    query = {p["name"]: _example(p) for p in op.get("parameters", []) if p["in"] == "query"}
    query.update(override or {})
    return query


def _cases(method: str, path: str, op: dict[str, Any]) -> list[dict[str, Any]]:
    """Every value of the corpus in every parameter of the operation (the others at their documented examples)."""
    cases: list[dict[str, Any]] = []
    kind, fields = _body_fields(op)
    for index, param in enumerate(op.get("parameters", [])):
        for value in _values(index):
            if param["in"] == "path":
                cases.append({"url": _url(path, op, {param["name"]: value}), "params": _query(op)})
                if "%" in value:  # the encoded forms as they are, not encoded once more
                    cases.append({"url": _url(path, op, {param["name"]: value}, raw=True), "params": _query(op)})
            elif param["in"] == "query":
                cases.append({"url": _url(path, op), "params": _query(op, {param["name"]: value})})
    for index, name in enumerate(fields):
        for value in _values(index + len(op.get("parameters", []))):
            body = {**fields, name: value}
            if kind == "application/json":
                cases.append({"url": _url(path, op), "params": _query(op), "json": body})
                cases.append({"url": _url(path, op), "params": _query(op), "data": body})  # form-urlencoded
            else:
                files = {k: (f"{v}.png" if k == name else "a.png", b"\x89PNG\r\n\x1a\n", "image/png")
                         for k, v in fields.items() if "myFile" in k or "myVideo" in k}  # fmt: skip
                text = {k: v for k, v in body.items() if k not in files}
                cases.append({"url": _url(path, op), "params": _query(op), "files": files or None, "data": text})
    if method in ("post", "put", "patch", "delete"):
        url, params = _url(path, op), _query(op)
        raw_bodies = [
            (b'{"room": ', "application/json"),  # malformed JSON
            (b'{"room": "x"', "application/json"),
            (b"[1, 2, 3]", "application/json"),
            (b'"just a string"', "application/json"),
            (b"\xff\xfe\x00\x00", "application/json"),  # not UTF-8
            (b'{"room": "\xed\xa0\x80"}', "application/json"),  # a lone surrogate, as bytes
            (b'{"room": "\\ud800"}', "application/json"),  # a lone surrogate, escaped
            (b"room=%ZZ&&=&a[b][c]=1", "application/x-www-form-urlencoded"),
            (b"<room>x</room>", "application/xml"),
            (b"room=x", "text/plain"),
            (b'--nope\r\nContent-Disposition: form-data; name="a"\r\n\r\nx', "multipart/form-data; boundary=nope"),
            (b"--b\r\n\r\n--b--", "multipart/form-data"),  # no boundary parameter
            (b"x" * 1024, "application/octet-stream"),
            (json.dumps({"room": "x" * 200_000}).encode(), "application/json"),
        ]
        for content, kind in raw_bodies:
            cases.append({"url": url, "params": params, "content": content, "headers": {"content-type": kind}})
        too_large = b"{" + b" " * (101 * 1024 * 1024 // 100) + b"}"  # past 1m: the edge's 413 (where max_body is 1m)
        json_type = {"content-type": "application/json"}
        cases.append({"url": url, "params": params, "content": too_large, "headers": json_type})
    cases.append({"url": _url(path, op), "params": _query(op), "headers": {"x-forwarded-for": "' OR 1=1 --"}})
    cases.append({"url": _url(path, op), "params": _query(op), "headers": {"x-big": "A" * 20_000}})
    return cases


def _documented_under(path: str, method: str) -> dict[str, Any]:
    """The document's operation a path under a prefix route reaches (the Socket.IO endpoint, a media file)."""
    for doc_path, ops in sorted(DOC["paths"].items(), key=lambda item: -len(item[0])):
        prefix = doc_path.split("{", 1)[0]
        under = ("{" in doc_path or doc_path.endswith("/")) and path.startswith(prefix)
        if method in ops and (path == doc_path or under):
            return ops[method]
    return {"responses": {}}


@pytest.fixture(scope="module")
def target(suite: Any) -> Iterator[LocalSuite]:
    """A suite of its own (its own media root): the corpus writes whatever the handlers accept (links, tenants and
    cases named by injection strings), which must not leak into the shared suite the other tests read, and its
    tables stay small, so the checksums around each operation are quick."""
    run_dir = Path(tempfile.mkdtemp(prefix="ems-attack-"))
    env = {**suite.env, "RECORD_PATH": str(run_dir / "media")}
    with private_suite(discover_services(), env, run_dir=run_dir, label="attack") as local:
        yield local


def _databases(local: LocalSuite) -> list[tuple[str, str]]:
    return [(service, local.db_name(service)) for service in local.service_ports if service not in NO_DATABASE]


async def _checksums(local: LocalSuite) -> dict[str, Any]:
    """CHECKSUM TABLE of every table of every service that has a database."""
    sums: dict[str, Any] = {}
    for service, database in _databases(local):
        rows = await query(database, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        tables = [next(iter(row.values())) for row in rows]
        if tables:
            listed = ", ".join(f"`{database}`.`{t}`" for t in tables)
            for row in await query(database, "CHECKSUM TABLE " + listed):  # noqa: S608 - names read from the server
                sums[f"{service}.{row['Table'].rsplit('.', 1)[-1]}"] = row["Checksum"]
    return sums


async def _quiet(local: LocalSuite, nc: Any, timeout: float = 20.0) -> None:
    """Wait until the events of earlier requests are applied: no outbox row unpublished, no JetStream consumer
    with messages pending or unacknowledged (a consumer's writes and its own outbox rows commit before its ack)."""
    jsm = nc.jsm()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = 0
        for _, database in _databases(local):
            rows = await query(database, "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
            busy += rows[0]["n"]
        for stream in await jsm.streams_info():
            for consumer in await jsm.consumers_info(stream.config.name):
                busy += consumer.num_pending + consumer.num_ack_pending
        if not busy:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the suite's events did not settle")


def _is_error(response: Answer) -> bool:
    if response.status_code >= 400:
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and (body.get("status") in ("FAIL", "ERROR") or body.get("success") is False)


def _check(tally: Tally, method: str, path: str, op: dict[str, Any], case: dict[str, Any], r: Answer) -> None:
    tally.statuses[r.status_code] += 1
    where = f"{method.upper()} {path} {str(case.get('params'))[:80]} {str(case.get('json') or case.get('data'))[:80]}"
    documented = op["responses"].get(str(r.status_code), {})
    if r.status_code >= 500 and not (r.status_code in THIRD_PARTY and documented):
        tally.problems.append(f"{r.status_code} {where}: {r.text[:200]}")
    if r.status_code >= 400:
        kind = r.headers.get("content-type", "").split(";")[0]
        ok = kind in documented.get("content", {}) and kind != "application/json"
        if not ok:
            try:
                ok = is_envelope(r.json())
            except ValueError:
                ok = False
        if not ok:
            tally.problems.append(f"not an envelope {r.status_code} {where}: {kind} {r.text[:200]}")
    if "x-injected" in r.headers or "atk=1" in r.headers.get("set-cookie", ""):
        tally.problems.append(f"header injected {where}")
    if "root:x:0:0" in r.text or "[fonts]" in r.text:
        tally.problems.append(f"served a file outside the media roots {where}")


class Answer:
    """What a check needs of a response: its status, headers and the first 64 KiB of its body (a Server-Sent
    Events stream stays open: its first chunk)."""

    def __init__(self, response: httpx.Response, body: bytes) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self.text = body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.text)


async def _send(client: httpx.AsyncClient, gate: asyncio.Semaphore, method: str, case: dict[str, Any]) -> Any:
    async with gate:
        headers = {**client.headers, **case.get("headers", {})}
        try:
            async with client.stream(
                method.upper(), case["url"], params=case.get("params"), json=case.get("json"),
                data=case.get("data"), files=case.get("files"), content=case.get("content"), headers=headers,
            ) as response:  # fmt: skip
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > 65536 or response.headers.get("content-type", "").startswith("text/event-stream"):
                        break
                return Answer(response, body)
        except httpx.HTTPError as exc:
            return exc


def _marked_files(roots: list[Path], media: Path) -> list[str]:
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in ("node_modules", ".venv", ".git")]
            if Path(dirpath).is_relative_to(media):
                continue
            found += [f"{dirpath}/{name}" for name in filenames + dirnames if MARK in name]
    return found


async def _raw(edge: str, data: bytes) -> bytes:
    host, port = re.match(r"http://([\d.]+):(\d+)", edge).groups()  # type: ignore[union-attr]
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer


async def test_raw_requests_get_the_envelope(suite) -> None:
    """Requests httpx will not send: CRLF in a header, headers past the edge's buffers, a broken request line."""
    edge = suite.edge
    host = edge.removeprefix("http://")
    many_headers = "".join(f"X-{i}: {'b' * 4000}\r\n" for i in range(40))
    cases = [
        f"GET /room/detail?room=x HTTP/1.1\r\nHost: {host}\r\nX-A: a\rX-Injected: 1\r\n\r\n".encode(),
        f"GET /room/detail?room=x%0d%0aX-Injected:%201 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
        f"GET /room/detail HTTP/1.1\r\nHost: {host}\r\nCookie: {'a' * 70_000}\r\n\r\n".encode(),
        f"GET /room/detail HTTP/1.1\r\nHost: {host}\r\n{many_headers}\r\n",
        f"TRACE /room/detail HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
        f"POST /link/create HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
    ]  # fmt: skip
    for raw in cases:
        data = raw if isinstance(raw, bytes) else raw.encode()
        answer = await _raw(edge, data)
        head, _, body = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        assert status < 500, (data[:120], answer[:300])
        assert b"x-injected" not in head.lower(), answer[:300]
        if status >= 400:
            text = body.decode(errors="replace")
            envelope = json.loads(text[text.find("{") : text.rfind("}") + 1] or "null")
            assert is_envelope(envelope), (data[:120], answer[:300])


async def test_attack_corpus(suite: Any, target: LocalSuite) -> None:
    token = suite.agent_token(ttl=7200)
    table = load()
    nc = await nats.connect(target.nats_url)
    try:
        await _attack(target, token, table, nc)
    finally:
        await nc.close()


async def _attack(target: LocalSuite, token: str, table: Any, nc: Any) -> None:
    media = Path(target.extra_env["RECORD_PATH"])
    run_dir = media.parent
    tally = Tally()
    unchanged_checked = refused_checked = 0
    durations: dict[str, float] = {}
    settle_s = 0.0  # waiting for the events to settle and checksumming, around the operations
    gate = asyncio.Semaphore(CONCURRENCY)
    # The route table's own paths too (prefix routes: a sample under the prefix), each with the corpus as its tail.
    route_cases = [(m.lower(), r.path.removesuffix("*").rstrip("/") + "/" + quote(v, safe=""))
                   for r in table.routes for m in r.methods for v in TRAVERSAL + SQL[:3]]  # fmt: skip
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=target.edge, timeout=20, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as client:  # fmt: skip
        answers = await asyncio.gather(*(_send(client, gate, method, {"url": path}) for method, path in route_cases))
        for (method, path), response in zip(route_cases, answers, strict=True):
            assert not isinstance(response, Exception), (method, path, response)
            tally.requests += 1
            _check(tally, method, path, _documented_under(path, method), {}, response)
        for method, path, op in OPERATIONS:
            checking = time.monotonic()
            await _quiet(target, nc)
            before = await _checksums(target)
            started = time.monotonic()
            settle_s += started - checking
            cases = _cases(method, path, op)
            answers = await asyncio.gather(*(_send(client, gate, method, case) for case in cases))
            durations[f"{method.upper()} {path}"] = round(time.monotonic() - started, 1)
            all_errors = True
            for case, response in zip(cases, answers, strict=True):
                tally.requests += 1
                if isinstance(response, Exception):
                    tally.problems.append(f"{method.upper()} {path}: no answer ({response!r})")
                    continue
                _check(tally, method, path, op, case, response)
                all_errors = all_errors and _is_error(response)
            checking = time.monotonic()
            await _quiet(target, nc)
            after = await _checksums(target)
            settle_s += time.monotonic() - checking
            if all_errors:
                changed = sorted(k for k in before if before[k] != after.get(k))
                if changed:
                    tally.problems.append(f"{method.upper()} {path}: only errors, yet tables changed: {changed}")
                unchanged_checked += 1
                continue
            # Some inputs were accepted (and wrote): the refused ones are sent again on their own, between
            # checksums, so a refusal that wrote anyway shows on every operation, not only those refusing all.
            refused = [c for c, r in zip(cases, answers, strict=True) if isinstance(r, Answer) and _is_error(r)]
            if not refused:
                continue
            again = await asyncio.gather(*(_send(client, gate, method, case) for case in refused))
            if not all(isinstance(r, Answer) and _is_error(r) for r in again):
                continue  # an input refused only because of an accepted one beside it (e.g. a duplicate): no proof
            checking = time.monotonic()
            await _quiet(target, nc)
            resent = await _checksums(target)
            settle_s += time.monotonic() - checking
            changed = sorted(k for k in after if after[k] != resent.get(k))
            if changed:
                tally.problems.append(f"{method.upper()} {path}: refused inputs sent again changed tables: {changed}")
            refused_checked += 1
    escaped = _marked_files([run_dir, ROOT, Path("/tmp")], media)
    figures = {
        "operations": len(OPERATIONS),
        "routes": len(table.routes),
        "requests": tally.requests,
        "operations with only errors (checksums compared)": unchanged_checked,
        "operations with some accepted, refused ones sent again (checksums compared)": refused_checked,
        "statuses": dict(sorted(tally.statuses.items())),
        "problems": len(tally.problems),
        "seconds settling and checksumming": round(settle_s, 1),
        "slowest": sorted(durations.items(), key=lambda item: -item[1])[:5],
    }
    print(json.dumps(figures))
    if out := os.environ.get("ATTACK_FIGURES"):
        Path(out).write_text(json.dumps(figures) + "\n", encoding="utf-8")
    for problem in tally.problems:
        print("PROBLEM", problem[:300].replace("\n", " "))
    assert escaped == [], escaped
    assert tally.problems == [], f"{len(tally.problems)} problems:\n" + "\n".join(tally.problems[:60])
