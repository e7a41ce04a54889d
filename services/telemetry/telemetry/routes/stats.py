"""HTTP routes of the statistics (original: statistics.controller), answered from telemetry's read model.

* GET /stats/summary (also GET /link/list, routes/link.py): paged SMS links that belong to a case, with filters.
* GET /stats/device, /stats/type: links per OS / per link type.
* GET /stats/gen, /stats/generate: per-link media and location usage.
* GET /stats/user, /stats/case (also GET /user/log, routes/user.py): the track_published log of a patient's mobile.

Unauthenticated, as in the original (the edge decides exposure). Shapes are the original's (bare arrays,
``COUNT``/``EVENT`` keys...). A parameter the original pasted into SQL unchecked (dates, limit, long filters)
that is not valid -> 400 ``{"status":"FAIL","message":...}``.
"""

from __future__ import annotations

import logging

from litestar import Controller, Request, Response, get

from servicekit.db import Database
from servicekit.web import Runtime, fail
from telemetry.domain import statistics as domain
from telemetry.repository import statistics as repository

log = logging.getLogger(__name__)

SUMMARY_ERROR = "An error occurred while fetching statistics"


def _db(runtime: Runtime) -> Database:
    assert runtime.db is not None
    return runtime.db


def _params(request: Request) -> dict[str, str]:
    """Query parameters, first value of each (Express gave arrays for repeats; no route here accepted one)."""
    return {key: request.query_params.get(key) or "" for key in request.query_params}


async def summary(request: Request, runtime: Runtime) -> Response:
    try:
        query = domain.summary_query(_params(request))
    except domain.BadQuery as exc:
        raise fail(str(exc)) from exc
    db = _db(runtime)
    try:
        count = await repository.summary_count(db, query)
        rows = await repository.summary_rows(db, query)
    except Exception:
        log.exception("stats summary failed")
        return Response({"error": SUMMARY_ERROR}, status_code=500)
    body = {
        "count": count,
        "currentPage": query.page,
        "totalPages": domain.total_pages(count, query.limit),
        "limit": query.limit,
        "data": [domain.summary_row(row) for row in rows],
    }
    return Response(body, status_code=200)


async def track_logs(request: Request, runtime: Runtime) -> Response:
    try:
        mobile = domain.user_mobile(_params(request))
    except domain.BadQuery as exc:
        raise fail(str(exc)) from exc
    db = _db(runtime)
    identity = await repository.newest_user_identity(db, mobile)
    if identity is None:
        return Response({"message": "invalid user"}, status_code=200)
    rows = await repository.tracks_of(db, identity)
    return Response({"track_logs": [domain.track_log(row) for row in rows]}, status_code=200)


class StatsController(Controller):
    path = "/stats"
    tags = ["stats"]

    @get("/summary")
    async def summary(self, request: Request, runtime: Runtime) -> Response:
        """SMS links of cases: ``dateTimeStart``, ``dateTimeEnd``, ``linkType``, ``userType``, ``search``,
        ``service``, ``organization``, ``mobile``, ``crmSender``, ``sortBy``, ``sortOrder``, ``limit``, ``page``."""
        return await summary(request, runtime)

    @get("/device")
    async def device(self, request: Request, runtime: Runtime) -> Response:
        """``[{"os", "COUNT"}]`` of SMS links, optionally created between ``dateTimeStart`` and ``dateTimeEnd``."""
        try:
            window = domain.created_range(_params(request))
        except domain.BadQuery as exc:
            raise fail(str(exc)) from exc
        rows = await repository.count_by_os(_db(runtime), window)
        return Response([{"os": r["os"], "COUNT": int(r["COUNT"])} for r in rows], status_code=200)

    @get("/type")
    async def link_type(self, request: Request, runtime: Runtime) -> Response:
        """``[{"linkType", "count"}]`` of SMS links, optionally created between ``dateTimeStart`` and
        ``dateTimeEnd``."""
        try:
            window = domain.created_range(_params(request))
        except domain.BadQuery as exc:
            raise fail(str(exc)) from exc
        rows = await repository.count_by_link_type(_db(runtime), window)
        return Response([{"linkType": r["linkType"], "count": int(r["count"])} for r in rows], status_code=200)

    @get(["/gen", "/generate"])
    async def generate(self, request: Request, runtime: Runtime) -> Response:
        """Per SMS link (newest first): OS, type, its room's patient identity, whether it shared a location,
        published video, published audio. ``os`` (``other`` = unknown), ``dtmStart`` + ``dtmEnd`` (dates).
        The list comes wrapped in one more array, as in the original."""
        try:
            query = domain.generate_query(_params(request))
        except domain.BadQuery as exc:
            raise fail(str(exc)) from exc
        rows = await repository.generate_rows(_db(runtime), query)
        return Response([[domain.generate_item(row) for row in rows]], status_code=200)

    @get(["/user", "/case"])
    async def user(self, request: Request, runtime: Runtime) -> Response:
        """The track_published log of the newest patient participant whose name is ``mobile``."""
        return await track_logs(request, runtime)
