// Ambulance position load for tests/bench/positions.py: one official socket.io-client per ambulance on /mobile
// (?task=<uid>, as the crew app connects) emitting `location` once a second, and one agent client per watched
// room namespace receiving `car-position`. Each position carries a per-ambulance sequence in its latitude, so the
// agent side matches the stored row it receives to the emit that caused it (same process, same clock).
//
// Usage: node bench-positions.mjs --url http://127.0.0.1:8080 --plan plan.json [--seconds 60]
//        [--transport websocket] [--connect-batch 50] [--interval-ms 1000]
// plan.json: {"tasks": [{"uid": "abcdef", "room": "ROOM"}, ...], "agents": [{"room": "ROOM", "token": "jwt"}, ...]}
// Prints one JSON line of counts and latencies (ms).
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const opts = { seconds: 60, transport: "websocket", batch: 50, interval: 1000 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [key, value] = [argv[i], argv[i + 1]];
  if (key === "--url") opts.url = value;
  else if (key === "--plan") opts.plan = value;
  else if (key === "--seconds") opts.seconds = Number(value);
  else if (key === "--transport") opts.transport = value;
  else if (key === "--connect-batch") opts.batch = Number(value);
  else if (key === "--interval-ms") opts.interval = Number(value);
  else throw new Error(`unknown argument ${key}`);
}
const plan = JSON.parse(readFileSync(opts.plan, "utf8"));
const transports = { polling: ["polling"], websocket: ["websocket"], both: ["polling", "websocket"] }[opts.transport];

const sentAt = new Map(); // "<uid>|<latitude to 6 places>" -> performance.now() of the emit
const deliveries = []; // emit -> agent's car-position (ms)
const ackDelays = []; // emit -> the crew's "received location" (ms)
let failed = 0;
let disconnects = 0;
let measuring = false;
let sent = 0;
let acked = 0;
let delivered = 0;
let unmatched = 0;
let expected = 0; // emits of ambulances in a watched room

function open(namespace, query, ready) {
  return new Promise((resolve) => {
    const socket = io(`${opts.url}${namespace}`, {
      transports,
      upgrade: opts.transport === "both",
      query,
      reconnection: false,
      forceNew: true,
      timeout: 60000,
    });
    let settled = false;
    const done = (ok) => {
      if (settled) return;
      settled = true;
      if (!ok) failed++;
      resolve(ok ? socket : null);
    };
    socket.once(ready, () => done(true));
    socket.once("connect_error", () => done(false));
    socket.on("disconnect", () => {
      disconnects++;
      done(false);
    });
    setTimeout(() => done(false), 60000);
  });
}

function key(uid, latitude) {
  return `${uid}|${Number(latitude).toFixed(6)}`;
}

async function inBatches(items, connect) {
  const sockets = [];
  for (let i = 0; i < items.length; i += opts.batch) {
    sockets.push(...(await Promise.all(items.slice(i, i + opts.batch).map(connect))));
  }
  return sockets;
}

const watched = new Set(plan.agents.map(({ room }) => room));
const started = performance.now();
// Agents first: a room namespace greets with `connection-success` once the handshake is done.
const agents = await inBatches(plan.agents, ({ room, token }) => open(`/${room}`, { token }, "connection-success"));
for (const agent of agents) {
  agent?.on("car-position", (row) => {
    if (!measuring || !row || typeof row.uid !== "string") return;
    const k = key(row.uid, row.latitude);
    const at = sentAt.get(k);
    if (at === undefined) {
      unmatched++;
      return;
    }
    sentAt.delete(k);
    delivered++;
    deliveries.push(performance.now() - at);
  });
}
// Crews: /mobile greets a known task with `connection` (its detail) once the session holds the task.
const crews = await inBatches(plan.tasks, ({ uid }) => open("/mobile", { task: uid }, "connection"));
const connectSeconds = (performance.now() - started) / 1000;
await new Promise((r) => setTimeout(r, 2000)); // let the connect traffic settle

measuring = true;
const timers = [];
plan.tasks.forEach(({ uid, room }, index) => {
  const crew = crews[index];
  if (!crew) return;
  const pending = []; // emit times waiting for their acknowledgement (acks come in order per socket)
  crew.on("message", (data) => {
    if (data?.message !== "received location" || !pending.length) return;
    acked++;
    ackDelays.push(performance.now() - pending.shift());
  });
  let sequence = 0;
  const longitude = 100 + (index % 1000) / 1000;
  const send = () => {
    sequence++;
    const latitude = 13 + sequence / 1e6;
    const now = performance.now();
    sentAt.set(key(uid, latitude), now);
    pending.push(now);
    sent++;
    if (watched.has(room)) expected++;
    crew.emit("location", { latitude, longitude, accuracy: 5, speed: 40, heading: 90, timestamp: Date.now() });
  };
  // Spread the ambulances over the interval, as real devices are.
  timers.push(
    setTimeout(() => {
      send();
      timers.push(setInterval(send, opts.interval));
    }, Math.random() * opts.interval),
  );
});
await new Promise((r) => setTimeout(r, opts.seconds * 1000));
for (const t of timers) {
  clearTimeout(t);
  clearInterval(t);
}
const sendSeconds = opts.seconds;
await new Promise((r) => setTimeout(r, 3000)); // deliveries in flight
measuring = false;
const disconnectsDuringRun = disconnects;
for (const s of [...agents, ...crews]) s?.close();

const pct = (values, p) => {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] * 10) / 10;
};
process.stdout.write(
  JSON.stringify({
    crews: crews.filter(Boolean).length,
    agents: agents.filter(Boolean).length,
    failed,
    disconnectsDuringRun,
    connectSeconds,
    sendSeconds,
    sent,
    acked,
    expected,
    delivered,
    unmatched,
    ackP50: pct(ackDelays, 50),
    ackP99: pct(ackDelays, 99),
    p50: pct(deliveries, 50),
    p90: pct(deliveries, 90),
    p99: pct(deliveries, 99),
    max: pct(deliveries, 100),
  }) + "\n",
  () => process.exit(0),
);
