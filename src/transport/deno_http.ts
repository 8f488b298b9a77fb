/**
 * An HTTP(S) server over `Deno.serve`, for the admin API and the MQTT over WebSocket listeners.
 * Knows nothing about what it serves: it hands each request and the peer's address to a handler,
 * and requests on the MQTT WebSocket path (when asked to take them) to `Deno.upgradeWebSocket`.
 *
 * @module
 */

import { upgradeDenoWebSocket } from "./deno_websocket.ts";
import type { HttpHandler, HttpServeOptions, HttpServer } from "./sockets.ts";
import { WebSocketGate } from "./websocket.ts";

/** A bound HTTP server. */
export class DenoHttpServer implements HttpServer {
  readonly hostname: string;
  readonly port: number;
  readonly secure: boolean;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #gate: WebSocketGate | undefined;
  #closed: Promise<void> | undefined;

  private constructor(
    server: Deno.HttpServer<Deno.NetAddr>,
    secure: boolean,
    gate: WebSocketGate | undefined,
  ) {
    this.#server = server;
    this.secure = secure;
    this.#gate = gate;
    this.hostname = server.addr.hostname;
    this.port = server.addr.port;
  }

  /** Binds and starts serving; throws when the address cannot be bound. */
  static serve(options: HttpServeOptions, handler: HttpHandler): DenoHttpServer {
    const onError = options.onError ?? (() => {});
    const secure = options.cert !== undefined && options.key !== undefined;
    const webSocket = options.webSocket;
    const gate = webSocket && new WebSocketGate(secure ? "wss" : "ws", webSocket.options);
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
    const serve = (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
      const peer = { address: info.remoteAddr.hostname, port: info.remoteAddr.port };
      const admission = gate?.admit(request, peer);
      if (admission === undefined) return handler(request, peer);
      if (admission instanceof Response) return admission;
      return upgradeDenoWebSocket(request, admission, gate!, webSocket!.accept);
    };
    const server = secure
      ? Deno.serve({ ...serveOptions, cert: options.cert!, key: options.key! }, serve)
      : Deno.serve(serveOptions, serve);
    return new DenoHttpServer(server, secure, gate);
  }

  stopWebSockets(): Promise<void> {
    return this.#gate?.stopAccepting() ?? Promise.resolve();
  }

  close(): Promise<void> {
    this.#gate?.stopAccepting();
    this.#closed ??= this.#server.shutdown();
    return this.#closed;
  }
}
