// Socket.IO clients for tests/chaos/run.py: --clients official socket.io-clients on one namespace (websocket, with
// the client's own reconnection, as the agent console runs), each recording the `position` emits it receives (the
// latitude carries the chaos load's sequence) and when it was connected. Prints {"type": "ready"} once every client
// connected; on {"stop": true} (or stdin closing) one {"type": "client", ...} line per client, then exits.
// With --room, --room-clients more clients join the room namespace (each with its own --room-token, comma list,
// waiting for `connection-success`) recording the texts of the `chat-message` emits they get; the first of them
// sends {"chat": {...}} read on stdin as `chat-message`.
//
// Usage: node chaos-clients.mjs --url http://127.0.0.1:5500 --namespace /data/LINK --token JWT [--clients 200]
//        [--room /ROOM --room-tokens JWT,JWT,...]
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const opts = { clients: 200 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [key, value] = [argv[i], argv[i + 1]];
  if (key === "--url") opts.url = value;
  else if (key === "--namespace") opts.namespace = value;
  else if (key === "--token") opts.token = value;
  else if (key === "--clients") opts.clients = Number(value);
  else if (key === "--room") opts.room = value;
  else if (key === "--room-tokens") opts.roomTokens = value.split(",");
  else throw new Error(`unknown argument ${key}`);
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const clients = [];
const roomTokens = opts.room ? opts.roomTokens : [];
const total = opts.clients + roomTokens.length;
let ready = 0;
for (let n = 0; n < total; n++) {
  const inRoom = n >= opts.clients;
  const record = { type: "client", n, room: inRoom, positions: [], chats: [], connects: [], disconnects: [], errors: 0 };
  const socket = io(`${opts.url}${inRoom ? opts.room : opts.namespace}`, {
    transports: ["websocket"],
    query: { token: inRoom ? roomTokens[n - opts.clients] : opts.token },
    forceNew: true,
    reconnection: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    timeout: 10000,
  });
  let first = true;
  socket.on(inRoom ? "connection-success" : "connect", () => {
    record.connects.push(Date.now());
    if (first) {
      first = false;
      if (++ready === total) out({ type: "ready" });
    }
  });
  socket.on("disconnect", () => stopped || record.disconnects.push(Date.now()));
  socket.on("connect_error", () => record.errors++);
  socket.on("position", (data) => record.positions.push(data?.latitude ?? null));
  socket.on("chat-message", (data) => record.chats.push(data?.text ?? null));
  clients.push({ socket, record });
}

let stopped = false;
function stop() {
  if (stopped) return;
  stopped = true;
  for (const { socket, record } of clients) {
    socket.close();
    out(record);
  }
  process.stdout.write("", () => process.exit(0));
}
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  if (command.stop) stop();
  else if (command.chat) clients[opts.clients].socket.emit("chat-message", command.chat);
});
lines.on("close", stop);
