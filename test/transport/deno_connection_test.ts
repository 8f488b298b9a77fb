import assert from "node:assert/strict";
import {
  FLUSH_AFTER_READ_BYTES,
  HandleListener,
  handleListenerSupports,
} from "../../src/transport/deno_handle.ts";
import { DenoListener } from "../../src/transport/deno_listener.ts";
import type { TcpListenOptions } from "../../src/transport/sockets.ts";
import type {
  AcceptHandler,
  Connection,
  ConnectionHandler,
  Listener,
} from "../../src/transport/transport.ts";

/** Both plain TCP listeners of Deno: over `Deno.Conn`, and over the native stream handle. */
const LISTENERS: Record<string, (options: TcpListenOptions, accept: AcceptHandler) => Listener> = {
  "Deno.Conn": (options, accept) => DenoListener.tcp(options, accept),
  "native handle": (options, accept) => HandleListener.tcp(options, accept),
};
/** The listener the running test uses (tests in a file run one at a time). */
let listenTcp = LISTENERS["Deno.Conn"];

/** Registers the test once per listener. */
function testBoth(name: string, fn: () => Promise<void>): void {
  for (const [kind, listen] of Object.entries(LISTENERS)) {
    Deno.test(`${name} [${kind}]`, () => {
      listenTcp = listen;
      return fn();
    });
  }
}

/** Longest wait for a socket event before the test fails instead of hanging. */
const EVENT_TIMEOUT_MS = 10_000;

/** Resolves waits when `notify()` is called and their condition holds; fails after a while. */
class Waiter {
  #wakers: (() => void)[] = [];

