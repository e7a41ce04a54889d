"""Third-party APIs link calls: the SMS gateway (sending one ``sms_message`` row; link.events.sms's retried job
makes the call, retries it and records the outcome)."""

from __future__ import annotations

from typing import Any

import httpx

from servicekit.jobs import NotConfigured
from servicekit.settings import CommonSettings


def sms_request(client: httpx.AsyncClient, settings: CommonSettings, key: str, row: dict[str, Any]) -> httpx.Request:
    """The gateway's send call: form-encoded ``src``/``dst``/``message`` with the ``x-api-key`` header (never
    logged, never stored, never in an event) and ``key`` as the ``Idempotency-Key`` of every attempt."""
    url, api_key = getattr(settings, "sms_api_url", ""), getattr(settings, "sms_api_key", "")
    if not url:
        raise NotConfigured("SMS_API_URL is not set")
    return client.build_request(
        "POST",
        url,
        data={"src": row["sender"], "dst": row["mobile"], "message": row["text"]},
        headers={"x-api-key": api_key, "Idempotency-Key": key},
    )
