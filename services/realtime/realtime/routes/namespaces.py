"""``/namespace`` and the original's ``/test/get/namespace``: the namespaces a client can connect to."""

from __future__ import annotations

from litestar import Controller, get

from realtime.domain import namespace_list
from realtime.repository import Registry
from servicekit.web import Runtime


async def _namespaces(runtime: Runtime) -> list[str]:
    assert runtime.redis is not None
    return namespace_list(await Registry(runtime.redis).all())


class NamespaceController(Controller):
    tags = ["realtime"]

    @get("/namespace")
    async def namespaces(self, runtime: Runtime) -> list[str]:
        """Every namespace a client can connect to: the static ones and the registered rooms and data links."""
        return await _namespaces(runtime)

    @get("/test/get/namespace")
    async def test_namespaces(self, runtime: Runtime) -> list[str]:
        """The original's test route; same list as GET /namespace."""
        return await _namespaces(runtime)
