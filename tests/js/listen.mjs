// Connects the official socket.io-client to one namespace and prints what happens as JSON lines on stdout:
//   {"type":"connect","id":...,"transport":...}
//   {"type":"connect_error","message":...,"data":...}
//   {"type":"event","event":<name>,"data":<first argument>,"args":[...all arguments]}
//   {"type":"disconnect","reason":...}
//   {"type":"timeout"}
// Exit codes: 0 after --count events (or a server-side disconnect), 1 on timeout, 2 on connect_error.
//
// Usage: node listen.mjs --url http://127.0.0.1:5500/data/ABC [--transport polling|websocket|both]
//        [--count 1] [--timeout 10000] [--token JWT] [--auth-token JWT] [--query k=v ...] [--events a,b] [--path /socket.io]
import { io } from "socket.io-client";

function parseArgs(argv) {
  const opts = { transport: "both", count: 1, timeout: 10000, query: {}, events: null };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[i + 1];
    switch (key) {
      case "--url": opts.url = value; i++; break;
      case "--transport": opts.transport = value; i++; break;
      case "--count": opts.count = Number(value); i++; break;
      case "--timeout": opts.timeout = Number(value); i++; break;
      case "--token": opts.query.token = value; i++; break;
      case "--auth-token": opts.authToken = value; i++; break;
      case "--path": opts.path = value; i++; break;
      case "--events": opts.events = new Set(value.split(",").filter(Boolean)); i++; break;
      case "--query": {
        const at = value.indexOf("=");
        opts.query[value.slice(0, at)] = value.slice(at + 1);
        i++;
        break;
      }
      default:
        throw new Error(`unknown argument ${key}`);
    }
  }
  if (!opts.url) throw new Error("--url is required");
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const transports = {
  polling: ["polling"],
  websocket: ["websocket"],
  both: ["polling", "websocket"],
}[opts.transport];
if (!transports) throw new Error(`unknown transport ${opts.transport}`);

let finished = false;
function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}
function finish(code) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  socket.close();
  process.stdout.write("", () => process.exit(code));
}

const socket = io(opts.url, {
  transports,
  upgrade: opts.transport === "both",
  query: opts.query,
  auth: opts.authToken ? { token: opts.authToken } : undefined,
  reconnection: false,
  timeout: opts.timeout,
  forceNew: true,
  ...(opts.path ? { path: opts.path } : {}),
});

const timer = setTimeout(() => {
  out({ type: "timeout" });
  finish(1);
}, opts.timeout);

let seen = 0;
socket.on("connect", () => {
  out({ type: "connect", id: socket.id, transport: socket.io.engine.transport.name });
  socket.io.engine.on("upgrade", (transport) => out({ type: "upgrade", transport: transport.name }));
});
socket.on("connect_error", (err) => {
  out({ type: "connect_error", message: err.message, data: err.data ?? null });
  finish(2);
});
socket.on("disconnect", (reason) => {
  out({ type: "disconnect", reason });
  if (reason === "io server disconnect") finish(0);
});
socket.onAny((event, ...args) => {
  out({ type: "event", event, data: args.length ? args[0] : null, args });
  if (opts.events && !opts.events.has(event)) return;
  seen += 1;
  if (seen >= opts.count) finish(0);
});
