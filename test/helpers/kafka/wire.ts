/**
 * Kafka wire primitives: a bounds-checked reader and a growable writer for the protocol's
 * big-endian integers, strings, byte arrays and arrays, the zig-zag varints of record batches, and
 * the unsigned varints, compact strings and tagged fields of flexible versions.
 *
 * 64-bit integers are read as JavaScript numbers: offsets, millisecond timestamps and the producer
 * ids this server hands out stay far below 2^53.
 *
 * @module
 */

/** A request (or a record batch) that does not decode: the connection that sent it is closed. */
export class MalformedError extends Error {
  override name = "MalformedError";
}

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/** Reads Kafka fields from one buffer, throwing {@link MalformedError} past its end. */
export class Reader {
  readonly bytes: Uint8Array;
  #view: DataView;
  offset = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  #take(n: number): number {
    if (n < 0 || this.offset + n > this.bytes.length) {
      throw new MalformedError(`needs ${n} bytes at ${this.offset}, has ${this.remaining}`);
    }
    const at = this.offset;
    this.offset += n;
    return at;
  }

  int8(): number {
    return this.#view.getInt8(this.#take(1));
  }

  bool(): boolean {
    return this.int8() !== 0;
  }

  int16(): number {
    return this.#view.getInt16(this.#take(2));
  }

  int32(): number {
    return this.#view.getInt32(this.#take(4));
  }

  uint32(): number {
    return this.#view.getUint32(this.#take(4));
  }

  int64(): number {
    return Number(this.#view.getBigInt64(this.#take(8)));
  }

  raw(n: number): Uint8Array {
    const at = this.#take(n);
    return this.bytes.subarray(at, at + n);
  }

  /** A non-null STRING (int16 length). */
  string(): string {
    const text = this.nullableString();
    if (text === null) throw new MalformedError("null where a string is required");
    return text;
  }

  /** A NULLABLE_STRING (int16 length, -1 for null). */
  nullableString(): string | null {
    const length = this.int16();
    if (length < -1) throw new MalformedError(`string length ${length}`);
    return length === -1 ? null : utf8.decode(this.raw(length));
  }

  /** NULLABLE_BYTES (int32 length, -1 for null). */
  bytesField(): Uint8Array | null {
    const length = this.int32();
    if (length < -1) throw new MalformedError(`bytes length ${length}`);
    return length === -1 ? null : this.raw(length);
  }

  /** ARRAY (int32 count) of elements each at least one byte long; null (-1) reads as []. */
  array<T>(element: (reader: Reader) => T): T[] {
    return this.nullableArray(element) ?? [];
  }

  /** ARRAY that may be null (-1). */
  nullableArray<T>(element: (reader: Reader) => T): T[] | null {
    const count = this.int32();
    return count === -1 ? null : this.#elements(count, element);
  }

  #elements<T>(count: number, element: (reader: Reader) => T): T[] {
    if (count < 0 || count > this.remaining) throw new MalformedError(`array count ${count}`);
    const items: T[] = [];
    for (let i = 0; i < count; i++) items.push(element(this));
    return items;
  }

  /** Unsigned LEB128 varint of at most 32 bits (flexible versions' lengths and tags). */
  uvarint(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.#view.getUint8(this.#take(1));
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        if (value > 0xffffffff) break;
        return value;
      }
    }
    throw new MalformedError("unsigned varint longer than 32 bits");
  }

  /** Zig-zag varint (record fields): at most 32 bits. */
  varint(): number {
    const value = this.uvarint();
    return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
  }

  /** Zig-zag varlong (record timestamps): at most 64 bits. */
  varlong(): number {
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const byte = this.#view.getUint8(this.#take(1));
      value |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) {
        if (value >= 1n << 64n) break;
        return Number((value >> 1n) ^ -(value & 1n));
      }
    }
    throw new MalformedError("varlong longer than 64 bits");
  }

  /** COMPACT_NULLABLE_STRING (uvarint length + 1, 0 for null). */
  compactNullableString(): string | null {
    const length = this.uvarint() - 1;
    return length === -1 ? null : utf8.decode(this.raw(length));
  }

  /** Skips a flexible version's tagged-field section. */
  skipTags(): void {
    const count = this.uvarint();
    if (count > this.remaining) throw new MalformedError(`tag count ${count}`);
    for (let i = 0; i < count; i++) {
      this.uvarint();
      this.raw(this.uvarint());
    }
  }
}

/** Builds Kafka fields into a growing buffer. */
export class Writer {
  #buffer = new Uint8Array(256);
  #view = new DataView(this.#buffer.buffer);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  #reserve(n: number): number {
    const need = this.#length + n;
    if (need > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(need, this.#buffer.length * 2));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
      this.#view = new DataView(grown.buffer);
    }
    const at = this.#length;
    this.#length = need;
    return at;
  }

  #byte(value: number): this {
    const at = this.#reserve(1);
    this.#view.setUint8(at, value);
    return this;
  }

  int8(value: number): this {
    const at = this.#reserve(1);
    this.#view.setInt8(at, value);
    return this;
  }

  bool(value: boolean): this {
    return this.int8(value ? 1 : 0);
  }

  int16(value: number): this {
    const at = this.#reserve(2);
    this.#view.setInt16(at, value);
    return this;
  }

  int32(value: number): this {
    const at = this.#reserve(4);
    this.#view.setInt32(at, value);
    return this;
  }

  uint32(value: number): this {
    const at = this.#reserve(4);
    this.#view.setUint32(at, value);
    return this;
  }

  int64(value: number): this {
    const at = this.#reserve(8);
    this.#view.setBigInt64(at, BigInt(value));
    return this;
  }

  raw(bytes: Uint8Array): this {
    const at = this.#reserve(bytes.length);
    this.#buffer.set(bytes, at);
    return this;
  }

  string(text: string): this {
    const bytes = encoder.encode(text);
    return this.int16(bytes.length).raw(bytes);
  }

  nullableString(text: string | null): this {
    return text === null ? this.int16(-1) : this.string(text);
  }

  bytesField(bytes: Uint8Array | null): this {
    return bytes === null ? this.int32(-1) : this.int32(bytes.length).raw(bytes);
  }

  array<T>(items: readonly T[], element: (writer: Writer, item: T) => void): this {
    this.int32(items.length);
    for (const item of items) element(this, item);
    return this;
  }

  uvarint(value: number): this {
    let rest = value;
    while (rest >= 0x80) {
      this.#byte((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    return this.#byte(rest);
  }

  varint(value: number): this {
    return this.uvarint(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  varlong(value: number): this {
    let rest = (BigInt(value) << 1n) ^ (BigInt(value) >> 63n);
    rest = BigInt.asUintN(64, rest);
    while (rest >= 0x80n) {
      this.#byte(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    return this.#byte(Number(rest));
  }

  /** COMPACT_ARRAY (uvarint count + 1). */
  compactArray<T>(items: readonly T[], element: (writer: Writer, item: T) => void): this {
    this.uvarint(items.length + 1);
    for (const item of items) element(this, item);
    return this;
  }

  /** An empty tagged-field section. */
  noTags(): this {
    return this.uvarint(0);
  }

  /** Overwrites an int32 written earlier (a length or a CRC known only at the end). */
  patchInt32(at: number, value: number): this {
    this.#view.setInt32(at, value);
    return this;
  }

  /** The bytes written so far (a copy, so the writer may go on). */
  finish(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }
}
