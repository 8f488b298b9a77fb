import assert from "node:assert/strict";
import { DenoListener } from "../../src/transport/deno_listener.ts";
import type { Connection, ConnectionHandler } from "../../src/transport/transport.ts";
import { selfSignedCertificate } from "../helpers/certs.ts";

/** Longest wait for a socket event before the test fails instead of hanging. */
const EVENT_TIMEOUT_MS = 10_000;

/** Echoes every chunk back and records the close. */
class EchoServer implements ConnectionHandler {
  received = 0;
  closeCount = 0;
  #wakers: (() => void)[] = [];

  constructor(readonly conn: Connection) {}

  onData(chunk: Uint8Array): void {
    this.received += chunk.length;
    this.conn.write(chunk);
    this.#notify();
  }

  onClose(): void {
    this.closeCount++;
    this.#notify();
  }

  #notify(): void {
    for (const wake of this.#wakers.splice(0)) wake();
  }

  async until(ready: () => boolean, what: string): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Timed out waiting for ${what}`)),
        EVENT_TIMEOUT_MS,
      );
    });
    try {
      while (!ready()) {
        await Promise.race([new Promise<void>((resolve) => this.#wakers.push(resolve)), timeout]);
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let offset = 0;
  while (offset < length) {
    const n = await conn.read(out.subarray(offset));
    if (n === null) assert.fail(`Stream ended after ${offset} of ${length} bytes`);
    offset += n;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

Deno.test("DenoListener.tls() accepts TLS connections and round-trips bytes", async () => {
  const { cert, key } = await selfSignedCertificate();
  const servers: EchoServer[] = [];
  const listener = DenoListener.tls({ hostname: "127.0.0.1", port: 0, cert, key }, (conn) => {
    const server = new EchoServer(conn);
    servers.push(server);
    return server;
  });
  let client: Deno.TlsConn | undefined;
  try {
    assert.equal(listener.kind, "tls");
    assert.ok(listener.port > 0);
    client = await Deno.connectTls({ hostname: "localhost", port: listener.port, caCerts: [cert] });
    const hello = new TextEncoder().encode("hello over tls");
    await writeAll(client, hello);
    assert.deepEqual(await readExactly(client, hello.length), hello);
    assert.equal(servers.length, 1);
    const [server] = servers;
    assert.equal(server.conn.kind, "tls");
    assert.equal(server.conn.remoteAddress, "127.0.0.1");
    assert.equal(server.conn.remotePort, (client.localAddr as Deno.NetAddr).port);

    // A larger stream in both directions: many TLS records, partial writes on both sides.
    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 13 + (i >> 10)) & 0xff;
    const [, echoed] = await Promise.all([
      writeAll(client, big),
      readExactly(client, big.length),
    ]);
    assert.equal(echoed.length, big.length);
    assert.ok(echoed.every((b, i) => b === big[i]), "echoed bytes differ");

    client.close();
    client = undefined;
    await server.until(() => server.closeCount > 0, "onClose on the server");
    assert.equal(server.closeCount, 1);
  } finally {
    client?.close();
    for (const server of servers) {
      server.conn.destroy();
      await server.until(() => server.closeCount > 0, "onClose on the server");
    }
    listener.close();
  }
});

Deno.test("DenoConnection.close() over TLS sends queued bytes, then closes", async () => {
  const { cert, key } = await selfSignedCertificate();
  const servers: EchoServer[] = [];
  const listener = DenoListener.tls({ hostname: "127.0.0.1", port: 0, cert, key }, (conn) => {
    const server = new EchoServer(conn);
    servers.push(server);
    return server;
  });
  const client = await Deno.connectTls({
    hostname: "localhost",
    port: listener.port,
    caCerts: [cert],
  });
  try {
    // The first byte makes the server accept and finish the handshake.
    await writeAll(client, new Uint8Array([42]));
    assert.deepEqual(await readExactly(client, 1), new Uint8Array([42]));
    const [server] = servers;
    const tail = new Uint8Array(300_000).fill(7);
    server.conn.write(tail);
    server.conn.close();
    const got = await readExactly(client, tail.length);
    assert.ok(got.every((b) => b === 7));
    assert.equal(await client.read(new Uint8Array(1)), null);
    await server.until(() => server.closeCount > 0, "onClose on the server");
    assert.equal(server.closeCount, 1);
  } finally {
    client.close();
    for (const server of servers) {
      server.conn.destroy();
      await server.until(() => server.closeCount > 0, "onClose on the server");
    }
    listener.close();
  }
});
