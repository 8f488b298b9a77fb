/**
 * Idle collection (`memory.idleCollection`): after enough connections opened and closed, the
 * broker process collects garbage once it is quiet, and says so in its log and its metrics (on Deno
 * and on Bun); while connections keep coming or the process is busy, it does not (the collector
 * itself, with a manual clock and given CPU readings).
 *
 * @module
 */

import assert from "node:assert/strict";
import { IdleCollector } from "../../src/ops/idle_collection.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { createLogger } from "../../src/util/logger.ts";
import { runtimeTest, startBrokerProcess } from "../helpers/broker_process.ts";
import { TestClient } from "../helpers/test_client.ts";

const TOKEN = "idle-collection-token-0123456789";

/** Opens `count` MQTT connections one after another and closes them all. */
async function churn(port: number, count: number, prefix: string): Promise<void> {
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < count; i++) {
      clients.push((await TestClient.connect(port, { clientId: `${prefix}-${i}` })).client);
    }
  } finally {
    await Promise.all(clients.map((client) => client.disconnect()));
  }
}

runtimeTest(
  "after a burst of connections the broker collects garbage once it is quiet, and counts it",
  async (runtime) => {
    const broker = await startBrokerProcess(runtime, {
      env: {
        PERCH_MEMORY__IDLE_COLLECTION_AFTER: "20",
        PERCH_ADMIN__TOKENS: JSON.stringify([{ token: TOKEN, role: "admin" }]),
      },
    });
    try {
      const { tcp, admin } = await broker.started();
      await churn(tcp!, 12, "burst");
      // 12 opened and 12 gone: 24 of churn, over the 20 that make a collection worth it.
      const line = await broker.line("idle collection");
      assert.ok(Number(line.connections) >= 20, `connections=${line.connections}`);
      assert.ok(Number(line.pauseMs) >= 0);
      const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`, {
        headers: { "x-token": TOKEN },
      })).text();
      assert.match(metrics, /^perch_idle_collections_total(\{[^}]*\})? [1-9]\d*$/m);
      assert.match(metrics, /^perch_idle_collection_pause_seconds(\{[^}]*\})? \S+$/m);
    } finally {
      await broker.stop();
    }
  },
);

Deno.test("the idle collector waits for an interval without churn and with little CPU", () => {
  const clock = new ManualClock();
  let churnCount = 0;
  let cpuMicros = 0;
  let collections = 0;
  const collector = new IdleCollector({
    collect: () => collections++,
    readChurn: () => churnCount,
    readCpuMicros: () => cpuMicros,
    clock,
    logger: createLogger({ level: "silent" }),
    after: 100,
    interval: 1000,
    quietCpuShare: 0.05,
  });
  collector.start();
  // Below the churn that makes it worth it: never, however quiet.
  churnCount = 99;
  clock.advance(1000);
  clock.advance(1000);
  assert.equal(collections, 0);
  // Connections keep coming: not quiet.
  churnCount = 150;
  clock.advance(1000);
  churnCount = 200;
  clock.advance(1000);
  assert.equal(collections, 0);
  // No churn, but the process is busy (100 ms of CPU in a 1 s interval): not quiet.
  cpuMicros += 100_000;
  clock.advance(1000);
  assert.equal(collections, 0);
  // Quiet at last: one collection, and no other until more churn.
  cpuMicros += 10_000;
  clock.advance(1000);
  assert.equal(collections, 1);
  clock.advance(1000);
  clock.advance(1000);
  assert.equal(collections, 1);
  assert.equal(collector.stats.collections, 1);
  churnCount = 320;
  clock.advance(1000);
  clock.advance(1000);
  assert.equal(collections, 2);
  collector.stop();
});
