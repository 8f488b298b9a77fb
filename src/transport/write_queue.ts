/**
 * The outbound byte queue of one connection: frames in, buffers for single OS writes out.
 *
 * Small frames are copied into a batch buffer as they are queued, so a frame's buffer is free again
 * as soon as `push()` returns: encoders may carve frames out of a shared slab without the queue of a
 * slow connection pinning slabs. Frames of `COPY_LIMIT` bytes or more are kept by reference (never
 * copied) and written on their own. A batch is at most `MAX_BATCH` bytes, so the memory held is the
 * bytes queued plus at most one batch of slack. A written batch's buffer goes back to a small pool
 * shared by every queue, which fills the next batches from it: a busy broker does not allocate (and
 * collect) a buffer per write, and an idle connection keeps no buffer.
 *
 * @module
 */

/** Frames of this size or more are written by reference rather than copied into a batch. */
export const COPY_LIMIT = 16 * 1024;
/** Largest batch buffer. */
export const MAX_BATCH = 64 * 1024;
/** Smallest batch buffer. */
const MIN_BATCH = 512;

/** Bytes of written batch buffers the pool keeps per size class (`MIN_BATCH` times a power of 2). */
const POOL_BYTES_PER_CLASS = 256 * 1024;

/** Per size class, from `MIN_BATCH` up to `MAX_BATCH`: written batch buffers free for any queue. */
const pool: Uint8Array[][] = [];
for (let capacity = MIN_BATCH; capacity <= MAX_BATCH; capacity *= 2) pool.push([]);

function sizeClass(capacity: number): number {
  return 31 - Math.clz32(capacity / MIN_BATCH);
}

/** A batch buffer of `capacity` bytes (a power of 2 from `MIN_BATCH`), from the pool if it has one. */
function borrow(capacity: number): Uint8Array {
  return pool[sizeClass(capacity)].pop() ?? new Uint8Array(capacity);
}

/** Gives a batch buffer that nothing refers to any more back to the pool, if its class has room. */
function giveBack(buffer: Uint8Array): void {
  const free = pool[sizeClass(buffer.length)];
  if ((free.length + 1) * buffer.length <= POOL_BYTES_PER_CLASS) free.push(buffer);
}

/** Frames waiting to be written to one socket, in order. */
export class WriteQueue {
  /**
   * Sealed batches and large frames, in order; created when a second buffer must wait behind the
   * first (a connection whose writes fit one batch at a time never holds these lists).
   */
  #segments: Uint8Array[] | undefined = undefined;
  /** For each segment: whether it is a batch buffer of ours (reusable once written). */
  #owned: boolean[] | undefined = undefined;
  /** The batch being filled. */
  #tail: Uint8Array | undefined = undefined;
  #tailLength = 0;
  /** The whole buffer of the batch handed out by the last `take()`, until `written()`. */
  #inFlight: Uint8Array | undefined = undefined;
  #bytes = 0;

  /** Bytes queued and not yet taken. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Queues a frame: copies it into the current batch, or keeps a large one by reference (the
   * caller must not modify it afterwards).
   *
   * @param frame The bytes.
   */
  push(frame: Uint8Array): void {
    const length = frame.length;
    if (length === 0) return;
    this.#bytes += length;
    if (length >= COPY_LIMIT) {
      this.#seal();
      (this.#segments ??= []).push(frame);
      (this.#owned ??= []).push(false);
      return;
    }
    let tail = this.#tail;
    let offset = this.#tailLength;
    if (tail === undefined || offset + length > tail.length) {
      if (offset + length > MAX_BATCH) {
        this.#seal();
        offset = 0;
      }
      tail = this.#newTail(offset + length, offset);
    }
    tail.set(frame, offset);
    this.#tailLength = offset + length;
  }

  /**
   * Takes the next buffer to write: a batch of small frames or one large frame, in queue order.
   * Call {@linkcode WriteQueue.written} once it has been written.
   *
   * @returns The bytes, or `undefined` when nothing is queued.
   */
  take(): Uint8Array | undefined {
    const segments = this.#segments;
    if (segments === undefined || segments.length === 0) {
      // Nothing sealed waits: the batch being filled goes out (no list needed).
      const length = this.#tailLength;
      if (length === 0) return undefined;
      const tail = this.#tail!;
      this.#tail = undefined;
      this.#tailLength = 0;
      this.#bytes -= length;
      this.#inFlight = tail;
      return tail.subarray(0, length);
    }
    const next = segments.shift()!;
    const owned = this.#owned!.shift()!;
    this.#bytes -= next.length;
    this.#inFlight = owned ? new Uint8Array(next.buffer) : undefined;
    return next;
  }

  /**
   * The buffer from the last `take()` has been written and the transport keeps no reference to it:
   * its memory may hold the next batch of any queue.
   */
  written(): void {
    const done = this.#inFlight;
    this.#inFlight = undefined;
    if (done !== undefined) giveBack(done);
  }

  /** Drops everything queued. */
  clear(): void {
    this.#segments = undefined;
    this.#owned = undefined;
    this.#tail = undefined;
    this.#tailLength = 0;
    this.#inFlight = undefined;
    this.#bytes = 0;
  }

  #seal(): void {
    if (this.#tailLength === 0) return;
    (this.#segments ??= []).push(this.#tail!.subarray(0, this.#tailLength));
    (this.#owned ??= []).push(true);
    this.#tail = undefined;
    this.#tailLength = 0;
  }

  /** A batch buffer for `needed` bytes that starts with the first `keep` bytes of the tail. */
  #newTail(needed: number, keep: number): Uint8Array {
    let capacity = MIN_BATCH;
    while (capacity < needed) capacity *= 2;
    const buffer = borrow(capacity);
    const outgrown = this.#tail;
    if (outgrown !== undefined) {
      if (keep > 0) buffer.set(outgrown.subarray(0, keep));
      // Never handed out (a sealed batch is not a tail any more): free at once.
      giveBack(outgrown);
    }
    this.#tail = buffer;
    return buffer;
  }
}
