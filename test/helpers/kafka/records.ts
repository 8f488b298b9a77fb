/**
 * Kafka record batches (message format v2, magic 2): splitting a Produce request's record set into
 * batches, checking each batch's CRC-32C, decoding its records (gzip-compressed or not), and
 * encoding a batch (for tests that speak the protocol by hand).
 *
 * Batch layout: baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8,
 * crc uint32 (CRC-32C of everything after it), attributes int16 (bits 0-2 compression, 3 timestamp
 * type, 4 transactional, 5 control), lastOffsetDelta int32, baseTimestamp int64, maxTimestamp
 * int64, producerId int64, producerEpoch int16, baseSequence int32, then an int32 record count and
 * the records, compressed as a whole when the batch is.
 *
 * @module
 */

import { MalformedError, Reader, Writer } from "./wire.ts";

/** Bytes before the records: everything up to and including the record count. */
const BATCH_HEADER_BYTES = 61;
/** Offset of the CRC and of the first byte it covers. */
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;

/** Compression codecs of the attributes' low three bits. */
export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), as record batches carry it. */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC32C_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** A record header: a string key and a nullable byte value. */
export interface KafkaHeader {
  key: string;
  value: Uint8Array | null;
}

/** One record of a batch, before it is given an offset. */
export interface BatchRecord {
  offsetDelta: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: KafkaHeader[];
}

/** The fixed fields of a batch, and the batch's bytes. */
export interface BatchHeader {
  baseOffset: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  compression: number;
  transactional: boolean;
  control: boolean;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
  /** The whole batch, from baseOffset to its last byte. */
  bytes: Uint8Array;
}

/** Why a record set was refused, with the Kafka error code to answer. */
export class RecordSetError extends Error {
  override name = "RecordSetError";
  constructor(readonly errorCode: number, message: string) {
    super(message);
  }
}

const CORRUPT_MESSAGE = 2;
const INVALID_RECORD = 87;

/**
 * Splits a record set into batches and checks each one's framing, magic and CRC-32C. A record set
 * that does not frame is CORRUPT_MESSAGE, as is a CRC mismatch; a batch of another magic is
 * INVALID_RECORD (Produce v3 and later carry format v2 only).
 */
export function splitBatches(recordSet: Uint8Array): BatchHeader[] {
  const batches: BatchHeader[] = [];
  let at = 0;
  while (at < recordSet.length) {
    if (recordSet.length - at < BATCH_HEADER_BYTES) {
      throw new RecordSetError(CORRUPT_MESSAGE, "truncated record batch");
    }
    const view = new DataView(recordSet.buffer, recordSet.byteOffset + at);
    const batchLength = view.getInt32(8);
    const end = at + 12 + batchLength;
    if (batchLength < BATCH_HEADER_BYTES - 12 || end > recordSet.length) {
      throw new RecordSetError(CORRUPT_MESSAGE, `record batch length ${batchLength}`);
    }
    const header = readBatchHeader(recordSet.subarray(at, end));
    if (header.magic !== 2) {
      throw new RecordSetError(INVALID_RECORD, `record batch magic ${header.magic}, not 2`);
    }
    const computed = crc32c(header.bytes.subarray(ATTRIBUTES_AT));
    if (computed !== header.crc) {
      throw new RecordSetError(
        CORRUPT_MESSAGE,
        `record batch CRC-32C ${header.crc} does not match its bytes (${computed})`,
      );
    }
    batches.push(header);
    at = end;
  }
  return batches;
}

function readBatchHeader(bytes: Uint8Array): BatchHeader {
  const r = new Reader(bytes);
  const baseOffset = r.int64();
  r.int32(); // batchLength, already checked
  const partitionLeaderEpoch = r.int32();
  const magic = r.int8();
  const crc = r.uint32();
  const attributes = r.int16();
  return {
    baseOffset,
    partitionLeaderEpoch,
    magic,
    crc,
    attributes,
    compression: attributes & 0x7,
    transactional: (attributes & 0x10) !== 0,
    control: (attributes & 0x20) !== 0,
    lastOffsetDelta: r.int32(),
    baseTimestamp: r.int64(),
    maxTimestamp: r.int64(),
    producerId: r.int64(),
    producerEpoch: r.int16(),
    baseSequence: r.int32(),
    recordCount: r.int32(),
    bytes,
  };
}

