/**
 * MQTT over WebSocket, driven frame by frame with a raw WebSocket client and end to end with
 * mqtt.js over `ws://` and `wss://`, against the broker in process (Deno's sockets) and started on
 * Deno and on Bun.
 *
 * @module
 */

import assert from "node:assert/strict";
import mqtt, { type MqttClient } from "mqtt";
import { encodePacket, PacketType, ReasonCode } from "../../src/codec/mod.ts";
import type { Packet } from "../../src/codec/packets.ts";
import type { AcceptHandler } from "../../src/transport/transport.ts";
import { DenoHttpServer } from "../../src/transport/deno_http.ts";
import { denoSockets } from "../../src/transport/deno_sockets.ts";
import { WebSocketListener } from "../../src/transport/websocket.ts";
import { startBroker, type TestBroker } from "../helpers/broker.ts";
import { Opcode, RawWebSocket } from "../helpers/raw_websocket.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { makeCerts } from "../helpers/certs.ts";
import { targetTest } from "../helpers/targets.ts";
import type { ConfigInput } from "../../src/config/mod.ts";

/** Longest wait for an expected event (a guard, never a delay). */
const WAIT_MS = 10_000;

/** A broker with MQTT over WebSocket at `/mqtt`, the `ws` listener configured with `ws`. */
function wsConfig(ws: Record<string, unknown> = {}, config: ConfigInput = {}): ConfigInput {
  return { ...config, listeners: { ws: { enabled: true, ...ws } } };
}

/** The listener of Deno's sockets on its own, for what only a listener shows (its close). */
function denoListener(server: TestBroker): WebSocketListener {
  return WebSocketListener.listen(
    denoSockets,
    { hostname: "127.0.0.1", port: 0, path: "/mqtt" },
    server.broker.accept,
  );
}

function connectPacket(clientId: string, version: 4 | 5 = 5): Uint8Array {
  return encodePacket({
    type: PacketType.CONNECT,
    protocolName: "MQTT",
    protocolVersion: version,
    cleanStart: true,
    keepAlive: 0,
    clientId,
    username: undefined,
    password: undefined,
    will: undefined,
    properties: undefined,
  }, version);
}

function encode(packet: Packet, version: 4 | 5 = 5): Uint8Array {
  return encodePacket(packet, version);
}

async function openRaw(port: number, protocols = ["mqtt"]): Promise<RawWebSocket> {
  const { socket, response } = await RawWebSocket.connect(port, { protocols });
  assert.equal(response.status, 101, response.body);
  return socket!;
}

targetTest(
  "MQTT over WebSocket echoes the mqtt subprotocol [MQTT-6.0.0-4]",
  { config: wsConfig() },
  async (server) => {
    const { socket, response } = await RawWebSocket.connect(server.ports.ws!, {
      protocols: ["mqtt"],
    });
    assert.equal(response.status, 101);
    assert.equal(response.headers.get("sec-websocket-protocol"), "mqtt");
    socket!.close();
    const old = await RawWebSocket.connect(server.ports.ws!, { protocols: ["mqttv3.1"] });
    assert.equal(old.response.headers.get("sec-websocket-protocol"), "mqttv3.1");
    old.socket!.close();
  },
);

targetTest("MQTT over WebSocket refuses a request offering no MQTT subprotocol", {
  config: wsConfig(),
}, async (server) => {
  const { socket, response } = await RawWebSocket.connect(server.ports.ws!, {
    protocols: ["chat"],
  });
  assert.equal(socket, undefined);
  assert.equal(response.status, 400);
  assert.match(JSON.parse(response.body).error, /expected mqtt or mqttv3\.1/);
});

