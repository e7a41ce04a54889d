// An interactive official socket.io-client for the Python tests: prints what it sees as JSON lines on stdout
// (same lines as listen.mjs: connect, connect_error, event, disconnect) and performs the commands it reads as
// JSON lines on stdin:
//   {"emit": "<event>", "args": [...]}   socket.emit(event, ...args)
//   {"close": true}                      socket.close() (the client leaves; the process exits)
// Exits with 2 on connect_error, 0 when stdin closes or after {"close": true}.
//
// Usage: node client.mjs --url http://127.0.0.1:5500/ROOM [--transport polling|websocket|both]
//        [--token JWT] [--query k=v ...]
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const opts = { transport: "both", query: {} };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [key, value] = [argv[i], argv[i + 1]];
  if (key === "--url") opts.url = value;
  else if (key === "--transport") opts.transport = value;
  else if (key === "--token") opts.query.token = value;
  else if (key === "--query") opts.query[value.slice(0, value.indexOf("="))] = value.slice(value.indexOf("=") + 1);
  else throw new Error(`unknown argument ${key}`);
}
if (!opts.url) throw new Error("--url is required");
const transports = { polling: ["polling"], websocket: ["websocket"], both: ["polling", "websocket"] }[opts.transport];

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}
function exit(code) {
  process.stdout.write("", () => process.exit(code));
}

const socket = io(opts.url, {
  transports,
  upgrade: opts.transport === "both",
  query: opts.query,
  reconnection: false,
  forceNew: true,
});
socket.on("connect", () => out({ type: "connect", id: socket.id, transport: socket.io.engine.transport.name }));
socket.on("connect_error", (err) => {
  out({ type: "connect_error", message: err.message, data: err.data ?? null });
  exit(2);
});
socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
socket.onAny((event, ...args) => out({ type: "event", event, data: args.length ? args[0] : null, args }));

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  if (command.close) {
    socket.close();
    out({ type: "closed" });
    exit(0);
    return;
  }
  socket.emit(command.emit, ...(command.args ?? []));
  out({ type: "sent", event: command.emit });
});
lines.on("close", () => {
  socket.close();
  exit(0);
});
