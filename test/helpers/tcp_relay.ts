/**
 * A TCP relay of the tests' own, put between a front-end and NATS to cut the front-end off while
 * its clients stay connected to it: it listens on a free port of 127.0.0.1 and copies bytes both
 * ways to a target port. `stop()` closes every relayed connection and the listener, so the
 * front-end sees its NATS connection drop and every reconnection refused; `start()` listens
 * again on the same port and relays new connections.
 *
 * @module
 */

const HOST = "127.0.0.1";

/** One accepted connection and its upstream. */
interface Pair {
  client: Deno.Conn;
  upstream: Deno.Conn | undefined;
}

/** Copies `from` into `to` until either side ends. */
async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      let offset = 0;
      while (offset < n) offset += await to.write(buffer.subarray(offset, n));
    }
  } catch {
    // Either side closed or reset: the pair ends.
  }
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}

/** A relay from a port of its own to `targetPort`; see the module comment. */
export class TcpRelay implements AsyncDisposable {
  readonly targetPort: number;
  #port: number;
  #listener: Deno.Listener | undefined;
  #accepting: Promise<void> | undefined;
  readonly #pairs = new Set<Pair>();
  readonly #pumps = new Set<Promise<void>>();

  private constructor(targetPort: number, port: number) {
    this.targetPort = targetPort;
    this.#port = port;
  }

  /** Starts a relay to `targetPort` on a free port (read it back from `port`). */
  static start(targetPort: number): TcpRelay {
    const relay = new TcpRelay(targetPort, 0);
    relay.start();
    return relay;
  }

  /** The port the relay listens on (the same across stop and start). */
  get port(): number {
    return this.#port;
  }

  /** `nats://127.0.0.1:{port}`, for a front-end's `backbone.servers`. */
  get url(): string {
    return `nats://${HOST}:${this.#port}`;
  }

  /** Whether it relays (between `start()` and `stop()`). */
  get running(): boolean {
    return this.#listener !== undefined;
  }

  /** Number of connections relayed now. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Listens (again) and relays every new connection. */
  start(): void {
    if (this.#listener) return;
    const listener = Deno.listen({ hostname: HOST, port: this.#port });
    this.#port = (listener.addr as Deno.NetAddr).port;
    this.#listener = listener;
    this.#accepting = this.#accept(listener);
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const client of listener) {
        const pair: Pair = { client, upstream: undefined };
        this.#pairs.add(pair);
        const pump = this.#relay(pair).finally(() => {
          this.#pairs.delete(pair);
          this.#pumps.delete(pump);
        });
        this.#pumps.add(pump);
      }
    } catch {
      // The listener closed.
    }
  }

  async #relay(pair: Pair): Promise<void> {
    try {
      pair.upstream = await Deno.connect({ hostname: HOST, port: this.targetPort });
    } catch {
      closeQuietly(pair.client);
      return;
    }
    if (!this.#pairs.has(pair)) {
      // Stopped while connecting.
      closeQuietly(pair.upstream);
      return;
    }
    const upstream = pair.upstream;
    await Promise.race([pipe(pair.client, upstream), pipe(upstream, pair.client)]);
    closeQuietly(pair.client);
    closeQuietly(upstream);
  }

  /** Closes the listener and every relayed connection; resolves once they are all gone. */
  async stop(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener) {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
    }
    for (const pair of [...this.#pairs]) {
      this.#pairs.delete(pair);
      closeQuietly(pair.client);
      closeQuietly(pair.upstream);
    }
    await this.#accepting;
    await Promise.all([...this.#pumps]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