  notify(): void {
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

/** The server side of one accepted connection: records every event. */
class ServerSide implements ConnectionHandler {
  readonly chunks: Uint8Array[] = [];
  /** "data:<n>" and "close" in the order they happened. */
  readonly events: string[] = [];
  received = 0;
  closeCount = 0;
  closeError: Error | undefined = undefined;
  /** Called after each chunk is recorded. */
  onChunk: ((chunk: Uint8Array) => void) | undefined = undefined;
  readonly #waiter = new Waiter();

  constructor(readonly conn: Connection) {}

  onData(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.events.push(`data:${chunk.length}`);
    this.received += chunk.length;
    this.onChunk?.(chunk);
    this.#waiter.notify();
  }

  onClose(error?: Error): void {
    this.closeCount++;
    this.closeError = error;
    this.events.push("close");
    this.#waiter.notify();
  }

  untilReceived(bytes: number): Promise<void> {
    return this.#waiter.until(() => this.received >= bytes, `${bytes} bytes on the server`);
  }

  untilClosed(): Promise<void> {
    return this.#waiter.until(() => this.closeCount > 0, "onClose on the server");
  }

  /** Every byte received so far, joined. */
  data(): Uint8Array {
    return concat(this.chunks);
  }
}

/** A TCP listener on a free port plus the server sides of the connections it accepts. */
class Harness {
  readonly listener: Listener;
  readonly #accepted: ServerSide[] = [];
  readonly #waiter = new Waiter();
  readonly #clients: Deno.Conn[] = [];
  #taken = 0;

  constructor() {
    this.listener = listenTcp({ hostname: "127.0.0.1", port: 0 }, (conn) => {
      const side = new ServerSide(conn);
      this.#accepted.push(side);
      this.#waiter.notify();
      return side;
    });
  }

  /** Connects a client and returns it with its server side. */
  async connect(): Promise<{ client: Deno.Conn; server: ServerSide }> {
    const client = await Deno.connect({ hostname: "127.0.0.1", port: this.listener.port });
    this.#clients.push(client);
    await this.#waiter.until(() => this.#accepted.length > this.#taken, "an accepted connection");
    return { client, server: this.#accepted[this.#taken++] };
  }

  /**
   * Closes every client, server side and the listener, and waits until every server side reported
   * its close. Destroying the server sides also ends connections left paused (a paused connection
   * does not read, so it cannot see the peer close).
   */
  async close(): Promise<void> {
    for (const client of this.#clients) closeQuietly(client);
    for (const side of this.#accepted) side.conn.destroy();
    for (const side of this.#accepted) await side.untilClosed();
    this.listener.close();
  }
}

async function withHarness(fn: (harness: Harness) => Promise<void>): Promise<void> {
  const harness = new Harness();
  try {
    await fn(harness);
  } finally {
    await harness.close();
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Bytes whose value depends on their position and a seed, so a misplaced byte shows. */
function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return bytes;
}

function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

/** Reads exactly `length` bytes; fails on an early end of stream. */
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

/** Reads until the peer closes. */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const buffer = new Uint8Array(64 * 1024);
    const n = await conn.read(buffer);
    if (n === null) return concat(chunks);
    chunks.push(buffer.slice(0, n));
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/**
 * Makes sure the server has processed all network events that came before: a round trip on
 * another connection of the same listener. Used to show that something did *not* happen.
 */
async function settle(harness: Harness): Promise<void> {
  const { client, server } = await harness.connect();
  await writeAll(client, new Uint8Array([1, 2, 3]));
  await server.untilReceived(3);
  closeQuietly(client);
  await server.untilClosed();
}

testBoth("DenoListener.tcp() listens on a free port and reports it", async () => {
  await withHarness(async (harness) => {
    const { listener } = harness;
    assert.equal(listener.kind, "tcp");
    assert.equal(listener.hostname, "127.0.0.1");
    assert.ok(listener.port > 0 && listener.port < 65536, `port ${listener.port}`);
    const { client, server } = await harness.connect();
    assert.equal((client.remoteAddr as Deno.NetAddr).port, listener.port);
    assert.equal(server.conn.kind, "tcp");
    assert.equal(server.conn.remoteAddress, "127.0.0.1");
    assert.equal(server.conn.remotePort, (client.localAddr as Deno.NetAddr).port);
    assert.equal(server.conn.peerCertificate, undefined);
    assert.equal(server.conn.bufferedBytes, 0);
  });
});

testBoth("DenoListener.close() stops accepting and leaves open connections working", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    const port = harness.listener.port;
    harness.listener.close();
    harness.listener.close();
    await assert.rejects(() => Deno.connect({ hostname: "127.0.0.1", port }));
    await writeAll(client, new Uint8Array([7]));
    await server.untilReceived(1);
    server.conn.write(new Uint8Array([8]));
    assert.deepEqual(await readExactly(client, 1), new Uint8Array([8]));
  });
});

testBoth("DenoConnection passes onData chunks it never reuses", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    const blocks = Array.from({ length: 96 }, (_, i) => pattern(3000 + i, i));
    const sent = concat(blocks);
    // Copies taken at arrival, to compare with the chunks as they are at the end.
    const copies: Uint8Array[] = [];
    server.onChunk = (chunk) => copies.push(chunk.slice());
    for (const block of blocks) await writeAll(client, block);
    await server.untilReceived(sent.length);
    assert.ok(server.chunks.length > 1, "expected several reads");
    // The chunks kept across later reads still hold what they held when they arrived.
    server.chunks.forEach((chunk, i) => assertBytes(chunk, copies[i], `chunk ${i}`));
    assertBytes(server.data(), sent, "received data");
    // Each chunk has its own memory: no two share a backing buffer.
    assert.equal(new Set(server.chunks.map((c) => c.buffer)).size, server.chunks.length);
  });
});

testBoth("DenoConnection delivers a large inbound stream (8 MiB) intact", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    const sent = pattern(8 * 1024 * 1024, 3);
    await writeAll(client, sent);
    await server.untilReceived(sent.length);
    assertBytes(server.data(), sent, "received data");
  });
});

