/**
 * The Kafka test server spoken to by hand over a socket, for what kafkajs and kcat do not show:
 * version negotiation, bounds (a bad connection is closed alone), Produce's record checks, the
 * idempotent producer's sequence and epoch rules, Fetch's long poll, ListOffsets, SASL before
 * authentication and with SaslHandshake v0, and failNext on other APIs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ApiKey, ErrorCode, type KafkaTestServer, startKafkaTestServer } from "./mod.ts";
import { type BatchInput, Compression, crc32c, encodeRecordBatch } from "./records.ts";
import { Reader, Writer } from "./wire.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

/** A hand-driven Kafka client connection: one request at a time, frames in and out. */
class RawConnection {
  #conn: Deno.Conn;
  #pending = new Uint8Array();
  #correlationId = 0;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async open(server: KafkaTestServer): Promise<RawConnection> {
    return new RawConnection(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
  }

  async write(data: Uint8Array): Promise<void> {
    let at = 0;
    while (at < data.length) at += await this.#conn.write(data.subarray(at));
  }

  /** Sends a request (header v1) without reading an answer; returns its correlation id. */
  async send(apiKey: number, version: number, body: Writer): Promise<number> {
    const correlationId = ++this.#correlationId;
    const frame = new Writer().int16(apiKey).int16(version).int32(correlationId)
      .nullableString("raw").raw(body.finish()).finish();
    await this.write(new Writer().int32(frame.length).raw(frame).finish());
    return correlationId;
  }

  /** Sends a request and reads its response body (after the correlation id). */
  async request(apiKey: number, version: number, body: Writer): Promise<Reader> {
    const correlationId = await this.send(apiKey, version, body);
    const frame = await this.frame();
    assert.ok(frame, `the connection closed instead of answering key ${apiKey} v${version}`);
    const r = new Reader(frame);
    assert.equal(r.int32(), correlationId);
    return r;
  }

