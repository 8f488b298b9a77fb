import { DenoConnection, type DenoConnectionOrigin } from "./deno_connection.ts";
import {
  DEFAULT_MAX_V2_BLOCK_BYTES,
  MAX_V1_HEADER_BYTES,
  parseProxyHeader,
} from "./proxy_protocol.ts";
import type { ProxyProtocolOptions, TcpListenOptions, TlsListenOptions } from "./sockets.ts";
import type { AcceptHandler, Listener, TransportKind } from "./transport.ts";

/** Pause after a failed accept, so running out of descriptors does not spin the CPU. */
const ACCEPT_RETRY_MS = 100;

/** A listener over `Deno.listen` / `Deno.listenTls`, feeding each connection to `accept`. */
export class DenoListener implements Listener {
  readonly kind: TransportKind;
  readonly hostname: string;
  readonly port: number;
  #listener: Deno.Listener;
  #accept: AcceptHandler;
  #onAcceptError: (error: Error) => void;
  #proxy: ProxyProtocolOptions | undefined;
  #onProxyHeaderError: (reason: string, remoteAddress: string) => void;
  #closed = false;

  private constructor(
    listener: Deno.Listener,
    kind: TransportKind,
    accept: AcceptHandler,
    options: TcpListenOptions,
  ) {
    this.#listener = listener;
    this.kind = kind;
    this.#accept = accept;
    this.#onAcceptError = options.onAcceptError ?? (() => {});
    this.#proxy = options.proxyProtocol;
    this.#onProxyHeaderError = options.onProxyHeaderError ?? (() => {});
    const addr = listener.addr as Deno.NetAddr;
    this.hostname = addr.hostname;
    this.port = addr.port;
    this.#acceptLoop();
  }

  /** Listens for plain TCP connections. */
  static tcp(options: TcpListenOptions, accept: AcceptHandler): DenoListener {
    const listener = Deno.listen({ hostname: options.hostname, port: options.port });
    return new DenoListener(listener, "tcp", accept, options);
  }

  /** Listens for TLS connections. */
  static tls(options: TlsListenOptions, accept: AcceptHandler): DenoListener {
    const listener = Deno.listenTls({
      hostname: options.hostname,
      port: options.port,
      cert: options.cert,
      key: options.key,
    });
    return new DenoListener(listener, "tls", accept, {
      hostname: options.hostname,
      port: options.port,
      onAcceptError: options.onAcceptError,
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closed || err instanceof Deno.errors.BadResource) return;
        this.#onAcceptError(err as Error);
        await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
        continue;
      }
      const proxy = this.#proxy;
      const remote = (conn.remoteAddr as Deno.NetAddr).hostname;
      if (proxy && (proxy.trustedSources === undefined || proxy.trustedSources(remote))) {
        this.#acceptProxied(conn, proxy);
        continue;
      }
      this.#start(conn, {});
    }
  }

  #start(conn: Deno.Conn, origin: DenoConnectionOrigin): void {
    try {
      new DenoConnection(conn, this.kind, undefined, origin).start(this.#accept);
    } catch (err) {
      // One bad connection must not stop the listener.
      closeQuietly(conn);
      this.#onAcceptError(err as Error);
    }
  }

  /**
   * Reads the PROXY header before the broker sees the connection, so no MQTT byte is read from a
   * connection whose origin is unknown; a missing, malformed or late header closes it.
   */
  async #acceptProxied(conn: Deno.Conn, proxy: ProxyProtocolOptions): Promise<void> {
    const remote = (conn.remoteAddr as Deno.NetAddr).hostname;
    const maxV2BlockBytes = proxy.maxV2BlockBytes ?? DEFAULT_MAX_V2_BLOCK_BYTES;
    // The largest header either version can have: reading never goes past it.
    const buffer = new Uint8Array(
      PROXY_V2_FIXED_BYTES + Math.max(maxV2BlockBytes, MAX_V1_HEADER_BYTES),
    );
    let received = 0;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      closeQuietly(conn);
    }, proxy.timeout);
    try {
      while (!this.#closed) {
        const n = await conn.read(buffer.subarray(received));
        if (n === null) return closeQuietly(conn);
        received += n;
        const result = parseProxyHeader(buffer.subarray(0, received), { maxV2BlockBytes });
        if (result.kind === "incomplete") {
          if (received < buffer.length) continue;
          this.#proxyFailed(conn, "PROXY header exceeds its bound", remote);
          return;
        }
        if (result.kind === "invalid") return this.#proxyFailed(conn, result.reason, remote);
        clearTimeout(timer);
        this.#start(conn, {
          remoteAddress: result.source?.address,
          remotePort: result.source?.port,
          // A copy: the rest of the buffer is not handed over with it.
          initialData: buffer.slice(result.length, received),
        });
        return;
      }
      closeQuietly(conn);
    } catch {
      if (timedOut) this.#onProxyHeaderError("no complete PROXY header in time", remote);
      closeQuietly(conn);
    } finally {
      clearTimeout(timer);
    }
  }

  #proxyFailed(conn: Deno.Conn, reason: string, remote: string): void {
    this.#onProxyHeaderError(reason, remote);
    closeQuietly(conn);
  }
}

/** The fixed part of a version 2 header: signature, version/command, family, length. */
const PROXY_V2_FIXED_BYTES = 16;

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
