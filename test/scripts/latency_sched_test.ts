/**
 * Smoke test of `scripts/bench/latency_sched.ts`: a short latency run of Perch and Mosquitto under
 * `perf record` must find each broker's main thread and the generator's worker thread and report,
 * for both reads, the waits and what the reader did meanwhile. No timing is asserted. Needs `perf`
 * with access to the scheduler and socket tracepoints (root) and Mosquitto; skipped without them.
 */

import assert from "node:assert/strict";

const TOOL = new URL("../../scripts/bench/latency_sched.ts", import.meta.url).pathname;

async function perfCanTrace(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("perf", {
      args: ["record", "-q", "-o", "/dev/null", "-e", "sched:sched_switch", "--", "true"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "latency_sched.ts places the waits of a perch and a mosquitto latency run",
  ignore: !(await perfCanTrace()),
  async fn() {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        TOOL,
        "--brokers",
        "perch,mosquitto",
        "--qos",
        "0",
        "--warmup",
        "1",
        "--duration",
        "2",
      ],
    }).output();
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 0, `tool failed:\n${text}\n${new TextDecoder().decode(stderr)}`);
    const sections = text.split("\n== ").slice(1);
    assert.deepEqual(sections.map((section) => section.split(" ")[0]), ["perch", "mosquitto"]);
    for (const section of sections) {
      assert.match(
        section,
        /broker reads the publisher: data waiting in the socket, per read: n \d+/,
      );
      assert.match(section, /generator reads the subscriber's deliveries: .* n \d+/);
      assert.match(section, /waits over 1 ms, running [\d.]+, waiting for CPU [\d.]+, asleep/);
      assert.match(section, /wake-up to running: CPU idle .*; CPU busy /);
    }
  },
});
