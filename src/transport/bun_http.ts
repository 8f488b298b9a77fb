/**
 * An HTTP(S) server over `Bun.serve`, for the admin API (a Hono app's `fetch`, as Hono's Bun
 * adapter serves it) and the MQTT over WebSocket listeners. The peer's address comes from
 * `server.requestIP()`, as the adapter's `getConnInfo` reads it. Requests on the MQTT WebSocket
 * path (when asked to take them) are upgraded with `server.upgrade()`; Bun then calls the
 * server's WebSocket handlers, which forward to each socket's connection.
 *
 * @module
 */

import type { BunServer } from "./bun_api.ts";
import { Bun } from "./bun_api.ts";
import { type BunWebSocketData, bunWebSocketData } from "./bun_websocket.ts";
import type { HttpHandler, HttpServeOptions, HttpServer } from "./sockets.ts";
import { WebSocketGate } from "./websocket.ts";

/** The largest WebSocket message taken: what Deno takes. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** A bound HTTP server. */
export class BunHttpServer implements HttpServer {
  readonly hostname: string;
  readonly port: number;
  readonly secure: boolean;
  #server: BunServer<BunWebSocketData>;
  #gate: WebSocketGate | undefined;
  #sockets: Set<BunWebSocketData>;
  #closed: Promise<void> | undefined;

  private constructor(
    server: BunServer<BunWebSocketData>,
    secure: boolean,
    gate: WebSocketGate | undefined,
    sockets: Set<BunWebSocketData>,
  ) {
    this.#server = server;
    this.secure = secure;
    this.#gate = gate;
    this.#sockets = sockets;
    this.hostname = server.hostname;
    this.port = server.port;
  }

  /** Binds and starts serving; throws when the address cannot be bound. */
  static serve(options: HttpServeOptions, handler: HttpHandler): BunHttpServer {
    const onError = options.onError ?? (() => {});
    const secure = options.cert !== undefined && options.key !== undefined;
    const webSocket = options.webSocket;
    const gate = webSocket && new WebSocketGate(secure ? "wss" : "ws", webSocket.options);
    const sockets = new Set<BunWebSocketData>();
    const server = Bun.serve<BunWebSocketData>({
      hostname: options.hostname,
      port: options.port,
      ...(secure ? { tls: { cert: options.cert!, key: options.key! } } : {}),
      development: false,
      fetch(request, server) {
        const ip = server.requestIP(request);
        const peer = { address: ip?.address ?? "", port: ip?.port ?? 0 };
        const admission = gate?.admit(request, peer);
        if (admission === undefined) return handler(request, peer);
        if (admission instanceof Response) return admission;
        const data = bunWebSocketData(admission, gate!, webSocket!.accept);
        const headers = admission.protocol === undefined
          ? undefined
          : { "sec-websocket-protocol": admission.protocol };
        if (server.upgrade(request, { data, headers })) return undefined;
        return Response.json({ error: "WebSocket upgrade failed" }, { status: 400 });
      },
      error(error) {
        onError(error);
        return Response.json({ error: "Internal server error" }, { status: 500 });
      },
      websocket: {
        open(ws) {
          sockets.add(ws.data);
          ws.data.connection.opened(ws);
        },
        message(ws, message) {
          ws.data.connection.received(message);
        },
        drain(ws) {
          ws.data.connection.drained();
        },
        close(ws) {
          sockets.delete(ws.data);
          ws.data.connection.ended();
        },
        // The broker's keep-alive decides when a client is gone, as on Deno: Bun neither pings
        // nor closes connections that are quiet.
        idleTimeout: 0,
        sendPings: false,
        // Deno's limit (fixed there), rather than Bun's default of 16 MiB.
        maxPayloadLength: MAX_MESSAGE_BYTES,
      },
    });
    return new BunHttpServer(server, secure, gate, sockets);
  }

  stopWebSockets(): Promise<void> {
    return this.#gate?.stopAccepting() ?? Promise.resolve();
  }

  close(): Promise<void> {
    this.#gate?.stopAccepting();
    // Bun waits for open connections to close: the MQTT ones are closed here, as on Deno.
    for (const socket of this.#sockets) socket.connection.destroy();
    this.#closed ??= this.#server.stop(false);
    return this.#closed;
  }
}
