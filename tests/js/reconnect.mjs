// Several official socket.io-clients that reconnect on their own (the library's default behaviour, with shorter
// delays), for the rolling-restart run (tests/chaos/rolling.py): prints one JSON line per change, with the time
// in ms since the epoch:
//   {"type":"connect","i":<socket>,"t":...,"transport":...}
//   {"type":"disconnect","i":...,"t":...,"reason":...}
//   {"type":"connect_error","i":...,"t":...,"message":...}
// Runs until stdin closes, then closes every socket and exits 0.
//
// Usage: node reconnect.mjs --url http://127.0.0.1:5500/queue [--count 4] [--token JWT]
//        [--transport polling|websocket|both]
import { io } from "socket.io-client";

const opts = { count: 4, transport: "both", query: {} };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [key, value] = [argv[i], argv[i + 1]];
  if (key === "--url") opts.url = value;
  else if (key === "--count") opts.count = Number(value);
  else if (key === "--token") opts.query.token = value;
  else if (key === "--transport") opts.transport = value;
  else throw new Error(`unknown argument ${key}`);
}
if (!opts.url) throw new Error("--url is required");
const transports = { polling: ["polling"], websocket: ["websocket"], both: ["polling", "websocket"] }[opts.transport];

function out(obj) {
  process.stdout.write(JSON.stringify({ ...obj, t: Date.now() }) + "\n");
}

const sockets = [];
for (let i = 0; i < opts.count; i++) {
  const socket = io(opts.url, {
    transports,
    upgrade: opts.transport === "both",
    query: opts.query,
    forceNew: true,
    // The library's reconnection, as a browser has it, only quicker (default 1 s doubling up to 5 s).
    reconnection: true,
    reconnectionDelay: 250,
    reconnectionDelayMax: 2000,
    timeout: 5000,
  });
  socket.on("connect", () => out({ type: "connect", i, transport: socket.io.engine.transport.name }));
  socket.on("disconnect", (reason) => out({ type: "disconnect", i, reason }));
  socket.on("connect_error", (err) => out({ type: "connect_error", i, message: err.message }));
  sockets.push(socket);
}

process.stdin.resume();
process.stdin.on("end", () => {
  for (const socket of sockets) socket.close();
  process.stdout.write("", () => process.exit(0));
});
