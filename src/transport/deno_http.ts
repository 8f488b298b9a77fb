/**
 * An HTTP(S) server over `Deno.serve`, for the admin API and the MQTT over WebSocket listeners.
 * Knows nothing about what it serves: it hands each request and the peer's address to a handler.
 *
 * @module
 */

/** The peer of an HTTP request, as the socket reports it. */
export interface HttpPeer {
  address: string;
  port: number;
}

/** Answers one request. */
export type HttpHandler = (request: Request, peer: HttpPeer) => Response | Promise<Response>;

/** Where and how to listen. */
export interface DenoHttpOptions {
  hostname: string;
  /** 0 picks a free port; read it back from `port`. */
  port: number;
  /** PEM certificate chain and key: serve HTTPS (and `wss://`) instead of HTTP. */
  cert?: string;
  key?: string;
  /** Called when a handler throws; the request gets a 500. */
  onError?: (error: unknown) => void;
}

/** A bound HTTP server. */
export class DenoHttpServer {
  readonly hostname: string;
  readonly port: number;
  /** True when serving HTTPS. */
  readonly secure: boolean;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #closed: Promise<void> | undefined;

  private constructor(server: Deno.HttpServer<Deno.NetAddr>, secure: boolean) {
    this.#server = server;
    this.secure = secure;
    this.hostname = server.addr.hostname;
    this.port = server.addr.port;
  }

  /** Binds and starts serving; throws when the address cannot be bound. */
  static serve(options: DenoHttpOptions, handler: HttpHandler): DenoHttpServer {
    const onError = options.onError ?? (() => {});
    const serveOptions = {
      hostname: options.hostname,
      port: options.port,
      // Deno prints "Listening on ..." by default; the caller logs its own line.
      onListen: () => {},
      onError: (error: unknown) => {
        onError(error);
        return Response.json({ error: "Internal server error" }, { status: 500 });
      },
    };
    const serve = (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) =>
      handler(request, { address: info.remoteAddr.hostname, port: info.remoteAddr.port });
    const secure = options.cert !== undefined && options.key !== undefined;
    const server = secure
      ? Deno.serve({ ...serveOptions, cert: options.cert!, key: options.key! }, serve)
      : Deno.serve(serveOptions, serve);
    return new DenoHttpServer(server, secure);
  }

  /**
   * Stops accepting, lets in-flight requests finish and closes the socket. Upgraded WebSocket
   * connections are closed too. Idempotent; resolves when the server is down.
   */
  close(): Promise<void> {
    this.#closed ??= this.#server.shutdown();
    return this.#closed;
  }
}
