"""The edge's API reference: one OpenAPI document (deploy/edge/docs/openapi.json, served as ``GET /openapi.json``
and rendered at ``GET /docs``) merged from the services' own documents and restricted to the route table.

    python -m deploy.edge.openapi          # rewrite the committed document
    python -m deploy.edge.openapi --check  # fail when it is out of date or disagrees with the route table (CI)

Nothing is started: each service's ``<service>.app`` module is imported (settings have local defaults) and Litestar
builds its schema. What the handlers' signatures do not say is read from the handlers themselves, so it cannot
drift from the code: the body and query schemas they parse (``parse_body``/``parse_query`` with a msgspec Struct,
``request.query_params.get(...)``) and whether they check a bearer token (``require_token``, or a cutover mark
``compat.opens``). Every operation gets the original's envelope and a request example for a ``./dev up`` suite.

Each operation carries the route table's declared policy (``x-policy``; deploy/routes.toml ``policy``), and the
document is refused when it and the handler disagree: the credential checked (none, bearer token, operator key,
LiveKit signature) and which participant tokens pass (any, only the request's room's: ``require_room``, none:
``require_agent_token``). See :func:`policy_disagreement`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from deploy.edge.routes import Route, RouteTable, load

ROOT = Path(__file__).resolve().parents[2]
DOCS_DIR = ROOT / "deploy" / "edge" / "docs"
DOCUMENT = DOCS_DIR / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")
# Each service's own operational routes: on its port only, never routed by the edge.
NOT_ROUTED = {"/health", "/ready"}
# Paths under the route table's prefixes that are grouped apart from their first segment.
AREA_ALIASES = {"logo": "media", "videos": "media", "images": "media", "thumbnails": "media", "files": "media",
                "api": "realtime", "socket.io": "realtime", "namespace": "realtime"}  # fmt: skip

# Routes the services do not describe as HTTP operations: Socket.IO's endpoints are handled by python-socketio
# in front of Litestar. Documented here by hand (the Engine.IO long-polling handshake), and only these.
SOCKET_IO_OPERATION: dict[str, Any] = {
    "summary": "Socket.IO endpoint (Engine.IO handshake)",
    "description": "Socket.IO v4 (Engine.IO 4): polling, then a websocket upgrade. Namespaces and their events are "
    "described in the README; a socket authenticates with `query.token` (or `auth.token`).",
    "parameters": [
        {"name": "EIO", "in": "query", "required": True, "schema": {"type": "string", "enum": ["4"]}, "example": "4"},
        {
            "name": "transport",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "enum": ["polling"]},
            "example": "polling",
        },
    ],
    "responses": {
        "200": {"description": "Engine.IO open packet", "content": {"text/plain": {"example": '0{"sid":"…"}'}}},
        "400": {
            "description": "Engine.IO's refusal (another protocol version or transport, an unknown session)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    },
}
# Static files: answered as files, not envelopes.
FILE_ROUTES = {"/logo/*", "/videos/*", "/images/*", "/thumbnails/*", "/files/*", "/record/*"}
SOCKET_IO_POST: dict[str, Any] = {
    "summary": "Socket.IO endpoint (Engine.IO long-polling packets)",
    "description": "A polling client's packets for its session (`sid` from the handshake); without a known session "
    "Engine.IO refuses with 400.",
    "parameters": [
        *SOCKET_IO_OPERATION["parameters"],
        {"name": "sid", "in": "query", "required": True, "schema": {"type": "string"}, "example": "…"},
    ],
    "requestBody": {"content": {"text/plain": {"schema": {"type": "string"}}}},
    "responses": {
        "200": {"description": "accepted", "content": {"text/html": {"schema": {"type": "string"}, "example": "ok"}}},
        "400": SOCKET_IO_OPERATION["responses"]["400"],
    },
}
SOCKET_IO = {"get": SOCKET_IO_OPERATION, "post": SOCKET_IO_POST}
HAND_WRITTEN = {"/socket.io/": SOCKET_IO, "/api/realtime/socket.io/": SOCKET_IO}

# Example values by parameter/field name, for a suite from `./dev up` (TOKEN=$(just token); a link id from the
# answer of POST /link/create). Names not listed get a value of their schema's type.
EXAMPLE_VALUES: dict[str, Any] = {
    "room": "DemoRoom", "roomName": "DemoRoom", "mobile": "0812345678", "identity": "agent-1", "linkId": "AbCdEfGh",
    "linkID": "AbCdEfGh", "userName": "Agent One", "name": "Agent One", "lat": 13.7563,
    "lng": 100.5018, "latitude": 13.7563, "longitude": 100.5018, "page": 1, "limit": 10,
    "password": "", "userType": "user", "linkType": "video", "status": "active", "type": "video", "uid": "task-1",
    "notificationId": "1", "radioNo": "1001", "id": "1", "recordId": "1", "path": "sample.png",
    "startDate": "2026-01-01", "endDate": "2026-12-31", "track": "TR_camera", "muted": True, "message": "Hello",
}  # fmt: skip

ENVELOPES: dict[str, Any] = {
    "Ok": {
        "type": "object",
        "description": 'The original\'s answer: mostly `{"status":"OK", ...}` with the route\'s fields (often '
        "`data`); a few routes answer their object itself (POST /link/create: the link).",
        "properties": {"status": {"type": "string", "examples": ["OK"]}, "message": {"type": "string"}, "data": {}},
        "additionalProperties": True,
    },
    "Fail": {
        "type": "object",
        "description": "The original's failure envelope (bad input: HTTP 4xx; auth failures: HTTP 200).",
        "properties": {
            "status": {"type": "string", "enum": ["FAIL"]},
            "message": {"type": "string"},
            "data": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "message": {"type": "string"}},
                "description": "a rejected token: the verifier's error name and message",
            },
        },
        "required": ["status"],
    },
}
# The other error shapes the original answered, each kept by the route family that had it.
ENVELOPES |= {
    "NotFound": {
        "type": "object",
        "description": 'The original\'s not-found answer of the car routes: `{"status":"NOT FOUND","message":...}`.',
        "properties": {"status": {"type": "string", "enum": ["NOT FOUND"]}, "message": {"type": "string"}},
        "required": ["status"],
    },
    "SuccessFail": {
        "type": "object",
        "description": 'The /notification family\'s failure: `{"success":false,"message":...}` (or `error`).',
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "message": {"type": "string"},
            "error": {"type": "string"},
        },
        "required": ["success"],
    },  # fmt: skip
    "ErrorOnly": {
        "type": "object",
        "description": 'The /service and /link/multilatlng failures: `{"error":...}`.',
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    },
    "MessageOnly": {
        "type": "object",
        "description": 'The not-found answer of /link/cartracking and /case/create: `{"message":...}`.',
        "properties": {"message": {"type": "string"}},
        "required": ["message"],
        "additionalProperties": False,
    },
    "ProxyError": {
        "type": "object",
        "description": 'The radio proxy\'s failure (its API refused or is unreachable): `{"status":"ERROR",...}`.',
        "properties": {
            "status": {"type": "string", "enum": ["ERROR"]},
            "message": {"type": "string"},
            "error": {"type": "string"},
        },
        "required": ["status"],
    },  # fmt: skip
}
ENVELOPE_SCHEMA = {"anyOf": [{"$ref": "#/components/schemas/Ok"}, {"$ref": "#/components/schemas/Fail"}]}
REFUSALS = ("Fail", "NotFound", "SuccessFail", "ErrorOnly", "MessageOnly", "ProxyError")
REFUSAL_SCHEMA = {"anyOf": [{"$ref": f"#/components/schemas/{name}"} for name in REFUSALS]}
# Answers that are not an object: the original sent the list (or value) itself on success.
OTHER_ANSWERS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/chat/history"): {"type": "array"},
    ("get", "/namespace"): {"type": "array", "items": {"type": "string"}},
    ("get", "/test/get/namespace"): {"type": "array", "items": {"type": "string"}},
    ("get", "/room/listrooms"): {"type": "array"},
    ("get", "/user/listparticipants"): {"type": "array"},
    ("get", "/stats/device"): {"type": "array"},
    ("get", "/stats/type"): {"type": "array"},
    ("get", "/stats/gen"): {"type": "array"},
    ("get", "/stats/generate"): {"type": "array"},
    ("post", "/user/mutepublishedtrack"): {"type": "boolean"},
}
# Inputs the handlers refuse without (the original's message, HTTP 400/404): required in the document although the
# handlers' schemas keep them optional to answer with that message. Query parameters and body fields.
REQUIRED: dict[tuple[str, str], tuple[str, ...]] = {
    ("get", "/record/file"): ("room",),
    ("get", "/room/picture"): ("room",),
    ("get", "/service/get"): ("room",),
    ("post", "/link/create/hls"): ("room",),
    ("post", "/log"): ("status",),
    ("post", "/notification"): ("message",),
    ("put", "/service/update"): ("service", "latitude", "longitude"),
    ("put", "/notification/{notificationId}"): ("read",),
    ("put", "/notification/update/{notificationId}"): ("read",),
    ("post", "/upload/file"): ("myFiles",),
    ("post", "/upload/video"): ("myVideo",),
}
# Values the handlers accept from a closed set (their schemas keep a string to answer with the original's message).
ENUMS: dict[tuple[str, str], dict[str, list[Any]]] = {
    ("put", "/car/task"): {"status": ["arrive", "cancel", "complete", "start"]},
    ("post", "/car/task"): {"status": ["arrive", "cancel", "complete", "start"]},
    ("post", "/user/mutepublishedtrack"): {"muted": [True, False]},
    ("put", "/user/handle/track"): {"isMuted": [True, False]},
    ("put", "/notification/{notificationId}"): {"read": [0, 1]},
    ("put", "/notification/update/{notificationId}"): {"read": [0, 1]},
}
# Statuses answered by helpers the source scan does not reach.
EXTRA_CODES: dict[tuple[str, str], tuple[str, ...]] = {
    ("get", "/record/request"): ("404",),
    # conference's participant tokens: joins of one room wait for each other, at most 10 s ("the room is busy")
    ("post", "/user/generate"): ("503",),
    ("post", "/user/joingenerate"): ("503",),
    ("post", "/user/generateChatUser"): ("503",),
    ("post", "/room/verifyuser"): ("503",),
}
# Body fields the handlers check against a form of text (a pattern the document states).
_BASE_URL = "https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?"
PROPERTY_PATTERNS = {
    "domainsVideo": f"^{_BASE_URL}(,{_BASE_URL})*$",
    "domainsLocation": f"^{_BASE_URL}(,{_BASE_URL})*$",
    # the original's YYYY-MM-DD HH:mm:ss (local time)
    "dtmExpired": "^20[2-9][0-9]-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$",
}
# Path parameters the handlers read as numbers (or the radio API's identifiers).
PATH_PATTERNS = {"notificationId": "^[1-9][0-9]{0,8}$", "recordId": "^[0-9]{1,9}$", "radioNo": "^[A-Za-z0-9_-]{1,64}$",
                 "id": "^[A-Za-z0-9_-]{1,64}$"}  # fmt: skip
# Query parameters read raw from the request (not through a msgspec Struct) that the handler checks as numbers.
# The form and range of query values a handler reads as text and bounds itself (blank: the handler's default).
QUERY_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("/car/list", "limit"): {"pattern": "^([1-9][0-9]{0,5})?$"},  # 0 is refused
    ("/notification/unread", "limit"): {"pattern": "^([1-9][0-9]{0,2}|1000)?$"},  # 1..1000
    ("/upload/list", "page"): {"pattern": "^([1-9][0-9]{0,5}|1000000)?$"},  # 1..1,000,000
    ("/upload/list", "limit"): {"pattern": "^([0-9]{1,6})?$"},  # clamped to 1..100
    ("/upload/list", "recordType"): {"maxLength": 50},
    ("/record/file", "room"): {"maxLength": 50},  # room names are at most 50 characters (refused past that)
    ("/room/picture", "room"): {"maxLength": 50},
}
# Status codes a handler's source (or a helper of its module) answers: fail(..., 404), ApiError(..., 503, ...).
_STATUS_IN_SOURCE = re.compile(r"(?:,\s*|status_code=)(40[1-9]|41[0-9]|42[0-9]|50[0-9])\b")
_CALLED = re.compile(r"\b([a-z_]\w*)\(")
_TEXT_ANSWER = re.compile(r'media_type="text/html"|\btext\(|ApiError\([^()]*,\s*\d{3},\s*(?:"|message\))')
NO_TOKEN = {"status": "FAIL", "message": "Invalid token"}
FORBIDDEN = {"status": "FAIL", "message": "Forbidden"}
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "LiveKit JWT",
        "description": "A LiveKit access token signed with LIVEKIT_API_SECRET: the agent console's comes from "
        "`GET /auth/create` (`just token` after `./dev up`). Without a valid one: HTTP 200 "
        '`{"status":"FAIL","message":"Invalid token"}` (none sent) or `{"status":"FAIL","data":{...}}` (rejected).',
    },
    "operatorKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "The operator credential AUTH_API_KEY (`./dev up` prints a development one).",
    },
    "livekitWebhook": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "LiveKit's webhook signature: a JWT signed with the node's API secret whose `sha256` claim "
        "is the body's hash (LiveKit servers send it; anything else is refused with 401).",
    },
}
# Operations whose credential is not the bearer token the handlers check with require_token.
SPECIAL_SECURITY = {
    ("get", "/auth/create"): [{"operatorKey": []}, {"bearer": []}],
    ("post", "/webhook"): [{"livekitWebhook": []}],
    ("get", "/room/verifytoken"): [{"bearer": []}],  # the token sent is what it checks
}
OPTIONAL_BEARER = [{}, {"bearer": []}]
CREDENTIAL_NOTES = {
    ("get", "/auth/create"): "Needs the operator key (`x-api-key`) or a valid agent token; without: HTTP 401.",
    ("get", "/room/verifytoken"): "Checks the bearer token sent: its verdict is the answer.",
    "optional": "A valid bearer token, when sent, is used (e.g. its identity); none is needed.",
    ("post", "/webhook"): "Signed by LiveKit (its `Authorization` header); unsigned or badly signed: HTTP 401.",
    "bearer": "Needs a valid bearer token (`Authorization: Bearer <token>`); without one the original's "
    "auth failure, with HTTP 200.",
}
AGENT_NOTE = (
    "Needs an agent token (one not bound to a room, like `GET /auth/create`'s); a participant token of a room: "
    'HTTP 403 `{"status":"FAIL","message":"Forbidden"}`.'
)
# What the OpenAPI security of an operation is under each declared policy (deploy/routes.toml ``policy``), and
# whether its handler refuses room-bound tokens: the two must agree, or the document is not written.
POLICY_SECURITY: dict[str, tuple[list[list[dict[str, list[str]]]], str]] = {
    "open": ([[], OPTIONAL_BEARER], "any"),
    "link": ([[], OPTIONAL_BEARER], "any"),
    "token": ([[{"bearer": []}]], "any"),
    "room": ([[{"bearer": []}]], "own room"),
    "agent": ([[{"bearer": []}]], "none"),
    "operator": ([[{"operatorKey": []}, {"bearer": []}]], "none"),
    "livekit": ([[{"livekitWebhook": []}]], "any"),
}
ROOM_NOTE = (
    "A participant token works for its own room only (the request's `room`); another room's: HTTP 403 "
    '`{"status":"FAIL","message":"Forbidden"}`. Agent tokens work for every room.'
)
COMPAT_NOTES = {
    "auth_create": "COMPAT_OPEN_AUTH_CREATE",
    "dashboards": "COMPAT_OPEN_DASHBOARDS",
    "writes": "COMPAT_OPEN_WRITES",
}
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
# parse_body/parse_query(request, Schema) and helpers around them (a family's own error shape); msgspec.convert of
# a body read as a dict first (cleaned before validation).
_PARSED = re.compile(
    r"(\w*parse\w*)\(\s*request\s*,\s*([A-Za-z_]\w*)\s*\)|msgspec\.convert\(\s*raw\s*,\s*([A-Za-z_]\w*)"
)
# Bodies read field by field: a dict's keys (raw.get("x")), a multipart form's files and text fields (recording's
# _form_uploads/_text_field helpers).
_RAW_FIELD = re.compile(r"raw\.get\(\s*\"(\w+)\"")
_FORM_FILES = re.compile(r"_form_uploads\(\s*form\s*,\s*([^)]*)\)")
_FORM_TEXT = re.compile(r"_text_field\(\s*form\s*,\s*\"(\w+)\"")
_CALLS_WITH_REQUEST = re.compile(r"(\w+)\([^()]*\brequest\b")
_QUERY_GET = re.compile(r"query_params\.get\(\s*\"(\w+)\"")


def area(path: str) -> str:
    first = path.strip("/").split("/")[0] or "root"
    return AREA_ALIASES.get(first, first)


def _prefix(path: str) -> str:
    """The part of a route's path that names its area: /room, /api/realtime."""
    parts = path.strip("/").split("/")
    return "/" + "/".join(parts[:2] if parts[0] == "api" else parts[:1])


