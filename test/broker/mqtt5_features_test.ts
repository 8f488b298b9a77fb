import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import type { Properties, PublishPacket } from "../../src/codec/packets.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { targetTest } from "../helpers/targets.ts";

const INVALID_UTF8 = new Uint8Array([0x68, 0x69, 0xc3, 0x28]); // "hi" then a broken 2-byte sequence

// ---- CONNACK and features switched off ----------------------------------------------------

Deno.test("CONNACK announces features switched off: Maximum QoS, Retain, Wildcard, Shared and Subscription Identifiers Available [MQTT-3.2.2-9]", async () => {
  const server = startBroker({
    config: {
      mqtt: {
        maxQos: 1,
        retainAvailable: false,
        wildcardSubscriptionAvailable: false,
        sharedSubscriptionAvailable: false,
        subscriptionIdentifierAvailable: false,
      },
    },
  });
  try {
    const { client, connack } = await TestClient.connect(server.port, {
      clientId: "c",
      version: 5,
    });
    const p = connack.properties!;
    assert.equal(p.maximumQos, 1);
    assert.equal(p.retainAvailable, 0);
    assert.equal(p.wildcardSubscriptionAvailable, 0);
    assert.equal(p.sharedSubscriptionAvailable, 0);
    assert.equal(p.subscriptionIdentifiersAvailable, 0);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("with maxQos 1 a QoS 2 PUBLISH gets DISCONNECT 0x9B, SUBSCRIBE at QoS 2 is still granted QoS 1 [MQTT-3.2.2-10] and a QoS 2 will is refused with 0x9B [MQTT-3.2.2-12]", async () => {
  const server = startBroker({ config: { mqtt: { maxQos: 1 } } });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "q", version: 5 });
    assert.deepEqual((await client.subscribe("q", 2)).reasonCodes, [1]);
    await client.send({
      type: PacketType.PUBLISH,
      dup: false,
      qos: 2,
      retain: false,
      topic: "q",
      packetId: 1,
      properties: undefined,
      payload: new Uint8Array(),
    });
    assert.equal(
      (await client.expect(PacketType.DISCONNECT)).reasonCode,
      ReasonCode.QoSNotSupported,
    );
    await client.closed;

    const will = await TestClient.connect(server.port, {
      clientId: "w",
      version: 5,
      will: { topic: "w", qos: 2 },
    });
    assert.equal(will.connack.reasonCode, ReasonCode.QoSNotSupported);
    await will.client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("with retainAvailable false a retained PUBLISH gets DISCONNECT 0x9A and a retained will CONNACK 0x9A [MQTT-3.2.2-13]", async () => {
  const server = startBroker({ config: { mqtt: { retainAvailable: false } } });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "r", version: 5 });
    await client.publish("r", "x", { retain: true });
    assert.equal(
      (await client.expect(PacketType.DISCONNECT)).reasonCode,
      ReasonCode.RetainNotSupported,
    );
    await client.closed;
    const will = await TestClient.connect(server.port, {
      clientId: "w",
      version: 5,
      will: { topic: "w", retain: true },
    });
    assert.equal(will.connack.reasonCode, ReasonCode.RetainNotSupported);
    await will.client.closed;
  } finally {
    await server.close();
  }
});

for (
  const [what, config, subscribe, code] of [
    [
      "wildcard",
      { wildcardSubscriptionAvailable: false },
      { filter: "a/+" },
      ReasonCode.WildcardSubscriptionsNotSupported,
    ],
    [
      "shared",
      { sharedSubscriptionAvailable: false },
      { filter: "$share/g/a" },
      ReasonCode.SharedSubscriptionsNotSupported,
    ],
  ] as const
) {
  Deno.test(`with ${what} subscriptions off an MQTT 5 SUBSCRIBE using one gets DISCONNECT 0x${code.toString(16)}, a 3.1.1 one SUBACK 0x80 (section 3.2.2.3)`, async () => {
    const server = startBroker({ config: { mqtt: config } });
    try {
      const { client } = await TestClient.connect(server.port, { clientId: "v5", version: 5 });
      assert.deepEqual((await client.subscribe("plain", 1)).reasonCodes, [1]);
      await client.send({
        type: PacketType.SUBSCRIBE,
        packetId: 9,
        subscriptions: [{
          ...subscribe,
          qos: 0,
          noLocal: false,
          retainAsPublished: false,
          retainHandling: 0,
        }],
        properties: undefined,
      });
      assert.equal((await client.expect(PacketType.DISCONNECT)).reasonCode, code);
      await client.closed;
      const { client: old } = await TestClient.connect(server.port, { clientId: "v4" });
      assert.deepEqual((await old.subscribe(subscribe.filter, 0)).reasonCodes, [0x80]);
      await old.disconnect();
    } finally {
      await server.close();
    }
  });
}

