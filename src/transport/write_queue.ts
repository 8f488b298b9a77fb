/**
 * The outbound byte queue of one connection: frames in, buffers for single OS writes out.
 *
 * Small frames are copied into a batch buffer as they are queued, so a frame's buffer is free again
 * as soon as `push()` returns: encoders may carve frames out of a shared slab without the queue of a
 * slow connection pinning slabs. Frames of `COPY_LIMIT` bytes or more are kept by reference (never
 * copied) and written on their own. A batch is at most `MAX_BATCH` bytes, so the memory held is the
 * bytes queued plus at most one batch of slack. The buffer of a written batch holds the next batch
 * while frames keep coming; an idle connection keeps no buffer.
 *
 * @module
 */

/** Frames of this size or more are written by reference rather than copied into a batch. */
export const COPY_LIMIT = 16 * 1024;
/** Largest batch buffer. */
export const MAX_BATCH = 64 * 1024;
/** Smallest batch buffer. */
const MIN_BATCH = 512;

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
  /** A written batch buffer kept for the next batch. */
  #spare: Uint8Array | undefined = undefined;
  /** The batch handed out by the last `take()`, until `written()`. */
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
      const batch = this.#tail!.subarray(0, length);
      this.#tail = undefined;
      this.#tailLength = 0;
      this.#bytes -= length;
      this.#inFlight = batch;
      return batch;
    }
    const next = segments.shift()!;
    const owned = this.#owned!.shift()!;
    this.#bytes -= next.length;
    this.#inFlight = owned ? next : undefined;
    return next;
  }

  /** The buffer from the last `take()` has been written; its memory may hold the next batch. */
  written(): void {
    const done = this.#inFlight;
    this.#inFlight = undefined;
    if (this.#bytes === 0) this.#spare = undefined;
    else if (done !== undefined && this.#spare === undefined) {
      this.#spare = new Uint8Array(done.buffer);
    }
  }

  /** Drops everything queued. */
  clear(): void {
    this.#segments = undefined;
    this.#owned = undefined;
    this.#tail = undefined;
    this.#tailLength = 0;
    this.#spare = undefined;
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
    const spare = this.#spare;
    let buffer: Uint8Array;
    if (spare !== undefined && spare.length >= capacity) {
      buffer = spare;
      this.#spare = undefined;
    } else {
      buffer = new Uint8Array(capacity);
    }
    if (keep > 0) buffer.set(this.#tail!.subarray(0, keep));
    this.#tail = buffer;
    return buffer;
  }
}
