"""HTTP controllers of /auth/*."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post

from auth.domain import agent_console_token
from auth.events import participant_token, verify_link_password
from servicekit import compat
from servicekit.bus import RpcError
from servicekit.tokens import TokenRejected
from servicekit.web import ApiError, Runtime, fail, parse_body

INVALID_LOGIN = {"status": "FAIL", "message": "invalid id or password"}


class VerifyUserBody(msgspec.Struct, kw_only=True):
    linkID: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    password: Annotated[str, msgspec.Meta(max_length=200)] = ""
    userName: Annotated[str, msgspec.Meta(max_length=100)] = ""


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @get("/create", opt=compat.opens("auth_create"))
    async def create_token(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Agent console bearer token. The original minted one for anybody; here the caller must present the
        operator's API key (``x-api-key``) or an agent token that is still valid, unless COMPAT_OPEN_AUTH_CREATE
        is on (the token's lifetime stays capped either way)."""
        settings = runtime.settings
        api_key = request.headers.get("x-api-key", "")
        if not (settings.auth_api_key and api_key and hmac.compare_digest(api_key, settings.auth_api_key)):
            try:
                # An agent token renews; a participant token of a room (GET /link/getdetail mints them for anybody
                # holding a link) must not turn into an agent console token.
                runtime.require_agent_token(request)
            except TokenRejected as exc:
                credential = "invalid: x-api-key" if api_key else compat.rejection(exc)
                if not runtime.compat_allows(request, credential):
                    raise ApiError(
                        "unauthorized", exc.status_code if exc.status_code == 403 else 401, exc.body
                    ) from exc
        ttl = timedelta(days=min(settings.auth_token_ttl_days, settings.auth_token_max_ttl_days))
        token = agent_console_token(settings.livekit_api_key, settings.livekit_api_secret, ttl)
        return {"status": "OK", "token": token}

    @post("/verifyuser", status_code=200)
    async def verify_user(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Password check of a link, then a participant token for the link's room."""
        body = await parse_body(request, VerifyUserBody)
        assert runtime.bus is not None
        try:
            link = await verify_link_password(runtime.bus, body.linkID, body.password)
        except RpcError as exc:
            if exc.code in ("not_found", "denied"):
                raise ApiError("invalid id or password", 200, INVALID_LOGIN) from exc
            raise fail("link service unavailable", 503) from exc
        try:
            token = await participant_token(runtime.bus, link, body.linkID, body.userName)
        except RpcError as exc:
            raise fail("conference service unavailable", 503) from exc
        return {"status": "OK", "data": token}