  /** The next length-prefixed frame, or null once the server has closed the connection. */
  async frame(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.#pending.length >= 4) {
        const size = new DataView(this.#pending.buffer, this.#pending.byteOffset).getInt32(0);
        if (this.#pending.length >= 4 + size) {
          const frame = this.#pending.slice(4, 4 + size);
          this.#pending = this.#pending.slice(4 + size);
          return frame;
        }
      }
      const chunk = new Uint8Array(65536);
      let n: number | null;
      try {
        n = await this.#conn.read(chunk);
      } catch {
        n = null; // reset by the server
      }
      if (n === null) return null;
      const grown = new Uint8Array(this.#pending.length + n);
      grown.set(this.#pending);
      grown.set(chunk.subarray(0, n), this.#pending.length);
      this.#pending = grown;
    }
  }

  /** Resolves true once the server closes the connection without sending anything more. */
  async closedByServer(): Promise<boolean> {
    return (await this.frame()) === null;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

async function withConnection<T>(
  server: KafkaTestServer,
  use: (c: RawConnection) => Promise<T>,
): Promise<T> {
  const connection = await RawConnection.open(server);
  try {
    return await use(connection);
  } finally {
    connection.close();
  }
}

function metadataRequest(topics: string[] | null, allowAutoCreation = true): Writer {
  const w = new Writer();
  if (topics === null) w.int32(-1);
  else w.array(topics, (w, t) => w.string(t));
  return w.bool(allowAutoCreation);
}

/** Metadata v4 topics: [error, name, partition count]. */
function readMetadataV4(r: Reader): [number, string, number][] {
  r.int32(); // throttle
  r.array((r) => [r.int32(), r.string(), r.int32(), r.nullableString()]);
  r.nullableString();
  r.int32();
  return r.array((r) => {
    const error = r.int16();
    const name = r.string();
    r.bool();
    const partitions = r.array((r) => {
      r.int16();
      r.int32();
      r.int32();
      r.array((r) => r.int32());
      r.array((r) => r.int32());
      return 0;
    });
    return [error, name, partitions.length];
  });
}

function produceRequest(topic: string, partition: number, records: Uint8Array, acks = -1): Writer {
  return new Writer().nullableString(null).int16(acks).int32(1000)
    .array(
      [topic],
      (w, t) => w.string(t).array([partition], (w, p) => w.int32(p).bytesField(records)),
    );
}

/** Produces one batch at Produce v7 and returns the partition's error code and base offset. */
async function produce(
  c: RawConnection,
  topic: string,
  partition: number,
  records: Uint8Array,
): Promise<{ error: number; offset: number }> {
  const r = await c.request(ApiKey.Produce, 7, produceRequest(topic, partition, records));
  const [[result]] = r.array((r) => {
    r.string();
    return r.array((r) => {
      r.int32();
      const error = r.int16();
      const offset = r.int64();
      r.int64();
      r.int64();
      return { error, offset };
    });
  });
  r.int32();
  return result;
}

const batch = (input: Partial<BatchInput> = {}) =>
  encodeRecordBatch({ records: [{ key: bytes("k"), value: bytes("v") }], ...input });

function fetchRequest(topic: string, partition: number, offset: number, maxWaitMs = 0): Writer {
  return new Writer().int32(-1).int32(maxWaitMs).int32(1).int32(1 << 20).int8(0).int32(0)
    .int32(-1)
    .array(
      [topic],
      (w, t) =>
        w.string(t).array(
          [partition],
          (w, p) => w.int32(p).int32(-1).int64(offset).int64(-1).int32(1 << 20),
        ),
    )
    .array([], () => {})
    .string("");
}

/** Fetch v11's one partition: error, high watermark and record set size. */
function readFetchV11(r: Reader): { error: number; highWatermark: number; records: number } {
  r.int32();
  assert.equal(r.int16(), ErrorCode.NONE);
  assert.equal(r.int32(), 0); // no fetch session
  const [[answer]] = r.array((r) => {
    r.string();
    return r.array((r) => {
      r.int32();
      const error = r.int16();
      const highWatermark = r.int64();
      r.int64();
      r.int64();
      r.array((r) => [r.int64(), r.int64()]);
      r.int32();
      return { error, highWatermark, records: r.bytesField()?.length ?? 0 };
    });
  });
  return answer;
}

Deno.test("ApiVersions v0-v3 list every served API; a higher version is answered at v0 with UNSUPPORTED_VERSION and the list", async () => {
  await using server = await startKafkaTestServer();
  await withConnection(server, async (c) => {
    for (const version of [0, 1, 2]) {
      const r = await c.request(ApiKey.ApiVersions, version, new Writer());
      assert.equal(r.int16(), ErrorCode.NONE);
      const apis = new Map(r.array((r) => [r.int16(), [r.int16(), r.int16()]]));
      assert.deepEqual(apis.get(ApiKey.Produce), [0, 8]);
      assert.deepEqual(apis.get(ApiKey.Fetch), [4, 11]);
      assert.deepEqual(apis.get(ApiKey.Metadata), [0, 8]);
      if (version >= 1) assert.equal(r.int32(), 0);
      assert.equal(r.remaining, 0);
    }
    // v3 is flexible: compact strings and tagged fields in the body, and in the request header.
    const v3 = new Writer().noTags().uvarint(5).raw(bytes("test")).uvarint(2).raw(bytes("1"))
      .noTags();
    const r3 = await c.request(ApiKey.ApiVersions, 3, v3);
    assert.equal(r3.int16(), ErrorCode.NONE);
    const count = r3.uvarint() - 1;
    assert.ok(count >= 9);

    const r9 = await c.request(ApiKey.ApiVersions, 9, new Writer());
    assert.equal(r9.int16(), ErrorCode.UNSUPPORTED_VERSION);
    const listed = r9.array((r) => [r.int16(), r.int16(), r.int16()]);
    assert.ok(listed.some(([key, , max]) => key === ApiKey.ApiVersions && max === 3));
  });
});

Deno.test("an oversized frame, a truncated request, an unknown API key and an unserved version each close only their own connection", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 }, maxRequestBytes: 4096 });
  const bystander = await RawConnection.open(server);
  try {
    await withConnection(server, async (c) => {
      await c.write(new Writer().int32(1 << 20).finish());
      assert.ok(await c.closedByServer());
    });
    await withConnection(server, async (c) => {
      const frame = new Writer().int16(ApiKey.Metadata).int16(4).int32(1).nullableString("x")
        .int32(3).finish(); // three topic names promised, none sent
      await c.write(new Writer().int32(frame.length).raw(frame).finish());
      assert.ok(await c.closedByServer());
    });
    await withConnection(server, async (c) => {
      await c.send(9999, 0, new Writer());
      assert.ok(await c.closedByServer());
    });
    await withConnection(server, async (c) => {
      await c.send(ApiKey.Metadata, 12, new Writer());
      assert.ok(await c.closedByServer());
    });
    await withConnection(server, async (c) => {
      await c.send(ApiKey.Produce, 2, new Writer()); // advertised (like Kafka 4.0), not served
      assert.ok(await c.closedByServer());
    });
    assert.equal(server.problems.length, 5);
    assert.deepEqual(
      server.requests.filter((r) => !r.supported).map((r) => [r.apiKey, r.apiVersion]),
      [[9999, 0], [ApiKey.Metadata, 12], [ApiKey.Produce, 2]],
    );
    const topics = readMetadataV4(
      await bystander.request(ApiKey.Metadata, 4, metadataRequest(["events"])),
    );
    assert.deepEqual(topics, [[ErrorCode.NONE, "events", 1]]);
  } finally {
    bystander.close();
  }
});

