/**
 * Perch's own JavaScript heap per idle connection, without a socket: N in-memory connections
 * (`MemoryConnection`) each send an MQTT 3.1.1 CONNECT (clean session, keep-alive 0, as the
 * benchmark's connections case does) to a broker on the memory backbone wired like `src/main.ts`
 * wires it (security hooks with bans, client events). After a full GC the heap is measured with no
 * connection and with N; optionally a heap snapshot is taken at both points and the growth listed
 * per kind of object. Used by `scripts/idle_heap.ts` and `test/broker/idle_memory_test.ts`.
 *
 * The runtime's socket (a `Deno.Conn` with its pending read, or a native handle) is not counted,
 * but the in-memory connection object is (`MemoryConnection`, ~150 bytes): the benchmark's
 * connections case measures the whole process.
 *
 * @module
 */

import v8 from "node:v8";
import { createSecurity } from "../../src/auth/setup.ts";
import { BanList, withBans } from "../../src/auth/bans.ts";
import { MemoryBackbone } from "../../src/backbone/memory.ts";
import { Broker } from "../../src/broker/broker.ts";
import { toBrokerOptions } from "../../src/compose.ts";
import { configSchema } from "../../src/config/mod.ts";
import { ClientEvents } from "../../src/ops/client_events.ts";
import { runtimeCollector } from "../../src/ops/idle_collection.ts";
import { MemoryConnection } from "../../src/transport/memory.ts";
import { createSystemClock } from "../../src/util/clock.ts";
import { createLogger } from "../../src/util/logger.ts";

/** A v3.1.1 CONNECT: clean session, keep-alive 0. */
function connectPacket(clientId: string): Uint8Array {
  const id = new TextEncoder().encode(clientId);
  const body = [0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00];
  const length = body.length + 2 + id.length;
  return new Uint8Array([0x10, length, ...body, id.length >> 8, id.length & 0xff, ...id]);
}

/** Collects until nothing more is freed (the broker's own idle collection). */
function fullGc(): void {
  const collect = runtimeCollector();
  if (collect === undefined) throw new Error("this runtime exposes no garbage collector");
  collect();
}

/**
 * Self size per kind over a heap snapshot's nodes: an object by its constructor name (a plain
 * object by its first property names), a number, string or internal array by the object and
 * field that first holds it.
 */
function sizesByKind(file: string): Map<string, { count: number; bytes: number }> {
  const data = JSON.parse(Deno.readTextFileSync(file));
  const meta = data.snapshot.meta;
  const fields: string[] = meta.node_fields;
  const types: string[] = meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const edgeCountAt = fields.indexOf("edge_count");
  const edgeFields: string[] = meta.edge_fields;
  const edgeTypes: string[] = meta.edge_types[0];
  const edgeStride = edgeFields.length;
  const edgeTypeAt = edgeFields.indexOf("type");
  const edgeNameAt = edgeFields.indexOf("name_or_index");
  const edgeToAt = edgeFields.indexOf("to_node");
  const nodes: number[] = data.nodes;
  const edges: number[] = data.edges;
  const strings: string[] = data.strings;
  const edgeName = (e: number) => {
    const kind = edgeTypes[edges[e + edgeTypeAt]];
    return kind === "element" || kind === "hidden"
      ? `[${kind}]`
      : String(strings[edges[e + edgeNameAt]]);
  };
  const names: string[] = [];
  let edge = 0;
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + typeAt]];
    let name = type === "object" || type === "closure"
      ? `${type}:${strings[nodes[i + nameAt]]}`
      : type;
    const edgeCount = nodes[i + edgeCountAt];
    if (name === "object:Object") {
      // A plain object: named by its first properties.
      const keys: string[] = [];
      for (let e = edge; e < edge + edgeCount * edgeStride && keys.length < 4; e += edgeStride) {
        if (edgeTypes[edges[e + edgeTypeAt]] === "property") keys.push(edgeName(e));
      }
      name = `object:{${keys.join(",")}}`;
    }
    names.push(name);
    edge += edgeCount * edgeStride;
  }
  const owned = new Set(["number", "string", "concatenated string", "sliced string", "array"]);
  const named = new Uint8Array(names.length);
  edge = 0;
  for (let i = 0; i < nodes.length; i += stride) {
    const from = i / stride;
    const edgeCount = nodes[i + edgeCountAt];
    for (let e = edge; e < edge + edgeCount * edgeStride; e += edgeStride) {
      const to = edges[e + edgeToAt] / stride;
      if (named[to] === 0 && owned.has(names[to]) && !owned.has(names[from])) {
        named[to] = 1;
        names[to] = `${names[to]} in ${names[from]}.${edgeName(e)}`;
      }
    }
    edge += edgeCount * edgeStride;
  }
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < nodes.length; i += stride) {
    const name = names[i / stride];
    const entry = out.get(name) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += nodes[i + sizeAt];
    out.set(name, entry);
  }
  return out;
}

