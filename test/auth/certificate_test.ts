/**
 * Mutual TLS end to end: certificates made with openssl at test time, the broker's TLS listener
 * verifying them against the CA (Deno's node:tls, Bun's own TLS), the certificate provider turning
 * the CN into the user; against the broker in process and started on Deno and on Bun.
 */

import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import { type CertFiles, makeCerts } from "../helpers/certs.ts";
import type { ConfigInput } from "../../src/config/mod.ts";
import {
  type BrokerUnderTest,
  type Fixture,
  type TargetOptions,
  targetTest,
} from "../helpers/targets.ts";
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
  server: BrokerUnderTest,
  certs: CertFiles,
  identity: { cert: string; key: string } | undefined,
  clientId: string,
): Promise<{ code: number | "refused"; client?: TestClient }> {
  let client: TestClient;
  try {
    client = await tlsClient(server.ports.tls!, certs, identity);
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

/** TLS asking for client certificates; the certificate's CN is the user, confined to its tree. */
const MTLS: TargetOptions<CertFixture> = {
  fixture: async () => {
    const certs = await makeCerts({ clientCommonName: "device-42" });
    return { certs, config: mtlsConfig(certs), remove: certs.remove };
  },
};

interface CertFixture extends Fixture {
  certs: CertFiles;
}

function mtlsConfig(certs: CertFiles): ConfigInput {
  return {
    listeners: {
      tls: {
        enabled: true,
        cert: `${certs.dir}/server.crt`,
        key: `${certs.dir}/server.key`,
        ca: `${certs.dir}/ca.crt`,
        requestClientCert: true,
      },
    },
    auth: { anonymous: "never", chain: ["certificate"] },
    acl: {
      default: "deny",
      rules: [{ permission: "allow", action: "both", topic: "devices/%u/#" }],
    },
  };
}

targetTest(
  "mTLS: a client certificate signed by the CA is accepted and its CN becomes the user name",
  MTLS,
  async (server, { certs }) => {
    const { code, client } = await tryConnect(
      server,
      certs,
      { cert: certs.clientCert, key: certs.clientKey },
      "tls-1",
    );
    assert.equal(code, 0);
    const seen = await server.client("tls-1");
    assert.equal(seen?.transport, "tls");
    assert.equal(seen?.username, "device-42");
    assert.equal(seen?.certificateCommonName, "device-42");
    // The ACL's %u is the CN: its own subtree is allowed, another device's is not.
    assert.deepEqual((await client!.subscribe("devices/device-42/#", 1)).reasonCodes, [1]);
    assert.deepEqual((await client!.subscribe("devices/device-43/#", 1)).reasonCodes, [0x87]);
    // Publish to its own subscription: the message comes back (before or after the PUBACK).
    await client!.publish("devices/device-42/temp", "21", { qos: 0 });
    const echo = await client!.expect(PacketType.PUBLISH);
    assert.equal(echo.topic, "devices/device-42/temp");
    await client!.disconnect();
  },
);

targetTest(
  "mTLS: a client without a certificate, or with one from another CA, is refused during the handshake; others stay served",
  MTLS,
  async (server, { certs }) => {
    assert.equal((await tryConnect(server, certs, undefined, "none")).code, "refused");
    const stranger = await tryConnect(
      server,
      certs,
      { cert: certs.strangerCert, key: certs.strangerKey },
      "stranger",
    );
    assert.equal(stranger.code, "refused");
    assert.deepEqual(server.clientIds(), []);
    const good = await tryConnect(
      server,
      certs,
      { cert: certs.clientCert, key: certs.clientKey },
      "after",
    );
    assert.equal(good.code, 0);
    await good.client!.disconnect();
  },
);

targetTest(
  "mTLS: plain TCP clients without credentials are still refused when anonymous access is off",
  MTLS,
  async (server) => {
    const { client, connack } = await TestClient.connect(server.port, {
      version: 5,
      clientId: "tcp",
    });
    assert.equal(connack.reasonCode, 0x87);
    await client.closed;
  },
);
