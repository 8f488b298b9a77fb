/**
 * Deno's sockets: the native stream handle under `node:net` for plain TCP (`deno_handle.ts`;
 * `Deno.listen` for a host name, a PROXY header or a Deno without that handle), `Deno.listenTls`
 * for TLS, `node:tls` for mutual TLS (`Deno.listenTls` cannot ask for a client certificate),
 * `Deno.serve` for HTTP and WebSocket.
 *
 * @module
 */

import { HandleListener, handleListenerSupports } from "./deno_handle.ts";
import { DenoHttpServer } from "./deno_http.ts";
import { DenoListener } from "./deno_listener.ts";
import { NodeTlsListener } from "./node_tls_listener.ts";
import type { Sockets } from "./sockets.ts";

/** The {@linkcode Sockets} of Deno. */
export const denoSockets: Sockets = {
  runtime: "deno",
  // The native handle where it can (no pending read per idle connection, see deno_handle.ts).
  listenTcp: (options, accept) =>
    handleListenerSupports(options)
      ? HandleListener.tcp(options, accept)
      : DenoListener.tcp(options, accept),
  listenTls: async (options, accept) => {
    const ca = options.ca;
    if (ca === undefined) return DenoListener.tls(options, accept);
    return await NodeTlsListener.listen({ ...options, ca }, accept);
  },
  serveHttp: (options, handler) => DenoHttpServer.serve(options, handler),
};