def _shape(path: str) -> str:
    """A path with every parameter (``{x}`` or ``:x``) as ``{}``: how a service's path and a route's compare."""
    return re.sub(r"\{[^}]*\}|:\w+", "{}", path)


def route_path(route: Route) -> str:
    """The route's path in OpenAPI form (``:id`` -> ``{id}``)."""
    return re.sub(r":(\w+)", r"{\1}", route.path)


def owning_route(table: RouteTable, path: str, method: str) -> Route | None:
    """The route-table entry an operation is reached through: the same path, else the longest matching prefix."""
    exact = [r for r in table.routes if not r.path.endswith("/*") and _shape(route_path(r)) == _shape(path)]
    if exact:
        return exact[0] if method.upper() in exact[0].methods else None
    prefixes = [r for r in table.routes if r.path.endswith("/*") and path.startswith(r.location)]
    prefixes.sort(key=lambda r: len(r.location), reverse=True)
    return prefixes[0] if prefixes and method.upper() in prefixes[0].methods else None


def _litestar_app(module: Any) -> Any:
    from litestar import Litestar

    if isinstance(module.app, Litestar):
        return module.app
    # realtime: Socket.IO in front of Litestar; its Litestar app is another module attribute.
    return next(v for v in vars(module).values() if isinstance(v, Litestar))


