/**
 * The codec and engine fuzzer shared by `test/codec/fuzz_test.ts` (a short run in `deno task
 * test`) and `scripts/fuzz.ts` (`deno task fuzz`, long runs). Seeded, so any fault replays.
 *
 * Each iteration makes one hostile input (random bytes, or a valid vector mutated: bit flips,
 * byte changes, insertions, deletions, truncation, a rewritten remaining length, splices of two
 * vectors) and sends it
 * - through a fresh `PacketDecoder` of each protocol level, split into random chunks, then
 *   through `validatePacket` for every packet decoded: only `MqttError` may come out;
 * - through the broker, on an in-memory connection after a valid CONNECT, in random chunks, while
 *   a subscriber on `#` receives whatever gets published: the broker must log no unexpected error,
 *   reject no promise unhandled, and release the connection.
 * At the end every connection and session must be gone and the heap must not have grown beyond a
 * bound.
 *
 * @module
 */

import { MemoryBackbone } from "../../src/backbone/memory.ts";
import { createSecurity } from "../../src/auth/setup.ts";
import { Broker } from "../../src/broker/broker.ts";
import { MqttError, type Packet, PacketDecoder, validatePacket } from "../../src/codec/mod.ts";
import type { ProtocolVersion } from "../../src/codec/packets.ts";
import { configSchema } from "../../src/config/mod.ts";
import { toBrokerOptions } from "../../src/main.ts";
import { MemoryConnection } from "../../src/transport/memory.ts";
import { createSystemClock } from "../../src/util/clock.ts";
import { createLogger } from "../../src/util/logger.ts";
import type { PacketCase } from "../vectors/mod.ts";
import { v311Cases } from "../vectors/v311.ts";
import { v5Cases } from "../vectors/v5.ts";

/** One input that broke a rule, with what is needed to replay it. */
export interface FuzzFault {
  iteration: number;
  stage: "decoder" | "engine";
  what: string;
  /** The input, hex. */
  input: string;
}

export interface FuzzReport {
  seed: number;
  iterations: number;
  /** Packets the decoders accepted (and validated) across the run. */
  packetsDecoded: number;
  /** Inputs the decoders rejected with an MqttError, as they must. */
  inputsRejected: number;
  /** Broker connections opened (one per iteration, plus the subscriber). */
  connections: number;
  /** CONNECTs the broker accepted, PUBLISH packets it took in, connections it closed for bad input. */
  connected: number;
  publishesReceived: number;
  protocolErrors: number;
  faults: FuzzFault[];
  durationMs: number;
  heapGrowthBytes: number;
}

export interface FuzzOptions {
  seed: number;
  iterations: number;
  /** Called every `progressEvery` iterations. */
  onProgress?: (done: number, faults: number) => void;
  progressEvery?: number;
  /** Stop after this many faults (default 20). */
  maxFaults?: number;
}

