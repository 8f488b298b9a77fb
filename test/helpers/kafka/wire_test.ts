/**
 * The Kafka test server's encodings on their own: CRC-32C, the writer growing mid-field, varints at
 * their limits, and record batches through encode, split and decode (plain and gzip).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  Compression,
  crc32c,
  decodeBatchRecords,
  encodeRecordBatch,
  RecordSetError,
  splitBatches,
} from "./records.ts";
import { MalformedError, Reader, Writer } from "./wire.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("crc32c matches the Castagnoli check value", () => {
  assert.equal(crc32c(bytes("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array()), 0);
});

Deno.test("Writer keeps every field when it grows in the middle of writing", () => {
  const w = new Writer();
  for (let i = 0; i < 300; i++) w.int8(i & 0x7f).int64(i).raw(bytes("abc")).varlong(-i - 1);
  const r = new Reader(w.finish());
  for (let i = 0; i < 300; i++) {
    assert.equal(r.int8(), i & 0x7f);
    assert.equal(r.int64(), i);
    assert.deepEqual(r.raw(3), bytes("abc"));
    assert.equal(r.varlong(), -i - 1);
  }
  assert.equal(r.remaining, 0);
});

Deno.test("varints round-trip at their limits and overlong ones are malformed", () => {
  const ints = [0, 1, -1, 63, -64, 64, 2 ** 31 - 1, -(2 ** 31)];
  const longs = [0, -1, 1_700_000_000_000, -1_700_000_000_000, Number.MAX_SAFE_INTEGER];
  const w = new Writer();
  for (const n of ints) w.varint(n);
  for (const n of longs) w.varlong(n);
  w.uvarint(2 ** 32 - 1);
  const r = new Reader(w.finish());
  assert.deepEqual(ints.map(() => r.varint()), ints);
  assert.deepEqual(longs.map(() => r.varlong()), longs);
  assert.equal(r.uvarint(), 2 ** 32 - 1);
  assert.throws(() => new Reader(new Uint8Array(6).fill(0xff)).uvarint(), MalformedError);
  assert.throws(() => new Reader(new Uint8Array(11).fill(0xff)).varlong(), MalformedError);
  assert.throws(() => new Reader(new Uint8Array([0, 0, 0, 9])).array((r) => r.int8()));
});

for (const compression of [Compression.none, Compression.gzip]) {
  Deno.test(`a record batch (compression ${compression}) splits, checks and decodes to what was encoded`, async () => {
    const records = [
      { key: bytes("k1"), value: bytes("v1"), headers: [{ key: "h", value: bytes("x") }] },
      { key: null, value: null, headers: [{ key: "empty", value: null }] },
      { value: bytes("v3") },
    ];
    const encoded = await encodeRecordBatch({
      records,
      timestamp: 1_700_000_000_000,
      producerId: 5,
      producerEpoch: 1,
      baseSequence: 10,
      compression,
    });
    const [batch] = splitBatches(encoded);
    assert.equal(batch.compression, compression);
    assert.deepEqual(
      [batch.producerId, batch.producerEpoch, batch.baseSequence, batch.lastOffsetDelta],
      [5, 1, 10, 2],
    );
    const decoded = await decodeBatchRecords(batch, 1 << 20);
    assert.deepEqual(decoded, [
      {
        offsetDelta: 0,
        timestamp: 1_700_000_000_000,
        key: bytes("k1"),
        value: bytes("v1"),
        headers: [{ key: "h", value: bytes("x") }],
      },
      {
        offsetDelta: 1,
        timestamp: 1_700_000_000_000,
        key: null,
        value: null,
        headers: [{ key: "empty", value: null }],
      },
      { offsetDelta: 2, timestamp: 1_700_000_000_000, key: null, value: bytes("v3"), headers: [] },
    ]);
  });
}

Deno.test("a batch with a flipped bit, a short frame or a wrong record count is refused with Kafka's error", async () => {
  const encoded = await encodeRecordBatch({ records: [{ value: bytes("v") }] });
  const flipped = encoded.slice();
  flipped[encoded.length - 2] ^= 1;
  assert.throws(
    () => splitBatches(flipped),
    (err) => err instanceof RecordSetError && err.errorCode === 2,
  );
  assert.throws(
    () => splitBatches(encoded.subarray(0, 40)),
    (err) => err instanceof RecordSetError && err.errorCode === 2,
  );
  const [batch] = splitBatches(encoded);
  await assert.rejects(
    decodeBatchRecords({ ...batch, recordCount: 2 }, 1 << 20),
    (err) => err instanceof RecordSetError && err.errorCode === 2,
  );
  await assert.rejects(
    decodeBatchRecords({ ...batch, lastOffsetDelta: 3 }, 1 << 20),
    (err) => err instanceof RecordSetError && err.errorCode === 87,
  );
  const gzip = await encodeRecordBatch({
    records: [{ value: new Uint8Array(10_000) }],
    compression: Compression.gzip,
  });
  await assert.rejects(
    decodeBatchRecords(splitBatches(gzip)[0], 1000),
    (err) => err instanceof RecordSetError && /inflates too far/.test(err.message),
  );
});
