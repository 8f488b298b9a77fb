/**
 * PROXY protocol on the TCP listener: real v1 text and v2 binary headers over sockets, read before
 * any MQTT byte, against the broker in process (Deno's sockets) and started on Deno and on Bun.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodePacket, PacketType } from "../../src/codec/mod.ts";
import { type TargetOptions, targetTest } from "../helpers/targets.ts";
import { TestClient } from "../helpers/test_client.ts";
import { v2Header } from "../helpers/proxy_header.ts";

const encoder = new TextEncoder();

/**
 * A broker whose TCP listener reads PROXY headers (`proxy` over `listeners.tcp.proxyProtocol`).
 * The clients appear to come from other machines: anonymous access is on for them.
 */
function proxied(proxy: Record<string, unknown>): TargetOptions {
  return {
    config: {
      auth: { anonymous: "always" },
      listeners: { tcp: { proxyProtocol: { enabled: true, timeout: "5s", ...proxy } } },
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

targetTest(
  "The TCP listener reads a PROXY v1 header and reports the client's address",
  proxied({}),
  async (server) => {
    const client = await TestClient.open(server.port, 5);
    // Header and CONNECT in one write: the bytes after the header are MQTT.
    await client.sendRaw(join(
      encoder.encode("PROXY TCP4 203.0.113.7 10.0.0.1 50000 1883\r\n"),
      connectBytes("behind-v1"),
    ));
    await client.expect(PacketType.CONNACK);
    const info = await server.client("behind-v1");
    assert.equal(info?.remoteAddress, "203.0.113.7");
    assert.equal(info?.remotePort, 50000);
    await client.disconnect();
  },
);

targetTest(
  "The TCP listener reads a PROXY v2 header sent in pieces",
  proxied({}),
  async (server) => {
    const client = await TestClient.open(server.port, 5);
    const header = v2Header(1, 0x11, [198, 51, 100, 9, 10, 0, 0, 1, 0x1f, 0x90, 0x07, 0x5b]);
    await client.sendRaw(header.subarray(0, 7));
    await client.sendRaw(header.subarray(7, 20));
    await client.sendRaw(join(header.subarray(20), connectBytes("behind-v2")));
    await client.expect(PacketType.CONNACK);
    const info = await server.client("behind-v2");
    assert.equal(info?.remoteAddress, "198.51.100.9");
    assert.equal(info?.remotePort, 8080);
    await client.disconnect();
  },
);

targetTest(
  "The TCP listener keeps the socket address for a PROXY v2 LOCAL header",
  proxied({}),
  async (server) => {
    const client = await TestClient.open(server.port, 5);
    await client.sendRaw(join(v2Header(0, 0x00, []), connectBytes("health-check")));
    await client.expect(PacketType.CONNACK);
    assert.equal((await server.client("health-check"))?.remoteAddress, "127.0.0.1");
    await client.disconnect();
  },
);

targetTest(
  "The TCP listener closes a connection without a PROXY header before MQTT sees it",
  proxied({}),
  async (server) => {
    const client = await TestClient.open(server.port, 5);
    await client.sendRaw(connectBytes("no-header"));
    await client.closed;
    assert.equal(await server.proxyHeaderRefused(), "no PROXY protocol header");
    assert.equal((await server.counters()).connectionsAccepted, 0);
  },
);

targetTest(
  "The TCP listener closes a connection whose PROXY header does not complete in time",
  proxied({ timeout: "200ms" }),
  async (server) => {
    const client = await TestClient.open(server.port, 5);
    await client.sendRaw(encoder.encode("PROXY TCP4 203.0.113.7"));
    await client.closed;
    assert.equal(await server.proxyHeaderRefused(), "no complete PROXY header in time");
    assert.equal((await server.counters()).connectionsAccepted, 0);
  },
);

targetTest(
  "The TCP listener reads plain MQTT from sources outside trustedSources",
  proxied({ trustedSources: ["10.0.0.0/8"] }),
  async (server) => {
    // 127.0.0.1 is not a trusted balancer: no header is expected, and one would be MQTT garbage.
    const { client, connack } = await TestClient.connect(server.port, {
      clientId: "direct",
      version: 5,
    });
    assert.equal(connack.reasonCode, 0);
    assert.equal((await server.client("direct"))?.remoteAddress, "127.0.0.1");
    await client.disconnect();
    const spoofer = await TestClient.open(server.port, 5);
    // Read as MQTT, "P" is a PUBREL with bad flags; zeros complete the length it announces.
    await spoofer.sendRaw(join(
      encoder.encode("PROXY TCP4 203.0.113.7 10.0.0.1 50000 1883\r\n"),
      new Uint8Array(100),
    ));
    await spoofer.closed;
    assert.equal((await server.counters()).clientsConnected, 0);
  },
);