/** mulberry32: a small, fast, seedable PRNG (never crypto, replay is the point). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CORPUS: PacketCase[] = [...v311Cases, ...v5Cases];
const CONNECTS = CORPUS.filter((c) => c.packet?.type === 1 && c.error === undefined);

class Mutator {
  #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
  }

  int(n: number): number {
    return Math.floor(this.#random() * n);
  }

  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A hostile input: random, or a vector with one to four mutations. */
  input(): Uint8Array {
    if (this.int(10) === 0) return this.#randomPacket();
    let data: Uint8Array = this.pick(CORPUS).bytes.slice();
    const rounds = 1 + this.int(4);
    for (let i = 0; i < rounds; i++) data = this.#mutate(data);
    return data;
  }

  /** A type byte, a random remaining length (possibly a lie) and random body bytes. */
  #randomPacket(): Uint8Array {
    const body = this.bytes(this.int(64));
    const length = this.int(3) === 0 ? this.int(0x0fffffff) : body.length;
    const vbi: number[] = [];
    let x = length;
    do {
      let byte = x % 128;
      x = Math.floor(x / 128);
      if (x > 0) byte |= 0x80;
      vbi.push(byte);
    } while (x > 0 && vbi.length < 5);
    return concat(new Uint8Array([this.int(256), ...vbi]), body);
  }

  #mutate(data: Uint8Array): Uint8Array {
    if (data.length === 0) return this.bytes(1 + this.int(8));
    const at = this.int(data.length);
    switch (this.int(9)) {
      case 0: // flip a bit
        data[at] ^= 1 << this.int(8);
        return data;
      case 1: // set a byte to an interesting value
        data[at] = this.pick([0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x3f, 0x2f, 0x23, 0x2b]);
        return data;
      case 2: // insert random bytes
        return concat(data.subarray(0, at), this.bytes(1 + this.int(16)), data.subarray(at));
      case 3: // delete a range
        return concat(
          data.subarray(0, at),
          data.subarray(Math.min(data.length, at + 1 + this.int(8))),
        );
      case 4: // truncate
        return data.slice(0, at);
      case 5: { // rewrite the remaining length
        const lie = this.pick([[0x00], [0x7f], [0xff, 0x7f], [0xff, 0xff, 0xff, 0x7f], [
          0xff,
          0xff,
          0xff,
          0xff,
          0x7f,
        ]]);
        return concat(data.subarray(0, 1), new Uint8Array(lie), data.subarray(2));
      }
      case 6: // duplicate a slice (repeats properties and fields)
        return concat(
          data.subarray(0, at),
          data.subarray(at, at + 1 + this.int(12)),
          data.subarray(at),
        );
      case 7: // splice in the tail of another vector
        return concat(data.subarray(0, at), this.pick(CORPUS).bytes.subarray(this.int(8)));
      default: // change the fixed-header flags
        data[0] = (data[0] & 0xf0) | this.int(16);
        return data;
    }
  }

  /** Splits `data` into random chunks (the decoder must not care where reads end). */
  chunks(data: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let offset = 0;
    while (offset < data.length) {
      const size = 1 + this.int(this.int(2) === 0 ? 4 : 64);
      // A fresh buffer per chunk, as the transport contract promises.
      out.push(data.slice(offset, offset + size));
      offset += size;
    }
    return out;
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function hex(data: Uint8Array): string {
  return [...data.subarray(0, 512)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Runs the fuzzer. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const random = seededRandom(options.seed);
  const mutator = new Mutator(random);
  const maxFaults = options.maxFaults ?? 20;
  const faults: FuzzFault[] = [];
  let iteration = 0;
  let current: Uint8Array = new Uint8Array();
  let packetsDecoded = 0;
  let inputsRejected = 0;
  let connections = 0;

  const fault = (stage: FuzzFault["stage"], what: string) =>
    faults.push({ iteration, stage, what, input: hex(current) });
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    fault("engine", `unhandled rejection: ${String(event.reason?.stack ?? event.reason)}`);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);

  const config = configSchema.parse({
    sys: { enabled: false },
    mqtt: { maxPacketSize: "64KiB", maxSessionExpiryInterval: 0, maxQueuedMessages: 100 },
    retained: { maxMessages: 1000 },
    acl: {
      rules: [
        { permission: "deny", action: "both", topic: "private/#" },
        { permission: "allow", action: "both", topic: "#" },
      ],
    },
  });
  const clock = createSystemClock();
  const logger = createLogger({
    level: "warn",
    write(line, level) {
      if (level === "error") fault("engine", `broker logged an error: ${line.slice(0, 300)}`);
    },
  });
  const backbone = new MemoryBackbone({ clock, retainedLimits: config.retained });
  const security = await createSecurity(config.auth, config.acl, {
    clock,
    logger,
    config: backbone.config,
  });
  const broker = new Broker({
    options: toBrokerOptions(config),
    backbone,
    clock,
    logger,
    hooks: security.hooks,
  });
  // A subscriber on everything, so fuzzed publishes fan out and get encoded.
  const subscriber = new MemoryConnection({ remoteAddress: "127.0.0.1" });
  subscriber.start(broker.accept);
  connections++;
  subscriber.push(
    new Uint8Array([
      ...[0x10, 0x0f, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0x02, 0x00, 0x00, 0x00],
      ...[0x00, 0x02, 0x73, 0x30], // client id "s0"
      ...[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0x23, 0x00], // SUBSCRIBE # QoS 0
    ]),
  );
  const heapBefore = Deno.memoryUsage().heapUsed;

  try {
    for (iteration = 0; iteration < options.iterations; iteration++) {
      if (faults.length >= maxFaults) break;
      current = mutator.input();
      // Decoder, at both protocol levels.
      for (const version of [4, 5] as ProtocolVersion[]) {
        const decoded: Packet[] = [];
        const decoder = new PacketDecoder({ onPacket: (p) => void decoded.push(p) }, {
          maximumPacketSize: 1 + mutator.int(2) === 1 ? 268_435_460 : 4096,
          protocolVersion: version,
        });
        try {
          for (const chunk of mutator.chunks(current)) decoder.push(chunk);
        } catch (error) {
          if (error instanceof MqttError) inputsRejected++;
          else fault("decoder", `v${version}: ${String((error as Error)?.stack ?? error)}`);
        }
        for (const packet of decoded) {
          packetsDecoded++;
          try {
            const invalid = validatePacket(packet, version);
            if (invalid !== undefined && !(invalid instanceof MqttError)) {
              fault("decoder", "validatePacket returned a non-MqttError");
            }
          } catch (error) {
            fault("decoder", `validatePacket threw: ${String((error as Error)?.stack ?? error)}`);
          }
        }
      }
      // Engine: a valid CONNECT, then the hostile bytes (sometimes twice, sometimes none first).
      const connection = new MemoryConnection({ remoteAddress: "127.0.0.1" });
      connection.start(broker.accept);
      connections++;
      const hostile = mutator.int(2) === 0 ? concat(current, current) : current;
      try {
        if (mutator.int(8) !== 0) {
          // Most of the time the hostile bytes come after a CONNECT that succeeded.
          const before = broker.stats.clientsConnectedTotal;
          for (const chunk of mutator.chunks(mutator.pick(CONNECTS).bytes)) connection.push(chunk);
          for (let i = 0; i < 100 && !connection.closed; i++) {
            if (broker.stats.clientsConnectedTotal !== before) break;
            await Promise.resolve(); // CONNECT completes in microtasks with the memory backbone
          }
        }
        for (const chunk of mutator.chunks(hostile)) connection.push(chunk);
      } catch (error) {
        fault("engine", `onData threw: ${String((error as Error)?.stack ?? error)}`);
      }
      // Let asynchronous work (hooks, backlog) run now and then before hanging up.
      if (iteration % 16 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
      else await Promise.resolve();
      connection.end();
      if (options.onProgress && iteration % (options.progressEvery ?? 10_000) === 0) {
        options.onProgress(iteration, faults.length);
      }
    }
    // Everything the fuzzed clients started must settle and be released.
    await new Promise((resolve) => setTimeout(resolve, 20));
    subscriber.end();
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (broker.connections.size !== 0) {
      fault("engine", `${broker.connections.size} connections never released (a hang)`);
    }
    if (broker.sessionCount !== 0) {
      fault("engine", `${broker.sessionCount} sessions left after every client closed`);
    }
  } finally {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    await broker.close(100);
    await backbone.close();
    security.close();
  }
  return {
    seed: options.seed,
    iterations: iteration,
    packetsDecoded,
    inputsRejected,
    connections,
    connected: broker.stats.clientsConnectedTotal,
    publishesReceived: broker.stats.publishReceived,
    protocolErrors: broker.stats.protocolErrors,
    faults,
    durationMs: Math.round(performance.now() - started),
    heapGrowthBytes: Deno.memoryUsage().heapUsed - heapBefore,
  };
}