def _handlers(app: Any) -> dict[tuple[str, str], Any]:
    """(method, OpenAPI path) -> the route handler serving it."""
    found = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            for method in handler.http_methods:
                found[(method.lower(), _PARAM.sub(r"{\1}", route.path))] = handler
    return found


def _example(name: str, schema: dict[str, Any], components: dict[str, Any]) -> Any:
    if name in EXAMPLE_VALUES:
        return EXAMPLE_VALUES[name]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    for option in options:
        if "$ref" in option:
            option = components.get(option["$ref"].rsplit("/", 1)[-1], {})
        kind = option.get("type")
        if "enum" in option:
            return option["enum"][0]
        if kind == "string":
            return "text"
        if kind in ("integer", "number"):
            return 1
        if kind == "boolean":
            return False
    return None


class _Derived(msgspec.Struct):
    body: dict[str, Any] | None = None
    query: list[dict[str, Any]] = msgspec.field(default_factory=list)
    token: bool = False
    agent: bool = False  # refuses a room-bound (participant) token
    room: bool = False  # refuses a participant token of another room than the request's
    optional_token: bool = False  # reads a bearer token when one is sent
    compat: str | None = None
    stream: bool = False  # Server-Sent Events
    form: dict[str, Any] | None = None  # a multipart upload's fields
    codes: list[str] = msgspec.field(default_factory=list)  # error statuses besides 400
    text: bool = False  # answers text/html (the original's res.send(text))


