"""Auth publishes no events; it asks link (password check) and conference (participant token) over NATS:
``contracts.link.RPC_LINK_VERIFY_PASSWORD`` and ``contracts.conference.RPC_PARTICIPANT_TOKEN``. Both calls
raise :class:`servicekit.bus.RpcError`; the controller turns that into its answer."""

from __future__ import annotations

from typing import Any

from contracts.conference import RPC_PARTICIPANT_TOKEN, ParticipantTokenRequest
from contracts.link import RPC_LINK_VERIFY_PASSWORD, LinkCredentials
from servicekit.bus import Bus


async def verify_link_password(bus: Bus, link_id: str, password: str) -> Any:
    """The link behind ``link_id`` if ``password`` opens it (link answers ``not_found`` or ``denied`` if not)."""
    return await bus.request(RPC_LINK_VERIFY_PASSWORD, LinkCredentials(linkID=link_id, password=password))


async def participant_token(bus: Bus, link: dict[str, Any], link_id: str, user_name: str) -> Any:
    """Conference's participant token for the room of a link that passed the password check."""
    return await bus.request(
        RPC_PARTICIPANT_TOKEN,
        ParticipantTokenRequest(
            room=link["room"],
            userName=user_name or link.get("userName"),
            userType="admin" if str(link.get("isAdmin")) == "1" else (link.get("userType") or "user"),
            linkType=link.get("linkType"),
            mobile=link.get("mobile"),
            linkID=link_id,
            roomJoin=int(link.get("requireJoinPermission") or 0) != 1,
            isAddUser=False,
        ),
    )
