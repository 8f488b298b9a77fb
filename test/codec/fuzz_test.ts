import assert from "node:assert/strict";
import { type FuzzReport, seededRandom } from "../helpers/fuzz.ts";

/** A short run for every test pass; `deno task fuzz` runs long ones. */
const ITERATIONS = 3000;
const SCRIPT = new URL("../../scripts/fuzz.ts", import.meta.url).pathname;

Deno.test("seededRandom() replays the same sequence for the same seed", () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const c = seededRandom(43);
  const first = [a(), a(), a()];
  assert.deepEqual(first, [b(), b(), b()]);
  assert.notDeepEqual(first, [c(), c(), c()]);
  assert.ok(first.every((x) => x >= 0 && x < 1));
});

// The run happens in its own process (the `deno task fuzz` script itself): its memory churn must
// not show in the RSS that other tests running alongside watch.
Deno.test(`fuzz: ${ITERATIONS} seeded random and mutated packets through the decoder and the broker: no uncaught error, no hang, bounded memory`, async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, "--iterations", String(ITERATIONS), "--seed", "20261201", "--json"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(stdout).trim();
  assert.ok(output.length > 0, new TextDecoder().decode(stderr));
  const report = JSON.parse(output.split("\n").at(-1)!) as FuzzReport;
  assert.deepEqual(report.faults, [], JSON.stringify(report.faults.slice(0, 3), null, 2));
  assert.equal(code, 0);
  assert.equal(report.iterations, ITERATIONS);
  assert.ok(report.inputsRejected > ITERATIONS / 2, "the mutations should mostly be rejected");
  assert.ok(report.packetsDecoded > 0, "some mutated inputs should still decode");
  // The engine really ran: clients connected, published, and were closed for bad input.
  assert.ok(report.connected > ITERATIONS / 4, `only ${report.connected} CONNECTs accepted`);
  assert.ok(report.publishesReceived > 0 && report.protocolErrors > 0);
  assert.ok(report.heapGrowthBytes < 64 * 1024 * 1024, `heap grew ${report.heapGrowthBytes} bytes`);
});