Deno.test("with subscription identifiers off a SUBSCRIBE carrying one gets DISCONNECT 0xA1 (section 3.2.2.3.12)", async () => {
  const server = startBroker({ config: { mqtt: { subscriptionIdentifierAvailable: false } } });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "s", version: 5 });
    await client.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{
        filter: "x",
        qos: 0,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      }],
      properties: { subscriptionIdentifiers: [5] },
    });
    const disconnect = await client.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.SubscriptionIdentifiersNotSupported);
    await client.closed;
  } finally {
    await server.close();
  }
});

// ---- subscription identifiers -------------------------------------------------------------

targetTest(
  "a PUBLISH matching several subscriptions carries all their identifiers, once [MQTT-3.3.4-3] [MQTT-3.3.4-4]",
  {},
  async (server) => {
    const { client } = await TestClient.connect(server.port, { clientId: "ids", version: 5 });
    await client.subscribe("ids/+", 1, { subscriptionIdentifiers: [7] });
    await client.subscribe("ids/#", 1, { subscriptionIdentifiers: [300_000] });
    await client.subscribe("ids/a", 1); // no identifier
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("ids/a", "both", { qos: 1 });
    const message = await client.expect(PacketType.PUBLISH);
    assert.deepEqual([...message.properties!.subscriptionIdentifiers!].sort((a, b) => a - b), [
      7,
      300_000,
    ]);
    await client.ack(message);
    await pub.publish("ids/b/c", "one", { qos: 1 });
    const other = await client.expect(PacketType.PUBLISH);
    assert.deepEqual(other.properties?.subscriptionIdentifiers, [300_000]);
    await client.ack(other);
    await client.expectNothingPending();
    await pub.disconnect();
    await client.disconnect();
  },
);

Deno.test("a SUBSCRIBE with Subscription Identifier 0 is a protocol error: DISCONNECT 0x82 (section 3.8.2.1.2)", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "zero", version: 5 });
    await client.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{
        filter: "x",
        qos: 0,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      }],
      properties: { subscriptionIdentifiers: [0] },
    });
    assert.equal((await client.expect(PacketType.DISCONNECT)).reasonCode, ReasonCode.ProtocolError);
    await client.closed;
  } finally {
    await server.close();
  }
});

// ---- request/response and problem information ----------------------------------------------

Deno.test("Request Response Information 1 gets Response Information in CONNACK, 0 gets none [MQTT-3.1.2-28]", async () => {
  const server = startBroker();
  try {
    const asked = await TestClient.connect(server.port, {
      clientId: "rr",
      version: 5,
      properties: { requestResponseInformation: 1 },
    });
    assert.equal(asked.connack.properties?.responseInformation, "response/rr");
    await asked.client.disconnect();
    for (const properties of [{ requestResponseInformation: 0 }, undefined]) {
      const { client, connack } = await TestClient.connect(server.port, {
        clientId: "rr",
        version: 5,
        properties,
      });
      assert.equal(connack.properties?.responseInformation, undefined);
      await client.disconnect();
    }
  } finally {
    await server.close();
  }
  const off = startBroker({ config: { mqtt: { responseInformation: "" } } });
  try {
    const { client, connack } = await TestClient.connect(off.port, {
      clientId: "rr",
      version: 5,
      properties: { requestResponseInformation: 1 },
    });
    assert.equal(connack.properties?.responseInformation, undefined);
    await client.disconnect();
  } finally {
    await off.close();
  }
});

