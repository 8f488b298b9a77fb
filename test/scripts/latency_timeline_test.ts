/**
 * Smoke test of `scripts/bench/latency_timeline.ts`: a short run with a Perch arm and a Mosquitto
 * arm side by side must record every message of both, and for Perch report its GC pauses (from
 * `--trace-gc-nvp`), its thread table and the tail's share next to GC pauses and compile jobs, and
 * write the samples and the broker's lines with `--out`. No timing is asserted. Needs Mosquitto
 * (`apt-get install -y mosquitto`).
 */

import assert from "node:assert/strict";

const TOOL = new URL("../../scripts/bench/latency_timeline.ts", import.meta.url).pathname;

Deno.test("latency_timeline.ts runs a perch arm and a mosquitto arm side by side and lines up GC pauses with the tail", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perch-latency-timeline-" });
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        TOOL,
        "--arms",
        "perch,mosquitto",
        "--qos",
        "1",
        "--rate",
        "1000",
        "--warmup",
        "1",
        "--seconds",
        "2",
        "--out",
        `${dir}/run`,
      ],
    }).output();
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 0, `tool failed:\n${text}\n${new TextDecoder().decode(stderr)}`);
    const sections = text.split("\n== ").slice(1);
    assert.deepEqual(sections.map((section) => section.split("\n")[0]), ["perch", "mosquitto"]);
    for (const section of sections) {
      // 2 s at 1,000 msg/s: every message sent inside the window arrived.
      assert.match(section, /^\d{4} samples, 0 lost; p50 [\d.]+ p90 [\d.]+ p99 [\d.]+/m);
      assert.match(section, /tail: \d+ messages above the p99/);
      assert.match(section, /^thread\s+cpu ms\s+ran ms\s+waited ms/m);
    }
    assert.match(sections[0], /GC pauses: \d+ \(\d+ scavenges\).* B per message\)/);
    assert.match(sections[0], /JIT compile jobs: \d+/);
    const samples = (await Deno.readTextFile(`${dir}/run-0.txt`)).trim().split("\n");
    assert.ok(samples.length >= 1900, `${samples.length} samples written`);
    assert.match(samples[0], /^-?[\d.]+ [\d.]+$/);
    assert.match(await Deno.readTextFile(`${dir}/run-0.broker`), /GC: \{"pause"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
