// The original's socket layer as a yardstick for tests/bench/sockets.py: one Node process with socket.io 4.8
// (the original's version), a namespace per room as the original created them, and the original's `case-data`
// relay (namespace.emit to every socket of the room, sender included). No database work: the original did none
// for this event either. The original's token check (jsonwebtoken verify) is left out, which favours the
// baseline slightly.
//
// Usage: node bench-baseline.mjs --port 5600 --rooms ROOM1,ROOM2,...
import { createServer } from "node:http";
import { Server } from "socket.io";

const argv = process.argv.slice(2);
const opts = { port: 5600, rooms: [] };
for (let i = 0; i < argv.length; i += 2) {
  if (argv[i] === "--port") opts.port = Number(argv[i + 1]);
  else if (argv[i] === "--rooms") opts.rooms = argv[i + 1].split(",").filter(Boolean);
  else throw new Error(`unknown argument ${argv[i]}`);
}
const server = createServer((req, res) => {
  res.writeHead(req.url === "/ready" ? 200 : 404, { "content-type": "application/json" });
  res.end("{}");
});
const io = new Server(server, { cors: { origin: "*" }, pingInterval: 25000, pingTimeout: 60000 });
for (const room of opts.rooms) {
  const nsp = io.of("/" + room);
  nsp.on("connection", (socket) => {
    socket.emit("log", { message: "connection success" });
    socket.on("case-data", (data) => nsp.emit("case-data", data));
  });
}
server.listen(opts.port, "127.0.0.1");
