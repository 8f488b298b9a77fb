import assert from "node:assert";
import { SlabAllocator } from "../../src/codec/slab_allocator.ts";

Deno.test("SlabAllocator hands out disjoint, aligned, zero-filled views of one slab", () => {
  const allocator = new SlabAllocator({ slabSize: 1024 });
  const a = allocator.allocate(5);
  const b = allocator.allocate(3);
  assert.strictEqual(a.length, 5);
  assert.strictEqual(b.length, 3);
  assert.strictEqual(a.buffer, b.buffer);
  assert.strictEqual(b.byteOffset, 8);
  assert.deepStrictEqual(b, new Uint8Array(3));
  a.fill(0xff);
  assert.deepStrictEqual(b, new Uint8Array(3));
});

Deno.test("SlabAllocator starts a new slab when the current one is full, never reusing one", () => {
  const allocator = new SlabAllocator({ slabSize: 64 });
  const first = allocator.allocate(16);
  first.fill(1);
  for (let i = 0; i < 3; i++) allocator.allocate(16);
  const next = allocator.allocate(16);
  assert.notStrictEqual(next.buffer, first.buffer);
  assert.strictEqual(next.byteOffset, 0);
  assert.deepStrictEqual(first, new Uint8Array(16).fill(1));
});

Deno.test("SlabAllocator gives large requests a buffer of their own", () => {
  const allocator = new SlabAllocator({ slabSize: 64 });
  const small = allocator.allocate(16);
  const large = allocator.allocate(17);
  assert.notStrictEqual(large.buffer, small.buffer);
  assert.strictEqual(large.buffer.byteLength, 17);
  assert.strictEqual(allocator.allocate(0).length, 0);
});

Deno.test("SlabAllocator rejects a slab size that is not a positive integer", () => {
  assert.throws(() => new SlabAllocator({ slabSize: 0 }), RangeError);
  assert.throws(() => new SlabAllocator({ slabSize: 10.5 }), RangeError);
});