targetTest("MQTT over WebSocket refuses an upgrade from an Origin off its allow-list with 403", {
  config: wsConfig({ allowedOrigins: ["https://app.example.com"] }),
}, async (server) => {
  const refused = await RawWebSocket.connect(server.ports.ws!, {
    protocols: ["mqtt"],
    headers: { Origin: "https://evil.example" },
  });
  assert.equal(refused.socket, undefined);
  assert.equal(refused.response.status, 403);
  assert.equal(
    JSON.parse(refused.response.body).error,
    "Origin not allowed: https://evil.example",
  );
  assert.equal((await server.counters()).connectionsAccepted, 0);
  // The allowed origin (the header's case does not matter), and a client that sends no Origin.
  const variants: Record<string, string>[] = [{ Origin: "https://App.Example.com" }, {}];
  for (const headers of variants) {
    const { socket, response } = await RawWebSocket.connect(server.ports.ws!, {
      protocols: ["mqtt"],
      headers,
    });
    assert.equal(response.status, 101);
    const client = TestClient.wrap(socket!, 5);
    assert.equal((await client.sendConnect({ clientId: "ok" })).reasonCode, ReasonCode.Success);
    await client.disconnect();
  }
});

targetTest(
  "MQTT over WebSocket accepts any Origin by default",
  { config: wsConfig() },
  async (server) => {
    const { socket, response } = await RawWebSocket.connect(server.ports.ws!, {
      protocols: ["mqtt"],
      headers: { Origin: "https://anywhere.example" },
    });
    assert.equal(response.status, 101);
    socket!.close();
  },
);

targetTest("MQTT over WebSocket answers 426 to a plain GET and 404 off the MQTT path", {
  config: wsConfig(),
}, async (server) => {
  const plain = await fetch(`http://127.0.0.1:${server.ports.ws!}/mqtt`);
  assert.equal(plain.status, 426);
  assert.equal(plain.headers.get("upgrade"), "websocket");
  await plain.body?.cancel();
  const elsewhere = await fetch(`http://127.0.0.1:${server.ports.ws!}/other`);
  assert.equal(elsewhere.status, 404);
  await elsewhere.body?.cancel();
});

targetTest("MQTT over WebSocket decodes a CONNECT split across three frames [MQTT-6.0.0-2]", {
  config: wsConfig(),
}, async (server) => {
  const socket = await openRaw(server.ports.ws!);
  const client = TestClient.wrap(socket, 5);
  const bytes = connectPacket("split-frames");
  await socket.sendFrame(bytes.subarray(0, 1));
  await socket.sendFrame(bytes.subarray(1, 5));
  await socket.sendFrame(bytes.subarray(5));
  const connack = await client.expect(PacketType.CONNACK);
  assert.equal(connack.reasonCode, ReasonCode.Success);
  await client.disconnect();
});

targetTest("MQTT over WebSocket decodes several packets in one frame [MQTT-6.0.0-2]", {
  config: wsConfig(),
}, async (server) => {
  const socket = await openRaw(server.ports.ws!);
  const client = TestClient.wrap(socket, 5);
  // CONNECT, SUBSCRIBE, a QoS 1 PUBLISH to that subscription and PINGREQ, all in one frame.
  const frame = [
    connectPacket("one-frame"),
    encode({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{
        filter: "ws/+",
        qos: 1,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      }],
      properties: undefined,
    }),
    encode({
      type: PacketType.PUBLISH,
      dup: false,
      qos: 1,
      retain: false,
      topic: "ws/a",
      packetId: 2,
      properties: undefined,
      payload: new TextEncoder().encode("together"),
    }),
    encode({ type: PacketType.PINGREQ }),
  ];
  const joined = new Uint8Array(frame.reduce((n, b) => n + b.length, 0));
  let offset = 0;
  for (const bytes of frame) {
    joined.set(bytes, offset);
    offset += bytes.length;
  }
  await socket.sendFrame(joined);
  const seen = new Map<number, Packet>();
  // The PUBACK, the delivered PUBLISH and the PINGRESP may come in any order after the SUBACK.
  while (seen.size < 5) {
    const packet = await client.next(WAIT_MS);
    assert.ok(packet, "connection closed early");
    seen.set(packet.type, packet);
  }
  assert.ok(seen.has(PacketType.CONNACK) && seen.has(PacketType.SUBACK));
  assert.ok(seen.has(PacketType.PUBACK) && seen.has(PacketType.PINGRESP));
  const publish = seen.get(PacketType.PUBLISH) as Extract<Packet, { type: 3 }>;
  assert.equal(text(publish.payload), "together");
  await client.ack(publish);
  await client.disconnect();
});

