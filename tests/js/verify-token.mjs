// Verifies LiveKit access tokens with the official livekit-server-sdk TokenVerifier, as a LiveKit server
// would: reads one JSON object per line on stdin {"token": "..."} and prints one JSON line per token on stdout:
// {"ok": true, "claims": {...}} or {"ok": false, "error": "..."}.
//
// Usage: node verify-token.mjs --key API_KEY --secret API_SECRET < tokens.jsonl
import { createInterface } from "node:readline";
import { TokenVerifier } from "livekit-server-sdk";

const argv = process.argv.slice(2);
const arg = (name) => argv[argv.indexOf(name) + 1];
const verifier = new TokenVerifier(arg("--key"), arg("--secret"));

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { token } = JSON.parse(line);
  try {
    const claims = await verifier.verify(token);
    console.log(JSON.stringify({ ok: true, claims }));
  } catch (error) {
    console.log(JSON.stringify({ ok: false, error: String(error && error.message ? error.message : error) }));
  }
}
