import assert from "node:assert/strict";
import { COPY_LIMIT, MAX_BATCH, WriteQueue } from "../../src/transport/write_queue.ts";

function bytes(length: number, fill: number): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

/** Takes everything queued, marking each buffer written, and returns the buffers in order. */
function drain(queue: WriteQueue): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let next = queue.take(); next !== undefined; next = queue.take()) {
    out.push(next.slice());
    queue.written();
  }
  return out;
}

function concat(parts: Uint8Array[]): number[] {
  return parts.flatMap((part) => [...part]);
}

Deno.test("WriteQueue batches small frames in order into one buffer", () => {
  const queue = new WriteQueue();
  queue.push(Uint8Array.of(1, 2));
  queue.push(Uint8Array.of(3));
  queue.push(new Uint8Array(0));
  queue.push(Uint8Array.of(4, 5, 6));
  assert.equal(queue.bytes, 6);
  const out = drain(queue);
  assert.deepEqual(out.map((b) => [...b]), [[1, 2, 3, 4, 5, 6]]);
  assert.equal(queue.bytes, 0);
  assert.equal(queue.take(), undefined);
});

Deno.test("WriteQueue copies a small frame at push(): the caller may reuse its buffer", () => {
  const queue = new WriteQueue();
  const frame = Uint8Array.of(7, 7, 7);
  queue.push(frame);
  frame.fill(0);
  assert.deepEqual([...queue.take()!], [7, 7, 7]);
});

Deno.test("WriteQueue keeps a large frame by reference and writes it alone, in order", () => {
  const queue = new WriteQueue();
  const large = bytes(COPY_LIMIT, 9);
  queue.push(Uint8Array.of(1));
  queue.push(large);
  queue.push(Uint8Array.of(2));
  const first = queue.take()!;
  assert.deepEqual([...first], [1]);
  queue.written();
  assert.equal(queue.take(), large, "the large frame itself, not a copy");
  queue.written();
  assert.deepEqual([...queue.take()!], [2]);
  queue.written();
  assert.equal(queue.bytes, 0);
});

Deno.test("WriteQueue never makes a batch larger than MAX_BATCH and loses no byte", () => {
  const queue = new WriteQueue();
  const frames: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; total < 3 * MAX_BATCH; i++) {
    const frame = bytes(1 + ((i * 7919) % (COPY_LIMIT - 1)), i & 0xff);
    frames.push(frame);
    queue.push(frame);
    total += frame.length;
  }
  assert.equal(queue.bytes, total);
  const out = drain(queue);
  assert.ok(out.length >= 3);
  for (const batch of out) assert.ok(batch.length <= MAX_BATCH, `batch of ${batch.length}`);
  assert.deepEqual(concat(out), concat(frames));
});

Deno.test("WriteQueue fills later batches, of any queue, from written buffers, never from one being written", () => {
  const queue = new WriteQueue();
  queue.push(bytes(100, 1));
  const first = queue.take()!;
  queue.push(bytes(100, 2)); // queued while the first batch is being written
  const second = queue.take()!;
  assert.notEqual(second.buffer, first.buffer, "a buffer being written is not refilled");
  queue.written(); // the second is written (the first stays with whoever took it)
  const other = new WriteQueue();
  other.push(bytes(100, 3));
  const third = other.take()!;
  assert.equal(third.buffer, second.buffer, "a written buffer holds the next batch, of any queue");
  assert.notEqual(third.buffer, first.buffer);
  assert.deepEqual([...third], [...bytes(100, 3)]);
  assert.deepEqual([...first], [...bytes(100, 1)], "the batch being written is left alone");
  other.written();
  assert.equal(queue.bytes + other.bytes, 0);
});

Deno.test("WriteQueue gives an outgrown batch buffer back: a larger batch does not strand the smaller", () => {
  const queue = new WriteQueue();
  queue.push(bytes(300, 1));
  queue.push(bytes(300, 2)); // outgrows the 512-byte batch: copied into a larger one
  const batch = queue.take()!;
  assert.deepEqual([...batch], [...bytes(300, 1), ...bytes(300, 2)]);
  const other = new WriteQueue();
  other.push(bytes(10, 3));
  const small = other.take()!;
  assert.equal(small.buffer.byteLength, 512);
  assert.notEqual(small.buffer, batch.buffer);
  queue.written();
  other.written();
});

Deno.test("WriteQueue.clear() drops everything queued", () => {
  const queue = new WriteQueue();
  queue.push(bytes(10, 1));
  queue.push(bytes(COPY_LIMIT, 2));
  queue.clear();
  assert.equal(queue.bytes, 0);
  assert.equal(queue.take(), undefined);
});