targetTest(
  "MQTT over WebSocket accepts a packet in a fragmented message",
  { config: wsConfig() },
  async (server) => {
    const socket = await openRaw(server.ports.ws!);
    const client = TestClient.wrap(socket, 5);
    const bytes = connectPacket("fragments");
    await socket.sendFrame(bytes.subarray(0, 4), { fin: false });
    await socket.sendFrame(bytes.subarray(4, 9), { opcode: Opcode.Continuation, fin: false });
    await socket.sendFrame(bytes.subarray(9), { opcode: Opcode.Continuation });
    assert.equal((await client.expect(PacketType.CONNACK)).reasonCode, ReasonCode.Success);
    await client.disconnect();
  },
);

targetTest("MQTT over WebSocket closes a connection that sends a text frame [MQTT-6.0.0-1]", {
  config: wsConfig(),
}, async (server) => {
  const socket = await openRaw(server.ports.ws!);
  const client = TestClient.wrap(socket, 5);
  await socket.sendFrame(new TextEncoder().encode("hello"), { opcode: Opcode.Text });
  await client.closed;
  assert.equal(socket.closeCode, 1003);
});

targetTest("MQTT over WebSocket takes the client address from a trusted proxy's header", {
  // The client is another machine as far as the broker knows: let it in without credentials.
  config: wsConfig({ trustedProxies: ["127.0.0.0/8"], proxyHeader: "x-forwarded-for" }, {
    auth: { anonymous: "always" },
  }),
}, async (server) => {
  const { socket } = await RawWebSocket.connect(server.ports.ws!, {
    protocols: ["mqtt"],
    // The client, then a second proxy (trusted too, being on loopback).
    headers: { "X-Forwarded-For": "203.0.113.7, 127.0.0.9" },
  });
  const client = TestClient.wrap(socket!, 5);
  await client.sendRaw(connectPacket("proxied"));
  await client.expect(PacketType.CONNACK);
  const proxied = await server.client("proxied");
  assert.equal(proxied?.remoteAddress, "203.0.113.7");
  assert.equal(proxied?.transport, "ws");
  await client.disconnect();
});

targetTest("MQTT over WebSocket ignores the proxy header from an untrusted peer", {
  config: wsConfig({ trustedProxies: ["10.0.0.0/8"], proxyHeader: "x-forwarded-for" }),
}, async (server) => {
  const { socket } = await RawWebSocket.connect(server.ports.ws!, {
    protocols: ["mqtt"],
    headers: { "X-Forwarded-For": "203.0.113.7" },
  });
  const client = TestClient.wrap(socket!, 5);
  await client.sendRaw(connectPacket("direct"));
  await client.expect(PacketType.CONNACK);
  assert.equal((await server.client("direct"))?.remoteAddress, "127.0.0.1");
  await client.disconnect();
});

Deno.test("WebSocketListener.close() keeps open connections and refuses new ones", async () => {
  const server = startBroker();
  const listener = denoListener(server);
  const socket = await openRaw(listener.port);
  const client = TestClient.wrap(socket, 5);
  try {
    await client.sendRaw(connectPacket("stays"));
    await client.expect(PacketType.CONNACK);
    listener.close();
    const refused = await RawWebSocket.connect(listener.port, { protocols: ["mqtt"] });
    assert.equal(refused.response.status, 503);
    await client.expectNothingPending(); // still served
    await client.disconnect();
    await listener.finished;
  } finally {
    listener.close();
    await server.close();
    await listener.finished;
  }
});