Deno.test("Metadata creates a named topic when the request and the server allow it, never an invalid name", async () => {
  await using server = await startKafkaTestServer({ defaultPartitions: 3 });
  await withConnection(server, async (c) => {
    const ask = async (topics: string[] | null, allow = true) =>
      readMetadataV4(await c.request(ApiKey.Metadata, 4, metadataRequest(topics, allow)));
    assert.deepEqual(await ask(["kept"], false), [[
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      "kept",
      0,
    ]]);
    assert.deepEqual(await ask(["made"]), [[ErrorCode.NONE, "made", 3]]);
    assert.deepEqual(await ask(["no/slash"]), [[ErrorCode.INVALID_TOPIC_EXCEPTION, "no/slash", 0]]);
    assert.deepEqual(await ask(null), [[ErrorCode.NONE, "made", 3]]);
    server.failNext(ApiKey.Metadata, ErrorCode.LEADER_NOT_AVAILABLE);
    assert.deepEqual(await ask(["made"]), [[ErrorCode.LEADER_NOT_AVAILABLE, "made", 0]]);
  });
  await using closed = await startKafkaTestServer({ autoCreateTopics: false });
  await withConnection(closed, async (c) => {
    const r = await c.request(ApiKey.Metadata, 4, metadataRequest(["nope"]));
    assert.deepEqual(readMetadataV4(r), [[ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "nope", 0]]);
  });
});

Deno.test("Produce refuses a bad CRC, two batches, an unknown partition, an oversized batch, bad acks and transactions", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 }, maxBatchBytes: 1000 });
  await withConnection(server, async (c) => {
    const good = await batch();
    const corrupt = good.slice();
    corrupt[corrupt.length - 1] ^= 0xff;
    assert.equal((await produce(c, "events", 0, corrupt)).error, ErrorCode.CORRUPT_MESSAGE);
    const two = new Uint8Array([...good, ...good]);
    assert.equal((await produce(c, "events", 0, two)).error, ErrorCode.INVALID_RECORD);
    assert.equal(
      (await produce(c, "events", 1, good)).error,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
    assert.equal(
      (await produce(c, "other", 0, good)).error,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
    const big = await batch({ records: [{ value: new Uint8Array(2000) }] });
    assert.equal((await produce(c, "events", 0, big)).error, ErrorCode.MESSAGE_TOO_LARGE);
    const snappy = new Uint8Array(good);
    new DataView(snappy.buffer).setInt16(21, Compression.snappy);
    assert.equal(
      (await produce(c, "events", 0, reCrc(snappy))).error,
      ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
    );
    const transactional = new Uint8Array(good);
    new DataView(transactional.buffer).setInt16(21, 0x10);
    assert.equal(
      (await produce(c, "events", 0, reCrc(transactional))).error,
      ErrorCode.INVALID_TXN_STATE,
    );
    const r = await c.request(ApiKey.Produce, 7, produceRequest("events", 0, good, 2));
    r.int32();
    r.string();
    r.int32();
    r.int32();
    assert.equal(r.int16(), ErrorCode.INVALID_REQUIRED_ACKS);

    assert.deepEqual(await produce(c, "events", 0, good), { error: ErrorCode.NONE, offset: 0 });
    const gzip = await batch({ compression: Compression.gzip });
    assert.deepEqual(await produce(c, "events", 0, gzip), { error: ErrorCode.NONE, offset: 1 });
  });
  assert.equal(server.records("events").length, 2);
});