targetTest(
  "a request/response round trip: Response Topic and Correlation Data reach the responder unchanged [MQTT-3.3.2-15] [MQTT-3.3.2-16]",
  {},
  async (server) => {
    const { client: responder } = await TestClient.connect(server.port, {
      clientId: "svc",
      version: 5,
    });
    await responder.subscribe("svc/requests", 1);
    const { client: requester, connack } = await TestClient.connect(server.port, {
      clientId: "caller",
      version: 5,
      properties: { requestResponseInformation: 1 },
    });
    const replyTo = `${connack.properties!.responseInformation}/answers`;
    await requester.subscribe(replyTo, 1);
    const correlationData = new Uint8Array([0, 1, 2, 250]);
    await requester.publish("svc/requests", "2+2", {
      qos: 1,
      properties: { responseTopic: replyTo, correlationData, contentType: "text/plain" },
    });
    const request = await responder.expect(PacketType.PUBLISH);
    assert.equal(request.properties?.responseTopic, replyTo);
    assert.deepEqual(request.properties?.correlationData, correlationData);
    assert.equal(request.properties?.contentType, "text/plain");
    await responder.ack(request);
    await responder.publish(request.properties!.responseTopic!, "4", {
      qos: 1,
      properties: { correlationData: request.properties!.correlationData },
    });
    const reply = await requester.expect(PacketType.PUBLISH);
    assert.equal(reply.topic, "response/caller/answers");
    assert.equal(text(reply.payload), "4");
    assert.deepEqual(reply.properties?.correlationData, correlationData);
    await requester.ack(reply);
    await requester.disconnect();
    await responder.disconnect();
  },
);

Deno.test("Request Problem Information 0: no Reason String on PUBACK or SUBACK, one by default [MQTT-3.1.2-29]", async () => {
  const server = startBroker({
    hooks: {
      authorizePublish: (_c, r) => r.topic !== "denied",
      authorizeSubscribe: (_c, r) => r.filter !== "denied",
    },
  });
  try {
    for (const requestProblemInformation of [0, 1]) {
      const { client } = await TestClient.connect(server.port, {
        clientId: `rpi${requestProblemInformation}`,
        version: 5,
        properties: { requestProblemInformation },
      });
      const puback = await client.publish("denied", "x", { qos: 1 });
      assert.equal(puback?.type, PacketType.PUBACK);
      assert.equal((puback as { reasonCode: number }).reasonCode, ReasonCode.NotAuthorized);
      const suback = await client.subscribe("denied", 1);
      assert.deepEqual(suback.reasonCodes, [ReasonCode.NotAuthorized]);
      const reasons = [
        (puback as { properties?: Properties }).properties?.reasonString,
        suback.properties?.reasonString,
      ];
      if (requestProblemInformation === 0) assert.deepEqual(reasons, [undefined, undefined]);
      else assert.ok(reasons.every((r) => typeof r === "string" && r.length > 0), `${reasons}`);
      await client.disconnect();
    }
  } finally {
    await server.close();
  }
});