/** Writes a heap snapshot to a temporary file (read once both are taken). */
function takeSnapshot(tag: string): string {
  const file = Deno.makeTempFileSync({ prefix: `perch-idle-${tag}-`, suffix: ".heapsnapshot" });
  v8.writeHeapSnapshot(file);
  return file;
}

/** One kind of object's growth per connection. */
export interface HeapGrowth {
  kind: string;
  objectsPerConnection: number;
  bytesPerConnection: number;
}

/** What {@linkcode measureIdleHeap} found. */
export interface IdleHeapReport {
  connections: number;
  heapBefore: number;
  heapAfter: number;
  /** Heap growth over all connections, per connection, after a full GC. */
  bytesPerConnection: number;
  /** With `snapshot`: growth per kind, largest first. */
  kinds: HeapGrowth[] | undefined;
}

/** Opens `count` idle connections on a fresh broker and measures the heap they hold. */
export async function measureIdleHeap(
  count: number,
  options: { snapshot?: boolean } = {},
): Promise<IdleHeapReport> {
  const snapshot = options.snapshot ?? false;
  const config = configSchema.parse({ sys: { enabled: false } });
  const clock = createSystemClock();
  const logger = createLogger({ level: "warn" });
  const backbone = new MemoryBackbone({ clock, retainedLimits: config.retained });
  await backbone.start({ id: "idle-heap", version: "dev", startedAt: clock.now() });
  const security = await createSecurity(config.auth, config.acl, {
    clock,
    logger,
    config: backbone.config,
  });
  const secured = withBans(new BanList({ clock, maxBans: 100 }), security.hooks, new Map(), logger);
  const clientEvents = new ClientEvents(logger);
  const broker = new Broker({
    options: toBrokerOptions(config),
    backbone,
    clock,
    logger,
    hooks: { ...secured.hooks, ...clientEvents.hooks() },
    authMethods: secured.authMethods,
    version: "perch idle-heap",
  });

  /** Opens `n` connections named from `first` and waits until all are connected. */
  async function open(first: number, n: number): Promise<MemoryConnection[]> {
    const before = broker.stats.clientsConnectedTotal;
    const opened: MemoryConnection[] = [];
    for (let i = first; i < first + n; i++) {
      const connection = new MemoryConnection({
        remoteAddress: "127.0.0.1",
        remotePort: i % 65536,
      });
      connection.start(broker.accept);
      connection.push(connectPacket(`idle-${i}`));
      opened.push(connection);
      if (i % 500 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    while (broker.stats.clientsConnectedTotal - before < n) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    return opened;
  }

  // Warm up (compiled code, maps grown once), then close those connections again.
  for (const connection of await open(1_000_000, 500)) connection.end();
  await new Promise((resolve) => setTimeout(resolve, 10));
  fullGc();
  const heapBefore = Deno.memoryUsage().heapUsed;
  const before = snapshot ? takeSnapshot("before") : undefined;
  const connections = await open(0, count);
  await new Promise((resolve) => setTimeout(resolve, 10));
  fullGc();
  const heapAfter = Deno.memoryUsage().heapUsed;
  const after = snapshot ? takeSnapshot("after") : undefined;

  let kinds: HeapGrowth[] | undefined;
  if (before && after) {
    const was = sizesByKind(before);
    const now = sizesByKind(after);
    Deno.removeSync(before);
    Deno.removeSync(after);
    kinds = [];
    for (const [kind, { count: n, bytes }] of now) {
      const old = was.get(kind) ?? { count: 0, bytes: 0 };
      kinds.push({
        kind,
        objectsPerConnection: (n - old.count) / count,
        bytesPerConnection: (bytes - old.bytes) / count,
      });
    }
    kinds.sort((a, b) => b.bytesPerConnection - a.bytesPerConnection);
  }

  for (const connection of connections) connection.end();
  await broker.close(0);
  await backbone.close();
  security.close();
  return {
    connections: count,
    heapBefore,
    heapAfter,
    bytesPerConnection: (heapAfter - heapBefore) / count,
    kinds,
  };
}
