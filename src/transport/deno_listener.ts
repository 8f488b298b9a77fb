import { DenoConnection } from "./deno_connection.ts";
import type { AcceptHandler, Listener, TransportKind } from "./transport.ts";

/** Options shared by the Deno TCP and TLS listeners. */
export interface DenoListenOptions {
  hostname: string;
  /** 0 picks a free port; read it back from `Listener.port`. */
  port: number;
  /** Called when accepting fails (e.g. out of file descriptors); the listener keeps going. */
  onAcceptError?: (error: Error) => void;
}

/** TLS material as PEM text. */
export interface DenoTlsOptions extends DenoListenOptions {
  cert: string;
  key: string;
}

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
  #closed = false;

  private constructor(
    listener: Deno.Listener,
    kind: TransportKind,
    accept: AcceptHandler,
    onAcceptError: (error: Error) => void,
  ) {
    this.#listener = listener;
    this.kind = kind;
    this.#accept = accept;
    this.#onAcceptError = onAcceptError;
    const addr = listener.addr as Deno.NetAddr;
    this.hostname = addr.hostname;
    this.port = addr.port;
    this.#acceptLoop();
  }

  /** Listens for plain TCP connections. */
  static tcp(options: DenoListenOptions, accept: AcceptHandler): DenoListener {
    const listener = Deno.listen({ hostname: options.hostname, port: options.port });
    return new DenoListener(listener, "tcp", accept, options.onAcceptError ?? (() => {}));
  }

  /** Listens for TLS connections. */
  static tls(options: DenoTlsOptions, accept: AcceptHandler): DenoListener {
    const listener = Deno.listenTls({
      hostname: options.hostname,
      port: options.port,
      cert: options.cert,
      key: options.key,
    });
    return new DenoListener(listener, "tls", accept, options.onAcceptError ?? (() => {}));
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
      try {
        new DenoConnection(conn, this.kind).start(this.#accept);
      } catch (err) {
        // One bad connection must not stop the listener.
        try {
          conn.close();
        } catch {
          // Already closed.
        }
        this.#onAcceptError(err as Error);
      }
    }
  }
}