testBoth(
  "DenoConnection sends what onData answers between reads once a bounded amount waits",
  async () => {
    // Deno hands the native handle every read of one poll before it runs microtasks: answers must
    // still go out between reads once FLUSH_AFTER_READ_BYTES wait, or a burst of input queues a
    // write per read (a broker's write bound would then drop messages for a subscriber that reads
    // fine).
    await withHarness(async (harness) => {
      const { client, server } = await harness.connect();
      const answer = pattern(4096, 5);
      let mostBuffered = 0;
      server.onChunk = () => {
        mostBuffered = Math.max(mostBuffered, server.conn.bufferedBytes);
        server.conn.write(answer);
      };
      // The client reads the answers as they come, so the kernel never holds them back.
      const reading = readToEnd(client).catch(() => new Uint8Array(0));
      const sent = pattern(1024 * 1024, 6);
      await writeAll(client, sent);
      await server.untilReceived(sent.length);
      server.conn.close();
      assert.equal((await reading).length, server.chunks.length * answer.length);
      assert.ok(server.chunks.length > 4, `expected several reads, got ${server.chunks.length}`);
      // At most the unflushed bound, the answer in flight and the one queued behind it.
      assert.ok(
        mostBuffered <= FLUSH_AFTER_READ_BYTES + 2 * answer.length,
        `${mostBuffered} bytes were waiting at a read`,
      );
    });
  },
);

testBoth("DenoConnection.write() counts bufferedBytes until the OS write completes", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    const first = pattern(100, 1);
    const second = pattern(250, 2);
    server.conn.write(first);
    assert.equal(server.conn.bufferedBytes, 100);
    server.conn.write(second);
    assert.equal(server.conn.bufferedBytes, 350);
    // Writes of one turn go out in order as one stream.
    assertBytes(await readExactly(client, 350), concat([first, second]), "client data");
    // A round trip: by the time the server sees it, its write has completed.
    await writeAll(client, new Uint8Array([0]));
    await server.untilReceived(1);
    assert.equal(server.conn.bufferedBytes, 0);
  });
});

testBoth(
  "DenoConnection.write() queues behind an OS write in flight and keeps the order",
  async () => {
    await withHarness(async (harness) => {
      const { client, server } = await harness.connect();
      const big = pattern(8 * 1024 * 1024, 4);
      const small = pattern(10, 5);
      server.conn.write(big);
      // Let the flush start: 8 MiB cannot fit the socket buffers of a client that is not reading.
      await Promise.resolve();
      await Promise.resolve();
      assert.equal(server.conn.bufferedBytes, big.length);
      server.conn.write(small);
      assert.equal(server.conn.bufferedBytes, big.length + small.length);
      const got = await readExactly(client, big.length + small.length);
      assertBytes(got, concat([big, small]), "client data");
      await writeAll(client, new Uint8Array([0]));
      await server.untilReceived(1);
      assert.equal(server.conn.bufferedBytes, 0);
    });
  },
);

testBoth("DenoConnection.write() sends a large buffer (8 MiB) intact", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    const big = pattern(8 * 1024 * 1024, 6);
    server.conn.write(big);
    assertBytes(await readExactly(client, big.length), big, "client data");
  });
});

testBoth("DenoConnection.close() sends queued bytes, then closes", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    const big = pattern(2 * 1024 * 1024, 7);
    const tail = pattern(33, 8);
    server.conn.write(big);
    server.conn.write(tail);
    server.conn.close();
    // Ignored once closing.
    server.conn.write(new Uint8Array([1, 2, 3]));
    assertBytes(await readToEnd(client), concat([big, tail]), "client data");
    await server.untilClosed();
    assert.equal(server.closeCount, 1);
    assert.equal(server.closeError, undefined);
    assert.equal(server.conn.bufferedBytes, 0);
  });
});

testBoth("DenoConnection.close() with nothing queued closes at once", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    server.conn.close();
    assert.equal((await readToEnd(client)).length, 0);
    await server.untilClosed();
    assert.equal(server.closeCount, 1);
  });
});

testBoth("DenoConnection.destroy() drops queued bytes and closes", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    server.conn.write(pattern(1000, 9));
    server.conn.destroy();
    assert.equal(server.conn.bufferedBytes, 0);
    server.conn.write(new Uint8Array([1]));
    assert.equal(server.conn.bufferedBytes, 0);
    assert.equal((await readToEnd(client)).length, 0);
    await server.untilClosed();
    assert.equal(server.closeCount, 1);
  });
});

testBoth("DenoConnection.pause() from onData stops onData until resume()", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    server.onChunk = () => {
      if (server.chunks.length === 1) server.conn.pause();
    };
    await writeAll(client, new Uint8Array([1]));
    await server.untilReceived(1);
    await writeAll(client, new Uint8Array([2, 3]));
    await settle(harness);
    assert.equal(server.received, 1, "onData called while paused");
    server.conn.resume();
    await server.untilReceived(3);
    assert.deepEqual(server.data(), new Uint8Array([1, 2, 3]));
  });
});