/** Reads a gzip stream whole, refusing to inflate past `limit` bytes. */
async function gunzip(data: Uint8Array, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  for await (const chunk of stream) {
    total += chunk.length;
    if (total > limit) throw new RecordSetError(CORRUPT_MESSAGE, "gzip data inflates too far");
    chunks.push(chunk);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Decodes a batch's records (inflating gzip, at most `inflateLimit` bytes) and checks them as Kafka
 * does: the count matches the header, offset deltas run 0..n-1 and end at lastOffsetDelta.
 */
export async function decodeBatchRecords(
  batch: BatchHeader,
  inflateLimit: number,
): Promise<BatchRecord[]> {
  let body = batch.bytes.subarray(BATCH_HEADER_BYTES);
  if (batch.compression === Compression.gzip) {
    try {
      body = await gunzip(body, inflateLimit);
    } catch (err) {
      if (err instanceof RecordSetError) throw err;
      throw new RecordSetError(CORRUPT_MESSAGE, `gzip data does not inflate: ${err}`);
    }
  }
  const r = new Reader(body);
  const records: BatchRecord[] = [];
  try {
    for (let i = 0; i < batch.recordCount; i++) {
      records.push(readRecord(r, batch.baseTimestamp));
    }
  } catch (err) {
    if (err instanceof MalformedError) throw new RecordSetError(CORRUPT_MESSAGE, err.message);
    throw err;
  }
  if (r.remaining !== 0) {
    throw new RecordSetError(CORRUPT_MESSAGE, `${r.remaining} bytes after the last record`);
  }
  if (records.length === 0 || batch.lastOffsetDelta !== records.length - 1) {
    throw new RecordSetError(
      INVALID_RECORD,
      `${records.length} records but lastOffsetDelta ${batch.lastOffsetDelta}`,
    );
  }
  records.forEach((record, i) => {
    if (record.offsetDelta !== i) {
      throw new RecordSetError(
        INVALID_RECORD,
        `record ${i} has offset delta ${record.offsetDelta}`,
      );
    }
  });
  return records;
}

function readRecord(batch: Reader, baseTimestamp: number): BatchRecord {
  const length = batch.varint();
  const r = new Reader(batch.raw(length));
  r.int8(); // attributes, unused
  const timestamp = baseTimestamp + r.varlong();
  const offsetDelta = r.varint();
  const key = readVarBytes(r);
  const value = readVarBytes(r);
  const headerCount = r.varint();
  if (headerCount < 0 || headerCount > r.remaining) {
    throw new MalformedError(`header count ${headerCount}`);
  }
  const headers: KafkaHeader[] = [];
  for (let i = 0; i < headerCount; i++) {
    const keyBytes = readVarBytes(r);
    if (keyBytes === null) throw new MalformedError("null header key");
    headers.push({ key: new TextDecoder().decode(keyBytes), value: readVarBytes(r) });
  }
  if (r.remaining !== 0) throw new MalformedError(`${r.remaining} bytes after a record's fields`);
  return { offsetDelta, timestamp, key, value, headers };
}

function readVarBytes(r: Reader): Uint8Array | null {
  const length = r.varint();
  if (length < -1) throw new MalformedError(`varint length ${length}`);
  return length === -1 ? null : r.raw(length);
}

/** What {@link encodeRecordBatch} needs; producer fields default to "not idempotent". */
export interface BatchInput {
  records: { key?: Uint8Array | null; value: Uint8Array | null; headers?: KafkaHeader[] }[];
  timestamp?: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  compression?: number;
}

/** Encodes one uncompressed (or gzip) v2 record batch at base offset 0 with a correct CRC-32C. */
export async function encodeRecordBatch(input: BatchInput): Promise<Uint8Array> {
  const timestamp = input.timestamp ?? Date.now();
  const body = new Writer();
  input.records.forEach((record, i) => {
    const w = new Writer().int8(0).varlong(0).varint(i);
    writeVarBytes(w, record.key ?? null);
    writeVarBytes(w, record.value);
    const headers = record.headers ?? [];
    w.varint(headers.length);
    for (const header of headers) {
      writeVarBytes(w, new TextEncoder().encode(header.key));
      writeVarBytes(w, header.value);
    }
    body.varint(w.length).raw(w.finish());
  });
  const compression = input.compression ?? Compression.none;
  let records = body.finish();
  if (compression === Compression.gzip) {
    const stream = new Blob([records as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new CompressionStream("gzip"));
    records = new Uint8Array(await new Response(stream).arrayBuffer());
  }
  const w = new Writer()
    .int64(0)
    .int32(0) // batchLength, patched below
    .int32(-1)
    .int8(2)
    .uint32(0) // crc, patched below
    .int16(compression)
    .int32(input.records.length - 1)
    .int64(timestamp)
    .int64(timestamp)
    .int64(input.producerId ?? -1)
    .int16(input.producerEpoch ?? -1)
    .int32(input.baseSequence ?? -1)
    .int32(input.records.length)
    .raw(records);
  w.patchInt32(8, w.length - 12);
  const bytes = w.finish();
  const crc = crc32c(bytes.subarray(ATTRIBUTES_AT));
  new DataView(bytes.buffer).setUint32(CRC_AT, crc);
  return bytes;
}

function writeVarBytes(w: Writer, bytes: Uint8Array | null): void {
  if (bytes === null) w.varint(-1);
  else w.varint(bytes.length).raw(bytes);
}
