"""CORS for every path of a service, answered in one place (``CORS_ALLOWED_ORIGINS``, default ``*``).

The middleware sits outside the router (see :func:`servicekit.web.create_app`), so preflights of every path are
answered here before any route handler: GET-only routes would otherwise answer 405, and bare ``@asgi`` handlers
nothing useful. Services answering CORS themselves behave the same behind nginx and behind a Kubernetes Gateway,
which then needs no CORS feature of its own.

``*`` answers ``Access-Control-Allow-Origin: *`` and never credentials (a browser refuses ``*`` with credentials).
A list reflects a listed origin only (exact scheme://host[:port]), with ``Vary: Origin`` and credentials. A refused
origin gets no allow headers: its simple requests still run (the browser hides the answer), its preflights get a
bare 204 (the browser then stops), and its websocket upgrades are refused (browsers apply no CORS to websockets).

deploy/edge/cors.js applies the same rule to the edge's own replies (404/413/503 envelopes, ``/health``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from litestar.types import ASGIApp, Receive, Scope, Send

ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
# Answered when a preflight names no headers; otherwise its Access-Control-Request-Headers are reflected.
ALLOW_HEADERS = b"Authorization, Content-Type, x-api-key, X-Request-ID, Cache-Control, X-Requested-With"
EXPOSE_HEADERS = b"X-Request-ID, Content-Disposition"
MAX_AGE = b"7200"  # seconds a browser may reuse a preflight (Chromium's cap)
_DEFAULT_PORTS = {"http": 80, "https": 443}

Headers = list[tuple[bytes, bytes]]


def normalize_origin(value: str) -> str:
    """``value`` as a browser serialises an Origin (lower case, no default port, no trailing slash); ValueError
    for anything that is not scheme://host[:port], so a typo fails the start instead of never matching."""
    text = value.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"CORS_ALLOWED_ORIGINS: {value!r} is not an origin (scheme://host[:port])") from exc
    if not parts.scheme or not parts.hostname or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"CORS_ALLOWED_ORIGINS: {value!r} is not an origin (scheme://host[:port])")
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class CorsPolicy:
    any_origin: bool
    origins: frozenset[bytes] = frozenset()

    @classmethod
    def parse(cls, setting: str) -> CorsPolicy:
        """From ``CORS_ALLOWED_ORIGINS``: ``*`` (anywhere in the list) allows every origin; an empty list none."""
        items = [item.strip() for item in setting.split(",") if item.strip()]
        if "*" in items:
            return cls(any_origin=True)
        return cls(any_origin=False, origins=frozenset(normalize_origin(item).encode() for item in items))

    @property
    def invariant_headers(self) -> Headers:
        """What every answer carries, whatever the request's Origin (none included)."""
        return [(b"access-control-allow-origin", b"*")] if self.any_origin else [(b"vary", b"Origin")]

    def allow_origin(self, origin: bytes) -> bytes | None:
        """The Access-Control-Allow-Origin value for a request's Origin, None when the origin is refused."""
        if self.any_origin:
            return b"*"
        return origin if origin in self.origins else None

    def headers(self, origin: bytes, preflight: bool = False, request_headers: bytes | None = None) -> Headers:
        """The CORS headers of the answer to a request from ``origin`` (a preflight's or an actual response's)."""
        allowed = self.allow_origin(origin)
        out: Headers = [] if self.any_origin else [(b"vary", b"Origin")]  # the answer depends on the Origin
        if allowed is None:
            return out
        out.append((b"access-control-allow-origin", allowed))
        if not self.any_origin:
            out.append((b"access-control-allow-credentials", b"true"))
        if preflight:
            out += [
                (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", request_headers or ALLOW_HEADERS),
                (b"access-control-max-age", MAX_AGE),
            ]
        else:
            out.append((b"access-control-expose-headers", EXPOSE_HEADERS))
        return out


class CorsMiddleware:
    """Raw ASGI: a request without an Origin header costs one scan of its headers and one added header."""

    __slots__ = ("app", "policy")

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        origin = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
                break
        if origin is None:
            # Not a browser's cross-origin request, but its answer may be cached and reused for one (a <video>
            # fetched without CORS, then read by fetch()): it carries what does not depend on the Origin, as the
            # original's cors() did: "*" under any-origin, "Vary: Origin" under a list.
            if kind == "http":
                await self.app(scope, receive, self._adding(send, self.policy.invariant_headers))
            else:
                await self.app(scope, receive, send)
            return
        if kind == "websocket":
            if self.policy.allow_origin(origin) is None:
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008})  # before accept: the server answers 403
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            request_method = request_headers = None
            for name, value in scope["headers"]:
                if name == b"access-control-request-method":
                    request_method = value
                elif name == b"access-control-request-headers":
                    request_headers = value
            if request_method is not None:  # a preflight: answered here, never by a route
                headers = self.policy.headers(origin, preflight=True, request_headers=request_headers)
                await send({"type": "http.response.start", "status": 204, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, self._adding(send, self.policy.headers(origin)))

    @staticmethod
    def _adding(send: Send, cors: Headers) -> Send:
        async def send_with_cors(message: Any) -> None:
            if message["type"] == "http.response.start":
                # This middleware is the only source of CORS headers: browsers refuse a second allow-origin.
                kept = [(k, v) for k, v in message.get("headers", ()) if not k.lower().startswith(b"access-control-")]
                message = {**message, "headers": kept + cors}
            await send(message)

        return send_with_cors
