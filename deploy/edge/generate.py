"""Generate the edge from the route table: nginx config (local processes and compose) and the Kubernetes
Gateway API HTTPRoute. Nothing here is written by hand twice.

    python -m deploy.edge.generate          # rewrite the committed files
    python -m deploy.edge.generate --check  # fail when they are out of date (CI)
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from deploy.edge.routes import RateLimit, Route, RouteTable, load

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_CONF = ROOT / "deploy" / "edge" / "nginx.compose.conf"
HTTPROUTE = ROOT / "k8s" / "base" / "edge" / "httproute.yaml"
STICKY = {"realtime"}  # Socket.IO long-polling needs every request of a session on one instance
JSON_404 = '{"status":"FAIL","message":"Not Found"}'
JSON_502 = '{"status":"FAIL","message":"Service unavailable"}'
JSON_413 = '{"status":"FAIL","message":"Request Entity Too Large"}'
JSON_429 = '{"status":"FAIL","message":"Too Many Requests"}'
# Where the edge is generated at start-up (deploy/local.py), these settings override the route table's limits.
RATE_LIMITS_SETTING = "EDGE_RATE_LIMITS"  # "off": no limits
RATE_LIMIT_SETTING = "EDGE_RATE_LIMIT_{zone}"  # "<rate>[,<burst>]"
RATE_EXEMPT_SETTING = "EDGE_RATE_LIMIT_EXEMPT"  # addresses/CIDRs never limited
ZONE_SIZE = "10m"  # ~160k client addresses per zone


def rate_limits_from(
    table: RouteTable, env: Mapping[str, str], exempt_default: str = ""
) -> tuple[dict[str, RateLimit], list[str]]:
    """The zones' limits and the exempt client addresses under ``env``'s settings (README "Rate limits")."""
    if env.get(RATE_LIMITS_SETTING, "on").strip().lower() in ("off", "false", "0", "no"):
        return {}, []
    limits = {}
    for zone, default in table.rate_limits.items():
        value = env.get(RATE_LIMIT_SETTING.format(zone=zone.upper()), "").strip()
        limits[zone] = RateLimit.parse(value, default) if value else default
    exempt = [a for a in re.split(r"[\s,]+", env.get(RATE_EXEMPT_SETTING, exempt_default)) if a]
    for address in exempt:
        ipaddress.ip_network(address, strict=False)  # ValueError on a typo: never a silently open edge
    return limits, exempt


JSON_405 = '{"status":"FAIL","message":"Method Not Allowed"}'
JSON_400 = '{"status":"FAIL","message":"Bad Request"}'
JSON_414 = '{"status":"FAIL","message":"URI Too Long"}'
# Methods nginx refuses itself (TRACE) get the envelope and an Allow header of the methods the edge passes on.
EDGE_ALLOW = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
# Bodies bigger than this never reach a service; services enforce their own (smaller) limits in the envelope.
DEFAULT_MAX_BODY = "1m"  # = servicekit MAX_BODY_BYTES default; routes.toml raises it per route (uploads)


def _locations(table: RouteTable) -> list[tuple[str, Route]]:
    """(nginx location, route) in a stable order, exact matches before prefixes; one route per location."""
    seen: dict[str, Route] = {}
    for route in table.routes:
        key = ("^~ " if route.is_prefix else "= ") + route.location
        previous = seen.get(key)
        if previous and previous.service != route.service:
            raise ValueError(f"{route.location} is claimed by {previous.service} and {route.service}")
        same = (previous.websocket, previous.max_body, previous.rate_limit) if previous else None
        if previous and same != (route.websocket, route.max_body, route.rate_limit):
            raise ValueError(f"{route.location}: routes sharing a location must agree on websocket, max_body and "
                             "rate_limit")  # fmt: skip
        seen[key] = route
    return sorted(seen.items(), key=lambda item: (item[0][0] != "=", item[0]))


HEALTH_JS = Path(__file__).resolve().parent / "health.js"
# CORS of the edge's own replies, set by njs (cors.js) from CORS_ALLOWED_ORIGINS. Only on locations nginx answers
# itself: proxied routes get CORS from their service (servicekit), and a second Access-Control-Allow-Origin would
# make browsers refuse the reply.
EDGE_CORS = "js_header_filter edge_cors.headers;"
# A preflight (OPTIONS with Origin and Access-Control-Request-Method) of a path nginx answers: 204, not the 404.
EDGE_PREFLIGHT = "if ($cors_preflight) { return 204; }"
JS_MODULE_LOCAL = "/usr/lib/nginx/modules/ngx_http_js_module.so"  # Debian's libnginx-mod-http-js
JS_MODULE_IMAGE = "modules/ngx_http_js_module.so"  # the official nginx image
# The API reference (deploy/edge/openapi.py): the page, the merged document and the renderer's files, served by the
# edge itself from this directory (the renderer from its npm package, installed there by `just setup`).
DOCS_DIR = Path(__file__).resolve().parent / "docs"
RENDERER = "node_modules/swagger-ui-dist"
DOCS_TYPES = "types { text/html html; text/css css; application/javascript js; application/json json; image/png png; }"


def render_nginx(
    table: RouteTable,
    upstreams: Mapping[str, str],
    listen: str,
    run_dir: str | None = None,
    as_root: bool = False,
    js_module: str = JS_MODULE_LOCAL,
    js_path: str = str(HEALTH_JS.parent),
    docs_path: str = str(DOCS_DIR),
    rate_limits: Mapping[str, RateLimit] | None = None,
    rate_exempt: Sequence[str] = (),
) -> str:
    """nginx.conf for the edge. ``upstreams`` maps service -> host:port; ``run_dir`` keeps pid/temp files out of
    system paths when nginx runs as a local process. njs (``health.js``) aggregates the services' readiness.
    ``rate_limits`` (default: the table's) are per-client ``limit_req`` zones; ``rate_exempt`` addresses are never
    limited."""
    limits = table.rate_limits if rate_limits is None else rate_limits
    out: list[str] = [f"load_module {js_module};"]
    if as_root:
        out.append("user root;")
    # Workers see only the variables named here; cors.js reads this one (one config for every deployment).
    out += ["worker_processes auto;", "worker_rlimit_nofile 65535;", "env CORS_ALLOWED_ORIGINS;"]
    if run_dir:
        out += [f"pid {run_dir}/nginx.pid;", f"error_log {run_dir}/error.log warn;"]
    else:
        out += ["error_log /dev/stderr warn;"]
    out += ["events { worker_connections 8192; multi_accept on; }", "", "http {"]
    body = [
        "access_log off;",
        "server_tokens off;",
        "default_type application/json;",
        "keepalive_requests 100000;",
        "proxy_http_version 1.1;",
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Request-ID $request_id;",
        # Upgrade only when the client asks (Socket.IO websockets); otherwise an empty Connection header keeps
        # upstream connections alive. Set here once: a location's own proxy_set_header would drop these.
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_connect_timeout 3s;",
        # A connection refused or reset before the request went out (an instance stopping or restarting) goes to
        # the next server of the upstream. Not "non_idempotent": a POST nginx has sent may have been handled, so it
        # is never sent twice; servicekit's drain (Connection: close before the shutdown) keeps that case away.
        "proxy_next_upstream error timeout;",
        "proxy_next_upstream_tries 3;",
        "proxy_read_timeout 60s;",
        f"client_max_body_size {DEFAULT_MAX_BODY};",
        "map $http_upgrade $connection_upgrade { default upgrade; '' ''; }",
        f"js_path {js_path};",
        "js_import edge_health from health.js;",
        "js_import edge_cors from cors.js;",
        "js_set $cors_preflight edge_cors.preflight;",
    ]
    if limits:
        # Keyed by the client's address; an exempt client's key is empty, which limit_req does not count.
        exempt = " ".join(f"{address} 1;" for address in rate_exempt)
        body += [
            f"geo $edge_rate_exempt {{ default 0; {exempt} }}" if exempt else "geo $edge_rate_exempt { default 0; }",
            "map $edge_rate_exempt $edge_rate_client { 0 $binary_remote_addr; default ''; }",
            "limit_req_status 429;",
            "limit_req_log_level warn;",
        ]
        body += [
            f"limit_req_zone $edge_rate_client zone={z}:{ZONE_SIZE} rate={limits[z].rate};" for z in sorted(limits)
        ]
    if run_dir:
        body += [
            f"client_body_temp_path {run_dir}/body;",
            f"proxy_temp_path {run_dir}/proxy;",
            f"fastcgi_temp_path {run_dir}/fastcgi;",
            f"uwsgi_temp_path {run_dir}/uwsgi;",
            f"scgi_temp_path {run_dir}/scgi;",
        ]
    for service in sorted(upstreams):
        balance = "hash $remote_addr consistent; " if service in STICKY else ""
        body.append(f"upstream svc_{service} {{ {balance}server {upstreams[service]}; keepalive 64; }}")
    body += ["", "server {", f"    listen {listen} reuseport;" if ":" not in listen else f"    listen {listen};"]
    server = [
        "error_page 404 = @not_found;",
        "error_page 413 = @too_large;",
        "error_page 429 = @too_many;",
        "error_page 405 = @not_allowed;",
        # A request line nginx cannot parse has no URI to hand to a named location: these go to internal URIs.
        "error_page 400 494 =400 /.edge/400;",
        "error_page 414 =414 /.edge/414;",
        "error_page 502 503 504 = @unavailable;",
        f"location @not_found {{ {EDGE_CORS} return 404 '{JSON_404}'; }}",
        f"location @too_large {{ {EDGE_CORS} return 413 '{JSON_413}'; }}",
        f"location @not_allowed {{ {EDGE_CORS} add_header Allow '{EDGE_ALLOW}' always; return 405 '{JSON_405}'; }}",
        f"location = /.edge/400 {{ internal; {EDGE_CORS} return 200 '{JSON_400}'; }}",
        f"location = /.edge/414 {{ internal; {EDGE_CORS} return 200 '{JSON_414}'; }}",
        f"location @unavailable {{ {EDGE_CORS} return 503 '{JSON_502}'; }}",
        f"location @too_many {{ {EDGE_CORS} add_header Retry-After 1 always; return 429 '{JSON_429}'; }}",
        f'location = / {{ {EDGE_CORS} {EDGE_PREFLIGHT} return 200 \'{{"message":"SMS Link Backend"}}\'; }}',
        f"location = /health {{ {EDGE_CORS} {EDGE_PREFLIGHT} set $edge_services {','.join(sorted(upstreams))}; "
        "js_content edge_health.health; }",
        f"location / {{ {EDGE_CORS} {EDGE_PREFLIGHT} return 404 '{JSON_404}'; }}",
        f"location = /openapi.json {{ {EDGE_CORS} {EDGE_PREFLIGHT} alias {docs_path}/openapi.json; }}",
        f"location = /docs {{ default_type text/html; alias {docs_path}/index.html; }}",
        f"location ^~ /docs/assets/ {{ {DOCS_TYPES} alias {docs_path}/{RENDERER}/; }}",
    ]
    for service in sorted(upstreams):
        server.append(f"location = /_ready/{service} {{ internal; proxy_pass http://svc_{service}/ready; }}")
    for location, route in _locations(table):
        if route.service not in upstreams:  # a partial local run: the owner is not running
            server.append(f"location {location} {{ {EDGE_CORS} {EDGE_PREFLIGHT} return 503 '{JSON_502}'; }}")
            continue
        directives = [f"proxy_pass http://svc_{route.service};"]
        if route.rate_limit and route.rate_limit in limits:
            limit = limits[route.rate_limit]
            burst = f" burst={limit.burst} nodelay" if limit.burst else ""  # nginx refuses burst=0
            directives.append(f"limit_req zone={route.rate_limit}{burst};")
        if route.max_body:
            directives.append(f"client_max_body_size {route.max_body};")
        if route.websocket:
            directives += ["proxy_read_timeout 3600s;", "proxy_buffering off;"]
        server.append(f"location {location} {{ {' '.join(directives)} }}")
    body += ["    " + line for line in server] + ["}"]
    out += ["    " + line if line else "" for line in body] + ["}", ""]
    return "\n".join(out)


def render_httproute(table: RouteTable, namespace: str = "ems", gateway: str = "ems-edge") -> str:
    """Gateway API HTTPRoutes: one per service, exact and prefix matches, backend = the service's Service."""
    documents = []
    for service in sorted(table.service_ports):
        matches = []
        for route in table.routes_of(service):
            kind = "PathPrefix" if route.is_prefix else "Exact"
            value = route.location.rstrip("/") if route.is_prefix else route.location
            match = {"path": {"type": kind, "value": value or "/"}}
            if match not in matches:
                matches.append(match)
        if not matches:
            continue
        # The Gateway API allows at most 64 matches per rule (and 16 rules per route).
        rules = [
            {
                "matches": matches[i : i + 64],
                "backendRefs": [{"name": service, "port": table.service_ports[service]}],
            }
            for i in range(0, len(matches), 64)
        ]
        documents.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {
                    "name": f"edge-{service}",
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/part-of": "ems"},
                },
                "spec": {"parentRefs": [{"name": gateway}], "rules": rules},
            }
        )
    header = "# Generated from deploy/routes.toml by `python -m deploy.edge.generate`: do not edit by hand.\n"
    return header + _rate_limit_note(table) + yaml.safe_dump_all(documents, sort_keys=False)


