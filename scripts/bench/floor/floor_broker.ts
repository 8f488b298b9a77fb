/**
 * The Deno runtime's own cost of an idle connection (`--brokers floor`, connection scenario only):
 * accepts TCP connections, answers the first bytes of each (a CONNECT) with a CONNACK, and then
 * keeps one pending read into a fresh 64-byte buffer per connection, as Perch does for an idle
 * client. No MQTT state at all: the RSS per connection it shows is what `Deno.Conn` and one
 * pending `read()` cost, the floor under Perch's figure.
 *
 * Usage: `deno run -A floor_broker.ts [host ...]`; listens on one free port on every host (default
 * 127.0.0.1) and prints `floor listening port=<port>`.
 *
 * @module
 */

const CONNACK = new Uint8Array([0x20, 0x02, 0x00, 0x00]);
/** Perch's smallest read buffer (src/transport/deno_connection.ts). */
const IDLE_READ_SIZE = 64;

async function hold(conn: Deno.Conn): Promise<void> {
  try {
    // The CONNECT: answered without parsing (the generator sends nothing else).
    if (await conn.read(new Uint8Array(1024)) === null) return;
    await conn.write(CONNACK);
    while (await conn.read(new Uint8Array(IDLE_READ_SIZE)) !== null) {
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

async function accept(listener: Deno.TcpListener): Promise<void> {
  for await (const conn of listener) {
    conn.setNoDelay(true);
    hold(conn);
  }
}

async function main(): Promise<void> {
  const hosts = Deno.args.length > 0 ? Deno.args : ["127.0.0.1"];
  const first = Deno.listen({ hostname: hosts[0], port: 0 });
  const { port } = first.addr as Deno.NetAddr;
  const listeners = [first, ...hosts.slice(1).map((hostname) => Deno.listen({ hostname, port }))];
  console.log(`floor listening port=${port}`);
  await Promise.all(listeners.map(accept));
}

if (import.meta.main) await main();
