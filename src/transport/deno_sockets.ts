/**
 * Deno's sockets: `Deno.listen` and `Deno.listenTls` for TCP and TLS, `node:tls` for mutual TLS
 * (`Deno.listenTls` cannot ask for a client certificate), `Deno.serve` for HTTP and WebSocket.
 *
 * @module
 */

import { DenoHttpServer } from "./deno_http.ts";
import { DenoListener } from "./deno_listener.ts";
import { NodeTlsListener } from "./node_tls_listener.ts";
import type { Sockets } from "./sockets.ts";

/** The {@linkcode Sockets} of Deno. */
export const denoSockets: Sockets = {
  runtime: "deno",
  listenTcp: (options, accept) => DenoListener.tcp(options, accept),
  listenTls: async (options, accept) => {
    const ca = options.ca;
    if (ca === undefined) return DenoListener.tls(options, accept);
    return await NodeTlsListener.listen({ ...options, ca }, accept);
  },
  serveHttp: (options, handler) => DenoHttpServer.serve(options, handler),
};
