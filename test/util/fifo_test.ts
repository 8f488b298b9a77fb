import assert from "node:assert/strict";
import { Fifo } from "../../src/util/fifo.ts";

Deno.test("Fifo starts empty", () => {
  const fifo = new Fifo<number>();
  assert.equal(fifo.length, 0);
  assert.equal(fifo.shift(), undefined);
  assert.equal(fifo.peek(), undefined);
  assert.deepEqual([...fifo], []);
});

Deno.test("Fifo.push() and shift() keep first-in first-out order", () => {
  const fifo = new Fifo<string>();
  for (const item of ["a", "b", "c"]) fifo.push(item);
  assert.equal(fifo.length, 3);
  assert.equal(fifo.shift(), "a");
  assert.equal(fifo.shift(), "b");
  fifo.push("d");
  assert.equal(fifo.shift(), "c");
  assert.equal(fifo.shift(), "d");
  assert.equal(fifo.shift(), undefined);
  assert.equal(fifo.length, 0);
});

Deno.test("Fifo.peek() returns the oldest item and leaves it in place", () => {
  const fifo = new Fifo<number>();
  fifo.push(1);
  fifo.push(2);
  assert.equal(fifo.peek(), 1);
  assert.equal(fifo.peek(), 1);
  assert.equal(fifo.length, 2);
  fifo.shift();
  assert.equal(fifo.peek(), 2);
});

Deno.test("Fifo iterates oldest first without removing anything", () => {
  const fifo = new Fifo<number>(4);
  for (let i = 1; i <= 3; i++) fifo.push(i);
  assert.deepEqual([...fifo], [1, 2, 3]);
  assert.deepEqual([...fifo], [1, 2, 3]);
  assert.equal(fifo.length, 3);
});

Deno.test("Fifo wraps around the end of its buffer", () => {
  const fifo = new Fifo<number>(4);
  for (let i = 1; i <= 4; i++) fifo.push(i);
  fifo.shift();
  fifo.shift();
  // The head is at index 2; 5 and 6 wrap to indexes 0 and 1 without growing.
  fifo.push(5);
  fifo.push(6);
  assert.equal(fifo.length, 4);
  assert.deepEqual([...fifo], [3, 4, 5, 6]);
  assert.equal(fifo.peek(), 3);
  assert.deepEqual([fifo.shift(), fifo.shift(), fifo.shift(), fifo.shift()], [3, 4, 5, 6]);
  assert.equal(fifo.length, 0);
});

Deno.test("Fifo grows across the wrap point and keeps the order", () => {
  const fifo = new Fifo<number>(4);
  for (let i = 1; i <= 4; i++) fifo.push(i);
  fifo.shift();
  fifo.shift();
  fifo.push(5);
  fifo.push(6);
  // Full and wrapped: the next push grows the buffer.
  fifo.push(7);
  fifo.push(8);
  assert.equal(fifo.length, 6);
  assert.deepEqual([...fifo], [3, 4, 5, 6, 7, 8]);
  for (let i = 9; i <= 20; i++) fifo.push(i);
  const out: number[] = [];
  while (fifo.length > 0) out.push(fifo.shift()!);
  assert.deepEqual(out, Array.from({ length: 18 }, (_, i) => i + 3));
});

Deno.test("Fifo keeps order through many interleaved pushes and shifts", () => {
  const fifo = new Fifo<number>(2);
  const model: number[] = [];
  let next = 0;
  // A fixed pattern of bursts, so the head passes the wrap point at every capacity.
  for (let round = 0; round < 200; round++) {
    const pushes = (round * 7) % 13;
    const shifts = (round * 5) % 11;
    for (let i = 0; i < pushes; i++) {
      fifo.push(next);
      model.push(next++);
    }
    for (let i = 0; i < shifts; i++) assert.equal(fifo.shift(), model.shift());
    assert.equal(fifo.length, model.length);
    assert.equal(fifo.peek(), model[0]);
  }
  assert.deepEqual([...fifo], model);
});

Deno.test("Fifo accepts a capacity below 2 and grows from it", () => {
  for (const capacity of [0, 1]) {
    const fifo = new Fifo<string>(capacity);
    for (const item of ["a", "b", "c"]) fifo.push(item);
    assert.deepEqual([...fifo], ["a", "b", "c"]);
  }
});

Deno.test("Fifo.clear() empties it and it stays usable", () => {
  const fifo = new Fifo<number>(4);
  for (let i = 0; i < 10; i++) fifo.push(i);
  fifo.shift();
  fifo.clear();
  assert.equal(fifo.length, 0);
  assert.equal(fifo.peek(), undefined);
  assert.equal(fifo.shift(), undefined);
  assert.deepEqual([...fifo], []);
  for (let i = 0; i < 5; i++) fifo.push(i);
  assert.deepEqual([...fifo], [0, 1, 2, 3, 4]);
});

Deno.test("Fifo stores falsy values", () => {
  const fifo = new Fifo<number | string | null>();
  for (const item of [0, "", null]) fifo.push(item);
  assert.equal(fifo.length, 3);
  assert.equal(fifo.shift(), 0);
  assert.equal(fifo.shift(), "");
  assert.equal(fifo.shift(), null);
});
