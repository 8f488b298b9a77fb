/**
 * Smoke test of `deno task bench`: a `--quick` latency run against Mosquitto, Perch on Deno and on
 * Bun, Perch on the SQLite backbone and Mosquitto with TCP_NODELAY must write results of the
 * documented shape and a chart naming every broker and case, and none may
 * lose anything at QoS 1. The rate is 1,000 msg/s, so that even on a machine busy with parallel
 * tests Mosquitto's default queue (1,000 messages) covers a second-long stall of the subscriber. No timing is asserted. Needs Mosquitto (the harness installs it with
 * apt-get when run as root).
 */

import assert from "node:assert/strict";
import { BROKER_LABELS } from "../../scripts/bench/report/chart.ts";

const BENCH = new URL("../../scripts/bench.ts", import.meta.url).pathname;

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

const BROKERS = ["mosquitto", "perch", "perch-bun", "perch-sqlite", "mosquitto-nodelay"];

Deno.test("scripts/bench.ts --quick latency on mosquitto, perch, perch-bun, perch-sqlite and mosquitto-nodelay writes results and a chart and loses no QoS 1 message", async () => {
  const out = await Deno.makeTempDir({ prefix: "perch-bench-smoke-" });
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        BENCH,
        "--quick",
        "--scenarios",
        "latency",
        "--brokers",
        BROKERS.join(","),
      ]
        .concat(["--rate", "1000", "--out", out]),
    }).output();
    assert.equal(code, 0, `bench failed:\n${decode(stdout)}\n${decode(stderr)}`);

    const results = JSON.parse(await Deno.readTextFile(`${out}/latest.json`));
    assert.equal(results.schema, 1);
    assert.deepEqual(results.brokers.map((broker: { name: string }) => broker.name), BROKERS);
    for (const broker of results.brokers) assert.equal(broker.status, "ok", broker.name);
    // Perch runs with the V8 flags of `deno task start`.
    assert.match(results.brokers[1].version, /--v8-flags=/);
    assert.match(results.brokers[2].version, /\(bun \d+\.\d+/);
    const ids = results.cases.map((entry: { id: string }) => entry.id);
    assert.deepEqual(ids, ["latency/qos0", "latency/qos1"]);

    for (const entry of results.cases) {
      assert.deepEqual(
        entry.metrics.map((metric: { key: string }) => metric.key),
        ["p50", "p90", "p99", "max", "delivered"],
      );
      for (const name of BROKERS) {
        const result = entry.results[name];
        assert.equal(result.rounds.length, 1);
        assert.equal(result.rounds[0].error, undefined, result.rounds[0].error);
        for (const key of ["p50", "p90", "p99", "max", "delivered"]) {
          assert.ok(result.median[key] > 0, `${name} ${entry.id} ${key} = ${result.median[key]}`);
        }
        for (const key of ["published", "expected", "delivered", "lost", "duplicated", "unacked"]) {
          assert.equal(
            typeof result.integrity[key],
            "number",
            `${name} ${entry.id} integrity.${key}`,
          );
        }
        assert.equal(typeof result.cpu.broker, "number");
        assert.equal(typeof result.cpu.generator, "number");
        assert.ok(result.integrity.published > 0);
      }
    }

    for (const name of BROKERS) {
      const qos1 = results.cases[1].results[name].integrity;
      assert.equal(qos1.lost, 0, `${name}: QoS 1 messages lost`);
      assert.equal(qos1.duplicated, 0, `${name}: QoS 1 messages duplicated`);
      assert.equal(qos1.delivered, qos1.expected);
    }

    const folders = [...Deno.readDirSync(out)].filter((entry) => entry.isDirectory);
    assert.equal(folders.length, 1);
    for (const file of ["results.json", "chart.svg", "table.txt"]) {
      assert.ok(Deno.statSync(`${out}/${folders[0].name}/${file}`).isFile, file);
    }
    const chart = Deno.readTextFileSync(`${out}/${folders[0].name}/chart.svg`);
    assert.match(chart, /^<svg /);
    for (const name of BROKERS) assert.ok(chart.includes(`>${BROKER_LABELS[name]}</text>`), name);
    for (const id of ids) assert.ok(chart.includes(`>${id}</text>`), id);
    assert.ok(chart.includes(`>${results.command}<`), "the command");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("scripts/bench.ts --quick runs Perch on NATS with three front-ends for its fan-in cases only, next to single-node Perch", async () => {
  const out = await Deno.makeTempDir({ prefix: "perch-bench-smoke-" });
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", BENCH, "--quick", "--brokers", "perch,perch-nats3"]
        .concat(["--cases", "fan-in/qos0/16B,latency/qos0", "--out", out]),
    }).output();
    const printed = decode(stdout);
    assert.equal(code, 0, `bench failed:\n${printed}\n${decode(stderr)}`);
    const results = JSON.parse(await Deno.readTextFile(`${out}/latest.json`));
    assert.match(results.brokers[1].version, /^3 front-ends on nats-server/);
    const [fanIn, latency] = results.cases;
    assert.deepEqual([fanIn.id, latency.id], ["fan-in/qos0/16B", "latency/qos0"]);
    // The cluster runs the fan-in cases only.
    assert.deepEqual(Object.keys(latency.results), ["perch"]);
    const cluster = fanIn.results["perch-nats3"];
    assert.equal(cluster.rounds[0].error, undefined, cluster.rounds[0].error);
    assert.ok(cluster.median.delivered > 0);
    assert.equal(cluster.integrity.duplicated, 0);
    assert.match(
      printed,
      /Perch.s variants, as a share of Perch on Deno with the memory backbone \(each case.s headline figure\):/,
    );
    assert.match(printed, /fan-in\/qos0\/16B\s+delivered msg\/s\s+\d+%/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("scripts/bench.ts --quick runs NATS server's MQTT gateway as a peer: shared cases n/a, latency p99 with its spread", async () => {
  const out = await Deno.makeTempDir({ prefix: "perch-bench-smoke-" });
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", BENCH, "--quick", "--brokers", "perch,nats-mqtt"]
        .concat(["--cases", "shared/qos0/16B,latency/qos1", "--latency-rounds", "2"])
        .concat(["--rate", "1000", "--out", out]),
    }).output();
    const printed = decode(stdout);
    assert.equal(code, 0, `bench failed:\n${printed}\n${decode(stderr)}`);
    const results = JSON.parse(await Deno.readTextFile(`${out}/latest.json`));
    assert.equal(results.brokers[1].name, "nats-mqtt");
    assert.match(results.brokers[1].version, /^v2\.\d+\.\d+ \(MQTT listener, JetStream/);
    assert.match(results.command, /^deno task bench --quick --brokers perch,nats-mqtt /);
    assert.equal(typeof results.machine.cpuModel, "string");
    const [shared, latency] = results.cases;
    assert.deepEqual([shared.id, latency.id], ["shared/qos0/16B", "latency/qos1"]);
    // No $share in NATS's MQTT gateway: not measured, n/a with the reason.
    assert.match(shared.results["nats-mqtt"].unsupported, /\$share/);
    assert.equal(shared.results["nats-mqtt"].rounds[0].measurement, undefined);
    assert.match(printed, /^shared\/qos0\/16B\s+delivered msg\/s\s+\S+\s+n\/a\s+n\/a$/m);
    // Latency: --latency-rounds 2 against 1 round for the rest, p99 with its min-max.
    for (const broker of ["perch", "nats-mqtt"]) {
      const result = latency.results[broker];
      assert.equal(result.rounds.length, 2, broker);
      for (const round of result.rounds) assert.equal(round.error, undefined, round.error);
      assert.equal(result.spread.p99.rounds, 2);
      assert.ok(result.spread.p99.min <= result.median.p99, broker);
      assert.ok(result.median.p99 <= result.spread.p99.max, broker);
      assert.equal(result.integrity.lost, 0, `${broker}: QoS 1 messages lost`);
    }
    assert.match(
      printed,
      /p99 ms \(lower is better\), median \(min-max of rounds\)\s+\S+ \(\S+-\S+\)/,
    );
    assert.match(printed, /perch\/nats-mqtt/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
