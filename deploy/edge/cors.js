// CORS of the edge's own replies (JSON 404/413/503 envelopes, GET /, /health, preflights of unknown paths), so a
// browser can read them. Same rule as libs/servicekit/servicekit/cors.py, from the same CORS_ALLOWED_ORIGINS
// (the generated nginx.conf's `env` directive lets workers read it; unset = "*"). Proxied routes are answered by
// their services and never get these headers from nginx: a second allow-origin would make browsers refuse them.
const METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const HEADERS = "Authorization, Content-Type, x-api-key, X-Request-ID, Cache-Control, X-Requested-With";
const MAX_AGE = "7200";
const DEFAULT_PORTS = { "http": "80", "https": "443" };

// scheme://host[:port] as a browser serialises an Origin; "" for an entry that is not one (ignored here; the
// services refuse to start on it).
function normalize(entry) {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(\[[0-9a-f:.]+\]|[^\/:?#@\[\]]+)(?::(\d+))?\/?$/.exec(entry.trim().toLowerCase());
  if (!m) {
    return "";
  }
  const port = m[3] === undefined || m[3] === DEFAULT_PORTS[m[1]] ? "" : ":" + String(Number(m[3]));
  return m[1] + "://" + m[2] + port;
}

function policy() {
  const setting = process.env.CORS_ALLOWED_ORIGINS;
  const items = (setting === undefined ? "*" : setting).split(",").map((s) => s.trim()).filter((s) => s);
  if (items.indexOf("*") >= 0) {
    return { any: true, origins: [] };
  }
  return { any: false, origins: items.map(normalize).filter((s) => s) };
}

function origin(r) {
  return r.headersIn["Origin"] || "";
}

function allowed(r) {
  const o = origin(r);
  if (!o) {
    return "";
  }
  const p = policy();
  if (p.any) {
    return "*";
  }
  return p.origins.indexOf(o) >= 0 ? o : "";
}

function isPreflight(r) {
  return r.method === "OPTIONS" && origin(r) !== "" && r.headersIn["Access-Control-Request-Method"] !== undefined;
}

// js_set $cors_preflight: "1" for a preflight, which the location answers 204.
function preflight(r) {
  return isPreflight(r) ? "1" : "";
}

// js_header_filter of the edge's own locations.
function headers(r) {
  const o = origin(r);
  const p = policy();
  if (!o) {
    // No Origin: what does not depend on it (the answer may be cached and reused cross-origin), as the services.
    if (p.any) {
      r.headersOut["Access-Control-Allow-Origin"] = "*";
    } else {
      r.headersOut["Vary"] = "Origin";
    }
    return;
  }
  if (!p.any) {
    r.headersOut["Vary"] = "Origin"; // the answer depends on the Origin
  }
  const allowed = p.any ? "*" : p.origins.indexOf(o) >= 0 ? o : "";
  if (!allowed) {
    return;
  }
  r.headersOut["Access-Control-Allow-Origin"] = allowed;
  if (!p.any) {
    r.headersOut["Access-Control-Allow-Credentials"] = "true";
  }
  if (isPreflight(r)) {
    r.headersOut["Access-Control-Allow-Methods"] = METHODS;
    r.headersOut["Access-Control-Allow-Headers"] = r.headersIn["Access-Control-Request-Headers"] || HEADERS;
    r.headersOut["Access-Control-Max-Age"] = MAX_AGE;
  }
}

export default { preflight, headers };