targetTest(
  "MQTT over WebSocket drops QoS 0 to a subscriber that does not read, past the write bound",
  { config: wsConfig({}, { mqtt: { writeBufferLimit: "64KiB" } }) },
  async (server) => {
    const socket = await openRaw(server.ports.ws!);
    const slow = TestClient.wrap(socket, 5);
    await slow.sendRaw(connectPacket("never-reads"));
    await slow.expect(PacketType.CONNACK);
    await slow.subscribe("flood", 0);
    // From here on the slow client's socket is not read: its bytes pile up in the broker.
    const { client: publisher } = await TestClient.connect(server.port, { clientId: "pub" });
    // Publish until the first drop: the kernel's socket buffers take a few MiB first, then the
    // broker's bound applies. Stopping there keeps this test's memory use small.
    const payload = new Uint8Array(16 * 1024);
    let published = 0;
    while ((await server.counters()).droppedSlowConsumer === 0) {
      assert.ok(published < 2000, `no drop after ${published} messages of 16 KiB`);
      for (let i = 0; i < 20; i++) await publisher.publish("flood", payload);
      published += 20;
      await publisher.expectNothingPending(); // the broker has handled the batch
    }
    const info = await server.client("never-reads");
    assert.ok(info, "the slow client is still connected");
    // The broker holds at most its bound plus one packet for the client.
    const limit = 64 * 1024;
    assert.ok(info.bufferedBytes <= limit + payload.length + 16, `buffered ${info.bufferedBytes}`);
    await publisher.disconnect();
    socket.close();
  },
);

targetTest("MQTT over WebSocket takes a message of 17 MiB, as every runtime does", {
  config: wsConfig({}, { mqtt: { maxPacketSize: "32MiB" } }),
}, async (server) => {
  const client = TestClient.wrap(await openRaw(server.ports.ws!), 5);
  await client.sendConnect({ clientId: "large", version: 5 });
  const ack = await client.publish("large", new Uint8Array(17 * 1024 * 1024), { qos: 1 });
  assert.equal(ack?.type, PacketType.PUBACK);
  await client.disconnect();
});

/** Waits for one message on an mqtt.js client. */
function nextMessage(client: MqttClient): Promise<{ topic: string; payload: string; qos: number }> {
  return new Promise((resolve) =>
    client.once(
      "message",
      (topic, payload, packet) => resolve({ topic, payload: payload.toString(), qos: packet.qos }),
    )
  );
}

for (const protocolVersion of [4, 5] as const) {
  targetTest(
    `mqtt.js ${protocolVersion === 5 ? "MQTT 5" : "3.1.1"} over ws:// completes a QoS 1 round trip`,
    {
      config: wsConfig(),
    },
    async (server) => {
      const client = await mqtt.connectAsync(`ws://127.0.0.1:${server.ports.ws}/mqtt`, {
        protocolVersion,
        clientId: `mqttjs-ws-${protocolVersion}`,
        reconnectPeriod: 0,
        connectTimeout: WAIT_MS,
      });
      try {
        await client.subscribeAsync("ws/qos1", { qos: 1 });
        const received = nextMessage(client);
        await client.publishAsync("ws/qos1", "over websocket", { qos: 1 });
        assert.deepEqual(await received, { topic: "ws/qos1", payload: "over websocket", qos: 1 });
        assert.equal((await server.client(`mqttjs-ws-${protocolVersion}`))?.transport, "ws");
      } finally {
        await client.endAsync();
      }
    },
  );
}