def _derive(handler: Any, service: str, path: str, components: dict[str, Any]) -> _Derived:
    """What the handler's code says about its input and credential."""
    fn: Callable[..., Any] = handler.fn
    source = _source(fn)
    # One level of the module's own helpers the handler hands its request to (shared by two spellings of a route).
    for name in _CALLS_WITH_REQUEST.findall(source):
        helper = fn.__globals__.get(name)
        if inspect.isfunction(helper) and helper.__module__ == fn.__module__:
            source += _source(helper)
    # Status codes and text answers: also from the module's other helpers the handler calls (one level).
    helpers = source
    for name in dict.fromkeys(_CALLED.findall(source)):
        helper = fn.__globals__.get(name)
        if inspect.isfunction(helper) and helper.__module__ == fn.__module__ and helper is not fn:
            helpers += _source(helper)
    derived = _Derived(compat=(handler.opt or {}).get("compat"))
    derived.agent = "require_agent_token" in source or "_agent_only(" in source
    derived.room = "require_room(" in source
    derived.codes = sorted(set(_STATUS_IN_SOURCE.findall(helpers)))
    derived.text = bool(_TEXT_ANSWER.search(helpers))
    derived.token = "require_token" in source or derived.agent or derived.compat is not None
    derived.optional_token = not derived.token and "bearer_token(" in source
    derived.stream = "ServerSentEvent" in str(inspect.signature(fn).return_annotation)
    names: set[str] = set()
    for parser, parsed, converted in _PARSED.findall(source):
        kind = "query" if "query" in parser else "body"
        struct = fn.__globals__.get(parsed or converted)
        if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
            continue  # a schema chosen at run time (e.g. by path): left to the handler's description
        prefix = f"{service}.{struct.__name__}"
        (ref,), defs = msgspec.json.schema_components([struct], ref_template=f"#/components/schemas/{service}.{{name}}")
        for key, value in defs.items():
            components[f"{service}.{key}"] = value
        schema = components[prefix]
        if kind == "body":
            # Fields with a known plausible value or required ones; the rest keep the handler's defaults.
            required = set(schema.get("required", []))
            example = {
                k: _example(k, v, components)
                for k, v in schema.get("properties", {}).items()
                if k in EXAMPLE_VALUES or k in required
            }
            derived.body = {"schema": {"$ref": ref["$ref"]}, "example": example}
        else:
            required = set(schema.get("required", []))
            for key, prop in schema.get("properties", {}).items():
                names.add(key)
                derived.query.append(_query(key, prop, key in required, components))
    if derived.body is None and (fields := dict.fromkeys(_RAW_FIELD.findall(source))):
        example = {k: EXAMPLE_VALUES.get(k, "text") for k in fields}
        derived.body = {"schema": {"type": "object", "properties": dict.fromkeys(fields, {"type": "string"})},
                        "example": example}  # fmt: skip
    files = [name for group in _FORM_FILES.findall(source) for name in re.findall(r'"([^"]+)"', group)]
    if files:
        properties: dict[str, Any] = {name: {"type": "string", "format": "binary"} for name in files}
        properties |= {name: {"type": "string"} for name in _FORM_TEXT.findall(source)}
        derived.form = {"type": "object", "properties": properties}
    for key in _QUERY_GET.findall(source):
        if key not in names:
            names.add(key)
            derived.query.append(_query(key, {"type": "string"}, False, components))
    return derived


