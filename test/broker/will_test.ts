import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { targetTest } from "../helpers/targets.ts";

const encoder = new TextEncoder();

targetTest(
  "the will is published when the socket dies without DISCONNECT [MQTT-3.1.2-8]",
  {},
  async (server) => {
    const { client: watcher } = await TestClient.connect(server.port, { clientId: "w" });
    await watcher.subscribe("wills/#", 1);
    const { client } = await TestClient.connect(server.port, {
      clientId: "dying",
      will: { topic: "wills/dying", payload: encoder.encode("gone"), qos: 1 },
    });
    await client.destroy();
    const will = await watcher.expect(PacketType.PUBLISH);
    assert.equal(will.topic, "wills/dying");
    assert.equal(text(will.payload), "gone");
    assert.equal(will.qos, 1);
    await watcher.ack(will);
    await watcher.disconnect();
  },
);

targetTest("no will after a normal DISCONNECT [MQTT-3.1.2-10]", {}, async (server) => {
  const { client: watcher } = await TestClient.connect(server.port, { clientId: "w" });
  await watcher.subscribe("wills/#", 0);
  const { client } = await TestClient.connect(server.port, {
    clientId: "polite",
    will: { topic: "wills/polite", payload: encoder.encode("x") },
  });
  await client.disconnect();
  await watcher.expectNothingPending();
  await watcher.disconnect();
});

Deno.test("MQTT 5 DISCONNECT 0x04 asks for the will [MQTT-3.14.4-3]", async () => {
  const server = startBroker();
  try {
    const { client: watcher } = await TestClient.connect(server.port, { clientId: "w" });
    await watcher.subscribe("wills/#", 0);
    const { client } = await TestClient.connect(server.port, {
      clientId: "asks",
      version: 5,
      will: { topic: "wills/asks", payload: encoder.encode("bye") },
    });
    await client.disconnect(ReasonCode.DisconnectWithWillMessage);
    assert.equal(text((await watcher.expect(PacketType.PUBLISH)).payload), "bye");
    await watcher.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("the will is published when a keep alive timeout closes the connection", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client: watcher } = await TestClient.connect(server.port, { clientId: "w" });
    await watcher.subscribe("wills/#", 0);
    const { client } = await TestClient.connect(server.port, {
      clientId: "silent",
      keepAlive: 2,
      will: { topic: "wills/silent", payload: encoder.encode("timeout") },
    });
    clock.advance(3000);
    await client.closed;
    assert.equal(text((await watcher.expect(PacketType.PUBLISH)).payload), "timeout");
    await watcher.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a takeover publishes the old connection's will [MQTT-3.1.4-3]", async () => {
  const server = startBroker();
  try {
    const { client: watcher } = await TestClient.connect(server.port, { clientId: "w" });
    await watcher.subscribe("wills/#", 0);
    const { client: first } = await TestClient.connect(server.port, {
      clientId: "dup",
      will: { topic: "wills/dup", payload: encoder.encode("first") },
    });
    const { client: second } = await TestClient.connect(server.port, { clientId: "dup" });
    await first.closed;
    assert.equal(text((await watcher.expect(PacketType.PUBLISH)).payload), "first");
    await second.disconnect();
    await watcher.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("Will Delay Interval: published after the delay [MQTT-3.1.3-9]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client: watcher } = await TestClient.connect(server.port, { clientId: "w" });
    await watcher.subscribe("wills/#", 0);
    const { client } = await TestClient.connect(server.port, {
      clientId: "delayed",
      version: 5,
      properties: { sessionExpiryInterval: 600 },
      will: {
        topic: "wills/delayed",
        payload: encoder.encode("late"),
        properties: { willDelayInterval: 30 },
      },
    });
    await client.destroy();
    await server.until(async () =>
      (await server.broker.getSession("delayed"))?.connected === false
    );
    clock.advance(29_999);
    await watcher.expectNothingPending();
    clock.advance(1);
    assert.equal(text((await watcher.expect(PacketType.PUBLISH)).payload), "late");
    await watcher.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("Will Delay Interval: cancelled by a reconnection in time [MQTT-3.1.3-9]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client: watcher } = await TestClient.connect(server.port, { clientId: "w" });
    await watcher.subscribe("wills/#", 0);
    const connect = {
      clientId: "back",
      version: 5 as const,
      cleanStart: false,
      properties: { sessionExpiryInterval: 600 },
      will: {
        topic: "wills/back",
        payload: encoder.encode("never"),
        properties: { willDelayInterval: 30 },
      },
    };
    const { client } = await TestClient.connect(server.port, connect);
    await client.destroy();
    await server.until(async () => (await server.broker.getSession("back"))?.connected === false);
    clock.advance(10_000);
    const again = await TestClient.connect(server.port, { ...connect, will: undefined });
    clock.advance(60_000);
    await watcher.expectNothingPending();
    await again.client.disconnect();
    await watcher.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("Will Delay Interval: sent when the session ends first [MQTT-3.1.3-9]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client: watcher } = await TestClient.connect(server.port, { clientId: "w" });
    await watcher.subscribe("wills/#", 0);
    const { client } = await TestClient.connect(server.port, {
      clientId: "short",
      version: 5,
      properties: { sessionExpiryInterval: 5 },
      will: {
        topic: "wills/short",
        payload: encoder.encode("session ended"),
        properties: { willDelayInterval: 300 },
      },
    });
    await client.destroy();
    await server.until(async () => (await server.broker.getSession("short"))?.connected === false);
    clock.advance(5000);
    assert.equal(text((await watcher.expect(PacketType.PUBLISH)).payload), "session ended");
    await watcher.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a retained will is stored as retained [MQTT-3.1.2-17]", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, {
      clientId: "rw",
      will: { topic: "status/rw", payload: encoder.encode("offline"), retain: true },
    });
    await client.destroy();
    const { client: later } = await TestClient.connect(server.port, { clientId: "later" });
    await later.subscribe("status/+", 0);
    const msg = await later.expect(PacketType.PUBLISH);
    assert.equal(msg.retain, true);
    assert.equal(text(msg.payload), "offline");
    await later.disconnect();
  } finally {
    await server.close();
  }
});
