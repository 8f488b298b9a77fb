/**
 * Buffers for encoded packets. Allocating an `ArrayBuffer` has a high fixed cost (several hundred
 * nanoseconds in Deno, more than encoding a small packet), so the encoders accept an allocator, and
 * {@linkcode SlabAllocator} carves small buffers out of larger slabs, as Node.js does for
 * `Buffer.allocUnsafe`.
 *
 * @module
 */

/** Hands out zero-filled buffers for the encoders. */
export interface BufferAllocator {
  /** Returns a new buffer of exactly `size` bytes that no one else uses. */
  allocate(size: number): Uint8Array;
}

/** Options of {@linkcode SlabAllocator}. */
export interface SlabAllocatorOptions {
  /** Bytes per slab (default 16 KiB); requests above a quarter of it get their own buffer. */
  slabSize?: number;
}

/**
 * Carves buffers out of slabs. A slab is never reused: when it is full, a new one is allocated
 * and the old one is freed by the garbage collector once every buffer cut from it is gone. So a
 * buffer stays valid as long as it is referenced, but it also keeps its whole slab alive: copy an
 * encoded packet (`slice()`) before keeping it for long.
 *
 * @example Encode with a slab allocator
 * ```ts
 * import { encodePacket } from "./encode.ts";
 * import { SlabAllocator } from "./slab_allocator.ts";
 *
 * const options = { allocator: new SlabAllocator() };
 * const puback = encodePacket({ type: 4, packetId: 7, reasonCode: 0, properties: undefined }, 4, options);
 * console.log(puback.length); // 4
 * ```
 */
export class SlabAllocator implements BufferAllocator {
  readonly #slabSize: number;
  readonly #largest: number;
  #slab: Uint8Array;
  #offset = 0;

  /**
   * @param options The allocator options.
   * @throws {RangeError} When `slabSize` is not a positive integer.
   */
  constructor(options: SlabAllocatorOptions = {}) {
    const slabSize = options.slabSize ?? 16 * 1024;
    if (!Number.isInteger(slabSize) || slabSize < 1) {
      throw new RangeError(`Invalid slab size: ${slabSize} is not a positive integer`);
    }
    this.#slabSize = slabSize;
    this.#largest = slabSize >>> 2;
    this.#slab = new Uint8Array(slabSize);
  }

  /**
   * Returns a zero-filled buffer of `size` bytes: a view into the current slab, or a buffer of
   * its own when `size` is above a quarter of the slab size.
   *
   * @param size The number of bytes.
   * @returns The buffer.
   */
  allocate(size: number): Uint8Array {
    if (size > this.#largest) return new Uint8Array(size);
    if (this.#offset + size > this.#slabSize) {
      this.#slab = new Uint8Array(this.#slabSize);
      this.#offset = 0;
    }
    const start = this.#offset;
    // Keep each buffer 8-byte aligned, as a fresh ArrayBuffer would be.
    this.#offset = (start + size + 7) & ~7;
    return this.#slab.subarray(start, start + size);
  }
}