def _rate_limit_note(table: RouteTable) -> str:
    """The per-client limits the nginx edge enforces, for the Gateway implementation's own rate-limit policy (the
    Gateway API has no resource for it): zone, rate, burst and paths, as comments."""
    lines = [
        "#",
        "# Per-client rate limits (keyed by the client's address; past them: 429 with",
        f"# {JSON_429}). The Gateway API has no rate-limit resource: carry these in the Gateway",
        '# implementation\'s policy attached to the matches below (README "Rate limits").',
    ]
    for zone, limit in sorted(table.rate_limits.items()):
        paths = ", ".join(r.path for r in table.routes if r.rate_limit == zone)
        lines.append(f"#   {zone}: {limit.rate}, burst {limit.burst}: {paths}")
    return "\n".join(lines) + "\n"


def compose_nginx(table: RouteTable) -> str:
    upstreams = {s: f"{s}:{p}" for s, p in table.service_ports.items()}
    header = "# Generated from deploy/routes.toml by `python -m deploy.edge.generate`: do not edit by hand.\n"
    return header + render_nginx(
        table,
        upstreams,
        listen=str(table.edge_port),
        js_module=JS_MODULE_IMAGE,
        js_path="/etc/nginx/edge",
        docs_path="/etc/nginx/edge/docs",
    )


def generated_files(table: RouteTable) -> dict[Path, str]:
    return {COMPOSE_CONF: compose_nginx(table), HTTPROUTE: render_httproute(table)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when generated files are out of date")
    args = parser.parse_args(argv)
    stale = []
    try:
        table = load()
    except ValueError as exc:  # e.g. an operation without a policy, a destructive one declared open
        print(exc, file=sys.stderr)
        return 1
    for path, text in generated_files(table).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(path)
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("out of date: " + ", ".join(str(p.relative_to(ROOT)) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