targetTest("mqtt.js over wss:// completes a QoS 1 round trip with the test CA", {
  fixture: async () => {
    const certs = await makeCerts();
    const { dir } = certs;
    const wss = { enabled: true, cert: `${dir}/server.crt`, key: `${dir}/server.key` };
    return { certs, config: { listeners: { wss } }, remove: certs.remove };
  },
}, async (server, { certs }) => {
  const client = await mqtt.connectAsync(`wss://localhost:${server.ports.wss}/mqtt`, {
    protocolVersion: 5,
    clientId: "mqttjs-wss",
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    ca: certs.caCert,
  });
  try {
    await client.subscribeAsync("wss/qos1", { qos: 1 });
    const received = nextMessage(client);
    await client.publishAsync("wss/qos1", "over tls", { qos: 1 });
    assert.deepEqual(await received, { topic: "wss/qos1", payload: "over tls", qos: 1 });
    assert.equal((await server.client("mqttjs-wss"))?.transport, "wss");
  } finally {
    await client.endAsync();
  }
});

targetTest("MQTT over WebSocket refuses an anonymous client as TCP does", {
  config: wsConfig({}, { auth: { anonymous: "never" } }),
}, async (server) => {
  const { client: overTcp, connack } = await TestClient.connect(server.port, {
    clientId: "t",
    version: 5,
  });
  const anonymous = TestClient.wrap(await openRaw(server.ports.ws!), 5);
  const overWs = await anonymous.sendConnect({ clientId: "w", version: 5 });
  assert.notEqual(overWs.reasonCode, ReasonCode.Success);
  assert.equal(overWs.reasonCode, connack.reasonCode);
  await Promise.all([anonymous.closed, overTcp.closed]);
});

targetTest("MQTT over WebSocket applies the broker's limits as TCP does", {
  config: wsConfig({}, { mqtt: { maxPacketSize: "1KiB" } }),
}, async (server) => {
  const client = TestClient.wrap(await openRaw(server.ports.ws!), 5);
  assert.equal((await client.sendConnect({ clientId: "big", version: 5 })).reasonCode, 0);
  await client.publish("big", new Uint8Array(2048));
  const disconnect = await client.expect(PacketType.DISCONNECT);
  assert.equal(disconnect.reasonCode, ReasonCode.PacketTooLarge);
  await client.closed;
});

targetTest("MQTT over WebSocket delivers many small packets in order, batched into frames", {
  config: wsConfig(),
}, async (server) => {
  const socket = await openRaw(server.ports.ws!);
  const subscriber = TestClient.wrap(socket, 5);
  await subscriber.sendConnect({ clientId: "batched", version: 5 });
  await subscriber.subscribe("seq", 0);
  const { client: publisher } = await TestClient.connect(server.port, { clientId: "p" });
  // Sent in one burst, so the broker writes many PUBLISH packets to the socket in one turn.
  await Promise.all(Array.from({ length: 300 }, (_, i) => publisher.publish("seq", `${i}`)));
  const received = await subscriber.publishes(300);
  assert.deepEqual(
    received.map((p) => text(p.payload)),
    Array.from({ length: 300 }, (_, i) => `${i}`),
  );
  await publisher.disconnect();
  await subscriber.disconnect();
});

Deno.test("Deno's WebSocket closes a connection that sends too much while it is paused", async () => {
  let paused: { closed: PromiseWithResolvers<void> } | undefined;
  const accept: AcceptHandler = (conn) => {
    const closed = Promise.withResolvers<void>();
    paused = { closed };
    conn.pause(); // as the broker does while a publisher is held back
    return { onData() {}, onClose: () => closed.resolve() };
  };
  const server = DenoHttpServer.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      webSocket: { options: { path: "/mqtt", maxPausedBytes: 1024 }, accept },
    },
    () => new Response(null, { status: 404 }),
  );
  try {
    const socket = await openRaw(server.port);
    await socket.sendFrame(new Uint8Array(600));
    await socket.sendFrame(new Uint8Array(600));
    assert.equal(await socket.read(new Uint8Array(16)), null);
    assert.equal(socket.closeCode, 1008);
    await paused!.closed.promise;
    socket.close();
  } finally {
    await server.stopWebSockets();
    await server.close();
  }
});
