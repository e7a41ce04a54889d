"""POST /link/idems: the IDEMS/CRM case link (a new room with a patient link, an agent link and a case).

Differences from the original: the agent console's bearer token is required (the original was open: anybody
could make rooms, cases and SMS); the CIS/IP-PBX branch (IPPBX_API_URL, a third-party API) is not carried
over, so every request takes the non-CIS path, as the original did when IPPBX_API_URL was unset; nothing is
written when the case cannot be opened (the original wrote links and then crashed or wrote a case anyway).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post

from contracts.conference import CaseOpen, EnsureRoom
from contracts.link import LinkCreated
from link import domain, events, repository
from link.events import sms
from servicekit import compat
from servicekit.bus import RpcError
from servicekit.clock import now_local
from servicekit.db import retry_rolled_back
from servicekit.web import Runtime, fail, parse_body

IDEMS_LIFETIME = timedelta(days=1)  # the original: dayjs().add(1, "day")

Count = Annotated[int, msgspec.Meta(ge=0, le=2_147_483_647)]
Str50 = Annotated[str, msgspec.Meta(max_length=50)]
Str100 = Annotated[str, msgspec.Meta(max_length=100)]


class IdemsBody(msgspec.Struct, kw_only=True):
    ippbxId: int | Str50 | None = None
    mobile: Annotated[str, msgspec.Meta(max_length=20)] = ""
    agent: int | Str100 | None = None
    autoRecord: Count = 0
    recordType: Str50 = domain.links.DEFAULT_RECORD_TYPE
    encodingOptionsPreset: Str50 = domain.links.DEFAULT_ENCODING_PRESET
    agentName: Str100 = ""
    linkType: Str50 | None = None
    sms: int | Str50 | None = None
    branch: int | Str100 | None = None


class IdemsController(Controller):
    path = "/link"
    tags = ["link"]

    @post("/idems", status_code=200, opt=compat.opens("writes"))
    async def create_idems(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        runtime.require_agent_token_unless_compat(request)
        body = await parse_body(request, IdemsBody)
        settings = runtime.settings
        assert runtime.db is not None and runtime.bus is not None
        if body.branch is None:
            return {"status": "FAIL", "message": "Invalid branch"}
        if body.linkType not in domain.links.IDEMS_LINK_TYPES:
            return {"status": "FAIL", "message": "Invalid linkType"}
        link_type = body.linkType
        mobile = body.mobile.strip()
        if mobile and not domain.sms.valid_mobile(mobile):
            raise fail("Invalid mobile")
        try:
            sms_flag = domain.links.sms_flag(body.sms)
        except ValueError as exc:
            raise fail(f"Invalid parameter: {exc}") from exc
        service = domain.links.IDEMS_SERVICE
        async with runtime.db.connection() as conn:
            tenant = await repository.tenants.get_tenant(conn, service)
        target = domain.links.link_target(tenant, link_type)
        if tenant is None or not target.domain:
            raise fail("Invalid service", 404)

        charset = settings.custom_charset
        room = domain.links.sanitize_room(domain.links.random_id(charset)) or domain.links.random_id(
            domain.links.DEFAULT_CHARSET
        )
        user_agent = request.headers.get("user-agent", "")
        try:
            ensured = await events.ensure_room(
                runtime.bus,
                EnsureRoom(
                    room=room,
                    service=service,
                    linkType=link_type,
                    autoRecord=body.autoRecord,
                    recordType=body.recordType,
                    encodingOptionsPreset=body.encodingOptionsPreset,
                    chatEnabled=1,
                    userAgent=user_agent[:255],
                ),
            )
            room_detail = ensured.get("room") or {}
            room_id = room_detail.get("id")
            # The case first: when conference cannot open it, no link is written (the room alone is harmless:
            # it has no links and the expiry sweep closes it).
            opened = await events.open_case(
                runtime.bus,
                CaseOpen(
                    service=service,
                    room=room,
                    roomId=room_id,
                    userName=mobile,
                    mobileCreated=mobile,
                    caseType=link_type,
                    organization=str(body.branch),
                ),
            )
        except RpcError as exc:
            if exc.code == "bad_request":
                raise fail(f"Invalid parameter: {exc.message}") from exc
            raise fail("conference service unavailable", 503) from exc
        case_id = opened.get("caseId") if isinstance(opened, dict) else None

        now = now_local()
        expires = now + IDEMS_LIFETIME
        common = {
            "room": room,
            "crmSender": body.agentName,
            "linkType": link_type,
            "service": service,
            "sms": sms_flag,
            "dtmCreated": now,
            "dtmExpired": expires,
            "userAgent": user_agent,
        }
        made: dict[str, str] = {}

        async def write() -> str | None:
            """The links, their events and SMS rows in one transaction; the SMS row's key when one is to be sent."""
            made.clear()
            sms_key = None
            async with runtime.db.transaction() as conn:
                if ensured.get("created") or await repository.links.share_link_id(conn, room, "Guest") is None:
                    for share_name, share_type in (("Guest", "user"), ("Viewer", "viewer")):
                        share_fields = {**common, "share": 1, "userType": share_type, "linkType": "video",
                                        "userName": share_name, "crmSender": "", "sms": 1}  # fmt: skip
                        share_id, share_row = await repository.links.insert_link(conn, charset, share_fields)
                        await events.share_link_created(
                            conn, share_id, share_row, share_fields, room_created=bool(ensured.get("created"))
                        )
                for user_type, link_mobile, user_name, is_admin in (
                    ("user", mobile, mobile, "0"),
                    ("admin", "", body.agentName, "1"),
                ):
                    link_id, row_id = await repository.links.insert_link(
                        conn,
                        charset,
                        {
                            **common,
                            "mobile": link_mobile,
                            "userType": user_type,
                            "userName": user_name,
                            "isAdmin": is_admin,
                        },
                    )
                    made[user_type] = link_id
                    url = domain.links.link_url(target.domain, link_type, link_id)
                    link = {
                        "linkID": link_id,
                        "isAdmin": int(is_admin),
                        "requireJoinPermission": 0,
                        "userName": user_name,
                        "dtmExpired": expires.strftime("%Y-%m-%d %H:%M:%S"),
                        "url": url,
                        "linkType": link_type,
                    }
                    await repository.usage.add_usage(
                        conn,
                        status=domain.links.STATUS_CREATE_LINK,
                        link_id=link_id,
                        room=room,
                        user_type=user_type,
                        mobile=link_mobile,
                        link_type=link_type,
                        data=link,
                    )
                    # realtime registers /data/<linkID> (and /<room>) from this event: the dataWebsocketURL below
                    await events.link_created(
                        conn,
                        LinkCreated(
                            linkID=link_id,
                            linkRowId=row_id,
                            room=room,
                            linkType=link_type,
                            userType=user_type,
                            userName=user_name,
                            mobile=link_mobile,
                            service=service,
                            roomCreated=bool(ensured.get("created")),
                            crmSender=body.agentName,
                            recordId=0,
                            share=0,
                            oneTimeLink=0,
                            dtmCreated=now.strftime("%Y-%m-%d %H:%M:%S"),
                            dtmExpired=expires.strftime("%Y-%m-%d %H:%M:%S"),
                            userAgent=user_agent,
                        ),
                    )
                    message = domain.sms.sms_for_link(
                        mobile=link_mobile,
                        sms=common["sms"],
                        link_type=link_type,
                        prefix=target.sms_prefix,
                        url=url,
                        sender=tenant.get("smsSenderName"),
                    )
                    if message is not None:
                        sms_key = await sms.record(
                            conn, message, enabled=settings.sms_enable, link_id=link_id, room=room, kind="link"
                        )
            return sms_key

        # Concurrent creations take gap locks on link_connect that can deadlock: InnoDB rolls one back; run it again.
        sms_key = await retry_rolled_back(write)
        if sms_key is not None:
            await sms.enqueue(runtime, sms_key)

        token = domain.links.data_socket_token(settings.livekit_api_key, settings.livekit_api_secret, room)
        user_link, admin_link = made["user"], made["admin"]
        data: dict[str, Any] = {
            "caseId": case_id,
            "cis": False,
            "roomId": room_id,
            "linkUserId": user_link,
            "linkAdminId": admin_link,
            "linkType": link_type,
            "recordType": body.recordType,
            "room": room,
            "mobile": mobile,
            "userURL": f"{target.domain}/{link_type}/{user_link}",
        }
        if link_type != "location":  # the original left agentURL undefined (absent) for location links
            data["agentURL"] = f"{target.domain}/{link_type}/{admin_link}"
        data["dataWebsocketURL"] = f"{domain.links.websocket_base(settings.api_url)}/data/{user_link}?token={token}"
        data["accessToken"] = token
        return {"status": "OK", "data": data}
