import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";

const NEVER = 0xffffffff;

Deno.test("MQTT 5 session expiry beyond 2^31-1 ms is honoured, not cut short by a timer overflow [MQTT-3.1.2-23]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client } = await TestClient.connect(server.port, {
      clientId: "long",
      version: 5,
      properties: { sessionExpiryInterval: 3_000_000 }, // 34.7 days: 3e9 ms > 2^31-1 ms
    });
    await client.subscribe("long/t", 1);
    await client.disconnect();
    await server.offline("long");
    clock.advance(2 ** 31); // where an overflowing host timer would have fired long ago
    assert.ok(await server.broker.getSession("long"), "still there after 2^31 ms");
    clock.advance(3_000_000_000 - 2 ** 31 - 1);
    assert.ok(await server.broker.getSession("long"), "still there 1 ms before expiry");
    clock.advance(1);
    await server.gone("long");
  } finally {
    await server.close();
  }
});

Deno.test("MQTT 5 session expiry 0xFFFFFFFF never expires [MQTT-3.1.2-23]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client } = await TestClient.connect(server.port, {
      clientId: "forever",
      version: 5,
      properties: { sessionExpiryInterval: NEVER },
    });
    await client.disconnect();
    await server.offline("forever");
    clock.advance(NEVER * 1000 + 1);
    assert.ok(await server.broker.getSession("forever"));
  } finally {
    await server.close();
  }
});

Deno.test("MQTT 5 DISCONNECT may lengthen a non-zero session expiry (section 3.14.2.2.2)", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client } = await TestClient.connect(server.port, {
      clientId: "longer",
      version: 5,
      properties: { sessionExpiryInterval: 10 },
    });
    await client.disconnect(0, { sessionExpiryInterval: 100 });
    await server.offline("longer");
    assert.equal((await server.broker.getSession("longer"))?.expiryInterval, 100);
    clock.advance(99_000);
    assert.ok(await server.broker.getSession("longer"));
    clock.advance(1_000);
    await server.gone("longer");
  } finally {
    await server.close();
  }
});

Deno.test("MQTT 5 DISCONNECT with Session Expiry 0 ends a persistent session at close (section 3.14.2.2.2)", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, {
      clientId: "shorter",
      version: 5,
      properties: { sessionExpiryInterval: 600 },
    });
    await client.subscribe("s", 1);
    await client.disconnect(0, { sessionExpiryInterval: 0 });
    assert.equal(await server.broker.getSession("shorter"), undefined);
  } finally {
    await server.close();
  }
});

Deno.test("a queued message is sent with its Message Expiry Interval less the time it waited [MQTT-3.3.2-6], and not at all once expired [MQTT-3.3.2-5]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client: sub } = await TestClient.connect(server.port, {
      clientId: "q",
      version: 5,
      properties: { sessionExpiryInterval: 3600 },
    });
    await sub.subscribe("q/t", 1);
    await sub.disconnect();
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p", version: 5 });
    await pub.publish("q/t", "short", { qos: 1, properties: { messageExpiryInterval: 10 } });
    await pub.publish("q/t", "long", { qos: 1, properties: { messageExpiryInterval: 60 } });
    clock.advance(20_000);
    const { client: back } = await TestClient.connect(server.port, {
      clientId: "q",
      version: 5,
      cleanStart: false,
      properties: { sessionExpiryInterval: 3600 },
    });
    const message = await back.expect(PacketType.PUBLISH);
    assert.equal(text(message.payload), "long");
    assert.equal(message.properties?.messageExpiryInterval, 40);
    await back.ack(message);
    await back.expectNothingPending();
    assert.equal(server.broker.stats.droppedExpired, 1);
    await back.disconnect();
    await pub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("an unacknowledged message is resent with the time it waited taken off its expiry, and dropped once expired [MQTT-3.3.2-6] [MQTT-3.3.2-5]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client: sub } = await TestClient.connect(server.port, {
      clientId: "inflight",
      version: 5,
      properties: { sessionExpiryInterval: 3600 },
    });
    await sub.subscribe("i/t", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p", version: 5 });
    await pub.publish("i/t", "short", { qos: 1, properties: { messageExpiryInterval: 10 } });
    await pub.publish("i/t", "long", { qos: 1, properties: { messageExpiryInterval: 60 } });
    const first = await sub.publishes(2);
    assert.deepEqual(first.map((p) => p.properties?.messageExpiryInterval), [10, 60]);
    await sub.destroy(); // never acknowledged
    await server.until(async () =>
      (await server.broker.getSession("inflight"))?.connected === false
    );
    clock.advance(15_000);
    const { client: back } = await TestClient.connect(server.port, {
      clientId: "inflight",
      version: 5,
      cleanStart: false,
      properties: { sessionExpiryInterval: 3600 },
    });
    const resent = await back.expect(PacketType.PUBLISH);
    assert.equal(resent.dup, true);
    assert.equal(text(resent.payload), "long");
    assert.equal(resent.properties?.messageExpiryInterval, 45);
    await back.ack(resent);
    await back.expectNothingPending();
    assert.equal((await server.broker.getSession("inflight"))?.inflight, 0);
    await back.disconnect();
    await pub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a retained message is sent with the time it has been stored taken off its expiry, and expires [MQTT-3.3.2-6] [MQTT-3.3.2-5]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p", version: 5 });
    await pub.publish("r/t", "kept", {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 30 },
    });
    clock.advance(12_000);
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s", version: 5 });
    await sub.subscribe("r/#", 1);
    const retained = await sub.expect(PacketType.PUBLISH);
    assert.equal(retained.retain, true);
    assert.equal(retained.properties?.messageExpiryInterval, 18);
    await sub.ack(retained);
    clock.advance(18_000);
    const { client: late } = await TestClient.connect(server.port, { clientId: "l", version: 5 });
    await late.subscribe("r/#", 1);
    await late.expectNothingPending();
    await late.disconnect();
    await sub.disconnect();
    await pub.disconnect();
  } finally {
    await server.close();
  }
});
