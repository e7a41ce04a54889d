"""HTTP routes of the radio read-through proxy: GET /radio/device[/:id], GET /radio/location[/:radioNo].

Each route calls the radio location API, caches what it answered (radio_devices / radio_locations, one
transaction, awaited: a cache failure is logged and never reaches the caller, as in the original) and replies
with the API's body unchanged. The API down or answering badly -> 503 / 502 in the original's error shape
``{"status":"ERROR","message":...,"error":...}``, nothing written. A path id that is not a plain token ->
400 ``{"status":"FAIL","message":...}``, the API is not called.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from litestar import Controller, Response, get

from servicekit.db import Connection
from servicekit.web import ApiError, Runtime, fail
from telemetry.clients import RadioApiError, RadioClient
from telemetry.domain import radio as domain
from telemetry.repository import radio as repository

log = logging.getLogger(__name__)

Upsert = Callable[[Connection, Sequence[tuple[Any, ...]]], Awaitable[None]]


def _client(runtime: Runtime) -> RadioClient:
    return runtime.extras["radio"]


async def _proxy(
    runtime: Runtime,
    segments: tuple[str, ...],
    failure: str,
    convert: Callable[[Any], tuple[Any, ...] | None],
    upsert: Upsert,
    success_required: bool = False,
) -> Response:
    try:
        body = await _client(runtime).get(*segments)
    except RadioApiError as exc:
        log.warning("radio API call failed", extra={"endpoint": "/".join(segments), "error": str(exc)})
        raise ApiError(failure, exc.status_code, {"status": "ERROR", "message": failure, "error": str(exc)}) from exc
    if not isinstance(body, dict):
        error = "radio location API answered with an unexpected body"
        raise ApiError(failure, 502, {"status": "ERROR", "message": failure, "error": error})
    result = body.get("resultData")
    if result is not None and (not success_required or domain.is_success(body)):
        rows = domain.rows_of(result, convert)
        if rows:
            assert runtime.db is not None
            try:
                async with runtime.db.transaction() as conn:
                    await upsert(conn, rows)
            except Exception:  # the cache never fails the reply (the original's upserts were fire-and-forget)
                log.exception("radio cache write failed", extra={"endpoint": "/".join(segments)})
    return Response(body, status_code=200)


class RadioController(Controller):
    path = "/radio"
    tags = ["radio"]

    @get("/device")
    async def devices(self, runtime: Runtime) -> Response:
        """The API's device list (``/Device``); cached when the API reports success."""
        return await _proxy(
            runtime, ("Device",), "Failed to fetch devices", domain.device_row, repository.upsert_devices, True
        )

    @get("/device/{device_id:str}")
    async def device(self, runtime: Runtime, device_id: str) -> Response:
        """One device (``/Device/<id>``)."""
        if not domain.valid_radio_key(device_id):
            raise fail("invalid device id")
        return await _proxy(
            runtime, ("Device", device_id), "Failed to fetch device", domain.device_row, repository.upsert_devices
        )

    @get("/location")
    async def locations(self, runtime: Runtime) -> Response:
        """Latest fix of every radio (``/Location``)."""
        return await _proxy(
            runtime, ("Location",), "Failed to fetch locations", domain.location_row, repository.upsert_locations
        )

    @get("/location/{radio_no:str}")
    async def location(self, runtime: Runtime, radio_no: str) -> Response:
        """Latest fix of one radio (``/Location/<radioNo>``)."""
        if not domain.valid_radio_key(radio_no):
            raise fail("invalid radio number")
        return await _proxy(
            runtime,
            ("Location", radio_no),
            "Failed to fetch location for radio",
            domain.location_row,
            repository.upsert_locations,
        )