/** Recomputes the CRC-32C of a batch whose attributes a test edited. */
function reCrc(edited: Uint8Array): Uint8Array {
  new DataView(edited.buffer).setUint32(17, crc32c(edited.subarray(21)));
  return edited;
}

Deno.test("Produce with acks=0 gets no response, and the next request's answer comes next", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  await withConnection(server, async (c) => {
    await c.send(ApiKey.Produce, 7, produceRequest("events", 0, await batch(), 0));
    const r = await c.request(ApiKey.ApiVersions, 0, new Writer()); // checks the correlation id
    assert.equal(r.int16(), ErrorCode.NONE);
  });
  assert.equal(server.records("events").length, 1);
});

Deno.test("the idempotent producer: a retried batch keeps its first offset, a gap or a new epoch not at 0 is OUT_OF_ORDER, an old epoch INVALID_PRODUCER_EPOCH", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  await withConnection(server, async (c) => {
    const send = async (producerEpoch: number, baseSequence: number, records = 1) =>
      await produce(
        c,
        "events",
        0,
        await batch({
          producerId: 7,
          producerEpoch,
          baseSequence,
          records: Array.from({ length: records }, (_, i) => ({ value: bytes(`${i}`) })),
        }),
      );
    assert.deepEqual(await send(0, 0, 2), { error: ErrorCode.NONE, offset: 0 });
    assert.deepEqual(await send(0, 0, 2), { error: ErrorCode.NONE, offset: 0 }); // retry
    assert.equal((await send(0, 3)).error, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert.deepEqual(await send(0, 2), { error: ErrorCode.NONE, offset: 2 });
    for (let seq = 3; seq < 8; seq++) assert.equal((await send(0, seq)).error, ErrorCode.NONE);
    // Only the last five batches are remembered: the first one is now too old to be a retry.
    assert.equal((await send(0, 0, 2)).error, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert.deepEqual(await send(0, 7), { error: ErrorCode.NONE, offset: 7 }); // still remembered
    assert.equal((await send(1, 8)).error, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert.deepEqual(await send(1, 0), { error: ErrorCode.NONE, offset: 8 });
    assert.equal((await send(0, 8)).error, ErrorCode.INVALID_PRODUCER_EPOCH);
  });
  const records = server.records("events");
  assert.deepEqual(records.map((r) => r.offset), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(records.map((r) => r.sequence), [0, 1, 2, 3, 4, 5, 6, 7, 0]);
});

Deno.test("InitProducerId hands out a new producer id each time, refuses a transactional id, and honours failNext", async () => {
  await using server = await startKafkaTestServer();
  await withConnection(server, async (c) => {
    const init = async (transactionalId: string | null) => {
      const r = await c.request(
        ApiKey.InitProducerId,
        1,
        new Writer().nullableString(transactionalId).int32(60_000),
      );
      r.int32();
      return { error: r.int16(), id: r.int64(), epoch: r.int16() };
    };
    const first = await init(null);
    const second = await init(null);
    assert.equal(first.error, ErrorCode.NONE);
    assert.equal(first.epoch, 0);
    assert.notEqual(first.id, second.id);
    assert.equal((await init("tx")).error, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    server.failNext(ApiKey.InitProducerId, ErrorCode.COORDINATOR_NOT_AVAILABLE);
    assert.deepEqual(await init(null), {
      error: ErrorCode.COORDINATOR_NOT_AVAILABLE,
      id: -1,
      epoch: -1,
    });
  });
});

Deno.test("Fetch waits for data up to max_wait_ms and answers as soon as a record arrives", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  const consumer = await RawConnection.open(server);
  try {
    const waiting = consumer.request(ApiKey.Fetch, 11, fetchRequest("events", 0, 0, 60_000));
    await server.until(() => server.requests.some((r) => r.apiKey === ApiKey.Fetch));
    await withConnection(server, async (producer) => {
      assert.equal((await produce(producer, "events", 0, await batch())).error, ErrorCode.NONE);
    });
    const answer = readFetchV11(await waiting);
    assert.equal(answer.error, ErrorCode.NONE);
    assert.equal(answer.highWatermark, 1);
    assert.ok(answer.records > 0);

    // Errors are answered at once, whatever max_wait_ms says.
    const past = readFetchV11(
      await consumer.request(ApiKey.Fetch, 11, fetchRequest("events", 0, 5, 60_000)),
    );
    assert.equal(past.error, ErrorCode.OFFSET_OUT_OF_RANGE);
    const unknown = readFetchV11(
      await consumer.request(ApiKey.Fetch, 11, fetchRequest("nope", 0, 0, 60_000)),
    );
    assert.equal(unknown.error, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    server.failNext(ApiKey.Fetch, ErrorCode.NOT_LEADER_OR_FOLLOWER);
    const failed = readFetchV11(
      await consumer.request(ApiKey.Fetch, 11, fetchRequest("events", 0, 0, 60_000)),
    );
    assert.deepEqual(failed, {
      error: ErrorCode.NOT_LEADER_OR_FOLLOWER,
      highWatermark: -1,
      records: 0,
    });
  } finally {
    consumer.close();
  }
});

Deno.test("ListOffsets answers the earliest, the latest and the first offset at or after a timestamp", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  await withConnection(server, async (c) => {
    for (const timestamp of [1000, 2000, 3000]) {
      await produce(c, "events", 0, await batch({ timestamp }));
    }
    const list = async (timestamp: number) => {
      const r = await c.request(
        ApiKey.ListOffsets,
        2,
        new Writer().int32(-1).int8(0).array(
          ["events"],
          (w, t) => w.string(t).array([0], (w, p) => w.int32(p).int64(timestamp)),
        ),
      );
      r.int32();
      const [[answer]] = r.array((r) => {
        r.string();
        return r.array((r) => {
          r.int32();
          return { error: r.int16(), timestamp: r.int64(), offset: r.int64() };
        });
      });
      return answer;
    };
    assert.deepEqual(await list(-2), { error: 0, timestamp: -1, offset: 0 });
    assert.deepEqual(await list(-1), { error: 0, timestamp: -1, offset: 3 });
    assert.deepEqual(await list(1500), { error: 0, timestamp: 2000, offset: 1 });
    assert.deepEqual(await list(9000), { error: 0, timestamp: -1, offset: -1 });
  });
});

Deno.test("SASL: nothing but ApiVersions and SaslHandshake before authentication; SaslHandshake v0 then a bare PLAIN token authenticates", async () => {
  await using server = await startKafkaTestServer({
    topics: { events: 1 },
    sasl: { users: { alice: "wonderland" }, mechanisms: ["PLAIN"] },
  });
  await withConnection(server, async (c) => {
    await c.send(ApiKey.Metadata, 4, metadataRequest(null));
    assert.ok(await c.closedByServer());
  });
  await withConnection(server, async (c) => {
    const r = await c.request(ApiKey.SaslHandshake, 1, new Writer().string("SCRAM-SHA-256"));
    assert.equal(r.int16(), ErrorCode.UNSUPPORTED_SASL_MECHANISM);
    assert.deepEqual(r.array((r) => r.string()), ["PLAIN"]);
    assert.ok(await c.closedByServer());
  });
  await withConnection(server, async (c) => {
    const r = await c.request(ApiKey.SaslHandshake, 0, new Writer().string("PLAIN"));
    assert.equal(r.int16(), ErrorCode.NONE);
    await c.write(new Writer().bytesField(bytes("\0alice\0wonderland")).finish());
    assert.deepEqual(await c.frame(), new Uint8Array()); // an empty token: authenticated
    const topics = readMetadataV4(await c.request(ApiKey.Metadata, 4, metadataRequest(null)));
    assert.deepEqual(topics, [[ErrorCode.NONE, "events", 1]]);
    const again = await c.request(ApiKey.SaslHandshake, 1, new Writer().string("PLAIN"));
    assert.equal(again.int16(), ErrorCode.ILLEGAL_SASL_STATE);
  });
  await withConnection(server, async (c) => {
    await c.request(ApiKey.SaslHandshake, 0, new Writer().string("PLAIN"));
    await c.write(new Writer().bytesField(bytes("\0alice\0rabbit")).finish());
    assert.ok(await c.closedByServer());
  });
  assert.deepEqual(
    server.requests.filter((r) => r.apiKey === ApiKey.Metadata).map((r) => r.user),
    [undefined, "alice"],
  );
});

Deno.test("stop() closes open connections and start() serves the same port with the records kept; refuse() closes new ones at once", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  const open = await RawConnection.open(server);
  try {
    assert.equal((await produce(open, "events", 0, await batch())).error, ErrorCode.NONE);
    await server.stop();
    assert.ok(await open.closedByServer());
    await assert.rejects(RawConnection.open(server), Deno.errors.ConnectionRefused);
  } finally {
    open.close();
  }
  await server.start();
  await withConnection(server, async (c) => {
    assert.deepEqual(await produce(c, "events", 0, await batch()), { error: 0, offset: 1 });
  });
  server.refuse();
  await withConnection(server, async (c) => {
    assert.ok(await c.closedByServer());
  });
  assert.equal(server.refusedConnections, 1);
});

/** JoinGroup v5 with one "range" protocol whose metadata is the member's name. */
function joinRequest(memberId: string, name: string, sessionTimeoutMs = 10_000): Writer {
  return new Writer().string("group").int32(sessionTimeoutMs).int32(10_000).string(memberId)
    .nullableString(null).string("consumer")
    .array([name], (w, n) => w.string("range").bytesField(bytes(n)));
}

interface Joined {
  error: number;
  generation: number;
  leader: string;
  memberId: string;
  members: string[];
}

function readJoin(r: Reader): Joined {
  r.int32();
  const error = r.int16();
  const generation = r.int32();
  r.string(); // protocol
  const leader = r.string();
  const memberId = r.string();
  const members = r.array((r) => {
    r.string();
    r.nullableString();
    return new TextDecoder().decode(r.bytesField()!);
  });
  return { error, generation, leader, memberId, members };
}

async function syncGroup(
  c: RawConnection,
  generation: number,
  memberId: string,
  assignments: [string, string][] = [],
): Promise<[number, string]> {
  const r = await c.request(
    ApiKey.SyncGroup,
    3,
    new Writer().string("group").int32(generation).string(memberId).nullableString(null)
      .array(assignments, (w, [id, a]) => w.string(id).bytesField(bytes(a))),
  );
  r.int32();
  return [r.int16(), new TextDecoder().decode(r.bytesField()!)];
}

async function heartbeat(c: RawConnection, generation: number, memberId: string): Promise<number> {
  const r = await c.request(
    ApiKey.Heartbeat,
    3,
    new Writer().string("group").int32(generation).string(memberId).nullableString(null),
  );
  r.int32();
  return r.int16();
}

Deno.test("consumer groups: a join rebalances the group, the leader's sync hands out assignments, heartbeats tell members to rejoin", async () => {
  await using server = await startKafkaTestServer();
  const a = await RawConnection.open(server);
  const b = await RawConnection.open(server);
  try {
    const first = readJoin(await a.request(ApiKey.JoinGroup, 5, joinRequest("", "a")));
    assert.equal(first.error, ErrorCode.NONE);
    assert.equal(first.leader, first.memberId);
    assert.deepEqual(first.members, ["a"]);
    assert.deepEqual(await syncGroup(a, 1, first.memberId, [[first.memberId, "all"]]), [0, "all"]);
    assert.equal(await heartbeat(a, 1, first.memberId), ErrorCode.NONE);

    // b joins: its join waits until a rejoins, which a learns from its heartbeat.
    const joiningB = b.request(ApiKey.JoinGroup, 5, joinRequest("", "b"));
    await server.until(() =>
      server.requests.filter((r) => r.apiKey === ApiKey.JoinGroup).length === 2
    );
    assert.equal(await heartbeat(a, 1, first.memberId), ErrorCode.REBALANCE_IN_PROGRESS);
    const rejoinedA = readJoin(
      await a.request(ApiKey.JoinGroup, 5, joinRequest(first.memberId, "a")),
    );
    const joinedB = readJoin(await joiningB);
    assert.equal(rejoinedA.generation, 2);
    assert.equal(joinedB.generation, 2);
    assert.equal(rejoinedA.leader, first.memberId);
    assert.deepEqual(rejoinedA.members.sort(), ["a", "b"]);
    assert.deepEqual(joinedB.members, []); // only the leader gets the metadata

    const syncingB = syncGroup(b, 2, joinedB.memberId);
    await server.until(() =>
      server.requests.filter((r) => r.apiKey === ApiKey.SyncGroup).length === 2
    );
    const leaderSync = await syncGroup(a, 2, first.memberId, [
      [first.memberId, "p0"],
      [joinedB.memberId, "p1"],
    ]);
    assert.deepEqual(leaderSync, [0, "p0"]);
    assert.deepEqual(await syncingB, [0, "p1"]);
    assert.equal(await heartbeat(b, 1, joinedB.memberId), ErrorCode.ILLEGAL_GENERATION);
    assert.equal(await heartbeat(b, 2, "stranger"), ErrorCode.UNKNOWN_MEMBER_ID);

    // a leaves; b is told to rejoin and becomes the leader of generation 3 alone.
    const left = await a.request(
      ApiKey.LeaveGroup,
      3,
      new Writer().string("group").array(
        [first.memberId],
        (w, id) => w.string(id).nullableString(null),
      ),
    );
    left.int32();
    assert.equal(left.int16(), ErrorCode.NONE);
    assert.equal(await heartbeat(b, 2, joinedB.memberId), ErrorCode.REBALANCE_IN_PROGRESS);
    const alone = readJoin(
      await b.request(ApiKey.JoinGroup, 5, joinRequest(joinedB.memberId, "b")),
    );
    assert.deepEqual([alone.generation, alone.leader, alone.members], [3, joinedB.memberId, ["b"]]);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("consumer groups: a member silent past its session timeout is dropped, and a waiting join completes without it", async () => {
  await using server = await startKafkaTestServer();
  await withConnection(server, async (c) => {
    const silent = readJoin(await c.request(ApiKey.JoinGroup, 5, joinRequest("", "silent", 50)));
    assert.deepEqual(await syncGroup(c, 1, silent.memberId, [[silent.memberId, "x"]]), [0, "x"]);
    // The rebalance timeout is 10 s; the join is answered once the silent member's session ends.
    const other = readJoin(await c.request(ApiKey.JoinGroup, 5, joinRequest("", "other")));
    assert.deepEqual([other.generation, other.members], [2, ["other"]]);
    assert.equal(await heartbeat(c, 2, silent.memberId), ErrorCode.UNKNOWN_MEMBER_ID);
  });
});

Deno.test("OffsetCommit checks the member and generation and OffsetFetch returns what was committed, -1 for the rest", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 2 } });
  await withConnection(server, async (c) => {
    const commit = async (generation: number, memberId: string, partition: number) => {
      const r = await c.request(
        ApiKey.OffsetCommit,
        2,
        new Writer().string("group").int32(generation).string(memberId).int64(-1)
          .array(
            ["events"],
            (w, t) =>
              w.string(t).array([partition], (w, p) => w.int32(p).int64(42).nullableString("meta")),
          ),
      );
      const [[error]] = r.array((r) => {
        r.string();
        return r.array((r) => {
          r.int32();
          return r.int16();
        });
      });
      return error;
    };
    // Outside any group (generation -1) while the group has no members: allowed.
    assert.equal(await commit(-1, "", 0), ErrorCode.NONE);
    assert.equal(await commit(-1, "", 7), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    const member = readJoin(await c.request(ApiKey.JoinGroup, 5, joinRequest("", "m")));
    assert.equal(await commit(-1, "", 1), ErrorCode.ILLEGAL_GENERATION);
    assert.equal(await commit(1, "stranger", 1), ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal(await commit(1, member.memberId, 1), ErrorCode.REBALANCE_IN_PROGRESS);
    await syncGroup(c, 1, member.memberId, []);
    assert.equal(await commit(1, member.memberId, 1), ErrorCode.NONE);

    const r = await c.request(
      ApiKey.OffsetFetch,
      2,
      new Writer().string("group").array(
        ["events", "other"],
        (w, t) => w.string(t).array([0, 1], (w, p) => w.int32(p)),
      ),
    );
    const fetched = r.array((r) => [
      r.string(),
      r.array((r) => [r.int32(), r.int64(), r.nullableString(), r.int16()]),
    ]);
    assert.equal(r.int16(), ErrorCode.NONE);
    assert.deepEqual(fetched, [
      ["events", [[0, 42, "meta", 0], [1, 42, "meta", 0]]],
      ["other", [[0, -1, "", 0], [1, -1, "", 0]]],
    ]);
  });
  assert.equal(server.committedOffset("group", "events", 1), 42);
});
