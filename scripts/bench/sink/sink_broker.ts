/**
 * A trivial "broker" to measure the load generator's own ceiling (`--brokers sink`): it accepts every
 * CONNECT and SUBSCRIBE, acknowledges every publish at once, and forwards the PUBLISH bytes unchanged,
 * a whole read at a time, to every plain subscriber and to one member of each `$share` group (round
 * robin). No topic matching, no sessions, no per-message work beyond framing, so whatever rate the
 * generator reaches against it bounds what the generator can measure. Each publisher's next read waits
 * until its previous forwards were written, so a slow subscriber slows the publishers (TCP back
 * pressure) instead of growing memory.
 *
 * Usage: `deno run -A sink_broker.ts [host ...]`; listens on one free port on every host (default
 * 127.0.0.1) and prints `sink listening port=<port>`.
 *
 * @module
 */

import { writeAll } from "../mqtt_client.ts";
import { PacketType } from "../mqtt_packets.ts";
import { type PacketHandler, PacketReader } from "../mqtt_reader.ts";
import { WriteBuffer } from "../write_buffer.ts";

interface Subscription {
  conn: Deno.Conn;
  /** Writes to this connection, chained so they never interleave. */
  writing: Promise<void>;
}

/** Subscribers by delivery target: plain ones get everything, each shared group one member. */
class Routes {
  readonly plain: Subscription[] = [];
  readonly groups = new Map<string, { members: Subscription[]; next: number }>();

  add(subscription: Subscription, filter: string): void {
    const shared = filter.match(/^\$share\/([^/]+)\//);
    if (!shared) {
      this.plain.push(subscription);
      return;
    }
    const group = this.groups.get(shared[1]) ?? { members: [], next: 0 };
    group.members.push(subscription);
    this.groups.set(shared[1], group);
  }

  targets(): Subscription[] {
    const targets = [...this.plain];
    for (const group of this.groups.values()) {
      targets.push(group.members[group.next++ % group.members.length]);
    }
    return targets;
  }
}

function send(subscription: Subscription, bytes: Uint8Array): Promise<void> {
  subscription.writing = subscription.writing.then(() => writeAll(subscription.conn, bytes));
  return subscription.writing;
}

/** Size of a PUBLISH's fixed header, from its remaining length. */
function fixedHeaderLength(remaining: number): number {
  return 1 + (remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4);
}

async function serve(conn: Deno.Conn, routes: Routes): Promise<void> {
  // Small buffers that grow on demand: an idle connection costs little (connection scenario).
  const reader = new PacketReader(16 * 1024);
  const self: Subscription = { conn, writing: Promise.resolve() };
  const replies = new WriteBuffer(64);
  const forward = new WriteBuffer(1024);
  const onPacket: PacketHandler = (header, bytes, view, start, end) => {
    switch (header >> 4) {
      case PacketType.connect:
        return replies.append([PacketType.connack << 4, 2, 0, 0]);
      case PacketType.subscribe: {
        const filterLength = view.getUint16(start + 2);
        const filter = new TextDecoder().decode(
          bytes.subarray(start + 4, start + 4 + filterLength),
        );
        routes.add(self, filter);
        return replies.append([
          PacketType.suback << 4,
          3,
          bytes[start],
          bytes[start + 1],
          bytes[end - 1],
        ]);
      }
      case PacketType.publish: {
        forward.append(bytes.subarray(start - fixedHeaderLength(end - start), end));
        const qos = (header >> 1) & 3;
        const packetId = qos > 0 ? view.getUint16(start + 2 + view.getUint16(start)) : 0;
        if (qos === 1) replies.ack(PacketType.puback, packetId);
        if (qos === 2) replies.ack(PacketType.pubrec, packetId);
        return;
      }
      case PacketType.pubrel:
        return replies.ack(PacketType.pubcomp, view.getUint16(start));
      case PacketType.pubrec:
        return replies.ack(PacketType.pubrel, view.getUint16(start));
      default:
        return; // PUBACK and PUBCOMP from subscribers, DISCONNECT: nothing to do.
    }
  };
  try {
    while (await reader.readFrom(conn, onPacket) !== null) {
      const writes: Promise<void>[] = [];
      if (replies.length > 0) writes.push(send(self, replies.take()));
      if (forward.length > 0) {
        const bytes = forward.take();
        for (const target of routes.targets()) writes.push(send(target, bytes));
      }
      await Promise.all(writes);
    }
  } catch (error) {
    // Clients going away at the end of a run is normal; anything else is worth a line in the log.
    if (
      !(error instanceof Deno.errors.BadResource || error instanceof Deno.errors.ConnectionReset)
    ) {
      console.error(`sink: ${error instanceof Error ? error.message : error}`);
    }
  } finally {
    conn.close();
  }
}

async function accept(listener: Deno.TcpListener, routes: Routes): Promise<void> {
  for await (const conn of listener) {
    conn.setNoDelay(true);
    serve(conn, routes);
  }
}

async function main(): Promise<void> {
  const hosts = Deno.args.length > 0 ? Deno.args : ["127.0.0.1"];
  const first = Deno.listen({ hostname: hosts[0], port: 0 });
  const { port } = first.addr as Deno.NetAddr;
  const listeners = [first, ...hosts.slice(1).map((hostname) => Deno.listen({ hostname, port }))];
  console.log(`sink listening port=${port}`);
  const routes = new Routes();
  await Promise.all(listeners.map((listener) => accept(listener, routes)));
}

if (import.meta.main) await main();
