"""Client of the third-party radio location API (``RADIO_LOCATION_API_URL``, HTTP Basic auth).

Unlike the original (no timeout, ``undefined:undefined`` credentials when unset) every call has a bounded
timeout, and the outcome is typed: :class:`RadioUnavailable` when the API cannot be reached or is not
configured (HTTP 503 to our caller), :class:`RadioBadAnswer` when it answered badly (HTTP 502).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import msgspec


class RadioApiError(Exception):
    status_code = 502


class RadioUnavailable(RadioApiError):
    status_code = 503


class RadioBadAnswer(RadioApiError):
    status_code = 502


class RadioClient:
    def __init__(self, base_url: str, username: str, password: str, timeout_seconds: float) -> None:
        self.base_url = base_url.rstrip("/")
        timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0))
        auth = httpx.BasicAuth(username, password) if username or password else None
        self._client = httpx.AsyncClient(timeout=timeout, auth=auth, follow_redirects=False)

    async def close(self) -> None:
        await self._client.aclose()

    async def get(self, *segments: str) -> Any:
        """GET ``<base>/<segments...>`` and the decoded JSON body."""
        if not self.base_url:
            raise RadioUnavailable("radio location API is not configured")
        url = self.base_url + "".join("/" + quote(s, safe="") for s in segments)
        try:
            answer = await self._client.get(url, headers={"accept": "application/json"})
        except httpx.TimeoutException as exc:
            raise RadioUnavailable("radio location API timed out") from exc
        except httpx.ConnectError as exc:
            raise RadioUnavailable("radio location API unreachable") from exc
        except httpx.HTTPError as exc:
            raise RadioBadAnswer(f"radio location API request failed: {type(exc).__name__}") from exc
        if not answer.is_success:
            raise RadioBadAnswer(f"API request failed with status {answer.status_code}")
        try:
            return msgspec.json.decode(answer.content)
        except msgspec.DecodeError as exc:
            raise RadioBadAnswer("radio location API answered with a body that is not JSON") from exc