def _source(fn: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def _query(name: str, schema: dict[str, Any], required: bool, components: dict[str, Any]) -> dict[str, Any]:
    param = {"name": name, "in": "query", "required": required, "schema": schema}
    example = _example(name, schema, components)
    if example is not None:
        param["example"] = example
    return param


# OpenAPI links (schemathesis's stateful phase follows them): what an answer names, used by the next request.
_CREATED_LINK = {"linkId": "$response.body#/linkID"}
_CREATED_ROOM = {"room": "$response.body#/room"}
LINKS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/link/create"): {
        "LinkDetail": {"operationId": "get__link_getdetail", "parameters": _CREATED_LINK},
        "LinkDomain": {"operationId": "get__link_get_domain", "parameters": {"linkID": "$response.body#/linkID"}},
        "UploadFile": {"operationId": "post__upload_file", "parameters": {"linkID": "$response.body#/linkID"}},
        "RoomDetail": {"operationId": "get__room_detail", "parameters": _CREATED_ROOM},
        "Participants": {"operationId": "get__user_listparticipants", "parameters": _CREATED_ROOM},
        "Share": {"operationId": "get__link_share", "parameters": _CREATED_ROOM},
        "ChatHistory": {"operationId": "get__chat_history", "parameters": _CREATED_ROOM},
        "RoomStatus": {"operationId": "get__status", "parameters": _CREATED_ROOM},
        "RealtimeRoom": {"operationId": "get__api_realtime_rooms_room", "parameters": _CREATED_ROOM},
    },
}
ERROR_CODES = {
    "413": "the body is larger than the route's limit (the edge's or the service's answer)",
    "414": "the URL is longer than the edge's buffers",
    "500": "the database failed (the original's answer of this route)",
    "404": "not found (the room, link, record, service or file named does not exist)",
    "409": "conflict",
    "502": "the third-party API (radio location) refused or failed",
    "503": "a dependency (LiveKit, another service, an unconfigured third-party API) is unavailable: retry later",
}


