/**
 * Bun's sockets: `Bun.listen` for TCP and TLS (client certificates included), `Bun.serve` for
 * HTTP and WebSocket.
 *
 * @module
 */

import { BunHttpServer } from "./bun_http.ts";
import { BunListener } from "./bun_listener.ts";
import type { Sockets } from "./sockets.ts";

/** The {@linkcode Sockets} of Bun. */
export const bunSockets: Sockets = {
  runtime: "bun",
  listenTcp: (options, accept) => BunListener.tcp(options, accept),
  listenTls: (options, accept) =>
    new Promise((resolve) => resolve(BunListener.tls(options, accept))),
  serveHttp: (options, handler) => BunHttpServer.serve(options, handler),
};
