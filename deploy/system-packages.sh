#!/usr/bin/env bash
# System packages the suite needs on a fresh Debian machine: nginx (the local edge), wrk (benchmarks) and
# prometheus (its promtool checks and unit-tests the alert rules of deploy/observability/), chromium (the test of
# the edge's /docs page renders it headless and writes the README's screenshot).
set -euo pipefail
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_http_js_module.so ] || missing+=(libnginx-mod-http-js)
command -v wrk >/dev/null || missing+=(wrk)
command -v promtool >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The edge is started by the suite itself, never as the system's nginx service.
