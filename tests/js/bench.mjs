// Socket.IO load client for tests/bench/sockets.py: many official socket.io-client connections in room
// namespaces; in every room one client emits `case-data` once a second (the room relay broadcasts it to the
// whole namespace, sender included) and every client records the delivery delay.
//
// Usage: node bench.mjs --url http://127.0.0.1:8080 --plan plan.json [--seconds 30] [--transport websocket]
//        [--connect-batch 50]
// plan.json: {"rooms": [{"room": "ABC", "tokens": ["jwt", ...]}, ...]}
// Prints one JSON line: connections asked/held/failed, deliveries expected/received, delay p50/p90/p99/max (ms).
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";

const opts = { seconds: 30, transport: "websocket", batch: 50 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [key, value] = [argv[i], argv[i + 1]];
  if (key === "--url") opts.url = value;
  else if (key === "--plan") opts.plan = value;
  else if (key === "--seconds") opts.seconds = Number(value);
  else if (key === "--transport") opts.transport = value;
  else if (key === "--connect-batch") opts.batch = Number(value);
  else throw new Error(`unknown argument ${key}`);
}
const plan = JSON.parse(readFileSync(opts.plan, "utf8"));
const transports = { polling: ["polling"], websocket: ["websocket"], both: ["polling", "websocket"] }[opts.transport];

const delays = [];
const rooms = [];
let failed = 0;
let held = 0;
let disconnects = 0;
let measuring = false;

function connect(room, token) {
  return new Promise((resolve) => {
    const socket = io(`${opts.url}/${room}`, {
      transports,
      upgrade: opts.transport === "both",
      query: { token },
      reconnection: false,
      forceNew: true,
      timeout: 60000,
    });
    const done = (ok) => {
      if (ok) held++;
      else failed++;
      resolve(ok ? socket : null);
    };
    socket.once("connect", () => done(true));
    socket.once("connect_error", () => done(false));
    socket.on("disconnect", () => {
      disconnects++;
      held--;
    });
    socket.on("case-data", (data) => {
      if (measuring && data && data.bench === plan.runId) delays.push(Date.now() - data.sentAt);
    });
  });
}

const started = Date.now();
const pending = [];
for (const { room, tokens } of plan.rooms) pending.push(...tokens.map((token) => ({ room, token })));
const sockets = new Map();
for (let i = 0; i < pending.length; i += opts.batch) {
  const batch = pending.slice(i, i + opts.batch);
  const got = await Promise.all(batch.map(({ room, token }) => connect(room, token)));
  batch.forEach(({ room }, j) => {
    if (got[j]) (sockets.get(room) ?? sockets.set(room, []).get(room)).push(got[j]);
  });
}
const connectSeconds = (Date.now() - started) / 1000;
await new Promise((r) => setTimeout(r, 2000)); // let the join traffic (user-connection broadcasts) settle

let expected = 0;
measuring = true;
const timers = [];
for (const [, members] of sockets) {
  const sender = members[0];
  const offset = Math.random() * 1000; // spread the rooms over the second
  timers.push(
    setTimeout(() => {
      const send = () => {
        expected += members.filter((s) => s.connected).length;
        sender.emit("case-data", { bench: plan.runId, sentAt: Date.now() });
      };
      send();
      timers.push(setInterval(send, 1000));
    }, offset),
  );
  rooms.push(members.length);
}
await new Promise((r) => setTimeout(r, opts.seconds * 1000));
for (const t of timers) {
  clearTimeout(t);
  clearInterval(t);
}
await new Promise((r) => setTimeout(r, 2000)); // deliveries in flight
measuring = false;
const heldAtEnd = held;
const disconnectsDuringRun = disconnects;
for (const [, members] of sockets) for (const s of members) s.close();

delays.sort((a, b) => a - b);
const pct = (p) => (delays.length ? delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))] : null);
process.stdout.write(
  JSON.stringify({
    asked: pending.length,
    held: heldAtEnd,
    failed,
    disconnectsDuringRun,
    rooms: rooms.length,
    connectSeconds,
    expected,
    received: delays.length,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max: delays.length ? delays[delays.length - 1] : null,
  }) + "\n",
  () => process.exit(0),
);
