// Read-your-writes for namespaces, as a frontend does it: POST /link/create, and the moment it answers, connect
// the official socket.io-client to the link's /data/<linkID> and the room's /<room>. Repeated --count times in a
// row; prints one JSON line with what happened, then one per refused or failed connect.
//
// Usage: node create-connect.mjs --api http://127.0.0.1:5500 --socket http://127.0.0.1:5600 --token JWT
//        [--count 200] [--prefix Rywroom]
import { io } from "socket.io-client";

const opts = { count: 200, prefix: "Rywroom" };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, "");
  opts[key] = key === "count" ? Number(argv[i + 1]) : argv[i + 1];
}
for (const required of ["api", "socket", "token"]) {
  if (!opts[required]) throw new Error(`--${required} is required`);
}

function connect(namespace) {
  // A new Manager per socket (forceNew) and websocket only: every connection is its own TCP connection, so a
  // balancer in front of several realtime instances spreads them (polling would need sticky sessions).
  return new Promise((resolve) => {
    const socket = io(opts.socket + namespace, {
      transports: ["websocket"],
      query: { token: opts.token },
      reconnection: false,
      forceNew: true,
      timeout: 15000,
    });
    const done = (outcome) => {
      socket.close();
      resolve({ namespace, ...outcome });
    };
    socket.on("connect", () => done({ ok: true }));
    socket.on("connect_error", (err) => done({ ok: false, message: err.message }));
  });
}

const letters = (n) => Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(Math.random() * 26))).join("");
const summary = { attempts: 0, connected: 0, refused: 0, failures: [] };
for (let i = 0; i < opts.count; i++) {
  const room = opts.prefix + letters(8);
  const reply = await fetch(opts.api + "/link/create", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${opts.token}` },
    body: JSON.stringify({ room, mobile: "0812345678", userName: "Somchai", service: 999 }),
  });
  const body = await reply.json();
  if (reply.status !== 200 || !body.linkID) {
    summary.failures.push({ step: "create", status: reply.status, body });
    continue;
  }
  const outcomes = await Promise.all([connect(`/data/${body.linkID}`), connect(`/${body.room}`)]);
  for (const outcome of outcomes) {
    summary.attempts += 1;
    if (outcome.ok) summary.connected += 1;
    else {
      summary.refused += 1;
      summary.failures.push({ step: "connect", ...outcome });
    }
  }
}
// Names that never existed are still refused.
summary.unknown = await Promise.all([connect(`/data/nosuchlink${letters(6)}`), connect(`/Nosuchroom${letters(6)}`)]);
process.stdout.write(JSON.stringify(summary) + "\n", () => process.exit(0));
