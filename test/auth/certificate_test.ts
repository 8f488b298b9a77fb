/**
 * Mutual TLS end to end: certificates made with openssl at test time, the broker's node:tls
 * listener verifying them against the CA, the certificate provider turning the CN into the user.
 */

import assert from "node:assert/strict";
import type { ClientInfo } from "../../src/hooks/hooks.ts";
import { PacketType } from "../../src/codec/mod.ts";
import { type CertFiles, makeCerts } from "../helpers/certs.ts";
import { type SecureTestBroker, startSecureBroker } from "../helpers/secure_broker.ts";
import { TestClient } from "../helpers/test_client.ts";

async function tlsClient(
  port: number,
  certs: CertFiles,
  identity: { cert: string; key: string } | undefined,
): Promise<TestClient> {
  const conn = await Deno.connectTls({
    hostname: "localhost",
    port,
    caCerts: [certs.caCert],
    ...identity,
  });
  return TestClient.wrap(conn, 5);
}

/** Connects over TLS and sends CONNECT: the CONNACK code, or "refused" when TLS turned it away. */
async function tryConnect(
  server: SecureTestBroker,
  certs: CertFiles,
  identity: { cert: string; key: string } | undefined,
  clientId: string,
): Promise<{ code: number | "refused"; client?: TestClient }> {
  let client: TestClient;
  try {
    client = await tlsClient(server.tlsPort!, certs, identity);
  } catch {
    return { code: "refused" };
  }
  try {
    const connack = await client.sendConnect({ clientId, version: 5 });
    return { code: connack.reasonCode, client };
  } catch {
    // The server aborted the handshake: the connection closed without any MQTT packet.
    await client.destroy();
    return { code: "refused" };
  }
}

async function withMtls(
  body: (server: SecureTestBroker, certs: CertFiles, seen: ClientInfo[]) => Promise<void>,
): Promise<void> {
  const certs = await makeCerts({ clientCommonName: "device-42" });
  const seen: ClientInfo[] = [];
  const server = await startSecureBroker({
    config: {
      auth: { anonymous: "never", chain: ["certificate"] },
      acl: {
        default: "deny",
        rules: [{ permission: "allow", action: "both", topic: "devices/%u/#" }],
      },
    },
    hooks: { onConnect: (client) => seen.push({ ...client }) },
    tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert },
  });
  try {
    await body(server, certs, seen);
  } finally {
    await server.close();
    await certs.remove();
  }
}

Deno.test("mTLS: a client certificate signed by the CA is accepted and its CN becomes the user name", async () => {
  await withMtls(async (server, certs, seen) => {
    const { code, client } = await tryConnect(
      server,
      certs,
      { cert: certs.clientCert, key: certs.clientKey },
      "tls-1",
    );
    assert.equal(code, 0);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].transport, "tls");
    assert.equal(seen[0].username, "device-42");
    assert.equal(seen[0].peerCertificate?.commonName, "device-42");
    assert.match(seen[0].peerCertificate!.subject, /CN=device-42/);
    // The ACL's %u is the CN: its own subtree is allowed, another device's is not.
    assert.deepEqual((await client!.subscribe("devices/device-42/#", 1)).reasonCodes, [1]);
    assert.deepEqual((await client!.subscribe("devices/device-43/#", 1)).reasonCodes, [0x87]);
    // Publish to its own subscription: the message comes back (before or after the PUBACK).
    await client!.publish("devices/device-42/temp", "21", { qos: 0 });
    const echo = await client!.expect(PacketType.PUBLISH);
    assert.equal(echo.topic, "devices/device-42/temp");
    await client!.disconnect();
  });
});

Deno.test("mTLS: a client without a certificate, or with one from another CA, is refused during the handshake; others stay served", async () => {
  await withMtls(async (server, certs, seen) => {
    assert.equal((await tryConnect(server, certs, undefined, "none")).code, "refused");
    const stranger = await tryConnect(
      server,
      certs,
      { cert: certs.strangerCert, key: certs.strangerKey },
      "stranger",
    );
    assert.equal(stranger.code, "refused");
    assert.equal(seen.length, 0);
    const good = await tryConnect(
      server,
      certs,
      { cert: certs.clientCert, key: certs.clientKey },
      "after",
    );
    assert.equal(good.code, 0);
    await good.client!.disconnect();
  });
});

Deno.test("mTLS: plain TCP clients without credentials are still refused when anonymous access is off", async () => {
  await withMtls(async (server) => {
    const { client, connack } = await TestClient.connect(server.port, {
      version: 5,
      clientId: "tcp",
    });
    assert.equal(connack.reasonCode, 0x87);
    await client.closed;
  });
});
