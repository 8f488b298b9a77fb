/**
 * Every limit end to end, over real sockets: what the client is told when it hits the limit, and
 * that the broker keeps serving everyone else.
 */

import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import type { ConfigInput } from "../../src/config/mod.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker, type TestBroker } from "../helpers/broker.ts";
import { TestClient } from "../helpers/test_client.ts";

type Version = 4 | 5;
const VERSIONS: Version[] = [4, 5];
const label = (v: Version) => (v === 5 ? "v5" : "v3.1.1");

async function withBroker(
  config: ConfigInput,
  body: (server: TestBroker) => Promise<void>,
  clock?: ManualClock,
): Promise<void> {
  const server = startBroker({ config, clock });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

async function connectCode(port: number, version: Version, clientId: string) {
  const { client, connack } = await TestClient.connect(port, { version, clientId });
  return { client, code: connack.reasonCode };
}

for (const version of VERSIONS) {
  Deno.test(
    `${label(version)}: limits.maxConnections refuses one connection too many (${
      version === 5 ? "0x89 Server busy" : "return code 3"
    }) and admits again after a close`,
    async () => {
      await withBroker({ limits: { maxConnections: 2 } }, async (server) => {
        const a = await connectCode(server.port, version, "a");
        const b = await connectCode(server.port, version, "b");
        assert.deepEqual([a.code, b.code], [0, 0]);
        const c = await connectCode(server.port, version, "c");
        assert.equal(c.code, version === 5 ? 0x89 : 3);
        await c.client.closed;
        await a.client.disconnect();
        await server.until(() => server.broker.connectionLimits.open === 1);
        const d = await connectCode(server.port, version, "d");
        assert.equal(d.code, 0);
        assert.equal(server.broker.stats.connectionsRefused, 1);
        assert.ok(server.logs.some((l) => /connection over a limit refused/.test(l.line)));
        await b.client.disconnect();
        await d.client.disconnect();
      });
    },
  );

  Deno.test(
    `${label(version)}: limits.maxConnectionsPerAddress refuses a source address over its share (${
      version === 5 ? "0x97 Quota exceeded" : "return code 3"
    })`,
    async () => {
      await withBroker(
        {
          limits: { maxConnectionsPerAddress: 2, exemptLoopback: false, connectRatePerAddress: 0 },
        },
        async (server) => {
          const a = await connectCode(server.port, version, "a");
          const b = await connectCode(server.port, version, "b");
          const c = await connectCode(server.port, version, "c");
          assert.deepEqual([a.code, b.code, c.code], [0, 0, version === 5 ? 0x97 : 3]);
          await c.client.closed;
          await a.client.disconnect();
          await b.client.disconnect();
        },
      );
    },
  );

  Deno.test(
    `${label(version)}: limits.connectRatePerAddress refuses a burst beyond the rate (${
      version === 5 ? "0x9F Connection rate exceeded" : "return code 3"
    }) until tokens refill`,
    async () => {
      const clock = new ManualClock(1_000_000);
      await withBroker(
        { limits: { connectRatePerAddress: 3, exemptLoopback: false } },
        async (server) => {
          const codes: number[] = [];
          const clients: TestClient[] = [];
          for (let i = 0; i < 4; i++) {
            const { client, code } = await connectCode(server.port, version, `r${i}`);
            codes.push(code);
            clients.push(client);
          }
          assert.deepEqual(codes, [0, 0, 0, version === 5 ? 0x9f : 3]);
          clock.advance(1000); // three tokens a second come back
          const later = await connectCode(server.port, version, "later");
          assert.equal(later.code, 0);
          for (const client of [...clients, later.client]) await client.destroy();
        },
        clock,
      );
    },
  );
}

Deno.test("the per-address limits do not apply to loopback clients by default (limits.exemptLoopback)", async () => {
  await withBroker(
    { limits: { maxConnectionsPerAddress: 1, connectRatePerAddress: 1 } },
    async (server) => {
      const a = await connectCode(server.port, 5, "a");
      const b = await connectCode(server.port, 5, "b");
      const c = await connectCode(server.port, 5, "c");
      assert.deepEqual([a.code, b.code, c.code], [0, 0, 0]);
      for (const x of [a, b, c]) await x.client.disconnect();
    },
  );
});

for (const version of VERSIONS) {
  Deno.test(
    `${label(version)}: limits.publishRate disconnects a client that publishes faster${
      version === 5 ? " (DISCONNECT 0x96 Message rate too high)" : ""
    }`,
    async () => {
      const clock = new ManualClock(1_000_000);
      await withBroker({ limits: { publishRate: 5 } }, async (server) => {
        const { client: fast } = await TestClient.connect(server.port, {
          version,
          clientId: "fast",
        });
        const { client: calm } = await TestClient.connect(server.port, {
          version,
          clientId: "calm",
        });
        for (let i = 0; i < 5; i++) await fast.publish("rate/t", `${i}`, { qos: 1 });
        clock.advance(200); // one token back
        await fast.publish("rate/t", "5", { qos: 1 });
        await fast.publish("rate/t", "6", { qos: 0 });
        const next = await fast.next();
        if (version === 5) {
          assert.equal(next?.type, PacketType.DISCONNECT);
          assert.equal((next as { reasonCode: number }).reasonCode, 0x96);
        } else assert.equal(next, undefined);
        await fast.closed;
        assert.equal(server.broker.stats.publishRateExceeded, 1);
        // Another client is not affected.
        const ack = await calm.publish("rate/t", "ok", { qos: 1 });
        assert.equal(ack?.type, PacketType.PUBACK);
        await calm.disconnect();
      }, clock);
    },
  );
}

for (const version of VERSIONS) {
  Deno.test(
    `${label(version)}: a full session queue is visible: ${
      version === 5 ? "PUBACK 0x97 Quota exceeded, " : ""
    }a counter and a log line, never a plain ack and a silent drop`,
    async () => {
      await withBroker({ mqtt: { maxQueuedMessages: 2 } }, async (server) => {
        const { client: sub } = await TestClient.connect(server.port, {
          version,
          clientId: "offline",
          cleanStart: false,
          properties: version === 5 ? { sessionExpiryInterval: 600 } : undefined,
        });
        await sub.subscribe("q/#", 1);
        await sub.disconnect();
        const { client: pub } = await TestClient.connect(server.port, { version, clientId: "pub" });
        const codes: number[] = [];
        for (let i = 0; i < 3; i++) {
          const ack = await pub.publish("q/t", `${i}`, { qos: 1 });
          codes.push((ack as { reasonCode: number }).reasonCode);
        }
        assert.deepEqual(codes, version === 5 ? [0, 0, 0x97] : [0, 0, 0]);
        assert.equal(server.broker.stats.droppedQueueFull, 1);
        assert.ok(server.logs.some((l) => /queue full: message not queued/.test(l.line)));
        await pub.disconnect();
      });
    },
  );
}

Deno.test("mqtt.maxQueuedBytes bounds a session queue by size", async () => {
  await withBroker({ mqtt: { maxQueuedBytes: 100 } }, async (server) => {
    const { client: sub } = await TestClient.connect(server.port, {
      version: 5,
      clientId: "offline",
      properties: { sessionExpiryInterval: 600 },
    });
    await sub.subscribe("q/#", 1);
    await sub.disconnect();
    const { client: pub } = await TestClient.connect(server.port, { version: 5, clientId: "pub" });
    const first = await pub.publish("q/t", "x".repeat(60), { qos: 1 });
    const second = await pub.publish("q/t", "y".repeat(60), { qos: 1 });
    assert.equal((first as { reasonCode: number }).reasonCode, 0);
    assert.equal((second as { reasonCode: number }).reasonCode, 0x97);
    assert.equal((await server.broker.getSession("offline"))?.queued, 1);
    await pub.disconnect();
  });
});

Deno.test("mqtt.maxInflight holds QoS 1 deliveries beyond the window until acknowledgements come", async () => {
  await withBroker({ mqtt: { maxInflight: 2 } }, async (server) => {
    const { client: sub } = await TestClient.connect(server.port, { version: 5, clientId: "sub" });
    await sub.subscribe("w/#", 1);
    const { client: pub } = await TestClient.connect(server.port, { version: 5, clientId: "pub" });
    for (let i = 0; i < 5; i++) await pub.publish("w/t", `${i}`, { qos: 1 });
    const first = await sub.publishes(2);
    await sub.expectNothingPending(); // only two in flight
    assert.equal((await server.broker.getSession("sub"))?.inflight, 2);
    for (const message of first) await sub.ack(message);
    const rest = await sub.publishes(2);
    for (const message of rest) await sub.ack(message);
    const last = await sub.expect(PacketType.PUBLISH);
    await sub.ack(last);
    await pub.disconnect();
    await sub.disconnect();
  });
});

for (const version of VERSIONS) {
  Deno.test(
    `${label(version)}: mqtt.maxTopicLevels and maxTopicLength refuse deeper or longer topics${
      version === 5 ? " (DISCONNECT 0x90, SUBACK 0x8F)" : ""
    }`,
    async () => {
      await withBroker({ mqtt: { maxTopicLevels: 3, maxTopicLength: 16 } }, async (server) => {
        const { client } = await TestClient.connect(server.port, { version, clientId: "deep" });
        const suback = await client.subscribe([
          { filter: "a/b/c", qos: 0 },
          { filter: "a/b/c/d", qos: 0 },
          { filter: "a/".repeat(8) + "x", qos: 0 },
        ]);
        assert.deepEqual(suback.reasonCodes, version === 5 ? [0, 0x8f, 0x8f] : [0, 0x80, 0x80]);
        await client.publish("a/b/c/d", "too deep");
        const next = await client.next();
        if (version === 5) {
          assert.equal(next?.type, PacketType.DISCONNECT);
          assert.equal((next as { reasonCode: number }).reasonCode, 0x90);
        } else assert.equal(next, undefined);
        await client.closed;
      });
    },
  );

  Deno.test(
    `${label(version)}: mqtt.maxClientIdLength refuses a longer client id (${
      version === 5 ? "0x85" : "return code 2"
    })`,
    async () => {
      await withBroker({ mqtt: { maxClientIdLength: 23 } }, async (server) => {
        const ok = await connectCode(server.port, version, "x".repeat(23));
        assert.equal(ok.code, 0);
        await ok.client.disconnect();
        const long = await connectCode(server.port, version, "x".repeat(24));
        assert.equal(long.code, version === 5 ? 0x85 : 2);
        await long.client.closed;
      });
    },
  );

  Deno.test(
    `${label(version)}: mqtt.maxPacketSize closes a connection sending a larger packet${
      version === 5 ? " (DISCONNECT 0x95)" : ""
    }`,
    async () => {
      await withBroker({ mqtt: { maxPacketSize: 128 } }, async (server) => {
        const { client } = await TestClient.connect(server.port, { version, clientId: "big" });
        await client.publish("big", "x".repeat(200));
        const next = await client.next();
        if (version === 5) {
          assert.equal(next?.type, PacketType.DISCONNECT);
          assert.equal((next as { reasonCode: number }).reasonCode, 0x95);
        } else assert.equal(next, undefined);
        await client.closed;
      });
    },
  );
}

Deno.test("v3.1.1: mqtt.maxKeepAlive refuses a longer keep alive (return code 2: 3.1.1 cannot announce another)", async () => {
  await withBroker({ mqtt: { maxKeepAlive: 60 } }, async (server) => {
    const { client, connack } = await TestClient.connect(server.port, {
      version: 4,
      clientId: "ka",
      keepAlive: 61,
    });
    assert.equal(connack.reasonCode, 2);
    await client.closed;
  });
});

Deno.test("v5: mqtt.maxKeepAlive caps a longer keep alive with Server Keep Alive [MQTT-3.2.2-21]", async () => {
  await withBroker({ mqtt: { maxKeepAlive: 60 } }, async (server) => {
    const { client, connack } = await TestClient.connect(server.port, {
      version: 5,
      clientId: "ka",
      keepAlive: 600,
    });
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.serverKeepAlive, 60);
    await client.disconnect();
  });
});

Deno.test("mqtt.maxSubscriptionsPerClient refuses subscriptions beyond the bound (v5: 0x97)", async () => {
  await withBroker({ mqtt: { maxSubscriptionsPerClient: 2 } }, async (server) => {
    const { client } = await TestClient.connect(server.port, { version: 5, clientId: "subs" });
    const suback = await client.subscribe([
      { filter: "s/1", qos: 0 },
      { filter: "s/2", qos: 0 },
      { filter: "s/3", qos: 0 },
    ]);
    assert.deepEqual(suback.reasonCodes, [0, 0, 0x97]);
    await client.disconnect();
  });
});

Deno.test("mqtt.connectTimeout closes a connection that sends no CONNECT", async () => {
  const clock = new ManualClock(1_000_000);
  await withBroker({ mqtt: { connectTimeout: "10s" } }, async (server) => {
    const silent = await TestClient.open(server.port);
    await server.until(() => server.broker.connections.size === 1);
    clock.advance(9_999);
    assert.equal(server.broker.connections.size, 1);
    clock.advance(1);
    await silent.closed;
    assert.equal(server.broker.connections.size, 0);
  }, clock);
});
