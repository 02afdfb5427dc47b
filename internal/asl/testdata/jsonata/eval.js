// Evaluates JSONata expressions with the reference implementation: reads
// [{"expr", "input", "vars"}] on stdin, writes [{"value"} | {"undefined":
// true} | {"error"}] on stdout. Run by internal/asl/jsonata_test.go.
const jsonata = require("jsonata");

let data = "";
process.stdin.on("data", (c) => (data += c));
process.stdin.on("end", async () => {
  const out = [];
  for (const c of JSON.parse(data)) {
    try {
      const v = await jsonata(c.expr).evaluate(c.input, c.vars || {});
      // A state's data is JSON: a value JSON cannot carry (Infinity, NaN)
      // is an error there, not the null JSON.stringify would make of it.
      const json = JSON.stringify(v, (k, x) => {
        if (typeof x === "number" && !isFinite(x)) throw { code: "D1001" };
        return x;
      });
      out.push(v === undefined ? { undefined: true } : { value: JSON.parse(json) });
    } catch (e) {
      out.push({ error: String(e.code || e.message) });
    }
  }
  process.stdout.write(JSON.stringify(out));
});
