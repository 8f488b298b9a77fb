/**
 * PROXY protocol on the TCP listener: real v1 text and v2 binary headers over sockets, read before
 * any MQTT byte, against an in-process broker.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodePacket, PacketType } from "../../src/codec/mod.ts";
import { DenoListener } from "../../src/transport/deno_listener.ts";
import type { ProxyProtocolOptions } from "../../src/transport/sockets.ts";
import { addressMatcher } from "../../src/util/address_match.ts";
import { startBroker, type TestBroker } from "../helpers/broker.ts";
import { TestClient } from "../helpers/test_client.ts";
import { v2Header } from "../helpers/proxy_header.ts";

const encoder = new TextEncoder();

interface ProxySetup {
  server: TestBroker;
  listener: DenoListener;
  /** Reasons given for closed connections. */
  rejected: PromiseWithResolvers<string>;
  close(): Promise<void>;
}

function setup(proxyProtocol: ProxyProtocolOptions): ProxySetup {
  const server = startBroker();
  const rejected = Promise.withResolvers<string>();
  const listener = DenoListener.tcp({
    hostname: "127.0.0.1",
    port: 0,
    proxyProtocol,
    onProxyHeaderError: (reason) => rejected.resolve(reason),
  }, server.broker.accept);
  return {
    server,
    listener,
    rejected,
    async close() {
      listener.close();
      await server.close();
    },
  };
}

function connectBytes(clientId: string): Uint8Array {
  return encodePacket({
    type: PacketType.CONNECT,
    protocolName: "MQTT",
    protocolVersion: 5,
    cleanStart: true,
    keepAlive: 0,
    clientId,
    username: undefined,
    password: undefined,
    will: undefined,
    properties: undefined,
  }, 5);
}

function join(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

Deno.test("DenoListener reads a PROXY v1 header and reports the client's address", async () => {
  const t = setup({ timeout: 5000 });
  try {
    const client = await TestClient.open(t.listener.port, 5);
    // Header and CONNECT in one write: the bytes after the header are MQTT.
    await client.sendRaw(join(
      encoder.encode("PROXY TCP4 203.0.113.7 10.0.0.1 50000 1883\r\n"),
      connectBytes("behind-v1"),
    ));
    await client.expect(PacketType.CONNACK);
    const info = t.server.broker.getClient("behind-v1");
    assert.equal(info?.remoteAddress, "203.0.113.7");
    assert.equal(info?.remotePort, 50000);
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("DenoListener reads a PROXY v2 header sent in pieces", async () => {
  const t = setup({ timeout: 5000 });
  try {
    const client = await TestClient.open(t.listener.port, 5);
    const header = v2Header(1, 0x11, [198, 51, 100, 9, 10, 0, 0, 1, 0x1f, 0x90, 0x07, 0x5b]);
    await client.sendRaw(header.subarray(0, 7));
    await client.sendRaw(header.subarray(7, 20));
    await client.sendRaw(join(header.subarray(20), connectBytes("behind-v2")));
    await client.expect(PacketType.CONNACK);
    const info = t.server.broker.getClient("behind-v2");
    assert.equal(info?.remoteAddress, "198.51.100.9");
    assert.equal(info?.remotePort, 8080);
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("DenoListener keeps the socket address for a PROXY v2 LOCAL header", async () => {
  const t = setup({ timeout: 5000 });
  try {
    const client = await TestClient.open(t.listener.port, 5);
    await client.sendRaw(join(v2Header(0, 0x00, []), connectBytes("health-check")));
    await client.expect(PacketType.CONNACK);
    assert.equal(t.server.broker.getClient("health-check")?.remoteAddress, "127.0.0.1");
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("DenoListener closes a connection without a PROXY header before MQTT sees it", async () => {
  const t = setup({ timeout: 5000 });
  try {
    const client = await TestClient.open(t.listener.port, 5);
    await client.sendRaw(connectBytes("no-header"));
    await client.closed;
    assert.equal(await t.rejected.promise, "no PROXY protocol header");
    assert.equal(t.server.broker.stats.connectionsAccepted, 0);
  } finally {
    await t.close();
  }
});

Deno.test("DenoListener closes a connection whose PROXY header does not complete in time", async () => {
  const t = setup({ timeout: 200 });
  try {
    const client = await TestClient.open(t.listener.port, 5);
    await client.sendRaw(encoder.encode("PROXY TCP4 203.0.113.7"));
    await client.closed;
    assert.equal(await t.rejected.promise, "no complete PROXY header in time");
    assert.equal(t.server.broker.stats.connectionsAccepted, 0);
  } finally {
    await t.close();
  }
});

Deno.test("DenoListener reads plain MQTT from sources outside trustedSources", async () => {
  const t = setup({ timeout: 5000, trustedSources: addressMatcher(["10.0.0.0/8"]) });
  try {
    // 127.0.0.1 is not a trusted balancer: no header is expected, and one would be MQTT garbage.
    const { client, connack } = await TestClient.connect(t.listener.port, {
      clientId: "direct",
      version: 5,
    });
    assert.equal(connack.reasonCode, 0);
    assert.equal(t.server.broker.getClient("direct")?.remoteAddress, "127.0.0.1");
    await client.disconnect();
    const spoofer = await TestClient.open(t.listener.port, 5);
    // Read as MQTT, "P" is a PUBREL with bad flags; zeros complete the length it announces.
    await spoofer.sendRaw(join(
      encoder.encode("PROXY TCP4 203.0.113.7 10.0.0.1 50000 1883\r\n"),
      new Uint8Array(100),
    ));
    await spoofer.closed;
    assert.equal(t.server.broker.listClients().length, 0);
  } finally {
    await t.close();
  }
});