testBoth("DenoConnection.pause() between reads stops onData until resume()", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    await writeAll(client, new Uint8Array([1]));
    await server.untilReceived(1);
    // Paused from outside onData (an asynchronous step finished elsewhere), with a read pending.
    server.conn.pause();
    await writeAll(client, new Uint8Array([2, 3]));
    await settle(harness);
    assert.equal(server.received, 1, "onData called while paused");
    server.conn.resume();
    await server.untilReceived(3);
    assert.deepEqual(server.data(), new Uint8Array([1, 2, 3]));
  });
});

testBoth("DenoConnection.resume() without pause() and repeated pause() are harmless", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    server.conn.resume();
    server.onChunk = () => {
      server.conn.pause();
      server.conn.pause();
    };
    await writeAll(client, new Uint8Array([1]));
    await server.untilReceived(1);
    server.onChunk = undefined;
    server.conn.resume();
    server.conn.resume();
    await writeAll(client, new Uint8Array([2]));
    await server.untilReceived(2);
  });
});

testBoth(
  "DenoConnection calls onClose once, after the last onData, when the peer closes",
  async () => {
    await withHarness(async (harness) => {
      const { client, server } = await harness.connect();
      await writeAll(client, new Uint8Array([1, 2, 3, 4]));
      closeQuietly(client);
      await server.untilClosed();
      assert.equal(server.received, 4);
      assert.equal(server.events.at(-1), "close");
      assert.equal(server.closeError, undefined);
      // Closing the server side afterwards does not report again.
      server.conn.close();
      server.conn.destroy();
      server.conn.write(new Uint8Array([1]));
      await settle(harness);
      assert.equal(server.closeCount, 1);
    });
  },
);

testBoth("DenoConnection close() and destroy() are idempotent and report one close", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    server.conn.write(new Uint8Array([5, 6]));
    server.conn.close();
    server.conn.close();
    server.conn.destroy();
    server.conn.destroy();
    await readToEnd(client);
    await server.untilClosed();
    await settle(harness);
    assert.equal(server.closeCount, 1);
    assert.deepEqual(server.events, ["close"]);
  });
});

testBoth("DenoConnection.close() of a paused connection reports one close", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    server.onChunk = () => server.conn.pause();
    await writeAll(client, new Uint8Array([1]));
    await server.untilReceived(1);
    // The read loop is parked on pause(); the server closes it from outside.
    server.conn.close();
    await server.untilClosed();
    assert.equal(server.closeCount, 1);
    assert.equal((await readToEnd(client)).length, 0);
  });
});

testBoth("DenoConnection closes and reports the error when onData throws", async () => {
  await withHarness(async (harness) => {
    const { client, server } = await harness.connect();
    const failure = new Error("handler failed");
    server.onChunk = () => {
      throw failure;
    };
    await writeAll(client, new Uint8Array([1]));
    await server.untilClosed();
    assert.equal(server.closeCount, 1);
    assert.equal(server.closeError, failure);
    assert.equal((await readToEnd(client)).length, 0);
  });
});

Deno.test("Deno's plain TCP listens through the native handle only when asked, for IP addresses without PROXY", () => {
  const asked = { port: 0, nativeHandle: true };
  assert.ok(handleListenerSupports({ ...asked, hostname: "127.0.0.1" }));
  assert.ok(handleListenerSupports({ ...asked, hostname: "::1" }));
  assert.ok(!handleListenerSupports({ ...asked, hostname: "localhost" }));
  // Not asked (the transport's own default; the config's is true) or turned off.
  assert.ok(!handleListenerSupports({ hostname: "127.0.0.1", port: 0 }));
  assert.ok(!handleListenerSupports({ hostname: "127.0.0.1", port: 0, nativeHandle: false }));
  assert.ok(
    !handleListenerSupports({ ...asked, hostname: "127.0.0.1", proxyProtocol: { timeout: 1000 } }),
  );
});
