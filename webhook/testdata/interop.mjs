// Runs longrun's signatures through the official Standard Webhooks Node
// library, and signs with it for longrun to verify. Driven by
// webhook/interop_test.go: one JSON request on stdin, one JSON answer on stdout.
//   {"op":"verify","secret":"whsec_…","headers":{…},"body":"…"} → {"ok":true} | {"ok":false,"error":"…"}
//   {"op":"sign","secret":"whsec_…","id":"msg_…","timestamp":1700000000,"body":"…"} → {"signature":"v1,…"}
import { Webhook } from "standardwebhooks";

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const req = JSON.parse(input);
const wh = new Webhook(req.secret);

let out;
switch (req.op) {
  case "verify":
    try {
      wh.verify(req.body, req.headers);
      out = { ok: true };
    } catch (err) {
      out = { ok: false, error: String(err && err.message ? err.message : err) };
    }
    break;
  case "sign":
    out = { signature: wh.sign(req.id, new Date(req.timestamp * 1000), req.body) };
    break;
  default:
    console.error(`unknown op ${req.op}`);
    process.exit(2);
}
process.stdout.write(JSON.stringify(out) + "\n");
