import assert from "node:assert/strict";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";

Deno.test("$SYS/broker topics are retained and refreshed at the configured interval", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock, config: { sys: { enabled: true, interval: "5s" } } });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "sys" });
    await client.subscribe("$SYS/broker/#", 0);
    const first = new Map<string, string>();
    for (const msg of await client.publishes(12)) {
      assert.equal(msg.retain, true);
      first.set(msg.topic, text(msg.payload));
    }
    assert.equal(first.get("$SYS/broker/version"), "perch test");
    assert.equal(first.get("$SYS/broker/clients/connected"), "0"); // published before we connected
    for (
      const topic of [
        "uptime",
        "clients/total",
        "messages/received",
        "messages/sent",
        "bytes/received",
        "bytes/sent",
        "subscriptions/count",
        "retained messages/count",
      ]
    ) assert.ok(first.has(`$SYS/broker/${topic}`), topic);

    clock.advance(5000);
    const second = new Map<string, string>();
    for (const msg of await client.publishes(12)) second.set(msg.topic, text(msg.payload));
    assert.equal(second.get("$SYS/broker/clients/connected"), "1");
    assert.equal(second.get("$SYS/broker/subscriptions/count"), "1");
    assert.equal(second.get("$SYS/broker/uptime"), "5 seconds");
    assert.ok(Number(second.get("$SYS/broker/bytes/received")) > 0);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a # subscription does not receive $SYS topics [MQTT-4.7.2-1]", async () => {
  const server = startBroker({ config: { sys: { enabled: true } } });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "all" });
    await client.subscribe("#", 0);
    await client.expectNothingPending();
    await client.disconnect();
  } finally {
    await server.close();
  }
});
