"""servicekit's CORS rule and middleware on their own (no suite): origin matching, the headers of each answer,
and what reaches the wrapped app. tests/flows/test_edge_cors.py checks the same through the edge on every route."""

from __future__ import annotations

from typing import Any

import pytest

from servicekit.cors import ALLOW_HEADERS, ALLOW_METHODS, CorsMiddleware, CorsPolicy, normalize_origin

LISTED = CorsPolicy.parse("https://console.example, https://patient.example:443/ ,http://localhost:3000")
ANY = CorsPolicy.parse("*")


@pytest.mark.parametrize(
    ("entry", "origin"),
    [
        ("https://Console.Example", "https://console.example"),
        ("https://console.example:443", "https://console.example"),
        ("http://console.example:80/", "http://console.example"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_configured_origins_are_compared_as_browsers_send_them(entry: str, origin: str) -> None:
    assert normalize_origin(entry) == origin


@pytest.mark.parametrize("entry", ["console.example", "https://console.example/app", "https://a@b.example", "https://"])
def test_an_entry_that_is_not_an_origin_fails_the_start(entry: str) -> None:
    with pytest.raises(ValueError, match="CORS_ALLOWED_ORIGINS"):
        CorsPolicy.parse(entry)


def test_star_anywhere_allows_every_origin_and_empty_allows_none() -> None:
    assert CorsPolicy.parse("https://a.example,*").any_origin
    assert ANY.allow_origin(b"https://whatever.example") == b"*"
    assert CorsPolicy.parse("").allow_origin(b"https://a.example") is None


def test_a_list_matches_scheme_host_and_port_exactly() -> None:
    assert LISTED.allow_origin(b"https://patient.example") == b"https://patient.example"
    assert LISTED.allow_origin(b"http://localhost:3000") == b"http://localhost:3000"
    for other in (b"http://console.example", b"https://console.example:8443", b"https://evil.console.example",
                  b"http://localhost:3001", b"null"):  # fmt: skip
        assert LISTED.allow_origin(other) is None, other


def test_star_answers_star_and_never_credentials() -> None:
    actual = dict(ANY.headers(b"https://a.example"))
    assert actual[b"access-control-allow-origin"] == b"*"
    assert b"access-control-allow-credentials" not in actual and b"vary" not in actual
    preflight = dict(ANY.headers(b"https://a.example", preflight=True))
    assert preflight[b"access-control-allow-methods"] == ALLOW_METHODS
    assert preflight[b"access-control-allow-headers"] == ALLOW_HEADERS
    assert b"access-control-allow-credentials" not in preflight


def test_a_listed_origin_is_reflected_with_vary_and_credentials() -> None:
    headers = LISTED.headers(b"https://console.example", preflight=True, request_headers=b"authorization,x-custom")
    assert dict(headers) == {
        b"vary": b"Origin",
        b"access-control-allow-origin": b"https://console.example",
        b"access-control-allow-credentials": b"true",
        b"access-control-allow-methods": ALLOW_METHODS,
        b"access-control-allow-headers": b"authorization,x-custom",
        b"access-control-max-age": b"7200",
    }
    assert dict(LISTED.headers(b"https://console.example"))[b"access-control-expose-headers"].startswith(b"X-Request")


def test_a_refused_origin_gets_only_vary() -> None:
    assert LISTED.headers(b"https://evil.example") == [(b"vary", b"Origin")]
    assert LISTED.headers(b"https://evil.example", preflight=True) == [(b"vary", b"Origin")]


# ---- the middleware around a fake app -------------------------------------------------------------------------
class FakeApp:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], Any]] = []
        self.server_send: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls.append((scope, send))
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            return
        headers = [(b"content-type", b"application/json"), (b"access-control-allow-origin", b"https://stale")]
        await send({"type": "http.response.start", "status": 405, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


async def _run(policy: CorsPolicy, method: str, headers: dict[str, str], kind: str = "http") -> tuple[FakeApp, list]:
    """Call the middleware around a FakeApp; (the app, the messages the server was sent)."""
    app, sent = FakeApp(), []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"} if kind == "websocket" else {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": kind,
        "method": method,
        "path": "/x",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    await CorsMiddleware(app, policy)(scope, receive, send)
    app.server_send = send
    return app, sent


async def test_a_request_without_origin_gets_only_what_does_not_depend_on_it() -> None:
    """Its answer may be cached and reused cross-origin: "*" under any-origin, "Vary: Origin" under a list; no
    allow headers a route set itself survive."""
    for policy, expected in ((ANY, [(b"access-control-allow-origin", b"*")]), (LISTED, [(b"vary", b"Origin")])):
        app, sent = await _run(policy, "GET", {"accept": "*/*"})
        assert len(app.calls) == 1
        assert sent[0]["headers"] == [(b"content-type", b"application/json"), *expected]


async def test_a_preflight_is_answered_without_the_app() -> None:
    request = {"origin": "https://patient.example", "access-control-request-method": "PUT"}
    app, sent = await _run(LISTED, "OPTIONS", request)
    assert app.calls == []
    assert sent[0]["status"] == 204
    assert dict(sent[0]["headers"])[b"access-control-allow-origin"] == b"https://patient.example"
    refused_app, refused = await _run(LISTED, "OPTIONS", {**request, "origin": "https://evil.example"})
    assert refused_app.calls == [] and refused[0]["status"] == 204 and refused[0]["headers"] == [(b"vary", b"Origin")]


async def test_an_actual_response_carries_exactly_one_allow_origin() -> None:
    app, sent = await _run(ANY, "GET", {"origin": "https://a.example"})
    names = [k for k, _ in sent[0]["headers"]]
    assert names.count(b"access-control-allow-origin") == 1
    assert dict(sent[0]["headers"])[b"access-control-allow-origin"] == b"*"
    assert sent[0]["status"] == 405 and sent[1]["body"] == b"{}"  # the app's own answer otherwise


async def test_a_websocket_from_a_refused_origin_is_closed_before_accept() -> None:
    app, sent = await _run(LISTED, "GET", {"origin": "https://evil.example"}, kind="websocket")
    assert app.calls == [] and sent == [{"type": "websocket.close", "code": 1008}]
    app, sent = await _run(LISTED, "GET", {"origin": "https://console.example"}, kind="websocket")
    assert len(app.calls) == 1 and sent == [{"type": "websocket.accept"}]
