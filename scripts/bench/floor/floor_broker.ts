/**
 * The Deno runtime's own cost of an idle connection (`--brokers floor`, connection scenario only):
 * accepts TCP connections, answers the first bytes of each (a CONNECT) with a CONNACK, and then
 * holds it open with nothing but the runtime's socket. No MQTT state at all: the RSS per connection
 * it shows is what the runtime costs, the floor under Perch's figure.
 *
 * How it reads an idle connection is chosen by the environment variable `FLOOR_STRATEGY`:
 *
 * - `read` (default): `Deno.Conn` and one pending `read()` into a fresh 64-byte buffer, as Perch
 *   did before it read through the stream handle.
 * - `read1`: the same with a 1-byte buffer (what the buffer's size costs).
 * - `byob`: `Deno.Conn.readable` with a BYOB reader and a 64-byte view.
 * - `none`: `Deno.Conn` and no read at all (the socket's own cost; cannot see data or a close).
 * - `node`: a `node:net` server, a `data` listener per socket.
 * - `handle`: Deno's native stream handle under `node:net` (`TCP` of the `tcp_wrap` binding), as
 *   Perch reads plain TCP: no pending read, a buffer only when bytes arrive.
 *
 * Usage: `deno run -A floor_broker.ts [host ...]`; listens on one free port on every host (default
 * 127.0.0.1) and prints `floor listening port=<port>`.
 *
 * @module
 */

import * as net from "node:net";
import process from "node:process";

const CONNACK = new Uint8Array([0x20, 0x02, 0x00, 0x00]);
/** Perch's smallest `Deno.Conn` read buffer (src/transport/deno_connection.ts). */
const IDLE_READ_SIZE = 64;

/** The strategies, see the module documentation. */
export const FLOOR_STRATEGIES = ["read", "read1", "byob", "none", "node", "handle"] as const;
type Strategy = typeof FLOOR_STRATEGIES[number];

async function hold(conn: Deno.Conn, strategy: Strategy): Promise<void> {
  try {
    // The CONNECT: answered without parsing (the generator sends nothing else).
    if (await conn.read(new Uint8Array(1024)) === null) return;
    await conn.write(CONNACK);
    if (strategy === "none") return await new Promise<void>(() => {});
    if (strategy === "byob") {
      const reader = conn.readable.getReader({ mode: "byob" });
      while (!(await reader.read(new Uint8Array(IDLE_READ_SIZE))).done) {
        // Ignored, as below.
      }
      return;
    }
    const size = strategy === "read1" ? 1 : IDLE_READ_SIZE;
    while (await conn.read(new Uint8Array(size)) !== null) {
      // An idle client sends nothing; anything it does send is ignored.
    }
  } catch {
    // The generator closing its connections at the end of a run.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

async function accept(listener: Deno.TcpListener, strategy: Strategy): Promise<void> {
  for await (const conn of listener) {
    conn.setNoDelay(true);
    hold(conn, strategy);
  }
}

function listenDeno(hosts: string[], strategy: Strategy): number {
  const first = Deno.listen({ hostname: hosts[0], port: 0 });
  const { port } = first.addr as Deno.NetAddr;
  const listeners = [first, ...hosts.slice(1).map((hostname) => Deno.listen({ hostname, port }))];
  for (const listener of listeners) accept(listener, strategy);
  return port;
}

async function listenNode(hosts: string[]): Promise<number> {
  const server = () =>
    net.createServer({ noDelay: true }, (socket) => {
      let answered = false;
      socket.on("data", () => {
        if (!answered) socket.write(CONNACK);
        answered = true;
      });
      socket.on("error", () => {});
    });
  let port = 0;
  for (const host of hosts) {
    const listening = server();
    await new Promise<void>((resolve) => listening.listen(port, host, resolve));
    port = (listening.address() as net.AddressInfo).port;
  }
  return port;
}

// deno-lint-ignore no-explicit-any
type Binding = any;

function listenHandle(hosts: string[]): number {
  const binding = (process as unknown as { binding(name: string): Binding }).binding;
  const { TCP, constants } = binding("tcp_wrap");
  const { WriteWrap } = binding("stream_wrap");
  let port = 0;
  for (const host of hosts) {
    const server = new TCP(constants.SERVER);
    if (server.bind(host, port) !== 0) throw new Error(`cannot bind ${host}:${port}`);
    const address: { port?: number } = {};
    server.getsockname(address);
    port = address.port!;
    server.onconnection = (status: number) => {
      if (status !== 0) return;
      const socket = new TCP(constants.SOCKET);
      if (server.accept(socket) !== 0) return;
      socket.setNoDelay(true);
      let answered = false;
      socket.onread = (bytes: ArrayBuffer | undefined) => {
        if (bytes === undefined) return socket.close();
        if (answered) return;
        answered = true;
        const request = new WriteWrap();
        request.handle = socket;
        request.oncomplete = () => {};
        socket.writeBuffer(request, CONNACK);
      };
      socket.readStart();
    };
    if (server.listen(511) !== 0) throw new Error(`cannot listen on ${host}:${port}`);
  }
  return port;
}

async function main(): Promise<void> {
  const hosts = Deno.args.length > 0 ? Deno.args : ["127.0.0.1"];
  const strategy = (Deno.env.get("FLOOR_STRATEGY") ?? "read") as Strategy;
  if (!FLOOR_STRATEGIES.includes(strategy)) {
    throw new Error(`FLOOR_STRATEGY must be one of ${FLOOR_STRATEGIES.join(", ")}`);
  }
  const port = strategy === "node"
    ? await listenNode(hosts)
    : strategy === "handle"
    ? listenHandle(hosts)
    : listenDeno(hosts, strategy);
  console.log(`floor listening port=${port}`);
}

if (import.meta.main) await main();