Deno.test("a Reason String that would make an ack exceed the client's Maximum Packet Size is left out [MQTT-3.4.2-2]", async () => {
  const server = startBroker({ hooks: { authorizePublish: () => false } });
  try {
    const { client } = await TestClient.connect(server.port, {
      clientId: "tiny",
      version: 5,
      properties: { maximumPacketSize: 16 },
    });
    const puback = await client.publish("t", "x", { qos: 1 });
    assert.equal((puback as { reasonCode: number }).reasonCode, ReasonCode.NotAuthorized);
    assert.equal((puback as { properties?: Properties }).properties, undefined);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

// ---- Payload Format Indicator -----------------------------------------------------------

function pfiPublish(qos: 0 | 1 | 2, payload: Uint8Array): PublishPacket {
  return {
    type: PacketType.PUBLISH,
    dup: false,
    qos,
    retain: false,
    topic: "pfi",
    packetId: qos === 0 ? 0 : 1,
    properties: { payloadFormatIndicator: 1 },
    payload,
  };
}

Deno.test("payload format validation: a payload marked UTF-8 that is not gets PUBACK/PUBREC 0x99 or, at QoS 0, DISCONNECT 0x99, and is not delivered (section 3.3.2.3.2)", async () => {
  const server = startBroker({ config: { mqtt: { validatePayloadFormat: true } } });
  try {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s", version: 5 });
    await sub.subscribe("pfi", 0);
    const { client } = await TestClient.connect(server.port, { clientId: "p", version: 5 });
    await client.send(pfiPublish(1, INVALID_UTF8));
    assert.equal(
      (await client.expect(PacketType.PUBACK)).reasonCode,
      ReasonCode.PayloadFormatInvalid,
    );
    await client.send(pfiPublish(2, INVALID_UTF8));
    assert.equal(
      (await client.expect(PacketType.PUBREC)).reasonCode,
      ReasonCode.PayloadFormatInvalid,
    );
    await client.send(pfiPublish(0, new TextEncoder().encode("grüße")));
    assert.equal(text((await sub.expect(PacketType.PUBLISH)).payload), "grüße");
    await sub.expectNothingPending(); // the invalid ones never arrived
    await client.send(pfiPublish(0, INVALID_UTF8));
    assert.equal(
      (await client.expect(PacketType.DISCONNECT)).reasonCode,
      ReasonCode.PayloadFormatInvalid,
    );
    await client.closed;
    await sub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("payload format validation: a will payload marked UTF-8 that is not gets CONNACK 0x99 (section 3.1.3.2.3)", async () => {
  const server = startBroker({ config: { mqtt: { validatePayloadFormat: true } } });
  try {
    const { client, connack } = await TestClient.connect(server.port, {
      clientId: "w",
      version: 5,
      will: { topic: "w", payload: INVALID_UTF8, properties: { payloadFormatIndicator: 1 } },
    });
    assert.equal(connack.reasonCode, ReasonCode.PayloadFormatInvalid);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("without payload format validation the payload and its indicator pass unaltered [MQTT-3.3.2-4]", async () => {
  const server = startBroker();
  try {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s", version: 5 });
    await sub.subscribe("pfi", 0);
    const { client } = await TestClient.connect(server.port, { clientId: "p", version: 5 });
    await client.send(pfiPublish(0, INVALID_UTF8));
    const got = await sub.expect(PacketType.PUBLISH);
    assert.deepEqual(got.payload, INVALID_UTF8);
    assert.equal(got.properties?.payloadFormatIndicator, 1);
    await client.disconnect();
    await sub.disconnect();
  } finally {
    await server.close();
  }
});

// ---- wills --------------------------------------------------------------------------------

targetTest(
  "will properties are forwarded: user properties in order, content type, response topic, correlation data, payload format [MQTT-3.1.3-10]",
  {},
  async (server) => {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s", version: 5 });
    await sub.subscribe("will/#", 1);
    const userProperties: [string, string][] = [["b", "2"], ["a", "1"], ["b", "3"]];
    const { client } = await TestClient.connect(server.port, {
      clientId: "dying",
      version: 5,
      will: {
        topic: "will/dying",
        payload: new TextEncoder().encode("gone"),
        qos: 1,
        properties: {
          userProperties,
          contentType: "text/plain",
          responseTopic: "will/ack",
          correlationData: new Uint8Array([9, 9]),
          payloadFormatIndicator: 1,
          messageExpiryInterval: 120,
        },
      },
    });
    await client.destroy();
    const will = await sub.expect(PacketType.PUBLISH);
    assert.equal(text(will.payload), "gone");
    assert.deepEqual(will.properties?.userProperties, userProperties);
    assert.equal(will.properties?.contentType, "text/plain");
    assert.equal(will.properties?.responseTopic, "will/ack");
    assert.deepEqual(will.properties?.correlationData, new Uint8Array([9, 9]));
    assert.equal(will.properties?.payloadFormatIndicator, 1);
    assert.equal(will.properties?.messageExpiryInterval, 120);
    assert.equal(will.properties?.willDelayInterval, undefined);
    await sub.ack(will);
    await sub.disconnect();
  },
);

// ---- server-initiated DISCONNECT ----------------------------------------------------------

Deno.test("shutting down sends MQTT 5 clients DISCONNECT 0x8B without a Session Expiry Interval [MQTT-3.14.2-2]", async () => {
  const server = startBroker();
  const { client } = await TestClient.connect(server.port, {
    clientId: "bye",
    version: 5,
    properties: { sessionExpiryInterval: 60 },
  });
  const closing = server.close();
  const disconnect = await client.expect(PacketType.DISCONNECT);
  assert.equal(disconnect.reasonCode, ReasonCode.ServerShuttingDown);
  assert.equal(disconnect.properties?.sessionExpiryInterval, undefined);
  await client.closed;
  await closing;
});

Deno.test("disconnectClient() sends DISCONNECT 0x98 Administrative action with a reason, and the will goes out", async () => {
  const server = startBroker();
  try {
    const { client: watcher } = await TestClient.connect(server.port, {
      clientId: "w",
      version: 5,
    });
    await watcher.subscribe("kicked", 0);
    const { client } = await TestClient.connect(server.port, {
      clientId: "victim",
      version: 5,
      will: { topic: "kicked", payload: new TextEncoder().encode("victim left") },
    });
    assert.equal(server.broker.disconnectClient("victim"), true);
    const disconnect = await client.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.AdministrativeAction);
    assert.ok(disconnect.properties?.reasonString);
    await client.closed;
    assert.equal(text((await watcher.expect(PacketType.PUBLISH)).payload), "victim left");
    assert.equal(server.broker.disconnectClient("victim"), false);
    assert.equal(server.broker.disconnectClient("nobody"), false);
    assert.throws(() => server.broker.disconnectClient("w", 0x04), RangeError);
    await watcher.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("disconnectClient() with 0x9C and a Server Reference sends the client to another server (section 4.11)", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "move", version: 5 });
    server.broker.disconnectClient("move", ReasonCode.UseAnotherServer, {
      serverReference: "other.example:1883",
    });
    const disconnect = await client.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.UseAnotherServer);
    assert.equal(disconnect.properties?.serverReference, "other.example:1883");
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("mqtt.serverReference redirects: CONNACK 0x9C (or 0x9D with serverMoved) with the Server Reference; 3.1.1 gets return code 3 (section 4.11)", async () => {
  for (const serverMoved of [false, true]) {
    const server = startBroker({
      config: { mqtt: { serverReference: "next.example:1883", serverMoved } },
    });
    try {
      const { client, connack } = await TestClient.connect(server.port, {
        clientId: "r",
        version: 5,
      });
      assert.equal(
        connack.reasonCode,
        serverMoved ? ReasonCode.ServerMoved : ReasonCode.UseAnotherServer,
      );
      assert.equal(connack.properties?.serverReference, "next.example:1883");
      await client.closed;
      const old = await TestClient.connect(server.port, { clientId: "r4" });
      assert.equal(old.connack.reasonCode, 3);
      await old.client.closed;
    } finally {
      await server.close();
    }
  }
});

Deno.test("the broker holds the client to the Server Keep Alive it announced: silence for 1.5 times it gets DISCONNECT 0x8D [MQTT-3.2.2-21] [MQTT-3.1.2-22]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock, config: { mqtt: { maxKeepAlive: 60 } } });
  try {
    for (const keepAlive of [600, 0]) {
      const { client, connack } = await TestClient.connect(server.port, {
        clientId: `ka${keepAlive}`,
        version: 5,
        keepAlive,
      });
      assert.equal(connack.properties?.serverKeepAlive, 60);
      clock.advance(89_999);
      await client.expectNothingPending(); // the PINGREQ restarts the period
      clock.advance(89_999);
      assert.equal((await server.broker.getSession(`ka${keepAlive}`))?.connected, true);
      clock.advance(1);
      const disconnect = await client.expect(PacketType.DISCONNECT);
      assert.equal(disconnect.reasonCode, ReasonCode.KeepAliveTimeout);
      await client.closed;
    }
  } finally {
    await server.close();
  }
});