def _body_schemas(
    schema: dict[str, Any], components: dict[str, Any], method: str, path: str, params: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The body's JSON schema (inlined, with the fields the handler refuses without as required and closed value
    sets as enums) and its form-urlencoded twin (every value text: a boolean `true`/`false`, a number digits)."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    body = json.loads(json.dumps(schema))  # a copy: components stay the handlers' own schemas
    properties: dict[str, Any] = body.setdefault("properties", {})
    needed = [n for n in REQUIRED.get((method, path), ()) if n not in {p["name"] for p in params}]
    for name in needed:
        properties[name] = _non_empty(properties.get(name, {"type": "string"}))
    for name, pattern in PROPERTY_PATTERNS.items():
        if name in properties:
            prop = properties[name]
            options = prop.get("anyOf") or [prop]
            for option in options:
                if option.get("type") == "string":
                    option["pattern"] = pattern
    for name, values in ENUMS.get((method, path), {}).items():
        properties[name] = {"enum": values}
    body["required"] = sorted({*body.get("required", []), *needed})
    if not body["required"]:
        del body["required"]
    form = {k: v for k, v in body.items() if k != "properties"}
    form["properties"] = {name: _form_value(prop, components) for name, prop in properties.items()}
    return body, form if all(form["properties"].values()) else None


def _form_value(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any] | None:
    """How a form field of this schema is sent: text; None when a handler reads it only from JSON (a number, a
    boolean, an object: the form's text is not converted)."""
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    options = [o for o in (schema.get("anyOf") or [schema]) if o.get("type") != "null"]
    kinds = {o.get("type") for o in options}
    if "enum" in schema:
        return None
    if kinds == {"string"}:
        one = next(o for o in options if o.get("type") == "string")
        return {k: v for k, v in one.items() if k in ("type", "minLength", "maxLength", "pattern", "enum", "format")}
    return None


def _with_limits(schema: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema with the route's own limits (QUERY_SCHEMAS) on its text (each text option)."""
    if "anyOf" in schema:
        return {**schema, "anyOf": [_with_limits(option, limits) for option in schema["anyOf"]]}
    return schema | limits if schema.get("type") == "string" else schema


def _non_empty(schema: dict[str, Any]) -> dict[str, Any]:
    """A required parameter's schema: a non-empty value (the handlers treat an empty one as missing)."""
    options = schema.get("anyOf") or [schema]
    kept = [o for o in options if o.get("type") != "null"] or [{"type": "string"}]
    one = dict(kept[0])
    if one.get("type") == "string":
        one.setdefault("minLength", 1)
        one.setdefault("pattern", "\\S")  # blank counts as missing
    return one


def _operation(
    op: dict[str, Any],
    method: str,
    path: str,
    route: Route,
    service: str,
    derived: _Derived,
    components: dict[str, Any],
) -> dict:
    op = {k: v for k, v in op.items() if k not in ("tags", "operationId")}
    op["tags"] = [area(route.path)]
    op["x-policy"] = route.policy(method)
    op["operationId"] = f"{method}_{path}".replace("/", "_").replace("{", "").replace("}", "")
    lines = [op.get("description", "").strip(), f"Served by **{service}** (route `{route.path}`)."]
    security = SPECIAL_SECURITY.get((method, path))
    if security is None and derived.token:
        security = [{"bearer": []}]
    if security is None and derived.optional_token:
        op["security"] = OPTIONAL_BEARER
        lines.append(CREDENTIAL_NOTES["optional"])
    elif security:
        op["security"] = security
        lines.append(CREDENTIAL_NOTES.get((method, path), CREDENTIAL_NOTES["bearer"]))
        if derived.agent:
            lines.append(AGENT_NOTE)
        elif derived.room:
            lines.append(ROOM_NOTE)
        if derived.compat:
            lines.append(f"Cutover profile: without a valid credential only when {COMPAT_NOTES[derived.compat]} is on.")
    else:
        op["security"] = []
        lines.append("Open: no credential.")
    op["description"] = "\n\n".join(line for line in lines if line)
    params = [p for p in op.get("parameters", []) if p.get("in") != "query"]
    known = {p["name"] for p in op.get("parameters", [])}
    params += [p for p in op.get("parameters", []) if p.get("in") == "query"]
    params += [p for p in derived.query if p["name"] not in known]
    required = REQUIRED.get((method, path), ())
    for param in params:
        if param.get("in") == "path" and "example" not in param:
            param["example"] = EXAMPLE_VALUES.get(param["name"], "1")
        if param.get("in") == "query" and param["name"] in required:
            param["required"] = True
            param["schema"] = _non_empty(param["schema"])
        if param.get("in") == "query" and (limits := QUERY_SCHEMAS.get((path, param["name"]))):
            param["schema"] = _with_limits(param["schema"], limits)
    if params:
        op["parameters"] = params
    if derived.body and method in ("post", "put", "patch"):
        json_schema, form_schema = _body_schemas(derived.body["schema"], components, method, path, params)
        op["requestBody"] = {
            "required": bool(json_schema.get("required")),
            "content": {"application/json": {"schema": json_schema, "example": derived.body["example"]}},
        }
        if form_schema:  # the original read form bodies too (its text fields)
            op["requestBody"]["content"]["application/x-www-form-urlencoded"] = {"schema": form_schema}
    if derived.form and method in ("post", "put"):
        form = {**derived.form, "required": [name for name in required if name in derived.form["properties"]]}
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": form}}}
    fail = {"status": "FAIL", "message": "Invalid parameter: …"}
    examples: dict[str, Any] = {"fail": {"summary": "bad input", "value": fail}}
    refused: dict[str, Any] = {}  # status code -> answer without a credential, where it is not HTTP 200
    if security == SPECIAL_SECURITY[("post", "/webhook")]:
        refused["401"] = {"status": "FAIL", "message": "missing authorization"}
    elif security == SPECIAL_SECURITY[("get", "/auth/create")]:
        refused["401"] = NO_TOKEN
    elif security:  # the original answered auth failures with HTTP 200
        examples["no_token"] = {"summary": "no credential", "value": NO_TOKEN}
    ok_code = next((c for c in op.get("responses", {}) if c.startswith("2")), "200")
    description = "the original's envelope"
    if route.path in FILE_ROUTES:
        content: dict[str, Any] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
        description = "the file (a missing one: 404 with the FAIL envelope)"
    elif derived.stream:
        content = {"text/event-stream": {"schema": {"type": "object", "properties": {
            "event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}}}}}  # fmt: skip
        description = "Server-Sent Events, kept open"
    else:
        schema = ENVELOPE_SCHEMA
        if (method, path) in OTHER_ANSWERS:
            schema = {"anyOf": [OTHER_ANSWERS[(method, path)], *ENVELOPE_SCHEMA["anyOf"]]}
        content = {"application/json": {"schema": schema, "examples": examples}}
        if derived.text:
            content["text/html"] = {"schema": {"type": "string"}}
    # Litestar's own 4xx shapes are never answered: servicekit turns them into the FAIL envelope.
    responses: dict[str, Any] = {ok_code: {"description": description, "content": content}}
    if (method, path) in LINKS:
        responses[ok_code]["links"] = LINKS[(method, path)]
    refusal: dict[str, Any] = {"application/json": {"schema": REFUSAL_SCHEMA, "example": fail}}
    if derived.text:
        refusal["text/html"] = {"schema": {"type": "string"}, "example": "Invalid parameter"}
    responses["400"] = {"description": "bad input", "content": refusal}
    codes = set(derived.codes) | set(EXTRA_CODES.get((method, path), ())) | {"414"}
    if "requestBody" in op:
        codes.add("413")
    if route.path in FILE_ROUTES:
        codes.add("404")
    for code in sorted(codes - {"400", "401"}):
        responses[code] = {"description": ERROR_CODES.get(code, "the original's failure"), "content": refusal}
    if (derived.agent or derived.room) and security == [{"bearer": []}]:
        refused["403"] = FORBIDDEN
    if "no_token" in examples and ok_code != "200":  # e.g. 201 when created; the auth failure stays HTTP 200
        refused["200"] = NO_TOKEN
    for code, answer in refused.items():
        responses[code] = {"description": "no valid credential", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Fail"}, "example": answer}}}  # fmt: skip
    op["responses"] = responses
    return op


def _rename_path_params(op: dict[str, Any], service_path: str, edge_path: str) -> None:
    """Path parameters take the route table's names (the original's), e.g. notification_id -> notificationId."""
    old, new = _PARAM.findall(service_path), _PARAM.findall(edge_path)
    renames = dict(zip(old, new, strict=False))
    for param in op.get("parameters", []):
        if param.get("in") == "path" and param["name"] in renames:
            param["name"] = renames[param["name"]]


def build(table: RouteTable | None = None) -> dict[str, Any]:
    """The merged document. Raises ValueError when it and the route table disagree (see :func:`disagreements`)."""
    table = table or load()
    components: dict[str, Any] = dict(ENVELOPES)
    operations: dict[str, dict[str, Any]] = {}
    policy_problems: list[str] = []
    for service in sorted(table.service_ports):
        module = importlib.import_module(f"{service}.app")
        app = _litestar_app(module)
        schema = app.openapi_schema.to_schema()
        extra = {p: item.to_schema() for p, item in getattr(app.state, "openapi_paths", {}).items()}
        handlers = _handlers(app)
        for path, item in {**schema.get("paths", {}), **extra}.items():
            if path in NOT_ROUTED:
                continue
            for method in METHODS:
                if method not in item:
                    continue
                route = owning_route(table, path, method)
                if route is None:
                    raise ValueError(f"{service} documents {method.upper()} {path}, which no route reaches")
                edge_path = path if route.path.endswith("/*") else route_path(route)
                handler = handlers.get((method, path))
                derived = _derive(handler, service, path, components) if handler else _Derived()
                op = _operation(item[method], method, edge_path, route, service, derived, components)
                if (problem := policy_disagreement(op, route, method, derived)) is not None:
                    policy_problems.append(f"{method.upper()} {edge_path} ({service}): {problem}")
                _rename_path_params(op, path, edge_path)
                for param in op.get("parameters", []):
                    if param.get("in") == "path" and param["name"] in PATH_PATTERNS:
                        param["schema"] = {"type": "string", "pattern": PATH_PATTERNS[param["name"]]}
                operations.setdefault(edge_path, {})[method] = op
    for path, hand_written in HAND_WRITTEN.items():
        for method, op in hand_written.items():
            route = owning_route(table, path, method)
            assert route is not None, (method, path)
            operations.setdefault(path, {})[method] = {**op, "tags": [area(path)], "security": [],
                                                       "operationId": f"{method}{path.replace('/', '_')}",
                                                       "x-policy": route.policy(method)}  # fmt: skip
            if route.policy(method) not in ("open", "link"):
                policy_problems.append(
                    f"{method.upper()} {path}: a hand-written open operation, declared {route.policy(method)}"
                )
    problems = disagreements(table, operations) + policy_problems
    if problems:
        raise ValueError("the route table and the services' documents disagree:\n  " + "\n  ".join(problems))
    order = {route_path(r): i for i, r in enumerate(table.routes)}

    def rank(path: str) -> tuple[int, str]:
        route = owning_route(table, path, next(iter(operations[path])))
        return (order.get(route_path(route), 0) if route else 0, path)

    paths = {p: dict(sorted(operations[p].items())) for p in sorted(operations, key=rank)}
    tags: list[dict[str, str]] = []
    for route in table.routes:
        name = area(route.path)
        if all(t["name"] != name for t in tags):
            members = [r for r in table.routes if area(r.path) == name]
            owners = ", ".join(sorted({r.service for r in members}))
            prefixes = ", ".join(dict.fromkeys(f"`{_prefix(r.path)}`" for r in members))
            tags.append({"name": name, "description": f"{prefixes} (served by {owners})"})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "EMS video-call backend: the edge",
            "version": "1.0.0",
            "description": "Every route of the edge's route table (deploy/routes.toml), merged from the services' "
            "OpenAPI documents by `python -m deploy.edge.openapi`. Answers keep the original's envelope "
            '(`{"status":"OK",...}` / `{"status":"FAIL","message":...}`). Try it against `./dev up`: '
            "`just token` prints a bearer token for the Authorize button.",
        },
        "servers": [{"url": "/", "description": "this edge"}],
        "tags": tags,
        "paths": paths,
        "components": {"schemas": dict(sorted(components.items())), "securitySchemes": SECURITY_SCHEMES},
    }


def policy_disagreement(op: dict[str, Any], route: Route, method: str, derived: _Derived) -> str | None:
    """Why the declared policy of ``method`` on ``route`` and what its handler enforces differ (None: they agree)."""
    policy = route.policy(method)
    securities, participants = POLICY_SECURITY[policy]
    security = op.get("security", [])
    if security not in securities:
        return f"declared {policy!r}, but the handler's credential is {json.dumps(security)}"
    enforced = "none" if derived.agent else "own room" if derived.room else "any"
    if security == [{"bearer": []}] and enforced != participants:
        return f"declared {policy!r}, but the handler takes participant tokens of {enforced} room(s)"
    return None


def disagreements(table: RouteTable, operations: dict[str, dict[str, Any]]) -> list[str]:
    """Route-table entries (each of their methods) without a documented operation. (Operations no route reaches
    are refused while merging.) A prefix route counts as documented by any operation under its prefix."""
    problems = []
    for route in table.routes:
        for method in route.methods:
            if route.path.endswith("/*"):
                hit = any(p.startswith(route.location) and method.lower() in ops for p, ops in operations.items())
            else:
                hit = method.lower() in operations.get(route_path(route), {})
            if not hit:
                problems.append(f"{method} {route.path} ({route.service}) has no documented operation")
    return problems


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the committed document is out of date")
    args = parser.parse_args(argv)
    try:
        text = render(build())
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else None
    if current == text:
        return 0
    if args.check:
        print(f"out of date: {DOCUMENT.relative_to(ROOT)} (run `python -m deploy.edge.openapi`)", file=sys.stderr)
        return 1
    DOCUMENT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
